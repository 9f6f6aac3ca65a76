"""Auto-layout: turn a sequence of beats into pages of panels.

Page breaks and templates are chosen together by dynamic programming over the beat sequence
(deterministic: same beats, same pages). A page holds a contiguous run of beats; its cost adds

* how well each beat's shot fits its slot's size hint (establishing/wide shots want ``wide``
  slots, close-ups ``small`` ones);
* a page-size preference (4–5 panels best, 3 and 6 fine, fewer only for a splash or when the
  story is too short);
* a penalty for a new scene starting mid-page, which is forbidden once the page is more than half
  full (the scene then starts a new page);
* a small constant per page, so pages are not left half empty.

Hard rules: an establishing shot gets a panel at least 60 % of the live width, a close-up one at
most 55 % of it, so establishing panels are always wider than close-up panels. When no stored
template satisfies the rules for a run of beats, a tier layout is generated for it (template ids
``rows:...``), so every partition of the beats has at least one valid page layout.

Beats that carry a script page (``Beat.page``, from a comic script) are not re-paged: each run of
beats with the same page number is one page, with the template chosen for its panel count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import geometry as geo
from comic_studio.core.layout.templates import Template, build_slots, get_template, load_templates, rows_template_id
from comic_studio.core.model import (
    Beat,
    CharacterPlacement,
    Page,
    PageFormat,
    Panel,
    ReadingDirection,
    Scene,
    ShotType,
    Story,
)

_SHOT_CLASS = {
    ShotType.ESTABLISHING: "wide",
    ShotType.WIDE: "wide",
    ShotType.MEDIUM: "normal",
    ShotType.OVER_THE_SHOULDER: "normal",
    ShotType.CLOSE_UP: "small",
    ShotType.EXTREME_CLOSE_UP: "small",
}
# Cost of putting a beat of class (row) in a slot with hint (column).
_MISMATCH = {
    "wide": {"wide": 0.0, "normal": 1.0, "small": 3.0},
    "normal": {"wide": 0.4, "normal": 0.0, "small": 0.6},
    "small": {"wide": 1.5, "normal": 0.3, "small": 0.0},
}
_PAGE_SIZE_COST = {1: 60.0, 2: 30.0, 3: 1.5, 4: 0.3, 5: 0.0, 6: 0.6}
_SPLASH_COST = 2.0
_PER_PAGE_COST = 2.0
_MID_PAGE_SCENE_COST = 2.0
_GENERATED_TEMPLATE_COST = 1.5
_FORBIDDEN = 1000.0
ESTABLISHING_MIN_WIDTH = 0.60
CLOSE_UP_MAX_WIDTH = 0.55
SPLASH_MIN_SCENE_BEATS = 6
"""A scene opening on an establishing shot may give it a whole page when it has this many beats."""
_CLOSE_SHOTS = (ShotType.CLOSE_UP, ShotType.EXTREME_CLOSE_UP)


def shot_class(shot: ShotType) -> str:
    """``"wide"``, ``"normal"`` or ``"small"``: the slot size a shot wants."""
    return _SHOT_CLASS[ShotType(shot)]


@dataclass(frozen=True)
class _Item:
    beat: Beat
    scene_id: str | None
    scene_start: bool


@dataclass(frozen=True)
class _Fit:
    template: Template
    widths: tuple[float, ...]
    hints: tuple[str, ...]


def _normalise(beats: Sequence[Beat | tuple[str, Beat] | Scene], scene_ids: Sequence[str | None] | None) -> list[_Item]:
    pairs: list[tuple[str | None, Beat]] = []
    for k, entry in enumerate(beats):
        if isinstance(entry, Beat):
            pairs.append((None, entry))
        elif isinstance(entry, Scene):
            pairs.extend((entry.id, beat) for beat in entry.beats)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Beat):
            pairs.append((entry[0], entry[1]))
        else:
            raise LayoutError(
                f"beats[{k}]: expected a Beat, a (scene_id, Beat) pair or a Scene, got {type(entry).__name__}"
            )
    if scene_ids is not None:
        if len(scene_ids) != len(pairs):
            raise LayoutError(f"scene_ids has {len(scene_ids)} entries for {len(pairs)} beats")
        pairs = [(sid, b) for sid, (_, b) in zip(scene_ids, pairs, strict=True)]
    seen: set[str] = set()
    for _, b in pairs:
        if b.id in seen:
            raise LayoutError(f"beat {b.id!r} appears twice; every beat gets exactly one panel")
        seen.add(b.id)
    items = []
    for k, (sid, b) in enumerate(pairs):
        items.append(_Item(b, sid, k == 0 or sid != pairs[k - 1][0]))
    return items


def _generated_tiers(classes: Sequence[str]) -> list[list[tuple[str, float]]]:
    """A tier layout for a run of beats: wide shots get full-width tiers, other beats share tiers
    of two or three; a lone beat between wide ones shares a tier with a wide beat (2:1)."""
    tiers: list[list[tuple[str, float]]] = []
    n = len(classes)
    i = 0
    while i < n:
        if classes[i] == "wide":
            lone_next = i + 1 < n and classes[i + 1] != "wide" and (i + 2 == n or classes[i + 2] == "wide")
            if lone_next:
                tiers.append([("wide", 2), (classes[i + 1], 1)])
                i += 2
            else:
                tiers.append([("wide", 1)])
                i += 1
            continue
        j = i
        while j < n and classes[j] != "wide":
            j += 1
        run = list(classes[i:j])
        if len(run) == 1:
            # Only possible before the first wide beat (a lone beat after a wide one was paired
            # above): share the following wide beat's tier so a close-up is never full width.
            if j < n:
                tiers.append([(run[0], 1), ("wide", 2)])
                i = j + 1
                continue
            tiers.append([(run[0], 1)])
            i = j
            continue
        k = 0
        while k < len(run):
            left = len(run) - k
            take = 3 if left == 3 or (left > 4 and all(c == "small" for c in run[k : k + 3])) else 2
            if left == 5 and take == 2:
                take = 3 if run[k] == "small" else 2
            tiers.append([(c, 1) for c in run[k : k + take]])
            k += take
        i = j
    return tiers


class _Planner:
    def __init__(
        self, items: list[_Item], fmt: PageFormat, direction: ReadingDirection, templates: Mapping[str, Template]
    ):
        self.items = items
        self.fmt = fmt
        self.direction = direction
        self.live_width = fmt.width - 2 * fmt.margin
        self.by_count: dict[int, list[_Fit]] = {}
        self.generated: dict[str, _Fit] = {}  # the same tier layouts recur for many beat runs
        for template in templates.values():
            if template.panel_count <= 6:
                self.by_count.setdefault(template.panel_count, []).append(self._fit(template))
        self.scene_length: dict[int, int] = {}
        start = 0
        for k in range(1, len(items) + 1):
            if k == len(items) or items[k].scene_start:
                self.scene_length[start] = k - start
                start = k

    def _fit(self, template: Template) -> _Fit:
        slots = build_slots(template, self.fmt, self.direction)
        widths = tuple(geo.bbox(s.shape).w for s in slots)
        return _Fit(template, widths, tuple(s.hint for s in slots))

    def _slot_cost(self, beats: Sequence[Beat], fit: _Fit) -> float:
        cost = 0.0
        for beat, width, hint in zip(beats, fit.widths, fit.hints, strict=True):
            if beat.shot == ShotType.ESTABLISHING and width < ESTABLISHING_MIN_WIDTH * self.live_width:
                return math.inf
            if beat.shot in _CLOSE_SHOTS and width > CLOSE_UP_MAX_WIDTH * self.live_width:
                return math.inf
            cost += _MISMATCH[shot_class(beat.shot)][hint]
        return cost

    def best_template(self, start: int, stop: int) -> tuple[float, _Fit | None]:
        beats = [it.beat for it in self.items[start:stop]]
        n = len(beats)
        best: tuple[float, _Fit | None] = (math.inf, None)
        for fit in self.by_count.get(n, []):
            if "splash" in fit.template.tags and not self._splash_ok(start, stop):
                continue
            cost = self._slot_cost(beats, fit)
            if cost < best[0]:
                best = (cost, fit)
        tiers_id = rows_template_id(_generated_tiers([shot_class(b.shot) for b in beats]))
        if tiers_id not in self.generated:
            self.generated[tiers_id] = self._fit(get_template(tiers_id))
        generated = self.generated[tiers_id]
        cost = self._slot_cost(beats, generated) + _GENERATED_TEMPLATE_COST
        if cost < best[0]:
            best = (cost, generated)
        return best

    def _splash_ok(self, start: int, stop: int) -> bool:
        item = self.items[start]
        return (
            stop - start == 1
            and item.scene_start
            and item.beat.shot == ShotType.ESTABLISHING
            and self.scene_length[start] >= SPLASH_MIN_SCENE_BEATS
        )

    def page_cost(self, start: int, stop: int) -> tuple[float, _Fit | None]:
        n = stop - start
        size_cost = _SPLASH_COST if self._splash_ok(start, stop) else _PAGE_SIZE_COST[n]
        scene_cost = 0.0
        for k in range(start + 1, stop):
            if self.items[k].scene_start:
                before = k - start
                scene_cost += _FORBIDDEN if before > n / 2 else _MID_PAGE_SCENE_COST
        fit_cost, fit = self.best_template(start, stop)
        return size_cost + scene_cost + fit_cost + _PER_PAGE_COST, fit

    def script_page(self, start: int, stop: int) -> _Fit:
        """The template for a page the script fixed (its panel count is the script's): the best
        stored template of that count (a splash too), else the generated tiers, whose shot-width
        rules give way when nothing else fits: the script's panels win over the size rules."""
        beats = [it.beat for it in self.items[start:stop]]
        best: tuple[float, _Fit | None] = (math.inf, None)
        for fit in self.by_count.get(len(beats), []):
            cost = self._slot_cost(beats, fit)
            if cost < best[0]:
                best = (cost, fit)
        tiers_id = rows_template_id(_generated_tiers([shot_class(b.shot) for b in beats]))
        if tiers_id not in self.generated:
            self.generated[tiers_id] = self._fit(get_template(tiers_id))
        generated = self.generated[tiers_id]
        if best[1] is None or self._slot_cost(beats, generated) + _GENERATED_TEMPLATE_COST < best[0]:
            return generated
        return best[1]

    def plan(self) -> list[tuple[int, int, _Fit]]:
        """Pages as (start, stop, template): runs of beats with the same script page (``Beat.page``)
        are one page each; the beats in between (page 0) are paged by :meth:`plan_free`."""
        pages: list[tuple[int, int, _Fit]] = []
        n, k = len(self.items), 0
        while k < n:
            page = self.items[k].beat.page
            stop = k + 1
            while stop < n and (self.items[stop].beat.page == page if page else not self.items[stop].beat.page):
                stop += 1
            pages.extend([(k, stop, self.script_page(k, stop))] if page else self.plan_free(k, stop))
            k = stop
        return pages

    def plan_free(self, lo: int, hi: int) -> list[tuple[int, int, _Fit]]:
        """Page breaks and templates for beats ``lo..hi`` by dynamic programming (module doc)."""
        best = {lo: 0.0}
        choice: dict[int, tuple[int, _Fit]] = {}
        for stop in range(lo + 1, hi + 1):
            best[stop] = math.inf
            for size in range(1, min(6, stop - lo) + 1):
                start = stop - size
                if best[start] == math.inf:
                    continue
                cost, fit = self.page_cost(start, stop)
                if fit is None or cost == math.inf:
                    continue
                total = best[start] + cost
                if total < best[stop] - 1e-9:
                    best[stop] = total
                    choice[stop] = (start, fit)
        if best[hi] == math.inf:
            raise LayoutError("auto-layout found no page layout for these beats (are the templates all too large?)")
        pages = []
        stop = hi
        while stop > lo:
            start, fit = choice[stop]
            pages.append((start, stop, fit))
            stop = start
        return pages[::-1]


def _fill(panel: Panel, beat: Beat) -> Panel:
    ids = list(dict.fromkeys(beat.characters))[:16]
    return panel.model_copy(
        update={
            "beat_id": beat.id,
            "shot": beat.shot,
            "setting": beat.setting,
            "characters": [CharacterPlacement(character_id=c, figure=k) for k, c in enumerate(ids)],
        },
        deep=True,
    )


def auto_layout(
    beats: Sequence[Beat | tuple[str, Beat] | Scene],
    fmt: PageFormat,
    direction: ReadingDirection = ReadingDirection.LTR,
    templates: Mapping[str, Template] | None = None,
    scene_ids: Sequence[str | None] | None = None,
) -> list[Page]:
    """Lay ``beats`` out on new pages, one panel per beat, in order.

    ``beats`` are :class:`Beat` objects, ``(scene_id, beat)`` pairs or whole :class:`Scene`
    objects (their beats, in order); ``scene_ids`` (one per beat) may be given instead. A beat whose scene differs from the previous beat's starts a scene.
    ``templates`` defaults to the bundled ones. Each panel gets the beat's id, shot, setting and
    characters (one placement per character, figures numbered in beat order).
    """
    items = _normalise(beats, scene_ids)
    if not items:
        return []
    planner = _Planner(
        items, fmt, ReadingDirection(direction), templates if templates is not None else load_templates()
    )
    pages = []
    for start, _stop, fit in planner.plan():
        slots = build_slots(fit.template, fmt, ReadingDirection(direction))
        panels = [_fill(Panel(shape=s.shape, order=k), items[start + k].beat) for k, s in enumerate(slots)]
        # Overlays last so that drawing the list in order paints insets on top.
        overlays = {p.id for p, s in zip(panels, slots, strict=True) if s.overlay}
        panels = [p for p in panels if p.id not in overlays] + [p for p in panels if p.id in overlays]
        pages.append(Page(panels=panels, template_id=fit.template.id))
    return pages


def auto_layout_story(
    story: Story,
    fmt: PageFormat,
    direction: ReadingDirection = ReadingDirection.LTR,
    templates: Mapping[str, Template] | None = None,
) -> list[Page]:
    """:func:`auto_layout` over every beat of every scene of ``story``."""
    return auto_layout(list(story.scenes), fmt, direction, templates)


def assign_beats_to_panels(
    panels: Sequence[Panel], beats: Sequence[Beat], allow_unassigned: bool = False
) -> list[Panel]:
    """Copies of ``panels`` with ``beats`` assigned in reading order (``Panel.order``): the first
    beat to the first panel read, and so on. Each assigned panel takes the beat's id, shot,
    setting and characters; its images and balloons are kept.

    More beats than panels raises :class:`LayoutError` unless ``allow_unassigned`` (then the extra
    beats are left out); panels beyond the beats are returned unchanged.
    """
    if len(beats) > len(panels) and not allow_unassigned:
        raise LayoutError(f"{len(beats)} beats cannot go into {len(panels)} selected panels; select more panels")
    ordered = sorted(range(len(panels)), key=lambda i: (panels[i].order, i))
    out = [p.model_copy(deep=True) for p in panels]
    for beat, index in zip(beats, ordered, strict=False):
        out[index] = _fill(panels[index], beat)
    return out
