"""Page templates: declarative panel layouts built into polygons for a given page format.

A template is data (``comic_studio/resources/templates/*.json``). Its ``layout`` is a tree of cuts:

* a **leaf** is a size hint string, ``"wide"``, ``"normal"`` or ``"small"`` (auto-layout puts
  establishing/wide shots in wide slots and close-ups in small ones);
* ``{"rows": [child, ...], "sizes": [...], "slants": [...]}`` stacks children top to bottom;
  ``sizes`` are relative heights (default equal), ``slants`` the angle in degrees of each cut
  between consecutive children (rotated clockwise on screen; default 0 = a straight gutter);
* ``{"cols": [...], "sizes": [...], "slants": [...]}`` places children left to right;
* a plain JSON list child is shorthand for ``{"cols": [...]}`` with equal widths;
* ``{"inset": hint, "base": node, "corner": "bottom-right", "size": [0.4, 0.3]}`` builds ``base``
  and puts a small overlay panel (``size`` = fraction of the base panel's box) in that corner of
  the base panel it lands on, one gutter in from its edges.

Every cut is a straight line and leaves exactly one gutter (measured perpendicular to the cut)
between the two sides, so slanted gutters are as wide as straight ones. The area filled is the
live area, or the bleed box when ``"area": "bleed"``.

Templates are drawn for left-to-right reading; for right-to-left pages the built page is mirrored,
which keeps slot *i* in reading order the same slot (see :mod:`.reading_order`).

Besides stored templates, ids of the form ``rows:w2+s1/n1+n1`` describe tiers on the fly: tiers
split by ``/``, panels by ``+``, each panel a hint letter (``w``/``n``/``s``) and a relative width.
Auto-layout uses them when no stored template fits a page's shots.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import geometry as geo
from comic_studio.core.layout.presets import bleed_rect, live_rect, read_json_list
from comic_studio.core.layout.reading_order import assign_reading_order
from comic_studio.core.model import PageFormat, Panel, ReadingDirection

Hint = Literal["wide", "normal", "small"]
HINTS: tuple[str, ...] = ("wide", "normal", "small")
_HINT_LETTERS = {"w": "wide", "n": "normal", "s": "small"}
_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True, eq=False)
class Template:
    id: str
    name: str
    layout: Any
    area: Literal["live", "bleed"] = "live"
    tags: tuple[str, ...] = ()
    description: str = ""
    panel_count: int = field(init=False)
    hints: tuple[str, ...] = field(init=False)
    """Size hint of each slot in reading order (left to right)."""

    def __post_init__(self) -> None:
        _validate_node(self.layout, f"template {self.id!r}: layout")
        # Build once on a reference page to learn the slot order; hints follow reading order.
        slots = build_slots(self, _REFERENCE_FORMAT, ReadingDirection.LTR)
        object.__setattr__(self, "panel_count", len(slots))
        object.__setattr__(self, "hints", tuple(s.hint for s in slots))


@dataclass(frozen=True)
class Slot:
    """One built panel of a template: its polygon, hint and whether it overlays another panel."""

    shape: geo.Polygon
    hint: str
    overlay: bool = False


_REFERENCE_FORMAT = PageFormat(width=477, height=738, bleed=9, margin=27, gutter=12)


# --------------------------------------------------------------------------- validation


def _validate_node(node: Any, where: str) -> None:
    if isinstance(node, str):
        if node not in HINTS:
            raise LayoutError(f"{where}: unknown panel hint {node!r}; use one of {list(HINTS)}")
        return
    if isinstance(node, list):
        _validate_node({"cols": node}, where)
        return
    if not isinstance(node, dict):
        raise LayoutError(f"{where}: expected a hint string, a list or an object, got {type(node).__name__}")
    if "inset" in node:
        extra = set(node) - {"inset", "base", "corner", "size"}
        if extra:
            raise LayoutError(f"{where}: unknown key(s) {sorted(extra)} in an inset node")
        _validate_node(node["inset"], f"{where}.inset")
        if not isinstance(node["inset"], str):
            raise LayoutError(f"{where}.inset: an inset is a single panel (a hint string)")
        _validate_node(node.get("base"), f"{where}.base")
        if node.get("corner", "bottom-right") not in _CORNERS:
            raise LayoutError(f"{where}.corner: {node.get('corner')!r} is not one of {list(_CORNERS)}")
        size = node.get("size", [0.4, 0.3])
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) and 0 < v < 1 for v in size)
        ):
            raise LayoutError(f"{where}.size: expected [width_fraction, height_fraction] between 0 and 1, got {size!r}")
        return
    keys = [k for k in ("rows", "cols") if k in node]
    if len(keys) != 1:
        raise LayoutError(f"{where}: a node needs exactly one of 'rows', 'cols' or 'inset'")
    extra = set(node) - {keys[0], "sizes", "slants"}
    if extra:
        raise LayoutError(f"{where}: unknown key(s) {sorted(extra)}")
    children = node[keys[0]]
    if not isinstance(children, list) or not children:
        raise LayoutError(f"{where}.{keys[0]}: expected a non-empty list")
    sizes = node.get("sizes", [1] * len(children))
    if (
        not isinstance(sizes, list)
        or len(sizes) != len(children)
        or not all(isinstance(s, (int, float)) and s > 0 for s in sizes)
    ):
        raise LayoutError(f"{where}.sizes: expected {len(children)} positive numbers, got {sizes!r}")
    slants = node.get("slants", [0] * (len(children) - 1))
    if (
        not isinstance(slants, list)
        or len(slants) != len(children) - 1
        or not all(isinstance(s, (int, float)) and -45 < s < 45 for s in slants)
    ):
        raise LayoutError(
            f"{where}.slants: expected {len(children) - 1} angles between -45 and 45 degrees, got {slants!r}"
        )
    for i, child in enumerate(children):
        _validate_node(child, f"{where}.{keys[0]}[{i}]")


# --------------------------------------------------------------------------- building


def _build_node(node: Any, region: geo.Polygon, gutter: float, out: list[Slot]) -> None:
    if isinstance(node, str):
        out.append(Slot(shape=region, hint=node))
        return
    if isinstance(node, list):
        node = {"cols": node}
    if "inset" in node:
        _build_inset(node, region, gutter, out)
        return
    axis = "rows" if "rows" in node else "cols"
    children = node[axis]
    sizes = [float(s) for s in node.get("sizes", [1] * len(children))]
    slants = [float(s) for s in node.get("slants", [0] * (len(children) - 1))]
    x0, y0, x1, y1 = geo.bounds(region)
    start, stop = (y0, y1) if axis == "rows" else (x0, x1)
    available = (stop - start) - gutter * (len(children) - 1)
    if available <= 0:
        raise LayoutError(f"{len(children)} {axis} do not fit in {stop - start:.1f} pt with a {gutter:.1f} pt gutter")
    remaining = region
    position = start
    total = sum(sizes)
    for i, child in enumerate(children[:-1]):
        position += available * sizes[i] / total
        centre = position + gutter / 2
        theta = math.radians(slants[i])
        if axis == "rows":
            normal = (-math.sin(theta), math.cos(theta))
            pivot = ((x0 + x1) / 2, centre)
        else:
            normal = (math.cos(theta), math.sin(theta))
            pivot = (centre, (y0 + y1) / 2)
        c = normal[0] * pivot[0] + normal[1] * pivot[1]
        piece, remaining = geo.cut_with_gutter(remaining, normal, c, gutter)
        if not piece or not remaining:
            raise LayoutError(f"cut {i} of {axis} leaves an empty panel (slant {slants[i]}° too steep?)")
        _build_node(child, piece, gutter, out)
        position += gutter
    _build_node(children[-1], remaining, gutter, out)


def _build_inset(node: dict[str, Any], region: geo.Polygon, gutter: float, out: list[Slot]) -> None:
    base_slots: list[Slot] = []
    _build_node(node["base"], region, gutter, base_slots)
    corner = node.get("corner", "bottom-right")
    fw, fh = node.get("size", [0.4, 0.3])
    rx0, ry0, rx1, ry1 = geo.bounds(region)
    probe = (rx0 if "left" in corner else rx1, ry0 if "top" in corner else ry1)
    # The inset sits in the base panel nearest to the region's corner.
    host = min(base_slots, key=lambda s: math.dist(probe, geo.centroid(s.shape)))
    hx0, hy0, hx1, hy1 = geo.bounds(host.shape)
    w, h = (hx1 - hx0) * fw, (hy1 - hy0) * fh
    x = hx0 + gutter if "left" in corner else hx1 - gutter - w
    y = hy0 + gutter if "top" in corner else hy1 - gutter - h
    inset = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if not geo.polygon_contains(host.shape, inset):
        raise LayoutError(f"inset at {corner} does not fit inside its host panel")
    out.extend(base_slots)
    out.append(Slot(shape=inset, hint=node["inset"], overlay=True))


def build_slots(template: Template, fmt: PageFormat, direction: ReadingDirection = ReadingDirection.LTR) -> list[Slot]:
    """The template's panels for ``fmt``, sorted in reading order for ``direction``."""
    rect = bleed_rect(fmt) if template.area == "bleed" else live_rect(fmt)
    x0, y0, x1, y1 = rect
    region = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    slots: list[Slot] = []
    try:
        _build_node(template.layout, region, fmt.gutter, slots)
    except LayoutError as exc:
        raise LayoutError(f"template {template.id!r} on a {fmt.width:.0f}×{fmt.height:.0f} pt page: {exc}") from exc
    if direction == ReadingDirection.RTL:
        slots = [Slot(geo.mirror_x(s.shape, fmt.width), s.hint, s.overlay) for s in slots]
    slots = [Slot(geo.canonical(s.shape), s.hint, s.overlay) for s in slots]
    panels = [Panel(shape=s.shape) for s in slots]
    ordered = assign_reading_order(panels, direction)
    rank = {p.id: p.order for p in ordered}
    return [s for _, s in sorted(zip((rank[p.id] for p in panels), slots, strict=True), key=lambda t: t[0])]


def apply_template(
    template_id: str, fmt: PageFormat, direction: ReadingDirection = ReadingDirection.LTR
) -> list[Panel]:
    """New panels (fresh ids, empty content) laid out by the template, ``order`` set for
    ``direction``. Overlay (inset) panels come after the panels they sit on, so drawing the list
    in order paints them on top."""
    return template_panels(get_template(template_id), fmt, direction)


def template_panels(
    template: Template, fmt: PageFormat, direction: ReadingDirection = ReadingDirection.LTR
) -> list[Panel]:
    """:func:`apply_template` for a :class:`Template` object (e.g. one loaded from a user folder)."""
    slots = build_slots(template, fmt, direction)
    panels = [Panel(shape=s.shape, order=i) for i, s in enumerate(slots)]
    overlay = {p.id for p, s in zip(panels, slots, strict=True) if s.overlay}
    return [p for p in panels if p.id not in overlay] + [p for p in panels if p.id in overlay]


# --------------------------------------------------------------------------- registry


def _parse_template(raw: Any, where: str) -> Template:
    if not isinstance(raw, dict):
        raise LayoutError(f"{where}: a template must be an object")
    tid, name = raw.get("id"), raw.get("name")
    if not isinstance(tid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", tid):
        raise LayoutError(f"{where}: 'id' must be lower-case letters, digits and dashes, got {tid!r}")
    if not isinstance(name, str) or not name:
        raise LayoutError(f"{where} ({tid}): missing 'name'")
    area = raw.get("area", "live")
    if area not in ("live", "bleed"):
        raise LayoutError(f"{where} ({tid}): 'area' must be 'live' or 'bleed', got {area!r}")
    if "layout" not in raw:
        raise LayoutError(f"{where} ({tid}): missing 'layout'")
    try:
        template = Template(
            id=tid,
            name=name,
            layout=raw["layout"],
            area=area,
            tags=tuple(raw.get("tags", ())),
            description=str(raw.get("description", "")),
        )
    except LayoutError as exc:
        raise LayoutError(f"{where}: {exc}") from exc
    declared = raw.get("panels")
    if declared is not None and declared != template.panel_count:
        raise LayoutError(f"{where} ({tid}): says {declared} panels but its layout builds {template.panel_count}")
    return template


def load_templates(folder: str | Path | None = None) -> dict[str, Template]:
    """Stored templates by id, from every ``*.json`` file in ``folder`` (default: the bundled
    ``comic_studio/resources/templates``), files in name order."""
    if folder is None:
        return dict(_bundled_templates())
    return _read_templates(Path(folder))


@lru_cache(maxsize=1)
def _bundled_templates() -> tuple[tuple[str, Template], ...]:
    from comic_studio.core.resources import resource

    return tuple(_read_templates(resource("templates")).items())


def _read_templates(folder: Path) -> dict[str, Template]:
    if not folder.is_dir():
        raise LayoutError(f"{folder}: template folder not found")
    templates: dict[str, Template] = {}
    for path in sorted(folder.glob("*.json")):
        items = read_json_list(path, "templates", "templates")
        for i, raw in enumerate(items):
            template = _parse_template(raw, f"{path}: templates[{i}]")
            if template.id in templates:
                raise LayoutError(f"{path}: templates[{i}]: duplicate template id {template.id!r}")
            templates[template.id] = template
    return templates


def rows_template_id(tiers: list[list[tuple[str, float]]]) -> str:
    """Id of an on-the-fly tier layout: ``[[("wide", 2), ("small", 1)], [("normal", 1)]]`` →
    ``"rows:w2+s1/n1"``."""
    parts = []
    for tier in tiers:
        parts.append("+".join(f"{hint[0]}{width:g}" for hint, width in tier))
    return "rows:" + "/".join(parts)


def _parse_rows_id(template_id: str) -> Template:
    body = template_id[len("rows:") :]
    tiers = []
    for tier_text in body.split("/"):
        tier = []
        for cell in tier_text.split("+"):
            m = re.fullmatch(r"([wns])(\d+(?:\.\d+)?)?", cell)
            if not m:
                raise LayoutError(f"template id {template_id!r}: bad panel {cell!r} (expected e.g. 'w2', 'n1', 's')")
            width = float(m.group(2) or 1)
            if width <= 0:
                raise LayoutError(f"template id {template_id!r}: panel {cell!r} needs a positive width")
            tier.append((_HINT_LETTERS[m.group(1)], width))
        tiers.append(tier)
    if not tiers or len(tiers) > 12 or any(len(t) > 8 for t in tiers):
        raise LayoutError(f"template id {template_id!r}: 1–12 tiers of 1–8 panels expected")
    layout = {
        "rows": [
            {"cols": [h for h, _ in tier], "sizes": [w for _, w in tier]} if len(tier) > 1 else tier[0][0]
            for tier in tiers
        ]
    }
    return Template(id=template_id, name=f"Tiers {body}", layout=layout, tags=("generated",))


def get_template(template_id: str) -> Template:
    if template_id.startswith("rows:"):
        return _parse_rows_id(template_id)
    templates = load_templates()
    if template_id not in templates:
        raise LayoutError(f"unknown template {template_id!r}; known templates: {', '.join(templates)}")
    return templates[template_id]
