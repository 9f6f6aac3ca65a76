"""The job snapshot a backend receives, and what it hands back.

A :class:`GenerationRequest` holds *everything* a job needs (the backend never reads the document),
so storing it with a result makes "regenerate" and "same seed" exact. It is plain pydantic and
round-trips through JSON. No Qt and no torch here: the engine, the CLI and tests build requests.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from comic_studio.core.assets import validate_image_bytes
from comic_studio.core.errors import AssetError, ComicStudioError

# The pose types live in the document model (a panel stores its explicit pose); requests re-export them.
from comic_studio.core.model import MAX_SEED, AssetRef, Box, CharacterPlacement, Colour, PoseFigure, PoseSpec, ShotType

RequestFigure = PoseFigure
"""A pose figure as requests carry it (the document's :class:`PoseFigure`)."""


MAX_PIXELS_SIDE = 8192
"""Longest side of a requested image, and of a result image a backend may hand back."""
RESULT_MODES = ("RGB", "RGBA", "L", "LA", "P", "1")
"""Pillow modes a result image may have: 8-bit images PNG stores as they are and the canvas and
exporters convert (16-bit, float and CMYK images are refused: PNG cannot hold them all)."""


PNG_DATA_URI_PREFIX = "data:image/png;base64,"


def png_data_uri(data: bytes) -> str:
    """Image bytes as a data URI, the form images take inside a request's settings (a request must
    stay a self-contained JSON snapshot). PIL reads PNG or JPEG by content, whatever the label."""
    return PNG_DATA_URI_PREFIX + base64.b64encode(data).decode("ascii")


def data_uri_bytes(value: str) -> bytes:
    """The bytes of a base64 data URI (or of bare base64); ValueError when it is neither."""
    header, sep, payload = value.partition(",")
    if sep and header.startswith("data:"):
        if ";base64" not in header:
            raise ValueError("only base64 data URIs are supported")
    else:
        payload = value
    return base64.b64decode(payload, validate=True)


class GenerationError(ComicStudioError):
    """A generation job could not run (bad request, missing pose, backend failure)."""


class Cancelled(ComicStudioError):
    """Raised inside ``generate`` when the step callback asked to stop."""


StepCallback = Callable[[int, int, "Image.Image | None"], bool]
"""``on_step(step, total, preview)``: called as the job advances; return ``False`` to cancel."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestCharacter(_Strict):
    """A character as the backend sees it: identity, look and (optionally) its pose figure."""

    id: str = Field(max_length=64)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    colour: Colour = "#4a7bd0"
    description: Annotated[str, Field(max_length=2_000)] = ""
    face_refs: Annotated[list[AssetRef], Field(max_length=64)] = []
    body_refs: Annotated[list[AssetRef], Field(max_length=64)] = []
    figure: int | None = Field(default=None, ge=0, le=16)
    """Pose figure this character plays; ``None`` lets the backend assign (actor↔actor figure...)."""
    face_scale: float | None = Field(default=None, ge=0.0, le=2.0)
    """The character's own face-reference strength (``Character.face_scale``); None: the backend's."""
    body_scale: float | None = Field(default=None, ge=0.0, le=2.0)
    lora: AssetRef | None = None
    """The character's trained LoRA (an asset hash, e.g. from ``comic-studio train lora``): backends
    with the ``lora`` capability apply it while the character is in the panel (StoryBooth)."""
    lora_scale: float = Field(default=1.0, ge=0.0, le=2.0)
    identity: AssetRef | None = None
    """The character's learned identity tokens (an asset hash, from ``comic-studio train identity``):
    backends with the ``identity`` capability put them where the prompt names the character."""
    identity_scale: float = Field(default=1.0, ge=0.0, le=2.0)
    """The identity tokens' strength (``Character.identity_scale``; 1 = the trained rows)."""
    standard_sheet: AssetRef | None = None
    """The character's accepted standard sheet (``Character.standard_sheet``; also first of its
    ``body_refs``): the ``serialgen`` backend requires one."""


class GenerationRequest(_Strict):
    """Everything one panel generation needs. Extended by the generation engine (issue 6)."""

    backend: Annotated[str, Field(min_length=1, max_length=200)] = "storyboard"
    backend_settings: dict[str, Any] = {}
    width: int = Field(ge=16, le=MAX_PIXELS_SIDE)
    height: int = Field(ge=16, le=MAX_PIXELS_SIDE)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    prompt: Annotated[str, Field(max_length=10_000)] = ""
    negative_prompt: Annotated[str, Field(max_length=10_000)] = ""
    shot: ShotType = ShotType.MEDIUM
    setting: Annotated[str, Field(max_length=2_000)] = ""
    time_of_day: Annotated[str, Field(max_length=2_000)] = ""
    action: Annotated[str, Field(max_length=5_000)] = ""
    characters: Annotated[list[RequestCharacter], Field(max_length=16)] = []
    actor_id: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=64)
    pose_id: str | None = Field(default=None, max_length=200)
    figures_override: PoseSpec | None = None
    steps: int = Field(default=0, ge=0, le=10_000)
    guidance: float = Field(default=0.0, ge=0.0, le=100.0)
    panel_id: str | None = Field(default=None, max_length=64)

    @field_validator("characters")
    @classmethod
    def _unique_ids(cls, chars: list[RequestCharacter]) -> list[RequestCharacter]:
        seen: set[str] = set()
        for c in chars:
            if c.id in seen:
                raise ValueError(f"character id {c.id!r} appears twice")
            seen.add(c.id)
        return chars

    def character(self, character_id: str | None) -> RequestCharacter | None:
        return next((c for c in self.characters if c.id == character_id), None)

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (what ``PanelResult.request`` stores)."""
        return json.loads(self.model_dump_json())

    @classmethod
    def from_json(cls, text: str | bytes) -> GenerationRequest:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise GenerationError(f"invalid generation request: {_describe(exc)}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise GenerationError(f"invalid generation request: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    """One line per bad field: ``characters.0.colour: String should match pattern ...``."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(request)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


@dataclass
class GenerationResult:
    """What a backend returns for one request.

    ``heads`` holds one placement per request character, in panel-normalised coordinates:
    ``head`` is the head centre (x of width, y of height), ``head_radius`` is a fraction of the
    panel's *shorter* side, ``body`` the figure's visible box (clipped to the panel). A character
    whose head is outside the frame gets ``head`` on the panel edge nearest to it (where an
    off-panel balloon tail should point) and ``head_radius`` 0.
    """

    images: list[Image.Image]
    seed: int
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    heads: list[CharacterPlacement] = field(default_factory=list)
    pose_id: str | None = None
    labels: list[Box] = field(default_factory=list)
    """Boxes (0..1 of the image) of text the backend drew on the image besides name tags, such as
    the storyboard's place label: kept in :attr:`PanelResult.labels`, balloons keep off them."""

    @property
    def image(self) -> Image.Image:
        return self.images[0]


# --------------------------------------------------------------------------- checking what a backend returns


def result_png(result: Any, *, backend: str, panel: str) -> bytes:
    """A backend's result image as PNG bytes, or :class:`GenerationError` naming the backend and
    the panel when the image is one the project file could not keep: no image, an empty one, one
    over :data:`MAX_PIXELS_SIDE` a side, an odd mode, or PNG bytes the project loader refuses
    (:func:`~comic_studio.core.assets.validate_image_bytes`, the loader's own check). The size is
    checked before encoding, so a 14000×14000 image costs no encoding time."""
    where = f"the {backend!r} backend's image for {panel}"
    if not isinstance(result, GenerationResult) or not result.images:
        raise GenerationError(f"the {backend!r} backend returned no image for {panel} (got {type(result).__name__})")
    image = result.images[0]
    if not isinstance(image, Image.Image):
        raise GenerationError(f"{where} is a {type(image).__name__}, not a picture; it was not added to the project")
    width, height = image.size
    if width <= 0 or height <= 0 or width > MAX_PIXELS_SIDE or height > MAX_PIXELS_SIDE:
        raise GenerationError(
            f"{where} is {width}×{height} pixels; results may be 1 to {MAX_PIXELS_SIDE} pixels a side, "
            "so it was not added to the project (check the backend's size settings)"
        )
    if image.mode not in RESULT_MODES:
        raise GenerationError(
            f"{where} has pixel mode {image.mode!r}; results must be one of {', '.join(RESULT_MODES)}, "
            "so it was not added to the project"
        )
    buffer = io.BytesIO()
    # compress_level 1: the worker's time matters more than a few percent of file size, and the
    # asset store keeps the bytes as they are.
    image.save(buffer, format="PNG", compress_level=1)
    return checked_result_png(buffer.getvalue(), backend=backend, panel=panel)


def checked_result_png(png: bytes, *, backend: str, panel: str, decode: bool = True) -> bytes:
    """``png`` if the project loader would accept it as an image asset, else :class:`GenerationError`
    naming the backend and panel. ``decode=False`` checks the header only (bytes that
    :func:`result_png` made on a worker thread, arriving on the GUI thread)."""
    where = f"the {backend!r} backend's image for {panel}"
    try:
        width, height = validate_image_bytes(png, where, decode=decode)
    except AssetError as exc:
        raise GenerationError(f"{exc}; it was not added to the project") from exc
    if width > MAX_PIXELS_SIDE or height > MAX_PIXELS_SIDE:
        raise GenerationError(
            f"{where} is {width}×{height} pixels; results may be at most {MAX_PIXELS_SIDE} pixels a side, "
            "so it was not added to the project"
        )
    return png
