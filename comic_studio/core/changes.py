"""What a command changed: views refresh from these reports instead of polling the document."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Flag, auto


class ChangeKind(Flag):
    NONE = 0
    PROJECT = auto()  # title, series, reading direction, default backend…
    FORMAT = auto()  # page size, bleed, gutter, dpi
    PAGES = auto()  # pages added, removed, reordered
    PANELS = auto()  # panel geometry, order, content fields
    BALLOONS = auto()
    RESULTS = auto()  # panel result history / current image
    CHARACTERS = auto()
    STORY = auto()
    STYLES = auto()


@dataclass(frozen=True)
class Changes:
    """A set of change kinds plus the ids of the objects touched (empty ids = "refresh all")."""

    kinds: ChangeKind = ChangeKind.NONE
    ids: frozenset[str] = field(default_factory=frozenset)

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.kinds | other.kinds, self.ids | other.ids)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def touches(self, kind: ChangeKind) -> bool:
        return bool(self.kinds & kind)
