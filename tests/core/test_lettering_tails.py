"""Tails: target resolution, the 55 % tip rule, joins, and the thought trail."""

from __future__ import annotations

import math

import pytest

from comic_studio.core.lettering import balloon_geometry, panel_to_page
from comic_studio.core.lettering._geom import point_in_polygon
from comic_studio.core.lettering.tails import TIP_FRACTION, target_point
from comic_studio.core.model import (
    Balloon,
    BalloonKind,
    Box,
    CharacterPlacement,
    PageFormat,
    Panel,
    PanelResult,
    Project,
    TailTarget,
)

PROJECT = Project(page_format=PageFormat(width=612, height=792))
BOX = Box(x=60, y=40, w=120, h=70)


def make_panel(**kw) -> Panel:
    return Panel(shape=[(20, 20), (420, 20), (420, 320), (20, 320)], **kw)


def ellipse_edge(box: Box, target) -> tuple[float, float]:
    """Analytic point where the centre→target ray leaves the box's ellipse."""
    dx, dy = target[0] - box.cx, target[1] - box.cy
    t = 1 / math.hypot(dx / (box.w / 2), dy / (box.h / 2))
    return box.cx + t * dx, box.cy + t * dy


def tip_of(shape, box: Box):
    return max(shape, key=lambda p: math.hypot(p[0] - box.cx, p[1] - box.cy))


def test_panel_to_page_maps_the_bounding_box():
    panel = Panel(shape=[(100, 50), (300, 50), (250, 250), (100, 250)])
    assert panel_to_page(panel, (0, 0)) == (100, 50)
    assert panel_to_page(panel, (1, 1)) == (300, 250)
    assert panel_to_page(panel, (0.5, 0.25)) == (200, 100)


@pytest.mark.parametrize("head", [(0.75, 0.8), (0.1, 0.9), (0.9, 0.1), (0.5, 0.6)])
def test_tail_tip_stops_at_55_percent_of_the_gap_to_the_head(head):
    panel = make_panel(characters=[CharacterPlacement(character_id="ann", head=head)])
    balloon = Balloon(kind=BalloonKind.SPEECH, text="Hi", box=BOX, tail=TailTarget(character_id="ann"))
    g = balloon_geometry(balloon, panel, PROJECT)
    assert len(g.shapes) == 2
    body, tail = g.shapes
    target = panel_to_page(panel, head)
    edge = ellipse_edge(BOX, target)
    gap = math.dist(edge, target)
    tip = tip_of(tail, BOX)
    assert math.dist(edge, tip) == pytest.approx(0.55 * gap, abs=0.5)
    assert math.dist(tip, target) == pytest.approx(0.45 * gap, abs=0.5)
    # The base is rooted inside the body so the united fill hides the seam.
    assert point_in_polygon(tail[0], body) and point_in_polygon(tail[-1], body)
    base_width = math.dist(tail[0], tail[-1])
    assert 0.15 * min(BOX.w, BOX.h) <= base_width <= 0.2 * min(BOX.w, BOX.h)


def test_tail_is_slightly_curved_not_straight():
    panel = make_panel(characters=[CharacterPlacement(character_id="ann", head=(0.7, 0.9))])
    balloon = Balloon(kind=BalloonKind.SPEECH, text="Hi", box=BOX, tail=TailTarget(character_id="ann"))
    tail = balloon_geometry(balloon, panel, PROJECT).shapes[1]
    tip = tip_of(tail, BOX)
    i = tail.index(tip)
    side = tail[: i + 1]
    a, b = side[0], side[-1]
    # The largest deviation of one side from its chord is visible but small.
    dev = max(abs((b[0] - a[0]) * (a[1] - p[1]) - (a[0] - p[0]) * (b[1] - a[1])) / math.dist(a, b) for p in side)
    assert 0.5 < dev < 0.2 * math.dist(a, b)


def test_point_target_and_missing_targets():
    panel = make_panel()
    with_point = Balloon(kind=BalloonKind.SPEECH, box=BOX, tail=TailTarget(point=(300.0, 250.0)))
    assert target_point(with_point, panel) == (300.0, 250.0)
    assert len(balloon_geometry(with_point, panel, PROJECT).shapes) == 2
    off_panel = Balloon(kind=BalloonKind.SPEECH, box=BOX, tail=TailTarget(character_id="nobody"))
    assert target_point(off_panel, panel) is None
    assert len(balloon_geometry(off_panel, panel, PROJECT).shapes) == 1
    fallback = Balloon(kind=BalloonKind.SPEECH, box=BOX, tail=TailTarget(character_id="nobody", point=(5.0, 6.0)))
    assert target_point(fallback, panel) == (5.0, 6.0)
    inside = Balloon(kind=BalloonKind.SPEECH, box=BOX, tail=TailTarget(point=(BOX.cx + 5, BOX.cy)))
    assert len(balloon_geometry(inside, panel, PROJECT).shapes) == 1  # nowhere for a tail to go
    caption = Balloon(kind=BalloonKind.CAPTION, box=BOX, tail=TailTarget(point=(300.0, 250.0)))
    assert len(balloon_geometry(caption, panel, PROJECT).shapes) == 1


def test_head_reported_by_the_generated_image_is_used():
    result = PanelResult(
        asset="0" * 64,
        backend="storyboard",
        seed=1,
        created_at="now",
        heads=[CharacterPlacement(character_id="bob", head=(0.5, 0.5))],
    )
    panel = make_panel(results=[result])
    balloon = Balloon(kind=BalloonKind.SPEECH, box=BOX, tail=TailTarget(character_id="bob"))
    assert target_point(balloon, panel) == (220.0, 170.0)


def test_thought_trail_is_three_shrinking_bubbles_toward_the_head():
    panel = make_panel(characters=[CharacterPlacement(character_id="ann", head=(0.8, 0.85))])
    balloon = Balloon(kind=BalloonKind.THOUGHT, text="Hmm", box=BOX, tail=TailTarget(character_id="ann"))
    g = balloon_geometry(balloon, panel, PROJECT)
    body, *bubbles = g.shapes
    assert len(bubbles) == 3
    target = panel_to_page(panel, (0.8, 0.85))
    centres = [(sum(p[0] for p in b) / len(b), sum(p[1] for p in b) / len(b)) for b in bubbles]
    radii = [max(math.dist(c, p) for p in b) for c, b in zip(centres, bubbles)]
    assert radii[0] > radii[1] > radii[2] > 0
    dists = [math.dist(c, target) for c in centres]
    assert dists[0] > dists[1] > dists[2]  # marching toward the head
    for c in centres:
        assert not point_in_polygon(c, body)
    for (c1, r1), (c2, r2) in zip(zip(centres, radii), zip(centres[1:], radii[1:])):
        assert math.dist(c1, c2) > r1 + r2  # separate bubbles
    # None reaches farther than a speech tail's tip would.
    edge_to_target = min(math.dist(p, target) for p in body)
    assert dists[2] - radii[2] >= (1 - TIP_FRACTION) * edge_to_target - 1.0
