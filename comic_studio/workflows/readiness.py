"""Can a backend run on this machine? Its declared ``required_models`` against what is installed,
in words for people: the studio asks before it queues renders (a render that lacks models names
them all, with the total download, instead of failing panel after panel), and the inspector's
backend chooser marks the backends that cannot run yet and says why.

Only the catalogue entries a backend could use are looked for (``relevant_ids``), so a backend
that needs no models (storyboard) costs nothing. The texts name the Models dialog, never a shell
command: the command line has ``comic-studio models check`` for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from comic_studio.generation.registry import available_backends
from comic_studio.weights.catalogue import Catalogue, ModelEntry, load_catalogue
from comic_studio.weights.locate import Located, Places, locate
from comic_studio.weights.needs import ModelNeed, check_need, human_size, relevant_ids, to_download


@dataclass(frozen=True)
class Readiness:
    backend: str
    label: str
    ready: bool
    installed: bool = True
    missing: tuple[ModelEntry, ...] = ()
    """What to download, dependencies included, each once."""
    reason: str = ""
    """Why it cannot run (empty when ready): the models it lacks and their size, or the problem."""

    @property
    def total_bytes(self) -> int:
        return sum(m.size or 0 for m in self.missing)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def backend_readiness(
    name: str,
    places: Places | None = None,
    settings: Mapping[str, Any] | None = None,
    catalogue: Catalogue | None = None,
) -> Readiness:
    """Whether backend ``name`` has every model it declares (an unknown backend is not ready).
    ``settings``: a panel's backend settings, where a panel may name another model (a catalogue id
    or a file) than the default; the backend's defaults (with this process' overrides, e.g. the
    tiny kit's) fill the rest."""
    cls = available_backends().get(name)
    if cls is None:
        return Readiness(name, name, False, installed=False, reason=f"the {name!r} backend is not installed")
    label = cls.display_name or name
    needs = tuple(cls.required_models)
    if not needs:
        return Readiness(name, label, True)
    catalogue = catalogue or load_catalogue()
    places = places or Places.from_settings()
    wanted = set().union(*(relevant_ids(n, catalogue) for n in needs))
    found: dict[str, Located | None] = {m.id: locate(m, places) for m in catalogue.models if m.id in wanted}
    # Imported here: the window imports this module at start and need not load the SDXL helpers.
    from comic_studio.generation.models.sdxl import default_sdxl_model

    effective = {**cls.default_settings(), **(settings or {})}
    preferred = {"sdxl": default_sdxl_model()}

    def choice(need: ModelNeed) -> str:
        named = effective.get(need.setting) if need.setting else None
        return named if isinstance(named, str) and named.strip() else preferred.get(need.kind, "")

    statuses = [check_need(n, catalogue, found, choice(n)) for n in needs]
    lacking = [s for s in statuses if not s.ready]
    if not lacking:
        return Readiness(name, label, True)
    missing = tuple(to_download(lacking))
    unusable = [s.problem for s in lacking if s.problem]
    if unusable:
        return Readiness(name, label, False, True, missing, unusable[0])
    unknown = [s.need.words for s in lacking if s.suggestion is None]
    if unknown:
        return Readiness(name, label, False, True, missing,
                         f"needs {_and(unknown)}, and the model catalogue has none: name one in the panel's settings")  # fmt: skip
    total = sum(m.size or 0 for m in missing)
    listed = ", ".join(f"{m.name} ({human_size(m.size)})" if m.size else m.name for m in missing)
    return Readiness(name, label, False, True, missing, f"needs {listed} — {human_size(total)} to download")


def missing_models_text(report: list[Readiness], panels: int) -> str:
    """The message of a render refused for missing models: every backend, every model, the total."""
    entries: list[ModelEntry] = []
    for r in report:
        entries += [m for m in r.missing if m not in entries]
    total = sum(m.size or 0 for m in entries)
    lines = [f"{panels} panel{'s' if panels != 1 else ''} could not be queued: "
             f"{_and([r.label for r in report])} cannot run on this computer yet."]  # fmt: skip
    for r in report:
        lines.append(f"• {r.label} {r.reason}.")
    if entries:
        lines.append(f"In all {len(entries)} model{'s' if len(entries) != 1 else ''}, {human_size(total)}: "
                     "download them in the Models window, or choose the Storyboard backend (no models needed) "
                     "for these panels.")  # fmt: skip
    return "\n".join(lines)


__all__ = ["Readiness", "backend_readiness", "missing_models_text"]
