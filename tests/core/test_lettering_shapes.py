"""Balloon bodies per kind, colours and the assembled geometry."""

from __future__ import annotations

import math

import pytest

from comic_studio.core.lettering import CAPTION_FILL, balloon_geometry
from comic_studio.core.lettering.shapes import burst, cloud, ellipse
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, PageFormat, Panel, Project

PROJECT = Project(page_format=PageFormat(width=612, height=792))
PANEL = Panel(shape=[(20, 20), (420, 20), (420, 320), (20, 320)])
BOX = Box(x=60, y=50, w=140, h=80)


def signed_area(poly) -> float:
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]))


def geometry(kind: BalloonKind, text: str = "Hello there!", **style):
    balloon = Balloon(id="b1", kind=kind, text=text, box=BOX, style=BalloonStyle(**style))
    return balloon_geometry(balloon, PANEL, PROJECT)


@pytest.mark.parametrize(
    "kind", [BalloonKind.SPEECH, BalloonKind.THOUGHT, BalloonKind.SHOUT, BalloonKind.WHISPER, BalloonKind.CAPTION]
)
def test_body_is_a_closed_outline_inside_its_box(kind):
    g = geometry(kind)
    assert len(g.shapes) == 1  # no tail target → body only
    body = list(g.shapes[0])
    assert len(body) >= 4
    assert body[0] != body[-1]  # closed implicitly; the first point is not repeated
    assert abs(signed_area(body)) > 0.3 * BOX.w * BOX.h  # a real area, not a degenerate sliver
    for x, y in body:
        assert BOX.x - 0.01 <= x <= BOX.x + BOX.w + 0.01
        assert BOX.y - 0.01 <= y <= BOX.y + BOX.h + 0.01


def test_speech_is_a_smooth_ellipse_touching_the_box():
    body = geometry(BalloonKind.SPEECH).shapes[0]
    assert len(body) == 72
    for x, y in body:
        assert ((x - BOX.cx) / (BOX.w / 2)) ** 2 + ((y - BOX.cy) / (BOX.h / 2)) ** 2 == pytest.approx(1.0)
    xs = [p[0] for p in body]
    assert min(xs) == pytest.approx(BOX.x) and max(xs) == pytest.approx(BOX.x + BOX.w)


def test_thought_cloud_is_scalloped():
    body = cloud(BOX)
    # Normalised radius around the centre goes up and down once per bump.
    r = [math.hypot((x - BOX.cx) / BOX.w, (y - BOX.cy) / BOX.h) for x, y in body]
    minima = sum(1 for i in range(len(r)) if r[i] < r[i - 1] and r[i] <= r[(i + 1) % len(r)])
    assert minima >= 8
    assert max(r) > min(r) + 0.04


def test_shout_burst_is_jagged_and_seeded_by_id():
    a1, a2, b = burst(BOX, "alpha"), burst(BOX, "alpha"), burst(BOX, "beta")
    assert a1 == a2
    assert a1 != b
    r = [math.hypot((x - BOX.cx) / (BOX.w / 2), (y - BOX.cy) / (BOX.h / 2)) for x, y in a1]
    outer, inner = r[0::2], r[1::2]
    assert min(outer) > max(inner)  # spikes and notches alternate
    assert max(r) <= 1.0 + 1e-9
    assert len(set(round(v, 6) for v in outer)) > 1  # irregular, not a regular star


def test_kind_specific_styles():
    assert geometry(BalloonKind.WHISPER).dashed
    assert not geometry(BalloonKind.SPEECH).dashed
    assert geometry(BalloonKind.SPEECH).fill == "#ffffff"
    assert geometry(BalloonKind.CAPTION).fill == CAPTION_FILL
    assert geometry(BalloonKind.CAPTION, fill="#112233").fill == "#112233"  # a chosen fill wins
    caption = geometry(BalloonKind.CAPTION).shapes[0]
    assert caption == ((BOX.x, BOX.y), (BOX.x + BOX.w, BOX.y), (BOX.x + BOX.w, BOX.y + BOX.h), (BOX.x, BOX.y + BOX.h))
    assert geometry(BalloonKind.SPEECH).text_outline == 0


def test_sfx_is_big_bold_outlined_text_without_a_shape():
    g = geometry(BalloonKind.SFX, text="BLAM", font="ComicNeue-Regular")
    assert g.shapes == ()
    assert g.fill is None
    assert g.text_outline > 0
    assert g.font_file.name == "ComicNeue-Bold.ttf"
    assert g.font_size > 12  # grows past the dialogue maximum to fill its box
    assert g.fits


def test_geometry_is_reproducible_and_text_unchanged():
    a, b = geometry(BalloonKind.SHOUT, "Look out!"), geometry(BalloonKind.SHOUT, "Look out!")
    assert a == b
    assert " ".join(line.text for line in a.lines) == "Look out!"  # rendered as written


def test_unknown_font_falls_back_to_the_bundled_default(caplog):
    g = geometry(BalloonKind.SPEECH, font="/etc/passwd")
    assert g.font_file.name == "ComicNeue-Bold.ttf"
    assert "not a bundled font" in caplog.text


def test_ellipse_point_count_parameter():
    assert len(ellipse(BOX, 12)) == 12


@pytest.mark.parametrize("size", [(0, 0), (1, 1), (4, 200), (300, 2)])
@pytest.mark.parametrize("kind", list(BalloonKind))
def test_collapsed_boxes_do_not_crash(kind, size):
    from comic_studio.core.model import TailTarget

    box = Box(x=10, y=10, w=size[0], h=size[1])
    balloon = Balloon(kind=kind, text="Hello world", box=box, tail=TailTarget(point=(300.0, 300.0)))
    g = balloon_geometry(balloon, PANEL, PROJECT)
    assert g.font_size >= 6.5
    assert len(g.shapes) <= 1 or min(size) >= 2


def test_non_finite_numbers_are_named_in_the_error():
    from comic_studio.core.errors import LayoutError
    from comic_studio.core.model import TailTarget

    with pytest.raises(LayoutError, match=r"box\.w is inf"):
        balloon_geometry(Balloon(id="bad", box=Box(x=0, y=0, w=float("inf"), h=5)), PANEL, PROJECT)
    balloon = Balloon(id="bad", box=BOX, tail=TailTarget(point=(float("nan"), 3.0)))
    with pytest.raises(LayoutError, match="'bad': tail.point"):
        balloon_geometry(balloon, PANEL, PROJECT)
