"""Regional IP-Adapters: Plus-Face under each character's head mask, Plus under its body mask, all
characters in one UNet pass.

Stock diffusers does the hard part: with two adapters loaded, ``cross_attention_kwargs=
{"ip_adapter_masks": [face_masks, body_masks]}`` gives each adapter its own ``[1, n_images, H, W]``
masks, and every masked image adds its attention only inside its mask (masks are resized to every
attention resolution by the processor). So a character is one image on an adapter, and a character
without references on that adapter is simply *not an image there* — never a zero "padding" image
(RaCig's reference code pads unused slots and its mask arithmetic then leaks them; see issue 9).
An adapter with no images at all gets scale 0, which the processor skips outright.

Reference embeddings (the image encoder's penultimate hidden states, what Plus adapters read) are
computed once per (encoder, asset hash) and kept in a :class:`ReferenceCache` owned by the backend
instance; a reference image that changes has a new hash, so stale entries can never be hit.

The UNet is shared with the other backends through the engine's model cache, so adapters are
attached for one job and removed after it (:func:`attached_adapters`); their weights stay in memory
as state dicts so re-attaching costs no disk read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from comic_studio.backends._diffusers import references
from comic_studio.generation.models.loading import ModelLoadError, read_state_dict
from comic_studio.generation.request import GenerationError, png_data_uri

FACE, BODY = 0, 1
"""Adapter order as loaded: Plus-Face first (head masks), Plus second (body masks)."""
ENCODER_ID = "clip-vit-h-image-encoder"
"""The catalogue id whose bundled config a single-file image encoder is read with by default."""
MAX_CACHED_EMBEDDINGS = 256


# ------------------------------------------------------------------------------ reference images


def json_object_setting(text: str, setting: str, expected: str) -> dict[str, Any]:
    """A racig setting holding a JSON object (see :func:`.references.json_object_setting`)."""
    return references.json_object_setting(text, setting, expected, "racig")


def parse_reference_images(text: str) -> dict[str, bytes]:
    """The ``reference_images`` setting: JSON ``{sha256: data URI or base64}`` → ``{sha256: bytes}``.
    Each payload must hash to its key (the key is what embeddings are cached under)."""
    return references.parse_images_setting(text, "racig")


def reference_images_setting(images: dict[str, bytes] | Sequence[bytes]) -> str:
    """Build the ``reference_images`` setting from asset bytes (keys are computed when a list is given)."""
    if not isinstance(images, dict):
        images = {hashlib.sha256(b).hexdigest(): b for b in images}
    return json.dumps({k: png_data_uri(v) for k, v in images.items()})


# ------------------------------------------------------------------------------ embeddings


class ReferenceCache:
    """Reference embeddings by (encoder id, asset hash), least recently used evicted first."""

    def __init__(self, limit: int = MAX_CACHED_EMBEDDINGS) -> None:
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit
        self.computed = 0
        """How many embeddings were really computed (tests and the benchmark read it)."""

    def get(self, encoder_id: str, asset: str, compute: Any) -> Any:
        key = (encoder_id, asset)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            self.computed += 1
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class ImageEncoder:
    """The CLIP vision tower and its processor (h94's ``models/image_encoder``).

    ``device`` is where it computes. Its weights (1.3 GB for ViT-H in float16) move there only when
    an embedding is computed and back to the CPU with :meth:`park`: embeddings are cached per asset,
    so the encoder idles through every denoising step and must not hold GPU memory then."""

    model: Any
    processor: Any
    cache_id: str
    device: str = "cpu"

    def _on_device(self) -> None:
        if self.model.device.type != self.device:
            self.model.to(self.device)

    def park(self) -> None:
        """Weights back to the CPU (no-op when they are there)."""
        if self.model.device.type != "cpu":
            self.model.to("cpu")

    def _hidden(self, pixels: Any) -> Any:
        import torch

        with torch.no_grad():
            out = self.model(pixels, output_hidden_states=True)
        return out.hidden_states[-2][0].to("cpu", torch.float32)  # [tokens, width]

    def _pixels(self, image: Image.Image) -> Any:
        self._on_device()
        return self.processor(images=image.convert("RGB"), return_tensors="pt").pixel_values.to(
            device=self.model.device, dtype=self.model.dtype
        )

    def embed(self, data: bytes, cutout: str = "none") -> Any:
        """Penultimate hidden states of one reference image (CPU float32); ``cutout="person"``
        embeds it with everything but the person whitened (see :data:`OUTFIT_CUTOUTS`)."""
        from comic_studio.core import safe_read

        try:
            image = safe_read.decode_image(data, where="racig", what="reference image")
        except safe_read.UnsafeInputError as exc:
            raise GenerationError(str(exc)) from exc
        if cutout == "person":
            from comic_studio.vision.detect import person_on_white

            image = person_on_white(image)
        return self._hidden(self._pixels(image))

    def negative(self) -> Any:
        """What classifier-free guidance uses as "no image": the encoding of an all-zero input, as
        diffusers' own ``encode_image`` does for Plus adapters."""
        import torch

        size = self.processor.crop_size
        shape = (1, 3, size["height"], size["width"])
        self._on_device()
        return self._hidden(torch.zeros(shape, device=self.model.device, dtype=self.model.dtype))


def load_image_encoder(
    folder: Path, dtype: Any, device: str, *, use_safetensors: bool = True, config: Path | None = None
) -> ImageEncoder:
    """The encoder in ``folder``, loaded on the CPU; it computes on ``device`` (see :class:`ImageEncoder`).
    ``use_safetensors=False`` only for a folder of pickled weights the user allowed
    (:mod:`comic_studio.generation.models.pickle_policy`). ``folder`` may instead be one
    ``.safetensors`` file (ComfyUI's ``clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors`` is
    h94's ``model.safetensors`` renamed): it is read around ``config``'s ``config.json`` (default:
    the bundled ViT-H config) after a header check."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    try:
        if folder.is_file():
            model = _single_file_encoder(folder, dtype, config)
        else:
            model = CLIPVisionModelWithProjection.from_pretrained(
                folder, torch_dtype=dtype, local_files_only=True, use_safetensors=use_safetensors
            )
    except (OSError, ValueError, ModelLoadError) as exc:
        raise GenerationError(f"racig: cannot load the IP-Adapter image encoder from {folder} ({exc})") from exc
    try:
        processor = CLIPImageProcessor.from_pretrained(folder if folder.is_dir() else config or folder.parent,
                                                       local_files_only=True)  # fmt: skip
    except (OSError, ValueError):
        processor = CLIPImageProcessor()  # h94 ships no preprocessor config: CLIP's 224 px defaults
    return ImageEncoder(model.eval(), processor, str(folder), device)


def _single_file_encoder(path: Path, dtype: Any, config: Path | None) -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from comic_studio.weights.architecture import bundled_config, file_mismatch

    folder = config or bundled_config(ENCODER_ID)
    assert folder is not None
    problem = file_mismatch(path, "clip_vision", folder)
    if problem:
        raise ValueError(f"not a ViT image encoder of {folder / 'config.json'}'s shape: {problem}")
    # transformers builds the model from the config and the state dict without looking for a folder.
    return CLIPVisionModelWithProjection.from_pretrained(
        None, config=CLIPVisionConfig.from_pretrained(folder), state_dict=read_state_dict(path), torch_dtype=dtype
    )


MULTI_REFERENCE = ("images", "mean-patches")
"""How several references of one character on one adapter combine (setting ``multi_reference``).

``images`` (default): each reference is its own image on the adapter, under the character's mask, at
1/k of the character's scale for k references — the references are combined after the Resampler,
as RaCig combines them (its ``stack``/``average`` methods both act on Resampler tokens, never on ViT
patches), and the character's total strength does not grow with the number of references.
``mean-patches``: the ViT patch tokens averaged before the Resampler (the app before issue 15: a
blurred "mean photo" of differently framed pictures; kept to reproduce older panels)."""


OUTFIT_CUTOUTS = ("person", "none")
"""What an outfit (body) reference is embedded as (setting ``outfit_cutout``).

``person`` (default): the offline person segmenter (:func:`comic_studio.vision.detect.person_on_white`)
gives the outfit region and everything else is whitened, so the Plus adapter reads the clothes, not
the photo's background (issue 15 item 9; RaCig's demo removes reference backgrounds too, with rembg,
``demo/preprocess.py``). A picture where it finds nobody — most drawings — is embedded as it is.
``none``: the picture as it is (panels made before)."""


def character_embeddings(
    encoder: ImageEncoder,
    cache: ReferenceCache,
    refs: Sequence[str],
    images: dict[str, bytes],
    method: str = "images",
    cutout: str = "none",
) -> list[Any]:
    """A character's references on one adapter as the images to condition it with (see
    :data:`MULTI_REFERENCE`): one embedding per reference, or their patch mean; ``[]`` without any.
    ``cutout`` (:data:`OUTFIT_CUTOUTS`) is cached apart: the same asset cut out is another embedding."""
    import torch

    if method not in MULTI_REFERENCE:
        raise GenerationError(f"racig setting 'multi_reference': {method!r} is not one of {list(MULTI_REFERENCE)}")
    if cutout not in OUTFIT_CUTOUTS:
        raise GenerationError(f"racig setting 'outfit_cutout': {cutout!r} is not one of {list(OUTFIT_CUTOUTS)}")
    missing = [r for r in refs if r not in images]
    if missing:
        raise GenerationError(
            f"racig: reference image {missing[0][:12]}… is not in the request (setting 'reference_images')"
        )
    key = "" if cutout == "none" else f"|{cutout}"
    embeds = [cache.get(encoder.cache_id, r + key, lambda r=r: encoder.embed(images[r], cutout)) for r in refs]
    if method == "mean-patches" and embeds:
        return [torch.stack(embeds).mean(0)]
    return embeds


# ------------------------------------------------------------------------------ adapters on the UNet


def read_adapter_state(path: Path) -> dict[str, dict[str, Any]]:
    """An h94 IP-Adapter → diffusers' nested ``{"image_proj": …, "ip_adapter": …}``: a
    ``.safetensors`` file, or h94's pickled ``.bin`` (already nested) once the caller has checked the
    user allows pickles; that is read with ``weights_only=True``."""
    if path.suffix.lower() == ".bin":
        try:
            state = read_state_dict(path, allow_pickle=True)
        except Exception as exc:  # noqa: BLE001 — torch's weights_only refusal has several types
            raise GenerationError(
                f"racig: {path.name} is not readable as weights ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(state, dict) or set(state) != {"image_proj", "ip_adapter"}:
            raise GenerationError(f"racig: {path.name} is not an IP-Adapter in the h94 layout")
        return state
    if path.suffix != ".safetensors":
        raise GenerationError(f"racig: IP-Adapter weights must be a .safetensors file, got {path.name}")
    flat = read_state_dict(path)  # its header checked first: a broken file is named, not a loader traceback
    nested: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if head not in nested:
            raise GenerationError(f"racig: {path.name} is not an IP-Adapter in the h94 layout (key {key!r})")
        nested[head][rest] = value
    return nested


@contextmanager
def attached_adapters(pipe: Any, face_state: dict[str, Any], body_state: dict[str, Any]) -> Iterator[None]:
    """Plus-Face and Plus on ``pipe``'s UNet for the duration of the block, then removed (the UNet
    is shared: the next sdxl job must find it as it was)."""
    pipe.load_ip_adapter([face_state, body_state], subfolder=["", ""], weight_name=["face", "body"],
                         image_encoder_folder=None)  # fmt: skip
    try:
        yield
    finally:
        pipe.unload_ip_adapter()


@dataclass
class RegionalInputs:
    """Pipeline keyword arguments for one regional pass."""

    image_embeds: list[Any]
    masks: list[Any | None]
    scales: list[float | list[float]]


def regional_inputs(face: Sequence[tuple[Any, np.ndarray, float]], body: Sequence[tuple[Any, np.ndarray, float]],
                    negative: Any, guidance: bool) -> RegionalInputs:  # fmt: skip
    """``face``/``body``: one ``(embedding [tokens, width], mask (H, W), scale)`` per reference image on
    that adapter (a character's several references each under its mask). Builds ``ip_adapter_image_embeds`` (``[2 or 1, n, tokens, width]``,
    negatives first under CFG), ``ip_adapter_masks`` and per-image scales."""
    import torch

    embeds, masks, scales = [], [], []
    for items in (face, body):
        if not items:
            # No character uses this adapter: one dummy image at scale 0 (the processor skips it),
            # because the pipeline needs an embedding per loaded adapter.
            positive = negative[None, None]
            masks.append(None)
            scales.append(0.0)
        else:
            positive = torch.stack([e for e, _, _ in items])[None]
            masks.append(torch.from_numpy(np.stack([m for _, m, _ in items]).astype(np.float32))[None])
            scales.append([float(s) for _, _, s in items])
        if guidance:
            embeds.append(torch.cat([negative[None, None].expand_as(positive), positive]))
        else:
            embeds.append(positive)
    return RegionalInputs(embeds, masks, scales)


def character_scale(panel_override: float | None, character: float | None, default: float) -> float:
    """One character's adapter scale: the panel's ``character_scales`` entry wins, then the
    character's own strength (``Character.face_scale`` / ``body_scale``), then the backend setting."""
    for value in (panel_override, character):
        if value is not None:
            return float(value)
    return float(default)


def set_regional_scales(unet: Any, scales: list[float | list[float]]) -> None:
    """Per-adapter, per-image scales on every IP-Adapter processor (``set_ip_adapter_scale`` takes
    one number per adapter; per-character overrides need one per image)."""
    for processor in unet.attn_processors.values():
        if hasattr(processor, "scale") and isinstance(processor.scale, list) and hasattr(processor, "to_k_ip"):
            processor.scale = [list(s) if isinstance(s, list) else s for s in scales]
