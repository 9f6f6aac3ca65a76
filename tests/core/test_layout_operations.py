import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_layout_support import assert_valid_page

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import (
    apply_template,
    clamp_border_delta,
    delete_panel,
    find_shared_borders,
    geometry as geo,
    insert_panel,
    load_templates,
    merge_panels,
    move_border,
    page_format,
    split_panel,
)
from comic_studio.core.model import Balloon, Box, ReadingDirection

FMT = page_format("us-comic")
G = FMT.gutter


def by_order(panels):
    return sorted(panels, key=lambda p: p.order)


def snapshot(panels):
    return [p.model_dump() for p in panels]


@pytest.mark.parametrize(
    ("direction", "angle"), [("horizontal", None), ("vertical", None), ("diagonal", None), ("diagonal", 35.0)]
)
@pytest.mark.parametrize("template_id", ["splash", "diagonal", "diagonal-tiers", "manga-slant"])
def test_split_leaves_exactly_one_gutter(template_id, direction, angle):
    panels = apply_template(template_id, FMT)
    target = max(panels, key=lambda p: geo.area(p.shape))
    target = target.model_copy(update={"beat_id": "beat-1", "balloons": [Balloon(box=Box(x=50, y=50, w=20, h=10))]})
    panels = [target if p.id == target.id else p for p in panels]
    before = snapshot(panels)
    out = split_panel(panels, target.id, direction, 0.4, G, angle)
    assert snapshot(panels) == before  # input untouched
    assert len(out) == len(panels) + 1
    first = next(p for p in out if p.id == target.id)
    second = out[out.index(first) + 1]
    assert geo.polygon_distance(first.shape, second.shape) == pytest.approx(G, abs=1e-6)
    # The pieces plus the gutter strip make the original: no area is lost or invented.
    assert geo.area(first.shape) + geo.area(second.shape) < geo.area(target.shape)
    assert geo.polygon_contains(target.shape, first.shape) and geo.polygon_contains(target.shape, second.shape)
    assert first.beat_id == "beat-1" and len(first.balloons) == 1
    assert second.beat_id is None and second.balloons == [] and second.id != target.id
    if direction == "horizontal":
        assert geo.centroid(first.shape)[1] < geo.centroid(second.shape)[1]
    else:
        assert geo.centroid(first.shape)[0] < geo.centroid(second.shape)[0]
    assert_valid_page(out, FMT)


def test_split_rejects_bad_arguments():
    panels = apply_template("splash", FMT)
    with pytest.raises(LayoutError, match="ratio"):
        split_panel(panels, panels[0].id, "vertical", 1.5, G)
    with pytest.raises(LayoutError, match="direction"):
        split_panel(panels, panels[0].id, "sideways", 0.5, G)
    with pytest.raises(LayoutError, match="no panel with id 'nope'"):
        split_panel(panels, "nope", "vertical", 0.5, G)
    with pytest.raises(LayoutError, match="too small to split"):
        split_panel(panels, panels[0].id, "vertical", 0.01, G)


@pytest.mark.parametrize(("direction", "angle"), [("horizontal", None), ("vertical", None), ("diagonal", 62.0)])
def test_merge_then_split_round_trips(direction, angle):
    panels = apply_template("grid-2x2", FMT)
    original = by_order(panels)[1]
    split = split_panel(panels, original.id, direction, 0.5, G, angle)
    a = next(p for p in split if p.id == original.id)
    b = split[split.index(a) + 1]
    merged = merge_panels(split, a.id, b.id)
    again = next(p for p in merged if p.id == original.id)
    assert geo.area(again.shape) == pytest.approx(geo.area(original.shape), rel=1e-9)
    assert sorted(again.shape) == sorted(original.shape) or geo.overlap_area(
        again.shape, original.shape
    ) == pytest.approx(geo.area(original.shape))
    assert [p.id for p in by_order(merged)] == [p.id for p in by_order(panels)]


def test_merge_of_a_row_keeps_the_first_panels_content():
    panels = [p.model_copy(update={"beat_id": f"b{p.order}"}) for p in apply_template("grid-2x3", FMT)]
    tl, tr = by_order(panels)[:2]
    merged = merge_panels(panels, tr.id, tl.id)
    wide = next(p for p in merged if p.id == tr.id)
    assert wide.beat_id == tr.beat_id and len(merged) == 5
    assert geo.area(wide.shape) == pytest.approx(geo.area(tl.shape) + geo.area(tr.shape) + G * geo.bbox(tl.shape).h)
    assert_valid_page(merged, FMT)


def test_merge_refuses_non_neighbours_and_l_shapes():
    grid = by_order(apply_template("grid-2x2", FMT))
    with pytest.raises(LayoutError, match="not neighbours"):
        merge_panels(grid, grid[0].id, grid[3].id)
    with pytest.raises(LayoutError, match="itself"):
        merge_panels(grid, grid[0].id, grid[0].id)
    top, left, right = by_order(apply_template("big-top-2", FMT))
    with pytest.raises(LayoutError, match="convex"):
        merge_panels([top, left, right], top.id, left.id)


def test_borders_of_a_tier_layout():
    panels = apply_template("rows-1-2-1", FMT)
    borders = find_shared_borders(panels, G)
    assert sorted(b.orientation for b in borders) == ["horizontal", "horizontal", "vertical"]
    top = min((b for b in borders if b.orientation == "horizontal"), key=lambda b: b.offset)
    assert len(top.side_a) == 1 and len(top.side_b) == 2  # the wide tier over a pair
    assert abs(top.end[0] - top.start[0]) == pytest.approx(FMT.width - 2 * FMT.margin)


def test_move_border_keeps_the_gutter_and_clamps():
    panels = apply_template("rows-1-2-1", FMT)
    before = snapshot(panels)
    border = min(find_shared_borders(panels, G), key=lambda b: (b.orientation != "horizontal", b.offset))
    moved = move_border(panels, border, 40.0, FMT)
    assert snapshot(panels) == before
    old_top = next(p for p in panels if p.id == border.side_a[0][0])
    new_top = next(p for p in moved if p.id == border.side_a[0][0])
    assert geo.bbox(new_top.shape).h == pytest.approx(geo.bbox(old_top.shape).h + 40)
    assert len(find_shared_borders(moved, G, tol=1e-6)) == 3
    assert_valid_page(moved, FMT)
    # A huge drag stops where the panels below reach the minimum size.
    applied = clamp_border_delta(panels, border, 5000.0, FMT, min_size=36)
    assert 0 < applied < 5000
    squeezed = move_border(panels, border, 5000.0, FMT, min_size=36)
    below = [p for p in squeezed if p.id in {pid for pid, _ in border.side_b}]
    assert min(geo.min_width(p.shape) for p in below) == pytest.approx(36, abs=0.01)
    assert_valid_page(squeezed, FMT)


TEMPLATE_IDS = sorted(
    t.id for t in load_templates().values() if t.area == "live" and find_shared_borders(apply_template(t.id, FMT), G)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TEMPLATE_IDS),
    st.lists(st.tuples(st.integers(0, 20), st.floats(-400, 400, allow_nan=False)), min_size=1, max_size=4),
    st.sampled_from(list(ReadingDirection)),
)
def test_random_border_drags_keep_the_page_valid(template_id, drags, direction):
    fmt = page_format("manga-b5") if direction == ReadingDirection.RTL else FMT
    panels = apply_template(template_id, fmt, direction)
    for pick, delta in drags:
        before = snapshot(panels)
        borders = find_shared_borders(panels, fmt.gutter, tol=1e-6)
        if not borders:
            break
        border = borders[pick % len(borders)]
        moved = move_border(panels, border, delta, fmt, reading_direction=direction)
        assert snapshot(panels) == before
        assert_valid_page(moved, fmt)
        # Both sides of the dragged gutter moved together: its edges are still one gutter apart
        # and centred on the gutter's new line.
        applied = clamp_border_delta(panels, border, delta, fmt)
        shapes = {p.id: p.shape for p in moved}
        nx, ny = border.normal
        for side, sign in ((border.side_a, -1), (border.side_b, 1)):
            for pid, edge in side:
                for x, y in geo.edges(shapes[pid])[edge]:
                    assert nx * x + ny * y == pytest.approx(border.offset + applied + sign * fmt.gutter / 2, abs=1e-4)
        # Panels not lining the gutter are untouched.
        for p in panels:
            if p.id not in border.panel_ids:
                assert shapes[p.id] == p.shape
        panels = moved


def test_delete_with_and_without_fill():
    panels = by_order(apply_template("grid-2x2", FMT))
    gone = delete_panel(panels, panels[1].id)
    assert len(gone) == 3 and sorted(p.order for p in gone) == [0, 1, 2]
    filled = delete_panel(panels, panels[1].id, fill=True)
    grown = next(p for p in filled if geo.area(p.shape) > geo.area(panels[0].shape) + 1)
    assert geo.area(grown.shape) == pytest.approx(2 * geo.area(panels[0].shape) + G * geo.bbox(panels[0].shape).h)
    assert_valid_page(filled, FMT)


def test_insert_panel_modes():
    panels = apply_template("big-top-2", FMT)
    out, new_id = insert_panel(panels, FMT)
    assert len(out) == 4 and new_id in {p.id for p in out}
    assert_valid_page(out, FMT)
    rows, row_id = insert_panel(panels, FMT, mode="add-row")
    assert len(rows) == 4
    new = next(p for p in rows if p.id == row_id)
    box = geo.bbox(new.shape)
    assert box.w == pytest.approx(FMT.width - 2 * FMT.margin)
    assert box.y + box.h == pytest.approx(FMT.height - FMT.margin)
    assert new.order == 3
    assert_valid_page(rows, FMT)
    empty, first_id = insert_panel([], FMT)
    assert len(empty) == 1 and geo.area(empty[0].shape) == pytest.approx(
        (FMT.width - 2 * FMT.margin) * (FMT.height - 2 * FMT.margin)
    )
    with pytest.raises(LayoutError, match="insert mode"):
        insert_panel(panels, FMT, mode="sideways")


def test_add_row_refuses_when_panels_would_be_too_small():
    tiny = page_format("custom", width=160, height=160, margin=10, gutter=10)
    panels = apply_template("three-tier", tiny)
    with pytest.raises(LayoutError, match="no room for a new row"):
        insert_panel(panels, tiny, mode="add-row", min_size=36)


def test_operations_renumber_reading_order_for_rtl():
    panels = apply_template("grid-2x2", FMT, ReadingDirection.RTL)
    first = by_order(panels)[0]
    assert geo.centroid(first.shape)[0] > FMT.width / 2  # top-right is read first
    out = split_panel(panels, first.id, "vertical", 0.5, G, reading_direction=ReadingDirection.RTL)
    ordered = by_order(out)
    assert ordered[0].id != first.id and ordered[1].id == first.id  # the right half is read first
    assert math.isclose(geo.polygon_distance(ordered[0].shape, ordered[1].shape), G, abs_tol=1e-6)
