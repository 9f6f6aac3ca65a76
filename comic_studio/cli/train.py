"""``comic-studio train lora|identity PROJECT.comic --character NAME [--steps N] [--resume] [--models tiny]``,
``comic-studio train export-lora PROJECT.comic --character NAME --out FOLDER`` (the LoRA for
ComfyUI/A1111 in kohya's layout, beside the diffusers file and its card) and
``comic-studio train anime-adapter --data DIR --out WEIGHTS [--steps N] [--resume] [--models tiny]``
and ``comic-studio train serialgen --data pairs.jsonl --out FOLDER [--train-unets] [--resume] [--models tiny]``.

``identity`` learns the character's StableIdentity tokens from its face photos
(``comic_studio.training.identity``) instead; the rest below holds for both.

Trains the character's LoRA from its face and outfit references with StoryBooth's recipe
(``comic_studio.training.lora``), stores it on the character and saves the project. Progress (step,
loss, ETA) goes to stderr. Ctrl+C stops at the next step after saving a checkpoint; ``--resume``
continues from it, bit for bit. ``--prior`` adds DreamBooth's prior preservation with class
pictures the base model makes (cached in the user's cache folder and reused). As the Train dialog,
``lora`` renders samples at a fixed prompt and seed every ``--samples-every`` steps (default 100;
``--no-samples``), beside the checkpoint, where the studio's character card shows them — also while
this command runs. Exit codes as ``render``: 1 for a problem with the input, 130 when interrupted
(resumable).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from comic_studio.cli.options import add_project_edit_options
from comic_studio.cli.progress import StderrProgress
from comic_studio.training.samples import DEFAULT_SAMPLE_EVERY

if TYPE_CHECKING:
    from comic_studio.training.lora import TrainingProgress

_T = TypeVar("_T")

TINY_RESOLUTION = 64
"""The training size with ``--models tiny`` (the tiny UNet's native size)."""
TINY_CLASS_STEPS = 2
"""Sampling steps of the class pictures with ``--models tiny`` (random weights: any picture will do)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    train = subparsers.add_parser("train", help="train a character's LoRA or identity tokens")
    methods = train.add_subparsers(dest="method", metavar="METHOD", required=True)
    lora = methods.add_parser("lora", help="DreamBooth-LoRA on SDXL from the character's reference pictures")
    lora.add_argument("project", help="the .comic project (saved over itself, or to --out)")
    lora.add_argument("--character", required=True, help="the character's name, alias or id")
    lora.add_argument("--steps", type=int, help="optimizer steps (default 1450, StoryBooth's)")
    lora.add_argument("--resume", action="store_true", help="continue the character's cancelled or interrupted run")
    lora.add_argument("--model", default="", help="the SDXL base model: catalogue id, folder or checkpoint")
    lora.add_argument("--trigger", default="sks", help="the identifier word in the captions (default: sks)")
    lora.add_argument("--rank", type=int, help="LoRA rank (default 4)")
    lora.add_argument("--learning-rate", type=float, help="AdamW learning rate (default 1e-4)")
    lora.add_argument("--resolution", type=int, help="training size in pixels (default 1024; 64 with --models tiny)")
    lora.add_argument("--timesteps", choices=["logit_normal", "uniform"], help="timestep law (default logit_normal)")
    lora.add_argument("--memory", choices=["as-the-seed-ran", "16gb", "12gb"], help="memory recipe")
    lora.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    prior = lora.add_argument_group("prior preservation (DreamBooth's class pictures; off by default, as the seed ran)")
    prior.add_argument(
        "--prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train with class pictures the base model makes itself (cached for reuse)",
    )
    prior.add_argument("--class-prompt", help='the class pictures\' prompt (default "a photo of a <woman|man|person>")')
    prior.add_argument("--class-images", type=int, metavar="N", help="how many class pictures (default 100)")
    prior.add_argument("--prior-weight", type=float, help="the prior loss weight (default 1.0)")
    lora.add_argument(
        "--train-text-encoder",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train a LoRA on both text encoders' attention (off by default, as the seed ran; lr 5e-6)",
    )
    lora.add_argument(
        "--min-snr",
        type=float,
        metavar="GAMMA",
        help="min-SNR-γ loss weighting (default 0 = off, as the seed; 5 is the paper's γ)",
    )
    samples = lora.add_argument_group("samples (as the Train dialog: pictures at a fixed prompt and seed, "
                                      "written beside the checkpoint and shown on the character's card)")  # fmt: skip
    samples.add_argument(
        "--samples-every",
        type=int,
        metavar="N",
        help=f"render samples every N steps (default {DEFAULT_SAMPLE_EVERY}; 0 = never)",
    )
    samples.add_argument(
        "--samples-prompt",
        action="append",
        metavar="PROMPT",
        help='a sample prompt (repeat for more, up to 8; default "a photo of <trigger> <class>")',
    )
    samples.add_argument("--no-samples", action="store_true", help="no samples (same as --samples-every 0)")
    add_project_edit_options(lora)
    lora.set_defaults(func=_cmd_train_lora)
    identity = methods.add_parser("identity", help="StableIdentity tokens on SDXL from the character's face photos")
    identity.add_argument("project", help="the .comic project (saved over itself, or to --out)")
    identity.add_argument("--character", required=True, help="the character's name, alias or id")
    identity.add_argument("--steps", type=int, help="optimizer steps (default 500, the seed's)")
    identity.add_argument("--resume", action="store_true", help="continue the character's interrupted run")
    identity.add_argument("--model", default="", help="the SDXL base model: catalogue id, folder or checkpoint")
    identity.add_argument("--face-encoder", default="", help="a ViT folder (default: the face-recognition ViT, "
                          "else the generic ViT, from the Hugging Face cache)")  # fmt: skip
    identity.add_argument("--learning-rate", type=float, help="AdamW learning rate (default 1e-5)")
    identity.add_argument("--alpha", type=float, help="phase split α (default 0.5; the original paper 0.6)")
    identity.add_argument("--resolution", type=int, help="training size in pixels (default 512; 64 with --models tiny)")
    identity.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    add_project_edit_options(identity)
    identity.set_defaults(func=_cmd_train_identity)
    export = methods.add_parser(
        "export-lora", help="write a character's LoRA for ComfyUI/A1111 (kohya layout) and diffusers, with its card"
    )
    export.add_argument("project", help="the .comic project")
    export.add_argument("--character", required=True, help="the character's name, alias or id")
    export.add_argument(
        "--out", required=True, help="the folder to write NAME.safetensors, NAME.kohya.safetensors, NAME.json"
    )
    export.add_argument("--name", default="", help="the files' name (default: the character's)")
    export.set_defaults(func=_cmd_export_lora)
    anime = methods.add_parser("anime-adapter", help="AnimeAdapter weights (seed 003) from a dataset folder")
    source = anime.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a folder with metadata.jsonl rows {image, mask, pose, prompt}")
    source.add_argument(
        "--images",
        help="a folder of character pictures: masks and poses are detected "
        "(NAME.mask.png / NAME.pose.png beside a picture override them, NAME.txt is its tags)",
    )
    anime.add_argument(
        "--out", required=True, help="the weights folder to write (anime_adapter.safetensors + config.json)"
    )
    anime.add_argument(
        "--base",
        default="",
        help="the base model: catalogue id, diffusers folder or .safetensors checkpoint of an SD 1.5 model "
        "(default sd15-base) or of an SDXL model (trains SDXL-family weights; SD 2.x is refused)",
    )
    anime.add_argument("--image-encoder", default="", help="the CLIP vision encoder (default clip-vit-l-14-vision)")
    anime.add_argument(
        "--controller",
        choices=["t2i-adapter", "controlnet", "none"],
        help="the frozen pose controller (default t2i-adapter, the paper's best; controlnet for an SDXL base, "
        "whose T2I-Adapter needs --controller-model FOLDER)",
    )
    anime.add_argument("--controller-model", default="", help="its folder or catalogue id")
    anime.add_argument("--k-layers", type=int, help="CLIP layers fused (default 7; 3 with --models tiny)")
    anime.add_argument("--steps", type=int, help="optimizer steps (default 30000, the paper's)")
    anime.add_argument("--accumulation", type=int, help="micro-batches per step (default 16: the paper's batch)")
    anime.add_argument(
        "--resolution", type=int, help="training size (default 512, 1024 for SDXL; 64 with --models tiny)"
    )
    anime.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    anime.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    anime.add_argument(
        "--models",
        choices=["tiny"],
        help="tiny: the random-weight tiny SD 1.5 kit (a smoke run; --base a tiny SDXL folder for an SDXL one)",
    )
    anime.add_argument("--quiet", action="store_true")
    anime.set_defaults(func=_cmd_train_anime_adapter)
    serialgen = methods.add_parser(
        "serialgen", help="SerialGen's standardizer (FBDM/RPIM, optionally the UNets) on pairs"
    )
    serialgen.add_argument("--data", required=True,
                           help="pairs.jsonl: rows {ref_image, ref_mask, ref_pose, std_image, std_pose} (paths beside it)")  # fmt: skip
    serialgen.add_argument("--out", required=True, help="the folder to write (serialgen_modules.safetensors + .json)")
    serialgen.add_argument("--weights", default="", help="Moore-AnimateAnyone stage-1 folder or catalogue id")
    serialgen.add_argument("--base", default="", help="the SD 1.5 base model: catalogue id, folder or checkpoint")
    serialgen.add_argument("--image-encoder", default="", help="the CLIP image encoder (default: sd-image-variations')")
    serialgen.add_argument("--train-unets", action="store_true", help="also fine-tune both UNets and the PoseGuider")
    serialgen.add_argument("--steps", type=int, help="optimizer steps (default 50000, the paper's)")
    serialgen.add_argument("--accumulation", type=int, help="micro-batches per step (default 32: the paper's batch)")
    serialgen.add_argument("--learning-rate", type=float, help="AdamW learning rate (default 1e-5, Moore's stage 1)")
    serialgen.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    serialgen.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    serialgen.add_argument("--models", choices=["tiny"], help="tiny: random-weight tiny stage-1 models (a smoke run)")
    serialgen.add_argument("--quiet", action="store_true")
    serialgen.set_defaults(func=_cmd_train_serialgen)
    return train


def _cmd_train_serialgen(args: argparse.Namespace) -> int:
    from comic_studio.training.serialgen import SerialgenRecipe
    from comic_studio.workflows.serialgen_training import train_serialgen
    from comic_studio.workflows.training import training_device

    fields: dict[str, Any] = {"train_unets": args.train_unets}
    models = {"weights": args.weights, "base": args.base, "encoder": args.image_encoder}
    if args.models == "tiny":
        from platformdirs import user_cache_dir

        from comic_studio.testing.tiny_serialgen import build_tiny_serialgen

        tiny = Path(user_cache_dir("comic-studio")) / "tiny-models"
        kit = build_tiny_serialgen(tiny / "serialgen", sd15_kit=tiny / "sd15")
        models = {"weights": str(kit.moore), "base": str(kit.sd15), "encoder": str(kit.image_encoder)}
        fields.update(width=TINY_RESOLUTION, height=TINY_RESOLUTION * 3 // 2)
    for option, field in (("steps", "steps"), ("accumulation", "gradient_accumulation"),
                          ("learning_rate", "learning_rate")):  # fmt: skip
        if getattr(args, option) is not None:
            fields[field] = getattr(args, option)
    recipe = _recipe(SerialgenRecipe, fields)
    device, dtype = training_device(args.device)
    run = _TrainingRun("train serialgen", args.quiet)
    trained = run(lambda: train_serialgen(Path(args.data), Path(args.out), recipe, **models, resume=args.resume,
                                          device=device, dtype=dtype, cancel=run.cancelled,
                                          on_progress=run.on_progress))  # fmt: skip
    if trained is None:
        return 130
    where = "'standardizer_modules'" + (" and 'standardizer_weights'" if trained.unets else "")
    print(f"{trained.folder}: SerialGen standardizer ({trained.steps} steps, final loss {trained.final_loss:.4f}, "
          f"evaluation loss {trained.first_evaluation_loss:.4f} → {trained.evaluation_loss:.4f}); use it with the "
          f"serialgen backend's {where} setting")  # fmt: skip
    return 0


def _cmd_export_lora(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.workflows.anchors import character_named
    from comic_studio.workflows.training import export_character_lora

    doc = Document.open(Path(args.project))
    character = character_named(doc.project, args.character)
    files = export_character_lora(doc, character.id, Path(args.out), args.name)
    print(f"{files.kohya}  (ComfyUI/A1111: models/loras; trigger in {files.card.name})")
    print(files.diffusers)
    print(files.card)
    return 0


def _cmd_train_anime_adapter(args: argparse.Namespace) -> int:
    from comic_studio.training.anime_adapter import SDXL_RESOLUTION, AnimeAdapterRecipe
    from comic_studio.workflows.anime_training import build_dataset, resolve_base, train_anime_adapter
    from comic_studio.workflows.training import training_device

    fields: dict[str, Any] = {}
    models = {"base": args.base, "encoder": args.image_encoder, "controller": args.controller_model}
    # The family picks the defaults: an SDXL base trains at SDXL's size with the SDXL OpenPose
    # ControlNet (no SDXL T2I-Adapter is catalogued).
    family = resolve_base(args.base)[0] if args.base.strip() else "sd15"
    if family == "sdxl":
        fields.update(resolution=SDXL_RESOLUTION, controller="controlnet")
    if args.models == "tiny":
        from platformdirs import user_cache_dir

        from comic_studio.testing.tiny_sd15 import TINY_K, build_tiny_sd15_kit

        cache = Path(user_cache_dir("comic-studio")) / "tiny-models"
        kit = build_tiny_sd15_kit(cache / "sd15")
        controller = args.controller or fields.get("controller", "t2i-adapter")
        if family == "sdxl":  # the tiny SDXL kit's ControlNet (the one --models tiny renders with)
            from comic_studio.testing.tiny import build_tiny_kit

            nets = {"controlnet": str(build_tiny_kit(cache).controlnet)}
        else:
            nets = {"t2i-adapter": str(kit.t2i_adapter), "controlnet": str(kit.controlnet)}
        models = {"base": args.base.strip() or str(kit.sd15), "encoder": str(kit.clip_vision),
                  "controller": args.controller_model or nets.get(controller, "")}  # fmt: skip
        fields.update(k_layers=TINY_K, resolution=TINY_RESOLUTION)
    for option, field in (("k_layers", "k_layers"), ("steps", "steps"), ("accumulation", "gradient_accumulation"),
                          ("resolution", "resolution"), ("controller", "controller")):  # fmt: skip
        value = getattr(args, option)
        if value is not None:
            fields[field] = value
    recipe = _recipe(AnimeAdapterRecipe, fields)
    device, dtype = training_device(args.device)
    run = _TrainingRun("train anime-adapter", args.quiet)
    data = Path(args.data) if args.data else None
    if data is None:
        built = build_dataset(Path(args.images), Path(args.out) / "dataset")
        for name, why in built.problems.items():
            print(f"comic-studio: {name} not used: {why}", file=sys.stderr)
        print(f"comic-studio: dataset of {len(built.used)} picture(s) written to {built.folder}", file=sys.stderr)
        data = built.folder
    trained = run(lambda: train_anime_adapter(data, Path(args.out), recipe, **models, resume=args.resume,
                                              device=device, dtype=dtype, cancel=run.cancelled,
                                              on_progress=run.on_progress))  # fmt: skip
    if trained is None:
        return 130
    print(f"{trained.folder}: AnimeAdapter weights ({trained.steps} steps, final loss {trained.final_loss:.4f}, "
          f"evaluation loss {trained.evaluation_loss:.4f}); use them with the anime backend's 'adapter' setting")  # fmt: skip
    return 0


def _cmd_train_lora(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.core.errors import ComicStudioError
    from comic_studio.training.lora import LoraRecipe
    from comic_studio.training.samples import SampleSettings
    from comic_studio.workflows.anchors import character_named
    from comic_studio.workflows.training import train_character_lora, training_device

    recipe_fields: dict[str, Any] = {}
    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models

        use_tiny_models()
        recipe_fields["resolution"] = TINY_RESOLUTION
        if args.prior:
            recipe_fields["class_steps"] = TINY_CLASS_STEPS
    for option, field in (("steps", "steps"), ("rank", "rank"), ("learning_rate", "learning_rate"),
                          ("resolution", "resolution"), ("timesteps", "timestep_law"), ("memory", "memory"),
                          ("prior", "prior_preservation"), ("class_prompt", "class_prompt"),
                          ("class_images", "class_images"), ("prior_weight", "prior_loss_weight"),
                          ("train_text_encoder", "train_text_encoder")):  # fmt: skip
        value = getattr(args, option)
        if value is not None:
            recipe_fields[field] = value
    if args.min_snr is not None:
        if args.min_snr < 0:
            raise ComicStudioError(f"--min-snr {args.min_snr}: γ must be 0 (off) or positive")
        recipe_fields["snr_gamma"] = args.min_snr or None
    if "rank" in recipe_fields:
        recipe_fields["alpha"] = float(recipe_fields["rank"])  # alpha = rank: the LoRA's scale stays 1
    recipe = _recipe(LoraRecipe, recipe_fields)
    every = 0 if args.no_samples else args.samples_every
    sample_fields: dict[str, Any] = {} if every is None else {"every": every}
    if args.samples_prompt:
        sample_fields["prompts"] = tuple(p.strip() for p in args.samples_prompt)
        if not all(sample_fields["prompts"]):
            raise ComicStudioError("--samples-prompt: a sample prompt cannot be empty")
    samples = _recipe(SampleSettings, sample_fields)
    device, dtype = training_device(args.device)
    path = Path(args.project)
    doc = Document.open(path)
    character = character_named(doc.project, args.character)
    run = _TrainingRun(f"train {character.name}", args.quiet)

    def on_samples(step: int, _total: int, _images: Any, files: list[Path]) -> None:
        run.report.say(f"samples at step {step}: " + ", ".join(str(f) for f in files))

    trained = run(lambda: train_character_lora(
        doc, character.id, recipe, model=args.model, trigger=args.trigger, resume=args.resume, device=device,
        dtype=dtype, cancel=run.cancelled, on_progress=run.on_progress,
        on_class_picture=lambda done, total: run.report(
            f"class pictures ({recipe.class_images} of the base model)", done, total),
        samples=samples, on_samples=on_samples,
    ))  # fmt: skip
    if trained is None:
        return 130
    saved = doc.save(Path(args.out) if args.out else path)
    print(f"{saved}: {character.name} has a trained LoRA ({trained.steps} steps, final loss "
          f"{trained.final_loss:.4f}, {trained.size:,} bytes, asset {trained.asset[:12]}…)")  # fmt: skip
    return 0


def _cmd_train_identity(args: argparse.Namespace) -> int:
    from comic_studio.core.document import Document
    from comic_studio.training.identity import IdentityRecipe
    from comic_studio.workflows.anchors import character_named
    from comic_studio.workflows.identity import train_character_identity
    from comic_studio.workflows.training import training_device

    fields: dict[str, Any] = {}
    if args.models == "tiny":
        from comic_studio.testing.tiny import use_tiny_models
        from comic_studio.testing.tiny_identity import use_tiny_face_encoder

        use_tiny_models()
        use_tiny_face_encoder()
        fields["resolution"] = TINY_RESOLUTION
    for option in ("steps", "learning_rate", "alpha", "resolution"):
        if getattr(args, option) is not None:
            fields[option] = getattr(args, option)
    recipe = _recipe(IdentityRecipe, fields)
    device, dtype = training_device(args.device)
    path = Path(args.project)
    doc = Document.open(path)
    character = character_named(doc.project, args.character)
    run = _TrainingRun(f"identity {character.name}", args.quiet)
    trained = run(lambda: train_character_identity(doc, character.id, recipe, model=args.model,
                                                   face_encoder=args.face_encoder, resume=args.resume, device=device,
                                                   dtype=dtype, cancel=run.cancelled, on_progress=run.on_progress))  # fmt: skip
    if trained is None:
        return 130
    saved = doc.save(Path(args.out) if args.out else path)
    print(f"{saved}: {character.name} has learned identity tokens ({trained.steps} steps, final loss "
          f"{trained.final_loss:.4f}, asset {trained.asset[:12]}…); render with the 'identity' backend")  # fmt: skip
    return 0


class _TrainingRun:
    """What every ``train`` command wires around its trainer: progress on stderr (loss, steps/s,
    minutes left) and Ctrl+C as a request to stop — the trainer checks it before each step and
    saves a checkpoint first, so the run resumes with ``--resume``."""

    def __init__(self, label: str, quiet: bool):
        self.label = label
        self.report = StderrProgress(quiet)
        self._asked = False

    def cancelled(self) -> bool:
        return self._asked

    def on_progress(self, p: TrainingProgress) -> None:
        self.report(f"{self.label}: loss {p.loss:.4f}, {p.steps_per_second:.2f} steps/s, "
                    f"{p.eta_seconds / 60:.0f} min left; step", p.step, p.total)  # fmt: skip

    def _interrupted(self, _signum: int, _frame: Any) -> None:
        self._asked = True

    def __call__(self, train: Callable[[], _T]) -> _T | None:
        """``train()`` with Ctrl+C asking it to stop; None when it stopped (the reason printed: the
        command exits 130)."""
        from comic_studio.training.lora import TrainingCancelled
        from comic_studio.workflows.class_images import ClassImagesCancelled

        previous = signal.signal(signal.SIGINT, self._interrupted)
        try:
            return train()
        except ClassImagesCancelled as exc:  # before training: the class pictures made are kept
            print(f"comic-studio: {exc}", file=sys.stderr)
        except TrainingCancelled as exc:
            print(f"comic-studio: {exc}; run again with --resume to continue", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return None


def _recipe(model: Any, fields: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from comic_studio.core.errors import ComicStudioError

    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ComicStudioError(f"training setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
