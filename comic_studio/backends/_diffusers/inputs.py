"""Image inputs for img2img and inpaint, carried inside the request's backend settings as text.

A request must stay a self-contained JSON snapshot (regenerate = exact replay), so an init image or
mask travels as a ``data:image/png;base64,...`` URI, never as a file path: a request comes from a
project, and a project must not make the renderer read local files (the settings schema marks these
settings ``"image": True``; a file the user picks enters the project as an asset first). An
inpaint mask can also be given as a polygon in panel-normalised coordinates (``mask_region``:
``"x,y x,y x,y ..."``), e.g. the region of the panel the user selected — it is rasterised here at the
generation size. White (255) in a mask means "repaint", as in diffusers.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw

from comic_studio.core import safe_read
from comic_studio.generation.backend_api import BackendSettingsError
from comic_studio.generation.request import GenerationError, data_uri_bytes, png_data_uri


def image_to_data_uri(image: Image.Image) -> str:
    """PNG-encode ``image`` for a request setting."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return png_data_uri(buffer.getvalue())


def read_image_setting(value: str, field: str) -> Image.Image | None:
    """A PIL image from a data URI (within the pixel limit); ``None`` for an empty setting. Anything
    else (a file path, an ``asset:`` value nobody put inline) is refused unread."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("asset:"):
        raise GenerationError(f"setting {field!r}: {value[:20]}… names a project image the app did not put inline")
    if not value.startswith("data:"):
        raise GenerationError(
            f"setting {field!r}: {value[:80]!r} is not image data (a data: URI); a file path is not read "
            "(a request carries its images, so a project cannot make the renderer read local files)"
        )
    try:
        data = data_uri_bytes(value)
    except ValueError as exc:
        raise GenerationError(f"setting {field!r}: not a readable data URI ({exc})") from exc
    try:
        return safe_read.decode_image(data, where=f"setting {field!r}", what="image")
    except safe_read.UnsafeInputError as exc:
        raise GenerationError(str(exc)) from exc


def parse_region(text: str) -> list[tuple[float, float]]:
    """``"x,y x,y x,y"`` (panel-normalised, 0..1) → points; at least three."""
    points: list[tuple[float, float]] = []
    for pair in text.replace(";", " ").split():
        try:
            x_text, y_text = pair.split(",")
            x, y = float(x_text), float(y_text)
        except ValueError as exc:
            raise GenerationError(f"sdxl setting 'mask_region': {pair!r} is not an x,y pair") from exc
        if not (-0.5 <= x <= 1.5 and -0.5 <= y <= 1.5):
            raise GenerationError(f"sdxl setting 'mask_region': point {pair} is far outside the panel (0..1)")
        points.append((x, y))
    if len(points) < 3:
        raise GenerationError("sdxl setting 'mask_region': a region needs at least three x,y points")
    return points


def region_mask(points: list[tuple[float, float]], size: tuple[int, int]) -> Image.Image:
    """Rasterise a normalised polygon into an ``L`` mask of ``size`` (white inside)."""
    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([(x * w, y * h) for x, y in points], fill=255)
    return mask


def fit(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """``image`` converted to ``mode`` at exactly ``size`` (a panel's init image may be any size)."""
    image = image.convert(mode)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS if mode == "RGB" else Image.Resampling.NEAREST)
    return image


def check_denoising_steps(backend: str, steps: int, strength: float) -> None:
    """Refuse an img2img/inpaint job whose ``strength`` × ``steps`` leaves no step to run.

    diffusers denoises only the last ``int(steps × strength)`` steps of such a job and fails deep
    inside the pipeline, after the models are loaded, when that is zero; this says which setting
    to change before anything is loaded."""
    if int(steps * strength) >= 1:
        return
    least_strength = math.ceil(1000 / steps) / 1000  # rounded up: int(3 × 0.333) would still be 0
    least_steps = math.ceil(1 / strength)
    raise BackendSettingsError(
        backend,
        "strength",
        f"{strength:g} × {steps} steps leaves no denoising step for the init image; "
        f"use a strength of at least {least_strength:g} or at least {least_steps} steps",
    )
