"""Try-on: give one character a new outfit and repaint only that character's body.

The panel's current image is inpainted under the character's (dilated, disjoint) body mask with the
OpenPose ControlNet still holding the pose and the Plus adapter fed the new outfit reference under
the same mask. The inpainting pipeline repaints through the VAE, which changes every pixel a little;
pasting the new pixels back through the mask keeps everything outside it *exactly* as it was
(heads, the other characters, the background) — try-on must never touch what the user kept.

"Whole panel" try-on needs nothing from here: the backend renders the panel again with the
character's body references replaced by the outfit (:func:`with_outfit`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from comic_studio.generation.request import GenerationError, GenerationRequest


def tryon_target(request: GenerationRequest, character_id: str, outfit: str) -> int:
    """Index of the try-on character in ``request.characters``, with clear errors."""
    ids = [c.id for c in request.characters]
    if character_id not in ids:
        raise GenerationError(
            f"racig try-on: character {character_id!r} is not in this panel (has: {', '.join(ids) or 'none'})"
        )
    if len(outfit) != 64 or any(ch not in "0123456789abcdef" for ch in outfit):
        raise GenerationError("racig try-on: setting 'tryon_outfit' must be the outfit image's asset hash (sha256 hex)")
    return ids.index(character_id)


def with_outfit(request: GenerationRequest, character_id: str, outfit: str) -> GenerationRequest:
    """The request with ``character_id``'s body references replaced by the single ``outfit``."""
    chars = [c.model_copy(update={"body_refs": [outfit]}) if c.id == character_id else c for c in request.characters]
    return request.model_copy(update={"characters": chars})


def mask_image(mask: np.ndarray) -> Image.Image:
    """Boolean mask → the ``L`` image inpainting pipelines take (white = repaint)."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")


def paste_inside(original: Image.Image, repainted: Image.Image, mask: np.ndarray) -> Image.Image:
    """``repainted`` inside ``mask``, ``original`` everywhere else (bit-exact outside)."""
    if original.size != repainted.size or mask.shape != (original.height, original.width):
        raise ValueError(f"try-on: sizes differ ({original.size}, {repainted.size}, mask {mask.shape[::-1]})")
    base = np.asarray(original.convert("RGB")).copy()
    base[mask] = np.asarray(repainted.convert("RGB"))[mask]
    return Image.fromarray(base, "RGB")
