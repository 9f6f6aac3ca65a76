"""OpenCLIP text and image features for pose retrieval (``embedder="openclip"``).

CLIP puts a sentence and a picture in one space, so a beat's action text can be matched against the
*pictures* of pose entries: the photos of a user's pose-photo folder, or the image features RaCig's
public retrieval data ships (made with CLIP ViT-bigG-14). The model is chosen from the catalogue
(``comic_studio/resources/models.json``, kind ``openclip``: ViT-H-14 or ViT-bigG-14, named by the app setting
``pose_clip_model``) and found with :func:`comic_studio.weights.locate.locate`.

Weights are read from a folder laid out like the laion Hugging Face repos: ``open_clip_config.json``
(architecture + preprocessing) beside ``open_clip_model.safetensors`` (or ``open_clip_pytorch_model.bin``,
which is only ever read with ``torch.load(weights_only=True)``). Without the config file an open_clip
architecture name (``ViT-H-14``) must be given. torch and open_clip are imported only when a model is
loaded; on the CPU-only machines open_clip runs with the pure-Python ``torchvision==0.15.2`` (see the
Makefile).

Image features are cached on disk, one ``.npy`` row per image, keyed by the model's cache key and the
image file's SHA-256: an image is encoded once per model, whatever library it is in.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, open_image as safe_open_image, open_regular
from comic_studio.poses.array_files import read_matrix, save_arrays_atomic

if TYPE_CHECKING:
    from PIL import Image

    from comic_studio.weights.locate import Places

log = logging.getLogger(__name__)

CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""The laion repos' file names, safetensors first (it cannot run code)."""
DEFAULT_CLIP_MODEL = "openclip-vit-h-14"
CLIP_KIND = "openclip"
IMAGE_BATCH = 16
MAX_IMAGE_PIXELS = 64_000_000
"""Larger pictures are refused (a decompression bomb would eat the memory long before CLIP sees it)."""


class OpenClipError(ComicStudioError):
    """An OpenCLIP model cannot be found or loaded, or an image cannot be read (the message says which)."""


# ------------------------------------------------------------------------------------ the model


class OpenClipEmbedder:
    """One loaded OpenCLIP model: normalised float32 text and image features.

    ``model_id`` names the weights (the catalogue id); ``cache_key`` also changes when the weights
    file does, so features cached for other weights under the same id are not reused.
    Thread-safe: the model runs under a lock (encode calls from the worker and the GUI serialise)."""

    def __init__(self, model: Any, tokenizer: Callable[[list[str]], Any], preprocess: Callable[[Any], Any],
                 model_id: str, cache_key: str, device: str = "cpu") -> None:  # fmt: skip
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.model_id = model_id
        self.cache_key = cache_key
        self.device = device
        self.images_encoded = 0
        """How many images this instance has run through the image tower (tests and benchmarks read it)."""
        self.texts_encoded = 0
        self._lock = threading.Lock()
        # The feature width differs between towers (CLIP, custom text towers); one probe tells.
        self.dim: int = int(self.encode_text(["a person"]).shape[1])
        self.texts_encoded = 0

    @classmethod
    def load(cls, weights: Path | str, *, model_id: str | None = None, arch: str | None = None,
             device: str = "cpu") -> OpenClipEmbedder:  # fmt: skip
        """Load ``weights`` (a ``.safetensors`` or open_clip ``.bin`` file) with the architecture and
        preprocessing of the ``open_clip_config.json`` beside it, else of the built-in ``arch``."""
        weights = Path(weights)
        if not weights.is_file():
            raise OpenClipError(f"{weights}: no such OpenCLIP weights file")
        suffix = weights.suffix.lower()
        if suffix not in (".safetensors", ".bin", ".pt", ".pth"):
            raise OpenClipError(f"{weights}: expected OpenCLIP weights as .safetensors or an open_clip .bin file")
        config = weights.parent / CONFIG_NAME
        if not config.is_file() and not arch:
            raise OpenClipError(f"{weights}: no {CONFIG_NAME} beside the weights and no architecture name "
                                "(e.g. ViT-H-14) given, so the model's shape is unknown")  # fmt: skip
        try:
            with warnings.catch_warnings():
                # torchvision's Python-only build (CPU machines) warns about its missing image
                # extension and its beta transforms namespace; neither is used here.
                warnings.simplefilter("ignore", UserWarning)
                import open_clip
        except ImportError as exc:  # torchvision missing or broken comes through here too
            raise OpenClipError(
                f"OpenCLIP pose retrieval needs open_clip_torch ({exc}); install it with "
                "`pip install open_clip_torch` (CPU-only torch: `pip install --no-deps torchvision==0.15.2 "
                "open_clip_torch ftfy wcwidth`)"
            ) from exc

        source = f"local-dir:{weights.parent}" if config.is_file() else arch
        try:
            # Build the architecture empty, then load exactly the file we were given: open_clip's own
            # search for "a checkpoint in the folder" could pick another (pickled) file.
            with quiet_random_init():
                model = open_clip.create_model(source, load_weights=False, pretrained_text=False, device="cpu")
        except Exception as exc:  # noqa: BLE001 - bad JSON, unknown architecture, ... → one message
            raise OpenClipError(
                f"{config if config.is_file() else weights}: cannot build the OpenCLIP model ({exc})"
            ) from exc
        try:
            if suffix != ".safetensors":
                # Our own restricted read first: open_clip retries a failed load *without*
                # weights_only when torch raises TypeError, which a crafted pickle can provoke.
                import torch

                torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
            open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - unpickling refused, missing keys, shape mismatch
            raise OpenClipError(f"{weights}: cannot load the OpenCLIP weights ({_first_line(exc)})") from exc
        model = model.to(device).eval()
        tokenizer = open_clip.get_tokenizer(source)
        from open_clip.model import get_model_preprocess_cfg
        from open_clip.transform import PreprocessCfg, image_transform_v2

        preprocess = image_transform_v2(PreprocessCfg(**get_model_preprocess_cfg(model)), is_train=False)
        stat = weights.stat()
        key = f"{model_id or weights.stem}-{stat.st_size}"
        return cls(model, tokenizer, preprocess, model_id or weights.stem, key, device)

    # ------------------------------------------------------------------ encoding

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` unit-length float32 text features."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock, torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            features = self.model.encode_text(tokens, normalize=True)
            self.texts_encoded += len(texts)
        return _as_unit_rows(features)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``[len(images), dim]`` unit-length float32 image features (any mode or size: the model's own
        preprocessing converts to RGB, resizes the short side and centre-crops)."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        out = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(images), IMAGE_BATCH):
                batch = [self.preprocess(_rgb(im)) for im in images[start : start + IMAGE_BATCH]]
                out.append(_as_unit_rows(self.model.encode_image(torch.stack(batch).to(self.device), normalize=True)))
                self.images_encoded += len(batch)
        return np.concatenate(out)


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def quiet_random_init() -> Iterator[None]:
    """open_clip warns "initialized randomly" on the root logger when a model is built without
    weights; here the weights are loaded right after, so the warning would only mislead."""
    root = logging.getLogger()
    flt = _DropRandomInitWarning()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def _rgb(image: Image.Image) -> Image.Image:
    # Transparent pixels would turn black under a plain convert("RGB"); pose photos with an alpha
    # cut-out read better on white.
    if image.mode in ("RGBA", "LA", "P"):
        from PIL import Image as PILImage

        rgba = image.convert("RGBA")
        canvas = PILImage.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _as_unit_rows(features: Any) -> np.ndarray:
    arr = features.detach().float().cpu().numpy().astype(np.float32, copy=False)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------------ choosing a model


@dataclass(frozen=True)
class ClipModelChoice:
    model_id: str
    weights: Path


def configured_clip_model() -> str:
    """The app setting ``pose_clip_model`` (a catalogue id or a weights path)."""
    from comic_studio.core.settings import load_settings

    settings, _problem = load_settings()
    return settings.pose_clip_model.strip() or DEFAULT_CLIP_MODEL


def resolve_clip_model(spec: str | None = None, places: Places | None = None) -> ClipModelChoice:
    """A catalogue id (``openclip-vit-h-14``) or a path to a weights file → what to load.

    A catalogue model that is not installed raises :class:`OpenClipError` naming the download command."""
    spec = (spec or "").strip() or configured_clip_model()
    path = Path(spec).expanduser()
    if path.suffix.lower() in (".safetensors", ".bin") or path.is_file():
        if not path.is_file():
            raise OpenClipError(f"{path}: no such OpenCLIP weights file")
        return ClipModelChoice(model_id=_id_for_path(path), weights=path)
    from comic_studio.weights.catalogue import CatalogueError, load_catalogue
    from comic_studio.weights.locate import Places, locate

    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        known = ", ".join(m.id for m in load_catalogue().of_kind(CLIP_KIND))
        raise OpenClipError(f"pose CLIP model {spec!r} is not in the catalogue (OpenCLIP models: {known})") from exc
    if entry.kind != CLIP_KIND:
        raise OpenClipError(f"{spec!r} is a {entry.kind} model, not an OpenCLIP model for pose retrieval")
    found = locate(entry, places or Places.from_settings())
    if found is None:
        raise OpenClipError(
            f"the OpenCLIP model {spec!r} ({entry.name}) is not installed: run "
            f"`comic-studio models download {spec}`, or choose pose matching 'auto'"
        )
    return ClipModelChoice(model_id=entry.id, weights=found.path)


def _id_for_path(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-") or "openclip"
    return f"file-{slug}"


_LOADED: dict[tuple[str, str, int, float], OpenClipEmbedder] = {}
_LOADED_LOCK = threading.Lock()


def load_clip_model(spec: str | None = None, places: Places | None = None, arch: str | None = None) -> OpenClipEmbedder:
    """The OpenCLIP model for ``spec`` (default: the app setting), loaded once per process."""
    choice = resolve_clip_model(spec, places)
    stat = choice.weights.stat()
    key = (choice.model_id, str(choice.weights), stat.st_size, stat.st_mtime)
    with _LOADED_LOCK:
        if key not in _LOADED:
            # The weights are local; a hub lookup for a tokenizer or config must not be attempted.
            saved = os.environ.get("HF_HUB_OFFLINE")
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                _LOADED[key] = OpenClipEmbedder.load(choice.weights, model_id=choice.model_id, arch=arch)
            finally:
                if saved is None:
                    os.environ.pop("HF_HUB_OFFLINE", None)
                else:
                    os.environ["HF_HUB_OFFLINE"] = saved
        return _LOADED[key]


# ------------------------------------------------------------------------------------ the image cache


def file_sha256(path: Path) -> str:
    """The file's hash; raises :class:`UnsafeInputError` for a FIFO or device (a picture path in a
    user library must not hang retrieval) and ``OSError`` for a read error."""
    digest = hashlib.sha256()
    with open_regular(path, what="picture") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_folder(cache_dir: Path, embedder: OpenClipEmbedder) -> Path:
    return cache_dir / "openclip-images" / re.sub(r"[^A-Za-z0-9._-]+", "-", embedder.cache_key)


def open_image(path: Path) -> Image.Image:
    """An image file, fully decoded, or :class:`OpenClipError` saying why not."""
    try:
        return safe_open_image(path, max_pixels=MAX_IMAGE_PIXELS, what="picture")
    except UnsafeInputError as exc:  # not a regular file, too big, too many pixels, not an image
        raise OpenClipError(str(exc)) from exc


def image_features(embedder: OpenClipEmbedder, paths: Sequence[Path], cache_dir: Path,
                   problems: list[str] | None = None) -> list[np.ndarray | None]:  # fmt: skip
    """Features of each image file (None for an unreadable one, its problem appended to ``problems``).

    Cached per model and file content: only images never seen with this model are encoded, in batches."""
    folder = _cache_folder(Path(cache_dir), embedder)
    out: list[np.ndarray | None] = [None] * len(paths)
    todo: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        try:
            digest = file_sha256(path)
        except UnsafeInputError as exc:
            _note(problems, str(exc))
            continue
        except OSError as exc:
            _note(problems, f"{path}: cannot read ({exc.strerror or exc})")
            continue
        cached = read_matrix(folder / f"{digest}.npy", cols=embedder.dim)
        if cached is not None:
            out[i] = cached
        else:
            todo.setdefault(digest, []).append(i)
    pending = list(todo.items())
    for start in range(0, len(pending), IMAGE_BATCH * 4):
        # Bounded memory: only a few batches of pictures are decoded at a time, just before they
        # are encoded (a photo folder of thousands of 12 MP photos would not fit decoded at once).
        chunk: list[tuple[str, Image.Image]] = []
        for digest, rows in pending[start : start + IMAGE_BATCH * 4]:
            try:
                chunk.append((digest, open_image(paths[rows[0]])))
            except OpenClipError as exc:
                _note(problems, str(exc))
        if not chunk:
            continue
        vectors = embedder.encode_images([im for _, im in chunk])
        for (digest, _), vec in zip(chunk, vectors):
            for i in todo[digest]:
                out[i] = vec
            try:
                save_arrays_atomic(folder / f"{digest}.npy", vec)
            except OSError as exc:
                log.warning("cannot write the image feature cache in %s (%s); it will be recomputed", folder, exc)
    return out


def picture_features(embedder: OpenClipEmbedder, images: Sequence[Image.Image], cache_dir: Path) -> np.ndarray:
    """``[len(images), dim]`` features of pictures held in memory (crops, whitened figures), cached in
    the same folder as :func:`image_features`, keyed by a hash of the decoded pixels (mode, size and
    bytes): a crop made again from the same image is not encoded again."""
    folder = _cache_folder(Path(cache_dir), embedder)
    out = np.zeros((len(images), embedder.dim), dtype=np.float32)
    todo: dict[str, list[int]] = {}
    for i, image in enumerate(images):
        digest = "px-" + hashlib.sha256(f"{image.mode}:{image.size}:".encode() + image.tobytes()).hexdigest()
        cached = read_matrix(folder / f"{digest}.npy", cols=embedder.dim)
        if cached is not None:
            out[i] = cached.reshape(-1)
        else:
            todo.setdefault(digest, []).append(i)
    if todo:
        vectors = embedder.encode_images([images[rows[0]] for rows in todo.values()])
        for (digest, rows), vec in zip(todo.items(), vectors):
            out[rows] = vec
            try:
                save_arrays_atomic(folder / f"{digest}.npy", vec)
            except OSError as exc:
                log.warning("cannot write the image feature cache in %s (%s); it will be recomputed", folder, exc)
    return out


def _note(problems: list[str] | None, problem: str) -> None:
    log.warning("pose image skipped: %s", problem)
    if problems is not None:
        problems.append(problem)
