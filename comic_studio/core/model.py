"""The document model: project → pages → panels → balloons, characters, story, styles.

Plain pydantic models: they validate what is loaded from disk (``extra="forbid"`` so a hostile or
corrupt ``project.json`` is rejected field by field) and serialise to JSON. They carry no behaviour
beyond small derived helpers; every mutation goes through :mod:`comic_studio.core.commands` so it
can be undone and reported.

Geometry is in **page units: points (1/72 in)**, origin at the top-left corner of the *trim* box,
y pointing down. The bleed lies outside ``[0, width] × [0, height]``; full-bleed panels may extend
into it. Pixel rendering maps ``px = (x + bleed) * dpi / 72``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from comic_studio.core.assets import MAX_ASSET_BYTES
from comic_studio.core.ids import new_id

SCHEMA_VERSION = 2
"""Version of ``project.json``. Bump it and add a migration in :mod:`core.migrations`."""

MAX_TEXT = 100_000  # longest text field accepted from a file (characters)
MAX_ITEMS = 100_000  # longest list accepted from a file

MAX_BALLOONS_PER_PANEL = 64
"""Most balloons one panel holds. Lettering cost grows with every balloon (each is laid out and
fitted on every repaint and export): 256 long balloons in one panel froze the window at 4.3 GB.
A busy real panel has fewer than ten; a beat's 64 dialogue lines fit when it has no caption."""
MAX_BALLOON_TEXT = 1_000
"""Longest balloon text (characters): a long caption is a few hundred. Fitting text costs about
its length at each tried font size, so this bounds the layout time of one balloon."""

MAX_STORED_JSON_DEPTH = 16
"""Deepest nesting of a stored free-form mapping (a result's request, a panel's backend settings):
real requests nest 4 levels; the project loader's JSON reader refuses far deeper documents."""
MAX_STORED_JSON_BYTES = 256 * 1024
"""Largest stored request as JSON: a dehydrated request is a few KiB (inline images become
``asset:<hash>`` references), and 10,000 results must still fit ``project.json``."""
MAX_PROJECT_JSON_BYTES = 64 * 1024 * 1024
"""Largest ``project.json`` accepted (uncompressed). A 300-page comic needs a few MiB. Also the
cap of one panel's backend settings, which may hold an init image as a data URI."""

Point = tuple[float, float]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]
AssetRef = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A content hash (sha256 hex) naming an image in the project's asset store."""
ASSET_SETTING_PREFIX = "asset:"
"""How a stored request's setting names an asset instead of holding its bytes (``asset:<hash>``)."""
ASSET_SETTING = re.compile(r"^asset:([0-9a-f]{64})$")
"""A backend setting naming a project asset (see :meth:`Project.setting_asset_refs`)."""
Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
ShortText = Annotated[str, Field(max_length=2_000)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]


MAX_SEED = 2**64 - 1
"""Seeds are unsigned 64-bit (what torch's generators take); a project or request outside that is
refused where it is read, naming the field, instead of failing later inside a render."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False, use_enum_values=False)


def _json_depth(value: Any) -> int:
    """Nesting depth of a JSON-like value, iteratively (a crafted value must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_STORED_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _bounded_mapping(limit: int):
    def check(value: dict[str, Any]) -> dict[str, Any]:
        """The one check of stored free-form mappings, run when a request or settings are stored
        and again when a project is loaded: bounded depth, bounded size, plain JSON values only."""
        import json  # noqa: PLC0415 — only needed here

        if _json_depth(value) > MAX_STORED_JSON_DEPTH:
            raise ValueError(f"nests more than {MAX_STORED_JSON_DEPTH} levels deep")
        try:
            size = len(json.dumps(value, allow_nan=False, separators=(",", ":")))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"holds a value a project file cannot store ({exc})") from exc
        if size > limit:
            raise ValueError(f"is {size:,} bytes as JSON, over the {limit:,}-byte limit")
        return value

    return AfterValidator(check)


StoredMapping = Annotated[dict[str, Any], _bounded_mapping(MAX_STORED_JSON_BYTES)]
"""A stored request (a result's, an anchor's): bounded depth and size."""
SettingsMapping = Annotated[dict[str, Any], _bounded_mapping(MAX_PROJECT_JSON_BYTES)]
"""A panel's backend settings: bounded depth; as large as a project file allows, since a setting
may hold an init image as a data URI."""


# --------------------------------------------------------------------------- enums


class ShotType(str, Enum):
    ESTABLISHING = "establishing"
    WIDE = "wide"
    MEDIUM = "medium"
    CLOSE_UP = "close-up"
    EXTREME_CLOSE_UP = "extreme-close-up"
    OVER_THE_SHOULDER = "over-the-shoulder"


class BalloonKind(str, Enum):
    SPEECH = "speech"
    THOUGHT = "thought"
    SHOUT = "shout"
    WHISPER = "whisper"
    CAPTION = "caption"
    SFX = "sfx"


class DialogueKind(str, Enum):
    SPEECH = "speech"
    THOUGHT = "thought"
    SHOUT = "shout"
    WHISPER = "whisper"


class ReadingDirection(str, Enum):
    LTR = "ltr"
    RTL = "rtl"


class Pronouns(str, Enum):
    HE = "he"
    SHE = "she"
    THEY = "they"
    IT = "it"


# --------------------------------------------------------------------------- characters


class CharacterAnchor(_Model):
    """A character's identity anchor for consistent-character backends: the picture shown in the
    character library and the identity bank (a safetensors file of sampled attention tokens) made
    from it. ``request`` is the anchor job's effective request, so a bank that is missing (e.g. a
    cache cleared on another machine) can be rebuilt exactly on the same kind of device."""

    image: AssetRef
    bank: AssetRef
    """sha256 of the bank file."""
    bank_bytes: int = Field(default=0, ge=0)
    source: Literal["rendered", "picture"] = "rendered"
    """``rendered``: anchors generated from the character's solo prompt; ``picture``: an existing
    image (e.g. a chosen panel result) re-noised into a bank."""
    request: StoredMapping = {}
    created_at: Annotated[str, Field(max_length=64)] = ""

    @property
    def stored_in_project(self) -> bool:
        """Whether the bank file is one of the project's assets (it fits the asset limit); a bigger
        bank lives only in the app's bank folder and is rebuilt from ``request`` when missing."""
        return self.bank_bytes <= MAX_ASSET_BYTES


def lora_fits_project(size: int) -> bool:
    """Whether a LoRA file of ``size`` bytes is kept in the project (its asset limit) rather than in
    the user's LoRA library folder: the one place that decides."""
    return size <= lora_project_limit()


def lora_project_limit() -> int:
    """The largest LoRA a project keeps: its limit for one asset (read when asked, so tests may lower it)."""
    return MAX_ASSET_BYTES


class Character(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)] = []
    pronouns: Pronouns = Pronouns.THEY
    description: ShortText = ""
    """Description prompt used by generation backends ("tall woman, red scarf, ...")."""
    style_notes: ShortText = ""
    colour: Colour = "#4a7bd0"
    face_refs: Annotated[list[AssetRef], Field(max_length=64)] = []
    body_refs: Annotated[list[AssetRef], Field(max_length=64)] = []
    lora_asset: AssetRef | None = None
    lora_bytes: int = Field(default=0, ge=0)
    """The LoRA file's size: above the project's asset limit the file is not an asset but lives in the
    user's LoRA library folder by its hash (:mod:`comic_studio.core.lora_library`); 0 in older files."""
    lora_scale: float = Field(default=1.0, ge=0.0, le=2.0)
    """How strongly the character's trained LoRA is applied (the adapter's scale; 1 = as trained)."""
    lora_enabled: bool = True
    """Off: the LoRA stays on the character but renders leave it out (compare with and without)."""
    embedding_asset: AssetRef | None = None
    identity_asset: AssetRef | None = None
    """The character's learned identity tokens (StableIdentity: an SDXL textual-inversion file
    ``{clip_l: [2, 768], clip_g: [2, 1280]}``, e.g. from ``comic-studio train identity``)."""
    identity_enabled: bool = True
    """Off: the identity stays on the character but renders leave it out."""
    identity_scale: float = Field(default=1.0, ge=0.0, le=2.0)
    """How strongly the identity tokens apply (like ``lora_scale``): the learned rows are moved
    about the celebrity-name mean, ``mean + s · (row − mean)`` — 1 = as trained, 0 = the mean (a
    generic face), above 1 exaggerates (:func:`comic_studio.generation.identity.scaled_identity_rows`)."""
    face_scale: float | None = Field(default=None, ge=0.0, le=2.0)
    """How strongly the face references condition this character (IP-Adapter scale); ``None``
    takes the panel's / backend's default."""
    body_scale: float | None = Field(default=None, ge=0.0, le=2.0)
    """How strongly the body/outfit references condition this character; ``None``: the default."""
    anchor: CharacterAnchor | None = None
    """The identity anchor of consistent-character backends (None until one is generated)."""
    standard_sheet: AssetRef | None = None
    """The accepted standard sheet (SerialGen's stage 1: front A-pose, plain background, neutral
    expression); it is also the first of ``body_refs``, so every backend's outfit reference is it."""

    def all_names(self) -> list[str]:
        return [self.name, *self.aliases]

    @property
    def lora_in_project(self) -> bool:
        """Whether the LoRA file is one of the project's assets (it fits the asset limit), as
        :attr:`CharacterAnchor.stored_in_project` for banks; a bigger one is in the LoRA library."""
        return lora_fits_project(self.lora_bytes)


# --------------------------------------------------------------------------- story


class DialogueLine(_Model):
    speaker_id: str | None = None
    """Character id, or ``None`` for an unattributed voice (off-panel, crowd)."""
    text: Annotated[str, Field(min_length=1, max_length=5_000)]
    kind: DialogueKind = DialogueKind.SPEECH
    off_panel: bool = False
    """The speaker is not in the panel (a script's ``NAME (OFF):``, a screenplay's ``(O.S.)``/``(V.O.)``):
    the balloon's tail points to no figure."""


class Beat(_Model):
    """One visible action: the unit that becomes one panel."""

    id: str = Field(default_factory=new_id, max_length=64)
    action: Annotated[str, Field(max_length=5_000)] = ""
    characters: Annotated[list[str], Field(max_length=16)] = []
    actor_id: str | None = None
    target_id: str | None = None
    setting: ShortText = ""
    time_of_day: ShortText = ""
    shot: ShotType = ShotType.MEDIUM
    mood: ShortText = ""
    dialogue: Annotated[list[DialogueLine], Field(max_length=64)] = []
    caption: Annotated[str, Field(max_length=5_000)] = ""
    sfx: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=16)] = []
    """Sound effects lettered in the panel (a comic script's ``SFX: KRAKOOM``)."""
    notes: Annotated[str, Field(max_length=5_000)] = ""
    """Notes to the artist (a script's ``NOTE:``/``[[...]]``): shown to the author, never lettered."""
    page: int = Field(default=0, ge=0, le=100_000)
    """The script page this beat's panel belongs to (comic scripts): consecutive beats with the same
    page number are laid out together on one page. 0: free, auto-layout chooses the page breaks."""
    source: Literal["rules", "llm", "user"] = "rules"
    edited: bool = False
    """True once the author changed the beat by hand: re-parsing must not silently overwrite it."""


class Scene(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    title: ShortText = ""
    setting: ShortText = ""
    time_of_day: ShortText = ""
    beats: Annotated[list[Beat], Field(max_length=MAX_ITEMS)] = []


class Story(_Model):
    text: Annotated[str, Field(max_length=20_000_000)] = ""
    """The author's story text (a novel-length manuscript fits; the beats are what panels use)."""
    scenes: Annotated[list[Scene], Field(max_length=MAX_ITEMS)] = []

    def beats(self) -> list[Beat]:
        return [b for s in self.scenes for b in s.beats]

    def beat(self, beat_id: str) -> Beat | None:
        return next((b for b in self.beats() if b.id == beat_id), None)


class Style(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    prompt_suffix: ShortText = ""
    negative: ShortText = ""


# --------------------------------------------------------------------------- panels and lettering


class Box(_Model):
    """Axis-aligned rectangle: ``x, y`` top-left, ``w, h`` size (units depend on the owner)."""

    x: float
    y: float
    w: Annotated[float, Field(ge=0)]
    h: Annotated[float, Field(ge=0)]

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


# --------------------------------------------------------------------------- poses

N_KEYPOINTS = 18
"""OpenPose-18 keypoints per figure (the pose library's layout)."""

Keypoint = tuple[float, float, float]


class PoseFigure(_Model):
    """One explicit pose figure: 18 OpenPose keypoints ``(x, y, visible)``, normalised 0..1, y down."""

    keypoints: Annotated[list[Keypoint], Field(min_length=N_KEYPOINTS, max_length=N_KEYPOINTS)]
    role: Literal["actor", "target", "neutral"] = "neutral"
    facing: float = Field(default=0.0, ge=-1.0, le=1.0)
    """-1 looks left, +1 looks right, 0 faces the viewer."""

    @field_validator("keypoints")
    @classmethod
    def _finite(cls, points: list[Keypoint]) -> list[Keypoint]:
        for i, (x, y, v) in enumerate(points):
            if not all(abs(c) < 1e6 for c in (x, y, v)):  # also rejects NaN (comparisons are False)
                raise ValueError(f"keypoint {i} has a non-finite or absurd coordinate")
        return points


class PoseSpec(_Model):
    """Explicit figures for a panel (a user-nudged pose), replacing the library pick.

    ``framed=False``: keypoints are on a pose canvas of ``aspect`` (width/height) and the backend
    frames them by shot type, like a library pose. ``framed=True``: keypoints are already
    panel-normalised and are drawn exactly where they are.
    """

    figures: Annotated[list[PoseFigure], Field(max_length=16)]
    aspect: float = Field(default=1.0, gt=0.05, lt=20.0)
    framed: bool = False

    @classmethod
    def from_entry(cls, entry: Any) -> PoseSpec:
        """Snapshot a pose-library entry (anything with ``figures`` and ``aspect``)."""
        return cls(
            aspect=float(getattr(entry, "aspect", 1.0)),
            figures=[
                PoseFigure(
                    # pydantic checks that each keypoint has its three values
                    keypoints=[tuple(float(c) for c in kp) for kp in f.keypoints],  # type: ignore[misc]
                    role=f.role,
                    facing=float(f.facing),
                )
                for f in entry.figures
            ],
        )


class CharacterPlacement(_Model):
    """Where a character stands in a panel, in *panel-normalised* coordinates (0..1 of the
    panel's bounding box), so placements survive panel resizing."""

    character_id: str = Field(max_length=64)
    figure: int = Field(default=0, ge=0, le=16)
    """Index of the pose figure this character is assigned to (the user can swap it)."""
    body: Box | None = None
    head: Point | None = None
    """Centre of the head; balloon tails aim here and balloon placement avoids it."""
    head_radius: float = Field(default=0.08, ge=0, le=1)
    name_tag: Box | None = None
    """The character's name tag as the backend drew it on the image (the storyboard's), panel-
    normalised like ``body``; automatic balloon placement keeps off it as off the face."""


class TailTarget(_Model):
    character_id: str | None = None
    point: Point | None = None
    """Explicit tail tip in page units, used when no character is targeted (or overrides it)."""


class BalloonStyle(_Model):
    font: Annotated[str, Field(max_length=200)] = "ComicNeue-Bold"
    font_size: Annotated[float, Field(gt=0, le=400)] = 10.0
    min_font_size: Annotated[float, Field(gt=0, le=400)] = 6.5
    max_font_size: Annotated[float, Field(gt=0, le=400)] = 12.0
    fill: Colour = "#ffffff"
    stroke: Colour = "#000000"
    text_colour: Colour = "#000000"
    stroke_width: Annotated[float, Field(ge=0, le=20)] = 1.0
    align: Literal["center", "left"] = "center"


class Balloon(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    kind: BalloonKind = BalloonKind.SPEECH
    text: Annotated[str, Field(max_length=MAX_BALLOON_TEXT)] = ""
    box: Box
    """Page units. Balloons may overlap panel borders, as in print comics."""
    tail: TailTarget | None = None
    style: BalloonStyle = Field(default_factory=BalloonStyle)
    auto_placed: bool = True
    """Placed by the layout engine; a manual move clears it so re-placement leaves it alone."""


class PanelResult(_Model):
    """One generated (or imported) image of a panel, with everything needed to reproduce it."""

    id: str = Field(default_factory=new_id, max_length=64)
    asset: AssetRef
    backend: Annotated[str, Field(max_length=200)]
    seed: Seed
    request: StoredMapping = {}
    """The full, serialised generation request: regenerate/same-seed replays exactly this."""
    created_at: Annotated[str, Field(max_length=64)]
    accepted: bool = False
    heads: list[CharacterPlacement] = []
    """Figure placements the backend reported (head positions for balloon tails)."""
    labels: Annotated[list[Box], Field(max_length=16)] = []
    """Text the backend drew on the image that is not a character's name tag (the storyboard's
    place label, "KITCHEN · NIGHT"), image-normalised like ``CharacterPlacement.name_tag``;
    automatic balloon placement keeps off it. Empty in files written before it existed."""


class Panel(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    shape: Polygon
    order: int = Field(default=0, ge=0)
    """Reading-order index within the page (0 first), kept in sync by the layout engine."""
    beat_id: str | None = None
    characters: Annotated[list[CharacterPlacement], Field(max_length=16)] = []
    shot: ShotType = ShotType.MEDIUM
    setting: ShortText = ""
    prompt: Annotated[str, Field(max_length=10_000)] = ""
    negative_prompt: Annotated[str, Field(max_length=10_000)] = ""
    seed: Seed | None = None
    seed_locked: bool = False
    backend: Annotated[str, Field(max_length=200)] = "storyboard"
    backend_settings: SettingsMapping = {}
    pose_id: Annotated[str, Field(max_length=200)] | None = None
    """A library pose the author picked (pose browser); ``None`` lets the backend retrieve one
    from the beat's action."""
    pose: PoseSpec | None = None
    """Explicit figures (extracted from a reference image, or nudged on the canvas); wins over
    ``pose_id``."""
    results: Annotated[list[PanelResult], Field(max_length=10_000)] = []
    current_result: str | None = None
    balloons: Annotated[list[Balloon], Field(max_length=MAX_BALLOONS_PER_PANEL)] = []

    def result(self) -> PanelResult | None:
        """The result shown in the panel (the current one, else the newest)."""
        if self.current_result:
            for r in self.results:
                if r.id == self.current_result:
                    return r
        return self.results[-1] if self.results else None


class Page(_Model):
    id: str = Field(default_factory=new_id, max_length=64)
    panels: Annotated[list[Panel], Field(max_length=256)] = []
    template_id: str | None = None
    notes: ShortText = ""

    def panels_in_order(self) -> list[Panel]:
        return sorted(self.panels, key=lambda p: p.order)


class PageFormat(_Model):
    """Physical page: trim size, bleed, safe margin and gutter, all in points."""

    preset: Annotated[str, Field(max_length=100)] = "us-comic"
    width: Annotated[float, Field(gt=0, le=20_000)]
    height: Annotated[float, Field(gt=0, le=200_000)]
    bleed: Annotated[float, Field(ge=0, le=200)] = 9.0
    margin: Annotated[float, Field(ge=0, le=500)] = 27.0
    """Distance from trim to the safe (live) area where text and panels stay."""
    gutter: Annotated[float, Field(ge=0, le=200)] = 12.0
    dpi: Annotated[int, Field(ge=36, le=1200)] = 300

    @property
    def bleed_width(self) -> float:
        return self.width + 2 * self.bleed

    @property
    def bleed_height(self) -> float:
        return self.height + 2 * self.bleed

    def live_box(self) -> Box:
        return Box(x=self.margin, y=self.margin, w=self.width - 2 * self.margin, h=self.height - 2 * self.margin)


class Project(_Model):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=new_id, max_length=64)
    title: ShortText = "Untitled comic"
    series: ShortText = ""
    number: ShortText = ""
    author: ShortText = ""
    summary: LongText = ""
    language: Annotated[str, Field(max_length=16)] = "en"
    page_format: PageFormat
    reading_direction: ReadingDirection = ReadingDirection.LTR
    pages: Annotated[list[Page], Field(max_length=10_000)] = []
    characters: Annotated[list[Character], Field(max_length=1_000)] = []
    story: Story = Field(default_factory=Story)
    styles: Annotated[list[Style], Field(max_length=1_000)] = []
    active_style_id: str | None = None
    default_backend: Annotated[str, Field(max_length=200)] = "storyboard"

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema version {v} (this build reads {SCHEMA_VERSION}; migrate first)")
        return v

    # Small look-ups used everywhere; linear scans are fine at comic scale (hundreds of items).
    def character(self, character_id: str) -> Character | None:
        return next((c for c in self.characters if c.id == character_id), None)

    def page(self, page_id: str) -> Page | None:
        return next((p for p in self.pages if p.id == page_id), None)

    def find_panel(self, panel_id: str) -> tuple[Page, Panel] | None:
        for page in self.pages:
            for panel in page.panels:
                if panel.id == panel_id:
                    return page, panel
        return None

    def active_style(self) -> Style | None:
        return next((s for s in self.styles if s.id == self.active_style_id), None)

    def asset_refs(self) -> set[str]:
        """Every asset hash the project references (what a save must keep)."""
        refs: set[str] = set()
        for c in self.characters:
            refs.update(c.face_refs)
            refs.update(c.body_refs)
            refs.update(a for a in (c.embedding_asset, c.identity_asset) if a)
            if c.lora_asset and c.lora_in_project:  # a bigger one is in the user's LoRA library
                refs.add(c.lora_asset)
            if c.anchor is not None:
                refs.add(c.anchor.image)
                if c.anchor.stored_in_project:
                    refs.add(c.anchor.bank)
        for page in self.pages:
            for panel in page.panels:
                refs.update(r.asset for r in panel.results)
        return refs

    def setting_asset_refs(self) -> set[str]:
        """Assets named ``asset:<hash>`` in panels' backend settings and in stored requests (an init
        image the user picked, an img2img init image or anchor picture a request carried). Kept by a
        save and registered by the loader when present, but not required: a backend's settings are
        opaque to the model, and projects saved before they were kept may lack them (a job or replay
        naming one says which image is missing)."""
        settings: list[Any] = []
        for page in self.pages:
            for panel in page.panels:
                settings.append(panel.backend_settings)
                settings += [r.request.get("backend_settings") for r in panel.results]
        settings += [c.anchor.request.get("backend_settings") for c in self.characters if c.anchor is not None]
        refs: set[str] = set()
        for values in settings:
            if isinstance(values, dict):
                for value in values.values():
                    match = ASSET_SETTING.match(value) if isinstance(value, str) else None
                    if match:
                        refs.add(match.group(1))
        return refs
