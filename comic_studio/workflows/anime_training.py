"""Train AnimeAdapter weights from a dataset folder (``comic-studio train anime-adapter``): find the
base (SD 1.5 by default, or an SDXL model: :func:`resolve_base`), the CLIP vision encoder and the
pose controller of the base's family, run
:class:`~comic_studio.training.anime_adapter.AnimeAdapterTrainer` with a checkpoint inside the output
folder (``--resume`` continues it bit for bit), and write the weights in the format the ``anime``
backend loads (``anime_adapter.safetensors`` + ``config.json``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comic_studio.core.safe_read import UnsafeInputError, read_json
from comic_studio.generation.models.loading import (
    ModelLoadError,
    SdxlSource,
    load_sdxl_components,
    torch_dtype,
)
from comic_studio.generation.models.sd15 import SDXL_MARKER, load_sd15_components, resolve_sd15
from comic_studio.generation.models.sdxl import resolve_sdxl
from comic_studio.training.anime_adapter import AnimeAdapterRecipe, AnimeAdapterTrainer, base_family, read_dataset
from comic_studio.training.lora import TrainingError, TrainingProgress
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.header import read_safetensors_shapes
from comic_studio.weights.locate import Places, locate

# CHECKPOINT re-exported: the output folder's checkpoint name, as before the shared module.
from comic_studio.workflows.folder_training import CHECKPOINT as CHECKPOINT, TrainedFolder, checkpoint_in, final_loss

DEFAULT_ENCODER = "clip-vit-l-14-vision"
DEFAULT_CONTROLLERS = {
    ("sd15", "t2i-adapter"): "t2i-adapter-openpose-sd14",
    ("sd15", "controlnet"): "controlnet-openpose-sd15",
    ("sdxl", "controlnet"): "controlnet-openpose-sdxl",
}
"""The catalogue's pose controller per (base family, controller): no SDXL T2I-Adapter is catalogued
(as for the anime backend), so one needs its folder (--controller-model)."""


@dataclass(frozen=True)
class TrainedAdapter(TrainedFolder):
    """The adapter's folder (``anime_adapter.safetensors`` + ``config.json``) and the run's figures."""


def train_anime_adapter(data: Path, out: Path, recipe: AnimeAdapterRecipe, *, base: str = "", encoder: str = "",
                        controller: str = "", resume: bool = False, device: str = "cpu", dtype: str = "float32",
                        cancel: Callable[[], bool] = lambda: False,
                        on_progress: Callable[[TrainingProgress], None] | None = None) -> TrainedAdapter:  # fmt: skip
    """Train on ``data`` (a folder with ``metadata.jsonl``) and write the adapter to ``out``."""
    from comic_studio.generation.models.anime_adapter import save_adapter

    samples = read_dataset(data)
    family, source = resolve_base(base)
    if recipe.controller != "none" and not controller and (family, recipe.controller) not in DEFAULT_CONTROLLERS:
        raise TrainingError(f"the catalogue has no OpenPose {recipe.controller} for {family}: name its folder as the "
                            "controller model (--controller-model; e.g. TencentARC's t2i-adapter-openpose-sdxl-1.0), "
                            "or train with the ControlNet (--controller controlnet)")  # fmt: skip
    load = load_sdxl_components if family == "sdxl" else load_sd15_components
    try:
        parts = load(source, dtype=dtype, device=device)
    except ModelLoadError as exc:
        raise TrainingError(f"--base: {exc}") from exc
    encoder_path = _path(encoder or DEFAULT_ENCODER, "--image-encoder")
    vision, processor = _encoder(encoder_path, dtype, device)
    control = None
    if recipe.controller != "none":
        spec = controller or DEFAULT_CONTROLLERS[(family, recipe.controller)]
        control = _controller(recipe.controller, _path(spec, "--controller-model"), dtype, device)
    trainer = AnimeAdapterTrainer(parts, vision, processor, samples, recipe, controller=control,
                                  encoder_id=encoder or DEFAULT_ENCODER, device=device)  # fmt: skip
    checkpoint = checkpoint_in(out, trainer, resume=resume)
    trainer.train(checkpoint, cancel=cancel, on_progress=on_progress)
    save_adapter(trainer.adapter, out)
    return TrainedAdapter(out, trainer.step, final_loss(trainer), trainer.evaluation_loss())


def resolve_base(spec: str) -> tuple[str, SdxlSource]:
    """``--base`` → (family, source), before any weights are read: empty is the SD 1.5 default (the
    paper's family); an SDXL catalogue id, diffusers folder (by its UNet config) or single-file
    checkpoint (by its second text encoder) resolves as the rest of the app resolves SDXL
    (:func:`~comic_studio.generation.models.sdxl.resolve_sdxl`); anything else as SD 1.5, whose
    checks refuse SD 2.x checkpoints by their cross-attention width. :class:`TrainingError` names
    the option and what to do."""
    spec = spec.strip()
    path = Path(spec).expanduser()
    try:
        if spec and path.is_dir():
            try:
                config = read_json(path / "unet" / "config.json")
            except UnsafeInputError:
                config = None  # not a diffusers folder: resolve_sd15 says so
            if isinstance(config, dict) and base_family(config) == "sdxl":
                return "sdxl", resolve_sdxl(str(path))
        elif spec and path.is_file():
            if _is_sdxl_checkpoint(path):
                return "sdxl", resolve_sdxl(str(path))
        elif spec and "/" not in spec and not spec.endswith((".safetensors", ".ckpt")):
            try:
                kind: str = load_catalogue().get(spec).kind
            except CatalogueError:
                kind = ""  # resolve_sd15 names the unknown id
            if kind == "sdxl":
                return "sdxl", resolve_sdxl(spec)
        return "sd15", resolve_sd15(spec)
    except (ModelLoadError, TrainingError) as exc:
        raise TrainingError(f"--base: {exc}") from exc


def _is_sdxl_checkpoint(path: Path) -> bool:
    try:
        return any(k.startswith(SDXL_MARKER) for k in read_safetensors_shapes(path))
    except (OSError, ValueError):
        return False  # unreadable: resolve_sd15's checks name the problem


def _path(spec: str, option: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise TrainingError(f"{option}: {spec!r} is neither a folder nor a catalogue id ({exc})") from exc
    found = locate(entry, Places.from_settings())
    if found is None:
        raise TrainingError(f"{option}: {spec!r} is not installed: run `comic-studio models download {spec}`")
    return found.path


def _encoder(path: Path, dtype: str, device: str) -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, CLIPVisionModel

    try:
        model = CLIPVisionModel.from_pretrained(path, torch_dtype=torch_dtype(dtype), local_files_only=True,
                                                use_safetensors=True)  # fmt: skip
        processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"--image-encoder: cannot load {path} ({exc})") from exc
    return model.to(device).eval(), processor


def _controller(kind: str, path: Path, dtype: str, device: str) -> Any:
    import diffusers

    cls = diffusers.T2IAdapter if kind == "t2i-adapter" else diffusers.ControlNetModel
    try:
        model = cls.from_pretrained(path, torch_dtype=torch_dtype(dtype), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise TrainingError(f"--controller-model: cannot load the {kind} from {path} ({exc})") from exc
    return model.to(device).eval()


# ------------------------------------------------------------------------------ dataset builder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class DatasetCancelled(TrainingError):
    """Building the dataset was cancelled (nothing is kept: the next run builds it again)."""


@dataclass(frozen=True)
class BuiltDataset:
    folder: Path
    used: list[str]
    problems: dict[str, str]
    """Image file name → why it could not be used (and how to supply what is missing by hand)."""


def build_dataset(images: Path, out: Path, *, cancel: Callable[[], bool] = lambda: False,
                  on_picture: Callable[[int, int], None] | None = None) -> BuiltDataset:  # fmt: skip
    """A dataset folder (``metadata.jsonl`` + masks + pose images) at ``out`` from the pictures in
    ``images``, for ``train anime-adapter --images``.

    Per picture ``NAME.png``: the mask is ``NAME.mask.png`` when the user drew one, else the offline
    person segmenter's, else the plain-background rule's; the pose is ``NAME.pose.png`` (an OpenPose
    image) when given, else the offline pose detector's skeleton; the prompt is ``NAME.txt`` (tags,
    without the character's name: §4.4's Training Prompt), else empty. The detectors are trained on
    photos and miss many drawings: a picture with no mask or pose is reported, not used.

    ``on_picture(done, total)`` after each picture; ``cancel()`` before each one raises
    :class:`DatasetCancelled` (the detectors take a second or more per picture on a CPU)."""
    from PIL import Image

    from comic_studio.core import safe_read
    from comic_studio.poses.extract import PoseExtractionError, extract_pose
    from comic_studio.poses.staging.openpose import render_openpose
    from comic_studio.training.anime_adapter import write_manifest
    from comic_studio.vision.detect import person_mask, plain_background_mask

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    used: list[str] = []
    problems: dict[str, str] = {}
    pictures = sorted(
        p for p in images.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith((".mask", ".pose"))
    )  # fmt: skip
    for done, path in enumerate(pictures):
        if cancel():
            raise DatasetCancelled(
                f"cancelled while building the dataset ({done} of {len(pictures)} pictures looked at)"
            )
        if on_picture is not None and done:
            on_picture(done, len(pictures))
        try:
            picture = safe_read.open_image(path, what="training picture").convert("RGB")
        except safe_read.UnsafeInputError as exc:
            problems[path.name] = exc.problem
            continue
        mask = _sidecar(path, "mask")
        foreground = (np.asarray(mask.convert("L")) > 127) if mask is not None else person_mask(picture)
        if foreground is None:
            foreground = plain_background_mask(picture)
        if foreground is None or foreground.shape != (picture.height, picture.width):
            problems[path.name] = f"no foreground found: draw one as {path.stem}.mask.png (white = the character)"
            continue
        pose = _sidecar(path, "pose")
        if pose is None:
            try:
                found = extract_pose(picture)
            except PoseExtractionError as exc:  # the detector is not installed
                problems[path.name] = f"{exc}; or put an OpenPose image beside it as {path.stem}.pose.png"
                continue
            if found.figure is None:
                problems[path.name] = f"{found.reason}; or put an OpenPose image beside it as {path.stem}.pose.png"
                continue
            w, h = picture.size
            pose = render_openpose([[(x * w, y * h, v) for x, y, v in found.figure.keypoints]], w, h)
        stem = f"{len(rows):05d}"
        picture.save(out / f"{stem}.png")
        Image.fromarray(foreground.astype(np.uint8) * 255).save(out / f"{stem}-mask.png")
        pose.convert("RGB").resize(picture.size).save(out / f"{stem}-pose.png")
        caption = path.with_suffix(".txt")
        prompt = safe_read.read_text(caption, limit=64 * 1024).strip() if caption.is_file() else ""
        rows.append({"image": f"{stem}.png", "mask": f"{stem}-mask.png", "pose": f"{stem}-pose.png", "prompt": prompt})
        used.append(path.name)
    if not rows:
        raise TrainingError(f"{images}: no picture could be used ({len(problems)} tried): " + "; ".join(
            f"{name}: {why}" for name, why in list(problems.items())[:3]))  # fmt: skip
    write_manifest(out, rows)
    if on_picture is not None:
        on_picture(len(pictures), len(pictures))
    return BuiltDataset(out, used, problems)


def _sidecar(path: Path, kind: str) -> Any | None:
    from comic_studio.core import safe_read

    side = path.with_name(f"{path.stem}.{kind}.png")
    if not side.is_file():
        return None
    try:
        return safe_read.open_image(side, what=f"{kind} image")
    except safe_read.UnsafeInputError as exc:
        raise TrainingError(f"{side}: {exc.problem}") from exc
