import json

import pytest
from test_layout_support import assert_valid_page, overlay_ids

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import (
    apply_template,
    bbox,
    build_slots,
    geometry as geo,
    get_template,
    load_templates,
    page_format,
    rows_template_id,
)
from comic_studio.core.model import ReadingDirection

TEMPLATES = load_templates()
FORMATS = {name: page_format(name) for name in ("us-comic", "manga-b5", "a4", "us-letter")}

REQUIRED = {
    "grid-2x2",
    "grid-2x3",
    "grid-3x3",
    "rows-1-2",
    "rows-2-1",
    "rows-1-2-1",
    "rows-2-1-2",
    "splash",
    "splash-bleed",
    "three-tier",
    "inset",
    "diagonal",
}


def test_the_catalogue_covers_the_required_kinds():
    ids = set(TEMPLATES)
    assert REQUIRED - {"rows-1-2"} <= ids
    assert "big-top-2" in ids  # the [1, 2] tiers
    assert len([t for t in TEMPLATES.values() if "manga" in t.tags]) >= 3
    for count in range(1, 7):
        assert any(t.panel_count == count for t in TEMPLATES.values()), count


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
@pytest.mark.parametrize("fmt_name", sorted(FORMATS))
@pytest.mark.parametrize("direction", list(ReadingDirection))
def test_every_template_builds_a_valid_page(template_id, fmt_name, direction):
    fmt = FORMATS[fmt_name]
    template = TEMPLATES[template_id]
    panels = apply_template(template_id, fmt, direction)
    assert len(panels) == template.panel_count
    assert_valid_page(panels, fmt, bleed=template.area == "bleed")
    if template.area == "bleed":
        assert geo.bounds(panels[0].shape) == pytest.approx(
            (-fmt.bleed, -fmt.bleed, fmt.width + fmt.bleed, fmt.height + fmt.bleed)
        )
    # Insets are listed after the panel they cover, so painting in list order shows them.
    overlays = overlay_ids(panels)
    assert all(p.id in overlays for p in panels[len(panels) - len(overlays) :])


def test_inset_and_diagonal_have_their_shape():
    fmt = FORMATS["us-comic"]
    big, small = apply_template("inset", fmt)
    assert geo.polygon_contains(big.shape, small.shape)
    assert geo.area(small.shape) < 0.2 * geo.area(big.shape)
    left, right = sorted(apply_template("diagonal", fmt), key=lambda p: p.order)
    slanted = [(a, b) for a, b in geo.edges(left.shape) if abs(a[0] - b[0]) > 1 and abs(a[1] - b[1]) > 1]
    assert len(slanted) == 1  # one slanted gutter edge
    assert geo.polygon_distance(left.shape, right.shape) == pytest.approx(fmt.gutter, abs=1e-4)


def test_declared_hints_match_the_geometry():
    """Slots hinted 'wide' are wider than the 'small' ones of the same template."""
    fmt = FORMATS["us-comic"]
    for template in TEMPLATES.values():
        slots = build_slots(template, fmt)
        widths = {hint: [bbox(s.shape).w for s in slots if s.hint == hint] for hint in ("wide", "small")}
        if widths["wide"] and widths["small"]:
            assert min(widths["wide"]) > max(widths["small"]), template.id


def test_rtl_pages_are_mirrors_of_ltr_pages():
    fmt = FORMATS["manga-b5"]
    for template_id in TEMPLATES:
        ltr = sorted(apply_template(template_id, fmt), key=lambda p: p.order)
        rtl = sorted(apply_template(template_id, fmt, ReadingDirection.RTL), key=lambda p: p.order)
        for a, b in zip(ltr, rtl, strict=True):
            expected = [c for pt in sorted(geo.mirror_x(a.shape, fmt.width)) for c in pt]
            assert [c for pt in sorted(b.shape) for c in pt] == pytest.approx(expected, abs=1e-5)


def test_generated_tier_ids_round_trip():
    tid = rows_template_id([[("wide", 2), ("small", 1)], [("normal", 1), ("normal", 1)]])
    assert tid == "rows:w2+s1/n1+n1"
    template = get_template(tid)
    assert template.hints == ("wide", "small", "normal", "normal")
    panels = apply_template(tid, FORMATS["a4"])
    assert_valid_page(panels, FORMATS["a4"])
    first = min(panels, key=lambda p: p.order)
    live_w = FORMATS["a4"].width - 2 * FORMATS["a4"].margin
    assert bbox(first.shape).w == pytest.approx((live_w - FORMATS["a4"].gutter) * 2 / 3)
    with pytest.raises(LayoutError, match="bad panel 'x3'"):
        get_template("rows:w1/x3")


def test_unknown_template_lists_known_ones():
    with pytest.raises(LayoutError, match="unknown template 'nope'.*grid-2x2"):
        apply_template("nope", FORMATS["us-comic"])


def _write(tmp_path, templates):
    (tmp_path / "mine.json").write_text(json.dumps({"templates": templates}))
    return tmp_path


def test_user_template_folder_is_validated(tmp_path):
    folder = _write(
        tmp_path, [{"id": "two", "name": "Two", "panels": 2, "layout": {"cols": ["wide", "small"], "sizes": [2, 1]}}]
    )
    assert load_templates(folder)["two"].hints == ("wide", "small")
    bad_cases = [
        ({"id": "x", "name": "X", "layout": "huge"}, "unknown panel hint 'huge'"),
        ({"id": "x", "name": "X", "panels": 3, "layout": ["wide", "wide"]}, "says 3 panels but its layout builds 2"),
        ({"id": "x", "name": "X", "layout": {"rows": ["wide"], "cols": ["wide"]}}, "exactly one of"),
        ({"id": "x", "name": "X", "layout": {"rows": ["wide", "wide"], "sizes": [1]}}, "sizes: expected 2 positive"),
        ({"id": "x", "name": "X", "layout": {"cols": ["wide", "wide"], "slants": [60]}}, "slants"),
        ({"id": "X Y", "name": "X", "layout": "wide"}, "'id' must be lower-case"),
        ({"id": "x", "name": "X", "layout": {"inset": "small", "base": "wide", "corner": "middle"}}, "corner"),
    ]
    for raw, message in bad_cases:
        folder = _write(tmp_path, [raw])
        with pytest.raises(LayoutError, match=message) as info:
            load_templates(folder)
        assert "mine.json" in str(info.value)


def test_too_many_panels_for_the_page_is_an_error():
    tiny = page_format("custom", width=100, height=100, margin=10, gutter=40)
    with pytest.raises(LayoutError, match="grid-3x3"):
        apply_template("grid-3x3", tiny)
