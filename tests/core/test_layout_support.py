"""Shared checks for the layout tests (no tests of its own; named test_layout_* to stay inside the
layout engine's files)."""

from __future__ import annotations

from collections.abc import Sequence

from comic_studio.core.layout import geometry as geo
from comic_studio.core.layout.presets import bleed_rect, live_rect
from comic_studio.core.model import PageFormat, Panel

EPS = 1e-3


def overlay_ids(panels: Sequence[Panel]) -> set[str]:
    """Panels lying inside another panel (insets)."""
    out = set()
    for p in panels:
        for q in panels:
            if p.id != q.id and geo.area(q.shape) > geo.area(p.shape) and geo.polygon_contains(q.shape, p.shape):
                out.add(p.id)
    return out


def assert_valid_page(panels: Sequence[Panel], fmt: PageFormat, bleed: bool = False) -> None:
    """Convex panels inside the live area (bleed box if ``bleed``), a gutter apart, not
    overlapping (insets excepted: they sit inside their host, a gutter in from its outline),
    reading order a permutation."""
    rect = bleed_rect(fmt) if bleed else live_rect(fmt)
    assert sorted(p.order for p in panels) == list(range(len(panels)))
    overlays = overlay_ids(panels)
    for p in panels:
        assert geo.is_convex(p.shape), p.shape
        assert geo.rect_contains(rect, p.shape, tol=EPS), (p.shape, rect)
        assert geo.min_width(p.shape) > 1.0
    for i, p in enumerate(panels):
        for q in panels[i + 1 :]:
            if p.id in overlays or q.id in overlays:
                inner, outer = (p, q) if p.id in overlays else (q, p)
                if geo.polygon_contains(outer.shape, inner.shape):
                    gap = min(
                        geo.point_segment_distance(v, a, b) for v in inner.shape for a, b in geo.edges(outer.shape)
                    )
                    assert gap >= fmt.gutter - EPS
                    continue
            assert geo.overlap_area(p.shape, q.shape) < EPS, (p.shape, q.shape)
            assert geo.polygon_distance(p.shape, q.shape) >= fmt.gutter - EPS, (p.shape, q.shape)
