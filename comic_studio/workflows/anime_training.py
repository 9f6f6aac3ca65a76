"""Train AnimeAdapter weights from a dataset folder (``comic-studio train anime-adapter``): find the
SD 1.5 base, the CLIP vision encoder and the pose controller, run
:class:`~comic_studio.training.anime_adapter.AnimeAdapterTrainer` with a checkpoint inside the output
folder (``--resume`` continues it bit for bit), and write the weights in the format the ``anime``
backend loads (``anime_adapter.safetensors`` + ``config.json``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comic_studio.generation.models.loading import ModelLoadError, torch_dtype
from comic_studio.generation.models.sd15 import load_sd15_components, resolve_sd15
from comic_studio.training.anime_adapter import AnimeAdapterRecipe, AnimeAdapterTrainer, read_dataset
from comic_studio.training.lora import TrainingError, TrainingProgress
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.locate import Places, locate

CHECKPOINT = "training-checkpoint.safetensors"
DEFAULT_ENCODER = "clip-vit-l-14-vision"
DEFAULT_CONTROLLERS = {"t2i-adapter": "t2i-adapter-openpose-sd14", "controlnet": "controlnet-openpose-sd15"}


@dataclass(frozen=True)
class TrainedAdapter:
    folder: Path
    steps: int
    final_loss: float
    evaluation_loss: float


def train_anime_adapter(data: Path, out: Path, recipe: AnimeAdapterRecipe, *, base: str = "", encoder: str = "",
                        controller: str = "", resume: bool = False, device: str = "cpu", dtype: str = "float32",
                        cancel: Callable[[], bool] = lambda: False,
                        on_progress: Callable[[TrainingProgress], None] | None = None) -> TrainedAdapter:  # fmt: skip
    """Train on ``data`` (a folder with ``metadata.jsonl``) and write the adapter to ``out``."""
    from comic_studio.generation.models.anime_adapter import save_adapter

    samples = read_dataset(data)
    try:
        parts = load_sd15_components(resolve_sd15(base), dtype=dtype, device=device)
    except ModelLoadError as exc:
        raise TrainingError(f"--base: {exc}") from exc
    encoder_path = _path(encoder or DEFAULT_ENCODER, "--image-encoder")
    vision, processor = _encoder(encoder_path, dtype, device)
    control = None
    if recipe.controller != "none":
        control = _controller(recipe.controller, _path(controller or DEFAULT_CONTROLLERS[recipe.controller], "--controller-model"), dtype, device)  # fmt: skip
    trainer = AnimeAdapterTrainer(parts, vision, processor, samples, recipe, controller=control,
                                  encoder_id=encoder or DEFAULT_ENCODER, device=device)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT
    if resume:
        if not checkpoint.is_file():
            raise TrainingError(f"{checkpoint}: nothing to resume (run without --resume to start)")
        trainer.resume(checkpoint)
    trainer.train(checkpoint, cancel=cancel, on_progress=on_progress)
    save_adapter(trainer.adapter, out)
    return TrainedAdapter(out, trainer.step, trainer.losses[-1] if trainer.losses else float("nan"),
                          trainer.evaluation_loss())  # fmt: skip


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
