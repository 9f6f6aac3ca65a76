import json

import pytest

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import inch, load_presets, mm, page_format, to_inch, to_mm
from comic_studio.core.model import ReadingDirection


def test_bundled_presets_have_the_documented_sizes():
    presets = load_presets()
    assert {"us-comic", "manga-b5", "manga-b5-bleed5", "a4", "webtoon", "us-letter", "custom"} <= set(presets)
    us = presets["us-comic"].format
    assert (us.width, us.height, us.bleed) == pytest.approx((477.0, 738.0, 9.0))
    b5 = presets["manga-b5"].format
    assert to_mm(b5.width) == pytest.approx(182) and to_mm(b5.height) == pytest.approx(257)
    assert to_mm(b5.bleed) == pytest.approx(3)
    assert to_mm(presets["manga-b5-bleed5"].format.bleed) == pytest.approx(5)
    assert presets["manga-b5"].reading_direction == ReadingDirection.RTL
    a4 = presets["a4"].format
    assert (to_mm(a4.width), to_mm(a4.height), to_mm(a4.bleed)) == pytest.approx((210, 297, 3))
    web = presets["webtoon"].format
    assert (web.width, web.height, web.bleed, web.dpi) == (800, 12800, 0, 72)
    assert to_inch(presets["us-letter"].format.width) == pytest.approx(8.5)
    for preset in presets.values():
        live = preset.format.live_box()
        assert live.w > 0 and live.h > 0


def test_unit_helpers_round_trip():
    assert inch(1) == 72 and mm(25.4) == pytest.approx(72)
    assert to_mm(mm(182)) == pytest.approx(182) and to_inch(inch(6.625)) == pytest.approx(6.625)


def test_page_format_overrides_and_errors():
    fmt = page_format("custom", width=inch(7), height=inch(10), gutter=6)
    assert (fmt.width, fmt.height, fmt.gutter, fmt.preset) == (504, 720, 6, "custom")
    with pytest.raises(LayoutError, match="unknown page preset 'tabloid'.*us-comic"):
        page_format("tabloid")
    with pytest.raises(LayoutError, match="unknown field"):
        page_format("a4", colour="red")
    with pytest.raises(LayoutError, match="width"):
        page_format("a4", width=-5)
    with pytest.raises(LayoutError, match="no live area"):
        page_format("a4", margin=400)


def test_broken_preset_file_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "presets.json"
    bad.write_text("{ not json")
    with pytest.raises(LayoutError, match="presets.json: not valid JSON"):
        load_presets(bad)
    bad.write_text(json.dumps({"presets": [{"id": "x", "unit": "furlong", "width": 1, "height": 1}]}))
    with pytest.raises(LayoutError, match="preset 'x'.*unknown unit 'furlong'"):
        load_presets(bad)
    bad.write_text(json.dumps({"presets": [{"id": "x", "unit": "mm", "width": "wide", "height": 1}]}))
    with pytest.raises(LayoutError, match="'width' must be a number"):
        load_presets(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"presets": [{"id": "tiny", "unit": "mm", "width": 100, "height": 150, "margin": 5}]}))
    assert to_mm(load_presets(good)["tiny"].format.width) == pytest.approx(100)
