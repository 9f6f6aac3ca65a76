"""The interface every generation backend implements (built-ins and third-party plugins alike).

A backend declares its settings as a small schema the UI renders as a form; ``validate_settings``
checks a dict against it generically, so each backend only declares, never re-implements, checks.

Schema format: ``{field: {"type": "int"|"float"|"bool"|"str"|"choice", "default": ..., "label": ...,
"min": ..., "max": ..., "choices": [...], "help": ...}}``. A ``"str"`` setting that carries an image
(an init image, a mask) says ``"image": True``: its value is then a ``data:`` URI, or ``asset:<sha256>``
naming a project asset (stored requests and panel settings), never a file path — a project must not
make the renderer read arbitrary local files. :func:`image_value_problem` is that rule. ``"hidden": True``
keeps a retired setting valid for old projects without offering it in the form.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
)
from comic_studio.weights.needs import ModelNeed

CONSISTENT_CHARACTERS = "consistent_characters"
"""Capability: the backend keeps each character's identity in an *identity bank*, a file in a bank
folder named by its sha256, and reads it in every panel job so a character looks the same in every
panel. Such a backend accepts the settings ``banks`` (which bank each character reads, in the syntax
of :meth:`GenerationBackend.parse_banks`), ``bank_folder`` (where the banks are), ``anchor_for`` (a
character id: make that character's bank instead of a panel and name it in the result's ``banks``),
``anchor_image`` (an image to bank instead of rendering anchors), ``anchor_size`` and
``anchor_seed``, and implements the identity-bank hooks of :class:`GenerationBackend`. The workflows
keep the banks with the project through those hooks alone, so they never import the backend."""

NEEDS_CHARACTER_LORAS = "needs_character_loras"
"""Capability: the backend draws every character with its trained LoRA (StoryBooth) and refuses a
job where a character in it has none (:class:`MissingCharacterLoras`); the workflows refuse such a
request before it is queued, and the studio then offers to train the missing ones."""


class MissingCharacterTraining(GenerationError):
    """Characters a backend would draw lack what it needs them to be trained with (a LoRA, identity
    tokens): ``characters`` are their ``(id, name)`` pairs and ``training`` the kind ("lora",
    "identity"); the workflows refuse before queueing and the studio offers to train the first."""

    training = ""

    def __init__(self, backend: str, characters: list[tuple[str, str]], message: str):
        self.backend = backend
        self.characters = list(dict.fromkeys(characters))
        super().__init__(message)


class MissingCharacterLoras(MissingCharacterTraining):
    """Characters a :data:`NEEDS_CHARACTER_LORAS` backend would draw have no (enabled) trained LoRA.
    ``characters`` are their ``(id, name)`` pairs; the message names them and how to train one."""

    training = "lora"

    def __init__(self, backend: str, characters: list[tuple[str, str]]):
        names = [name for _id, name in dict.fromkeys(characters)]
        who = ", ".join(names)
        super().__init__(
            backend,
            characters,
            f"{backend} draws each character with its trained LoRA, and {who} "
            f"{'has' if len(names) == 1 else 'have'} none (or it is switched off): train one with "
            f"Train LoRA… on the character's card, or `comic-studio train lora PROJECT --character {names[0]!r}` "
            "— or render with the consistent backend",
        )


NEEDS_CHARACTER_IDENTITIES = "needs_character_identities"
"""Capability: the backend draws every character with its learned identity tokens (StableIdentity)
and refuses a job where a character in it has none (:class:`MissingCharacterIdentities`); the
workflows refuse such a request before it is queued, and the studio offers to train them."""


class MissingCharacterIdentities(MissingCharacterTraining):
    """Characters a :data:`NEEDS_CHARACTER_IDENTITIES` backend would draw have no (enabled) identity
    tokens; the message names them and how to learn them."""

    training = "identity"

    def __init__(self, backend: str, characters: list[tuple[str, str]]):
        names = [name for _id, name in dict.fromkeys(characters)]
        super().__init__(
            backend,
            characters,
            f"StableIdentity needs learned identity tokens for every character in the panel; "
            f"{', '.join(names)} {'has' if len(names) == 1 else 'have'} none yet — train them (Train identity… on "
            f"the character's card, or `comic-studio train identity PROJECT --character {names[0]!r}`; switched-off "
            "tokens count as none) or choose another method",
        )


def characters_without_identity(request: GenerationRequest) -> list[RequestCharacter]:
    """The characters of ``request`` a :data:`NEEDS_CHARACTER_IDENTITIES` backend would refuse."""
    return list({c.id: c for c in request.characters if not c.identity}.values())


def characters_without_lora(request: GenerationRequest) -> list[RequestCharacter]:
    """The characters of ``request`` a :data:`NEEDS_CHARACTER_LORAS` backend would refuse: every
    one without a LoRA, or only the anchor job's character (setting ``anchor_for``)."""
    anchor_for = request.backend_settings.get("anchor_for") or ""
    return [c for c in request.characters if not c.lora and (not anchor_for or c.id == anchor_for)]


SETTING_TYPES = frozenset({"int", "float", "bool", "str", "choice"})
_DEFAULT_OVERRIDES: dict[str, dict[str, Any]] = {}
"""backend name → setting → default, changed for this process (the ``--models tiny`` smoke preset)."""


class BackendSettingsError(ComicStudioError):
    """A backend setting is unknown or has an invalid value; the message names the field."""

    def __init__(self, backend: str, field: str, problem: str):
        self.backend = backend
        self.field = field
        self.problem = problem
        super().__init__(f"backend {backend!r}, setting {field!r}: {problem}")


class GenerationBackend(ABC):
    """A way to turn a :class:`GenerationRequest` into panel images."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    needs_reference_images: ClassVar[bool] = False
    """True: the app fills the ``reference_images`` setting (JSON ``{asset hash: data URI}``) with the
    request characters' face/body references before submitting, and strips it before storing."""
    required_models: ClassVar[tuple[ModelNeed, ...]] = ()
    """The catalogue models this backend cannot run without (default: none, like the storyboard).
    The Models dialog and ``comic-studio models check`` tell the user what is still missing."""
    vram_gb: ClassVar[Mapping[str, float]] = {}
    """Peak GPU memory (GiB) one ~1-megapixel panel needs in each memory mode it supports
    (``{"gpu": 14.0, "model-offload": 11.0, "sequential-offload": 4.0}``). The engine's ``auto``
    memory mode picks the fastest that fits the card; the Models dialog and ``comic-studio models
    check`` show it. Empty: no GPU need declared (e.g. the storyboard), so ``auto`` means ``gpu``."""

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        """The declared settings (see module docstring). Default: none."""
        return {}

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        return {k: spec["default"] for k, spec in cls.settings_schema().items()}

    def validate_settings(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        """Return ``settings`` with defaults filled in; raise :class:`BackendSettingsError` naming the
        first bad field (unknown names included: a typo must not silently fall back to a default)."""
        settings = dict(settings or {})
        schema = self.settings_schema()
        unknown = sorted(set(settings) - set(schema))
        if unknown:
            known = ", ".join(sorted(schema)) or "none"
            raise BackendSettingsError(self.name, unknown[0], f"unknown setting (known: {known})")
        out: dict[str, Any] = {}
        for key, spec in schema.items():
            out[key] = _check_value(self.name, key, spec, settings[key]) if key in settings else spec["default"]
        return out

    def prepare(self, requests: list[GenerationRequest]) -> None:
        """Warm up for a batch of upcoming requests (e.g. embed all pose queries at once).
        Optional: the default does nothing; results must not depend on whether it ran."""

    @abstractmethod
    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        """Produce the panel image(s). Must be deterministic for ``request.seed``; must raise
        :class:`~comic_studio.generation.request.Cancelled` when ``on_step`` returns ``False``."""

    # ------------------------------------------------------------------ identity banks
    # Hooks of the CONSISTENT_CHARACTERS capability, all classmethods: the workflows call them
    # on the class the registry returns, without loading models. A backend without the capability
    # keeps the defaults, which refuse: nothing should ask it about banks.

    @classmethod
    def parse_banks(cls, text: str) -> dict[str, str]:
        """The ``banks`` setting (e.g. ``"ana=<sha256>, ben=<sha256>"``; the syntax is the backend's) as
        ``{character id: bank hash}``; raises :class:`GenerationError` on a malformed entry."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def format_banks(cls, banks: Mapping[str, str]) -> str:
        """``{character id: bank hash}`` as the ``banks`` setting (the inverse of :meth:`parse_banks`)."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def bank_file(cls, folder: str | Path, digest: str) -> Path:
        """Where the bank ``digest`` lives in a bank folder (whether or not it is there)."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def write_bank_file(cls, data: bytes, folder: str | Path) -> str:
        """Put a bank's bytes (e.g. from the project's assets) into ``folder`` for a job to read,
        atomically; returns its hash, the one the asset store gives the same bytes."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def read_bank_file(cls, folder: str | Path, digest: str) -> bytes:
        """The bytes of bank ``digest`` in ``folder``, checked against the hash (to store them in the
        project); raises :class:`ValueError` saying what is wrong (missing, damaged)."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def bank_relevant_settings(cls) -> tuple[str, ...]:
        """The settings that change a bank's contents: panels whose jobs agree on these can share
        their characters' banks, so anchor jobs take them from the panels."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)

    @classmethod
    def anchor_prompt(cls, character: RequestCharacter) -> str:
        """The prompt an anchor job renders ``character`` from (solo, full figure)."""
        raise _lacks(cls, CONSISTENT_CHARACTERS)


MEMORY_MODE_WORDS = {"gpu": "everything on the GPU", "model-offload": "whole-model offload",
                     "sequential-offload": "layer-by-layer offload"}  # fmt: skip


def describe_vram(vram_gb: Mapping[str, float]) -> str:
    """``vram_gb`` for people: "GPU memory (estimate, ~1 MP panel): 14 GiB everything on the GPU, …"
    (empty text when nothing is declared)."""
    if not vram_gb:
        return ""
    parts = [f"{vram_gb[m]:g} GiB {MEMORY_MODE_WORDS.get(m, m)}" for m in MEMORY_MODE_WORDS if m in vram_gb]
    return "GPU memory (estimate, ~1 MP panel): " + ", ".join(parts)


def _lacks(cls: type[GenerationBackend], capability: str) -> GenerationError:
    return GenerationError(f"backend {cls.name or cls.__name__!r} does not have the {capability!r} capability")


def _check_value(backend: str, key: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec.get("type")
    if kind not in SETTING_TYPES:
        raise BackendSettingsError(backend, key, f"schema declares unknown type {kind!r}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise BackendSettingsError(backend, key, f"expected true/false, got {value!r}")
        return value
    if kind == "choice":
        choices = list(spec.get("choices", []))
        if value not in choices:
            raise BackendSettingsError(backend, key, f"{value!r} is not one of {choices}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise BackendSettingsError(backend, key, f"expected text, got {type(value).__name__}")
        if len(value) > int(spec.get("max_length", 2_000)):
            raise BackendSettingsError(backend, key, "text is too long")
        problem = image_value_problem(value) if spec.get("image") else None
        if problem:
            raise BackendSettingsError(backend, key, problem)
        return value
    # Numbers: bool is an int subclass in Python, but `True` as a step count is a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BackendSettingsError(backend, key, f"expected a number, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise BackendSettingsError(backend, key, f"expected a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise BackendSettingsError(backend, key, f"expected a finite number, got {value!r}")
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and value < lo:
        raise BackendSettingsError(backend, key, f"{value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise BackendSettingsError(backend, key, f"{value} is above the maximum {hi}")
    return value


# --------------------------------------------------------------------------- image settings

ASSET_VALUE = re.compile(r"^asset:[0-9a-f]{64}$")
"""An image setting naming a project asset by hash (what a project stores; the workflows put the
image inline before a backend sees it)."""


def image_settings(backend: type[GenerationBackend]) -> tuple[str, ...]:
    """The settings of ``backend`` that carry an image (``"image": True`` in its schema)."""
    return tuple(k for k, spec in backend.settings_schema().items() if spec.get("image"))


def image_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be an image setting (``None`` when it can): only empty, a ``data:`` URI
    or ``asset:<sha256>``. Anything else is a file path (or a URL), which a project or a stored
    request must not use to make the renderer read local files."""
    text = value.strip()
    if not text or text.startswith("data:") or ASSET_VALUE.match(text):
        return None
    return (
        f"{text[:80]!r} is a file path, which a project may not use (it would make the renderer read "
        "local files); images enter a project as assets: choose the file again in the panel's settings "
        "(it is then added to the project)"
    )


# --------------------------------------------------------------------------- process-wide defaults


def set_default_settings(backend: type[GenerationBackend], **values: Any) -> None:
    """Change this process's defaults of ``backend``'s settings (e.g. the tiny kit's model paths and
    few steps for ``--models tiny``). Validated like any request; results still record every
    effective setting, so a replay elsewhere is exact. A backend's ``settings_schema`` applies them
    with :func:`with_default_overrides`."""
    checked = backend().validate_settings(values)
    _DEFAULT_OVERRIDES.setdefault(backend.name, {}).update({k: checked[k] for k in values})


def reset_default_settings() -> None:
    """Back to the declared defaults, for every backend."""
    _DEFAULT_OVERRIDES.clear()


def with_default_overrides(schema: dict[str, dict[str, Any]], backend_name: str) -> dict[str, dict[str, Any]]:
    """``schema`` with the defaults :func:`set_default_settings` changed for ``backend_name``."""
    overrides = _DEFAULT_OVERRIDES.get(backend_name, {})
    return {key: ({**spec, "default": overrides[key]} if key in overrides else spec) for key, spec in schema.items()}
