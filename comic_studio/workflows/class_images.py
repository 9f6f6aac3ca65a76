"""Class pictures for prior preservation: the base model's own pictures of the class ("a photo of a
woman"), made once and kept in the user's cache folder for every character and project.

DreamBooth's prior-preservation loss (Ruiz et al. 2023, eq. 2) trains on pictures the frozen model
itself drew from the class prompt, so the LoRA learns the character without forgetting what a
"woman" looks like otherwise. Those pictures depend only on the base model's weights, the prompt,
the size, the seed and the sampler settings — not on the character — so they are cached under a
key of exactly those (:class:`ClassImageSpec`), in :func:`~comic_studio.core.settings.class_images_dir`.

Picture *i* is drawn with seed ``seed + i`` and written atomically as ``NNNN.png`` as soon as it is
made: an interrupted run (cancel, crash, full disk) keeps every finished picture and the next run
makes only the missing ones, with the same result as an uninterrupted run.

The base model is named by the sha256 of its weight files (a model copied elsewhere keeps its
pictures); hashing gigabytes takes seconds, so each file's hash is remembered by path, size and
modification time in ``model-hashes.json`` beside the pictures.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, open_image, read_json
from comic_studio.core.settings import class_images_dir
from comic_studio.training.data import TrainingPicture
from comic_studio.training.export import file_sha256

HASHES_FILE = "model-hashes.json"
SPEC_FILE = "spec.json"


class ClassImagesCancelled(ComicStudioError):
    """Cancelled while the base model made class pictures; those made so far are kept."""

    def __init__(self, made: int, total: int, folder: Path):
        self.made, self.total, self.folder = made, total, folder
        super().__init__(
            f"cancelled while making class pictures ({made} of {total} made, kept in {folder}); "
            "start the training again to continue"
        )


def class_prompt(class_word: str) -> str:
    """DreamBooth's class prompt for a class word: "a photo of a woman"."""
    return f"a photo of a {class_word}"


@dataclass(frozen=True)
class ClassImageSpec:
    """What the class pictures are a function of (the cache key), and how many a run needs."""

    base_model: str
    """sha256 of the base model's weights (:func:`base_model_hash`)."""
    prompt: str
    resolution: int
    seed: int
    steps: int
    guidance: float
    count: int

    @property
    def key(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "count"}  # more pictures extend the same set
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()

    def folder(self) -> Path:
        return class_images_dir() / self.key[:32]

    def picture_path(self, index: int) -> Path:
        return self.folder() / f"{index:04d}.png"


def base_model_hash(path: Path) -> str:
    """sha256 over the base model's files (a single checkpoint, or every file of a diffusers folder
    in name order), each file's hash remembered by path, size and mtime."""
    # Hidden files and folders are left out: a Hugging Face download keeps changing metadata in .cache/.
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
    memo_path = class_images_dir() / HASHES_FILE
    try:
        memo = read_json(memo_path, what="the model hash memo")
        memo = memo if isinstance(memo, dict) else {}
    except UnsafeInputError:
        memo = {}  # missing or damaged: hash again
    total, changed = hashlib.sha256(), False
    for file in files:
        stat = file.stat()
        memo_key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        digest = memo.get(memo_key)
        if not isinstance(digest, str):
            digest, changed = file_sha256(file), True
            memo[memo_key] = digest
        total.update(f"{file.relative_to(path) if file != path else file.name}:{digest}\n".encode())
    if changed:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(memo_path, json.dumps(memo, indent=0), "the model hash memo")
        except OSError:
            pass  # only a memo: the next run hashes again
    return total.hexdigest()


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def make_class_pictures(
    components: dict[str, Any],
    spec: ClassImageSpec,
    *,
    device: str = "cpu",
    cancel: Callable[[], bool] = lambda: False,
    on_picture: Callable[[int, int], None] | None = None,
) -> list[TrainingPicture]:
    """The spec's ``count`` class pictures, captioned with its prompt: the cached ones read back,
    the missing ones drawn by the base model in ``components`` (the frozen SDXL the LoRA trains
    on) and cached one by one. ``on_picture(done, total)`` after each; ``cancel()`` is asked
    before each picture and at each sampling step (:class:`ClassImagesCancelled`, pictures kept).
    A full disk raises :class:`ComicStudioError` naming the folder, with the finished pictures kept."""
    folder = spec.folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / SPEC_FILE).is_file():  # says what the pictures are, for a person looking
            atomic_write_text(folder / SPEC_FILE, json.dumps(asdict(spec) | {"count": None}, indent=2), "the spec")
    except OSError as exc:
        raise ComicStudioError(f"cannot write class pictures to {folder} ({exc.strerror or exc})") from exc
    pictures: list[TrainingPicture] = []
    pipe: Any = None
    for index in range(spec.count):
        path = spec.picture_path(index)
        image = _cached(path)
        if image is None:
            if cancel():
                raise ClassImagesCancelled(index, spec.count, folder)
            if pipe is None:
                pipe = _pipeline(components)
            image = _draw(pipe, spec, index, cancel, folder)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            try:
                atomic_write_bytes(path, buffer.getvalue(), "a class picture")
            except OSError as exc:
                raise ComicStudioError(
                    f"cannot write the class picture {path} ({exc.strerror or exc}); the {index} made so far "
                    "are kept — free some space and train again"
                ) from exc
        pictures.append(TrainingPicture(image, spec.prompt))
        if on_picture is not None:
            on_picture(index + 1, spec.count)
    return pictures


def _cached(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return open_image(path, what="class picture").convert("RGB")
    except UnsafeInputError:
        return None  # damaged: draw it again (the same seed gives the same picture)


def _pipeline(components: dict[str, Any]) -> Any:
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class _Stop(Exception):
    pass


def _draw(pipe: Any, spec: ClassImageSpec, index: int, cancel: Callable[[], bool], folder: Path) -> Any:
    import torch

    def at_step(_pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if cancel():
            raise _Stop
        return kwargs

    size = max(8, spec.resolution // 8 * 8)
    try:
        with torch.no_grad():
            return pipe(
                spec.prompt,
                num_inference_steps=spec.steps,
                guidance_scale=spec.guidance,
                height=size,
                width=size,
                # A CPU generator: picture i is the same on every device and in every run.
                generator=torch.Generator("cpu").manual_seed(spec.seed + index),
                callback_on_step_end=at_step,
            ).images[0]
    except _Stop:
        raise ClassImagesCancelled(index, spec.count, folder) from None
