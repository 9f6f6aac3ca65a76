"""What a backend (or the llama parser) needs from the model catalogue, and whether it is installed.

A backend declares its needs as data (``GenerationBackend.required_models``, a tuple of
:class:`ModelNeed`); the Models dialog and ``comic-studio models check`` both answer "what is still
missing" from these declarations through :func:`check_need`, so a third-party backend gets the same
guidance by declaring its own. No torch, no Qt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from comic_studio.weights.architecture import bundled_config
from comic_studio.weights.catalogue import Catalogue, CatalogueError, ModelEntry
from comic_studio.weights.locate import Located, usable_file

SOURCE_LABELS = {"models-folder": "models folder", "hf-cache": "Hugging Face cache", "external": "ComfyUI/A1111 folder"}


@dataclass(frozen=True)
class ModelNeed:
    """One model a backend cannot run without."""

    kind: str
    """The catalogue kind (``sdxl``, ``controlnet``, ``ipadapter``, ``clip_vision``, ``llm``, …)."""
    words: str
    """What it is, for guidance text: "an SDXL base model", "the OpenPose ControlNet for SDXL"."""
    default: str = ""
    """The catalogue id suggested for download (and used when the setting below is left empty)."""
    setting: str = ""
    """The backend setting where a panel names another model instead (a catalogue id or a path)."""
    interchangeable: bool = False
    """True: any installed catalogue model of ``kind`` will do (SDXL checkpoints); False: it must
    be ``default`` (RaCig's face adapter is not its outfit adapter)."""
    alternatives: tuple[str, ...] = ()
    """Catalogue ids of another kind that meet the need as well (AnimeAdapter's pose goes through an
    OpenPose ControlNet *or* T2I-Adapter); ``default`` stays the one suggested for download."""


@dataclass(frozen=True)
class NeedStatus:
    need: ModelNeed
    satisfied_by: str | None
    """The catalogue id (or the configured path) that meets the need; None when missing."""
    where: str = ""
    """Where it was found, in words: "models folder", "Hugging Face cache", "configured path"…"""
    path: str = ""
    suggestion: ModelEntry | None = None
    """The entry to download when missing (None when the catalogue has nothing of the kind)."""
    missing: tuple[ModelEntry, ...] = ()
    """The suggestion and what it needs that is not installed yet, dependencies first."""
    problem: str = ""
    """Why a configured file cannot be used (its header does not fit the model it must be)."""

    @property
    def ready(self) -> bool:
        return self.satisfied_by is not None


def check_need(
    need: ModelNeed, catalogue: Catalogue, found: Mapping[str, Located | None], preferred: str = ""
) -> NeedStatus:
    """Whether ``need`` is met on this machine (``found``: catalogue id → where it is, as from
    ``locate_all``). ``preferred`` overrides the default: a catalogue id the user configured, or a
    model path (``COMIC_STUDIO_SDXL_MODEL`` may name a folder or a checkpoint)."""
    choice = preferred or need.default
    if choice and _is_path(choice, catalogue):
        path = Path(choice).expanduser()
        problem = _unusable(need, catalogue, path) if path.is_file() else None
        if problem:  # "installed" means loadable: the backend would fail on this file
            entry = _entry(catalogue, need.default)
            missing = tuple(r for r in catalogue.requirements(entry.id) if found.get(r.id) is None) if entry else ()
            return NeedStatus(need, None, path=str(path), suggestion=entry, missing=missing, problem=problem)
        if path.exists():
            return NeedStatus(need, str(path), "configured path", str(path))
        choice = need.default
    if not _of_kind(catalogue, choice, need.kind):
        choice = need.default if _of_kind(catalogue, need.default, need.kind) else ""
    order = [choice] if choice else []
    if need.interchangeable:
        order += [e.id for e in catalogue.of_kind(need.kind) if e.id != choice]
    order += [a for a in need.alternatives if a not in order and _in(catalogue, a)]
    for model_id in order:
        if all(found.get(r.id) is not None for r in catalogue.requirements(model_id)):
            located = found[model_id]
            assert located is not None
            return NeedStatus(need, model_id, SOURCE_LABELS.get(located.source, located.source), str(located.path))
    if not order:
        return NeedStatus(need, None)
    suggestion = catalogue.get(order[0])
    missing = tuple(r for r in catalogue.requirements(suggestion.id) if found.get(r.id) is None)
    return NeedStatus(need, None, suggestion=suggestion, missing=missing)


def human_size(n: int | None) -> str:
    """``6.9 GB``: a download size for people (decimal units, as download pages state them)."""
    if n is None:
        return "—"  # config-only entries: the catalogue lists no sizes
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def to_download(statuses: list[NeedStatus]) -> list[ModelEntry]:
    """Every entry the unmet needs still lack, once each (two IP-Adapters share one image encoder)."""
    out: list[ModelEntry] = []
    for status in statuses:
        out += [m for m in status.missing if m not in out]
    return out


def relevant_ids(need: ModelNeed, catalogue: Catalogue) -> set[str]:
    """The catalogue entries that can meet ``need``, with what they need (for filtering a list)."""
    ids = [e.id for e in catalogue.of_kind(need.kind)] if need.interchangeable else [need.default]
    ids += list(need.alternatives)
    return {r.id for model_id in ids if _in(catalogue, model_id) for r in catalogue.requirements(model_id)}


def _entry(catalogue: Catalogue, model_id: str) -> ModelEntry | None:
    return catalogue.get(model_id) if _in(catalogue, model_id) else None


def _unusable(need: ModelNeed, catalogue: Catalogue, path: Path) -> str | None:
    """For a need met by a diffusers-format model, why a configured single file would not load."""
    entry = _entry(catalogue, need.default)
    if entry is None or entry.format != "diffusers" or bundled_config(entry.id) is None:
        return None
    return usable_file(entry, path)


def _in(catalogue: Catalogue, model_id: str) -> bool:
    try:
        catalogue.get(model_id)
    except CatalogueError:
        return False
    return True


def _of_kind(catalogue: Catalogue, model_id: str, kind: str) -> bool:
    return bool(model_id) and _in(catalogue, model_id) and catalogue.get(model_id).kind == kind


def _is_path(spec: str, catalogue: Catalogue) -> bool:
    return not _in(catalogue, spec) and ("/" in spec or "\\" in spec or Path(spec).suffix != "")
