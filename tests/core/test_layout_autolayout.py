import random

import pytest
from test_layout_support import assert_valid_page

from comic_studio.core.errors import LayoutError
from comic_studio.core.layout import (
    apply_template,
    assign_beats_to_panels,
    auto_layout,
    auto_layout_story,
    bbox,
    get_template,
    page_format,
)
from comic_studio.core.model import Beat, Page, ReadingDirection, Scene, ShotType, Story

FMT = page_format("us-comic")
CLOSE = (ShotType.CLOSE_UP, ShotType.EXTREME_CLOSE_UP)


def generated_beats(seed: int, scenes: int = 3, per_scene: int = 10) -> list[tuple[str, Beat]]:
    """Scenes open on an establishing shot; the rest is a realistic mix of shots."""
    rng = random.Random(seed)
    mix = [
        ShotType.WIDE,
        ShotType.MEDIUM,
        ShotType.MEDIUM,
        ShotType.OVER_THE_SHOULDER,
        ShotType.CLOSE_UP,
        ShotType.CLOSE_UP,
        ShotType.EXTREME_CLOSE_UP,
        ShotType.ESTABLISHING,
    ]
    out = []
    for s in range(scenes):
        for k in range(per_scene):
            shot = ShotType.ESTABLISHING if k == 0 else rng.choice(mix)
            chars = rng.sample(["ana", "bo", "cy"], rng.randint(0, 3))
            out.append((f"scene-{s}", Beat(shot=shot, characters=chars, setting=f"place {s}", action=f"beat {s}.{k}")))
    return out


def check_pages(pages: list[Page], beats: list[tuple[str, Beat]], fmt=FMT) -> None:
    by_id = {b.id: (scene, b) for scene, b in beats}
    assigned = [p.beat_id for page in pages for p in page.panels_in_order()]
    # Every beat exactly once, in story order.
    assert assigned == [b.id for _, b in beats]
    starts = {b.id for k, (scene, b) in enumerate(beats) if k == 0 or beats[k - 1][0] != scene}
    for page in pages:
        panels = page.panels_in_order()
        splash = len(panels) == 1 and panels[0].beat_id in starts and panels[0].shot == ShotType.ESTABLISHING
        assert 3 <= len(panels) <= 6 or splash, [p.shot for p in panels]
        assert_valid_page(page.panels, fmt, bleed=get_template(page.template_id).area == "bleed")
        for k, panel in enumerate(panels):
            _, beat = by_id[panel.beat_id]
            assert panel.shot == beat.shot and panel.setting == beat.setting
            assert [c.character_id for c in panel.characters] == beat.characters
            # Scene starts honoured: a scene may only start mid-page while the page is at most half full.
            if panel.beat_id in starts and k > 0:
                assert k <= len(panels) / 2
        widths = [(p.shot, bbox(p.shape).w) for p in panels]
        establishing = [w for s, w in widths if s == ShotType.ESTABLISHING]
        close = [w for s, w in widths if s in CLOSE]
        if establishing and close:
            assert min(establishing) > max(close)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_thirty_beats_in_three_scenes(seed):
    beats = generated_beats(seed)
    pages = auto_layout(beats, FMT)
    check_pages(pages, beats)
    # Across the whole book, too: establishing panels are wider than close-up panels.
    panels = [p for page in pages for p in page.panels]
    est = [bbox(p.shape).w for p in panels if p.shot == ShotType.ESTABLISHING]
    close = [bbox(p.shape).w for p in panels if p.shot in CLOSE]
    assert min(est) > max(close)
    # Stored templates do most of the work; generated tiers only fill the gaps.
    assert sum(not page.template_id.startswith("rows:") for page in pages) >= len(pages) / 2


def test_scene_starts_open_pages_when_the_page_is_half_full():
    beats = (
        [("a", Beat(shot=ShotType.MEDIUM)) for _ in range(4)]
        + [("b", Beat(shot=ShotType.ESTABLISHING))]
        + [("b", Beat(shot=ShotType.MEDIUM)) for _ in range(4)]
    )
    pages = auto_layout(beats, FMT)
    check_pages(pages, beats)
    assert pages[1].panels_in_order()[0].beat_id == beats[4][1].id


def test_deterministic_and_rtl():
    beats = generated_beats(7)
    first = auto_layout(beats, FMT)
    second = auto_layout(beats, FMT)
    assert [(p.template_id, [(q.beat_id, q.shape) for q in p.panels]) for p in first] == [
        (p.template_id, [(q.beat_id, q.shape) for q in p.panels]) for p in second
    ]
    fmt = page_format("manga-b5")
    rtl = auto_layout(beats, fmt, ReadingDirection.RTL)
    check_pages(rtl, beats, fmt)
    first_panel = rtl[0].panels_in_order()[1]
    assert bbox(first_panel.shape).x + bbox(first_panel.shape).w > fmt.width / 2  # reads from the right


def test_plain_beats_and_story_entry_points():
    beats = [Beat(shot=s) for s in [ShotType.ESTABLISHING, ShotType.MEDIUM, ShotType.CLOSE_UP, ShotType.MEDIUM]]
    pages = auto_layout(beats, FMT)
    assert [p.beat_id for page in pages for p in page.panels_in_order()] == [b.id for b in beats]
    story = Story(scenes=[Scene(beats=beats[:2]), Scene(beats=beats[2:])])
    assert [p.beat_id for page in auto_layout_story(story, FMT) for p in page.panels_in_order()] == [
        b.id for b in beats
    ]
    scenes = [Scene(beats=[Beat(shot=ShotType.ESTABLISHING)] + [Beat() for _ in range(3)]) for _ in range(2)]
    pages = auto_layout(scenes, FMT)
    assert [p.beat_id for page in pages for p in page.panels_in_order()] == [b.id for s in scenes for b in s.beats]
    assert pages[1].panels_in_order()[0].beat_id == scenes[1].beats[0].id  # the second scene opens a page
    assert auto_layout([], FMT) == []
    with pytest.raises(LayoutError, match="appears twice"):
        auto_layout([beats[0], beats[0]], FMT)
    with pytest.raises(LayoutError, match="scene_ids has 1 entries for 4 beats"):
        auto_layout(beats, FMT, scene_ids=["x"])
    with pytest.raises(LayoutError, match=r"beats\[0\]: expected a Beat"):
        auto_layout(["not a beat"], FMT)


def test_a_long_scene_can_open_on_a_splash():
    beats = [("s", Beat(shot=ShotType.ESTABLISHING))] + [("s", Beat(shot=ShotType.CLOSE_UP)) for _ in range(6)]
    templates = {"splash": get_template("splash"), "grid-2x3": get_template("grid-2x3")}
    pages = auto_layout(beats, FMT, templates=templates)
    check_pages(pages, beats)
    assert pages[0].template_id == "splash" and len(pages[0].panels) == 1


def test_assign_beats_to_selected_panels():
    panels = apply_template("big-top-2", FMT)
    panels = list(reversed(panels))  # list order differs from reading order
    beats = [Beat(shot=ShotType.ESTABLISHING, characters=["ana", "bo"]), Beat(shot=ShotType.CLOSE_UP)]
    out = assign_beats_to_panels(panels, beats)
    ordered = sorted(out, key=lambda p: p.order)
    assert [p.beat_id for p in ordered] == [beats[0].id, beats[1].id, None]
    assert [c.character_id for c in ordered[0].characters] == ["ana", "bo"]
    assert [c.figure for c in ordered[0].characters] == [0, 1]
    assert all(p.beat_id is None for p in panels)  # input untouched
    with pytest.raises(LayoutError, match="4 beats cannot go into 3 selected panels"):
        assign_beats_to_panels(panels, beats * 2)
    partial = assign_beats_to_panels(panels, [Beat(), Beat(), Beat(), Beat()], allow_unassigned=True)
    assert all(p.beat_id for p in partial)


def test_thousand_beats_are_laid_out_in_order():
    # Its speed is measured by ``bench/run.py --only autolayout``.
    beats = generated_beats(11, scenes=50, per_scene=20)
    pages = auto_layout(beats, FMT)
    assert [p.beat_id for page in pages for p in page.panels_in_order()] == [b.id for _, b in beats]
