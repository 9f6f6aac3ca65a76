"""Storyboard renders: determinism, framing by shot, figures inside their reported boxes, heads."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.backends.storyboard.setting import classify_setting
from comic_studio.core.model import ShotType
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    PoseSpec,
    RequestCharacter,
    RequestFigure,
)
from comic_studio.poses.staging.figures import fallback_pose, standing_figure

RED = RequestCharacter(id="red", name="Rosa", colour="#cc2222")
GREEN = RequestCharacter(id="green", name="Gus", colour="#22aa22")
BLUE = RequestCharacter(id="blue", name="Bea", colour="#2244cc")
ALL_SHOTS = list(ShotType)


def render(**kw):
    """Render with the fast word-overlap pose matcher (the MiniLM path has its own test)."""
    kw.setdefault("width", 300)
    kw.setdefault("height", 200)
    kw["backend_settings"] = {"pose_matching": "overlap", **kw.get("backend_settings", {})}
    return StoryboardBackend().generate(GenerationRequest(**kw))


def colour_mask(img: Image.Image, which: str) -> np.ndarray:
    """Pixels clearly of one character's hue (fill, outline or their antialiased edges)."""
    a = np.asarray(img).astype(int)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    if which == "red":
        return (r - np.maximum(g, b)) > 40
    if which == "green":
        return (g - np.maximum(r, b)) > 40
    return (b - np.maximum(r, g)) > 40


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    kw = dict(shot=ShotType.WIDE, characters=[RED, GREEN], setting="street", action="talk", seed=11)
    a, b = render(**kw), render(**kw)
    assert a.images[0].tobytes() == b.images[0].tobytes()
    assert a.heads == b.heads and a.pose_id == b.pose_id
    c = render(**{**kw, "seed": 12})
    assert c.images[0].tobytes() != a.images[0].tobytes()


@pytest.mark.parametrize("shot", ALL_SHOTS)
@pytest.mark.parametrize("chars", [[RED], [RED, GREEN], [RED, GREEN, BLUE]], ids=["1", "2", "3"])
def test_figures_stay_inside_their_reported_boxes(shot, chars):
    res = render(shot=shot, characters=chars, setting="kitchen", action="talk", seed=4,
                 backend_settings={"name_tags": False, "label": False})  # fmt: skip
    img = res.images[0]
    assert img.size == (300, 200)
    assert [p.character_id for p in res.heads] == [c.id for c in chars]
    h, w = img.height, img.width
    seen_any = False
    for c, placement in zip(chars, res.heads):
        mask = colour_mask(img, c.id)
        if placement.body is None:
            assert not mask.any(), f"{c.id} is off-panel but has pixels"
            continue
        b = placement.body
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= 1 + 1e-9 and b.y + b.h <= 1 + 1e-9
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        seen_any = True
        m = 3  # pixels: antialiasing spills a little past the geometric outline
        assert xs.min() >= b.x * w - m and xs.max() <= (b.x + b.w) * w + m, f"{c.id} outside its box in x"
        assert ys.min() >= b.y * h - m and ys.max() <= (b.y + b.h) * h + m, f"{c.id} outside its box in y"
        hx, hy = placement.head
        assert 0 <= hx <= 1 and 0 <= hy <= 1
    assert seen_any, "no figure was drawn at all"
    # The camera favours the first character: its head is in frame with a real radius.
    assert res.heads[0].head_radius > 0


def test_full_figures_are_inside_the_panel_in_wide_shots():
    for shot in (ShotType.WIDE, ShotType.ESTABLISHING):
        res = render(shot=shot, characters=[RED, GREEN, BLUE], setting="park", seed=2,
                     backend_settings={"name_tags": False})  # fmt: skip
        for p in res.heads:
            b = p.body
            assert b is not None and b.x > 0 and b.y > 0 and b.x + b.w < 1 and b.y + b.h < 1, (shot, p)


def test_close_up_heads_are_bigger_than_wide_heads():
    radius = {}
    for shot in ALL_SHOTS:
        res = render(shot=shot, characters=[RED], setting="office", seed=1)
        radius[shot] = res.heads[0].head_radius
    assert radius[ShotType.EXTREME_CLOSE_UP] > radius[ShotType.CLOSE_UP] > radius[ShotType.MEDIUM]
    assert radius[ShotType.MEDIUM] > radius[ShotType.WIDE] > radius[ShotType.ESTABLISHING] > 0
    # An extreme close-up is one face filling the frame.
    assert radius[ShotType.EXTREME_CLOSE_UP] > 0.4


def test_head_position_matches_the_drawn_head():
    res = render(shot=ShotType.CLOSE_UP, characters=[RED], seed=3, backend_settings={"name_tags": False})
    mask = colour_mask(res.images[0], "red")
    hx, hy = res.heads[0].head
    r = res.heads[0].head_radius * 200
    x, y = round(hx * 300), round(hy * 200)
    assert mask[y, x], "head centre is not on the red figure"
    assert mask[max(0, round(y - 0.8 * r)), x], "head top not where the radius says"


def test_more_characters_than_figures_adds_bystanders():
    # The library's largest entries have 4 figures: a fifth character gets a bystander figure.
    five = [RED, GREEN, BLUE] + [RequestCharacter(id=c, name=c.title(), colour="#999999") for c in ("dee", "eli")]
    res = render(shot=ShotType.WIDE, characters=five, seed=0)
    assert res.pose_id is not None and "-4p" in res.pose_id
    assert len(res.heads) == 5
    assert len({p.figure for p in res.heads}) == 5
    assert all(p.head_radius > 0 and p.body is not None for p in res.heads)


def test_explicit_figure_assignment_is_respected():
    pose = PoseSpec.from_entry(fallback_pose(2))
    a = RED.model_copy(update={"figure": 1})
    b = GREEN.model_copy(update={"figure": 0})
    res = render(shot=ShotType.WIDE, characters=[a, b], figures_override=pose, seed=0)
    assert [p.figure for p in res.heads] == [1, 0]
    # Figure 0 stands left in the fallback pose, so Gus (green) is now on the left.
    assert res.heads[1].head[0] < res.heads[0].head[0]


def test_framed_override_draws_figures_where_the_user_put_them():
    fig = standing_figure(0.3 * 1.5, 0.95, 0.8, 0.0)  # x in height units; panel aspect 1.5
    kps = [(x / 1.5, y, v) for x, y, v in fig.keypoints]
    spec = PoseSpec(figures=[RequestFigure(keypoints=kps)], aspect=1.5, framed=True)
    res = render(characters=[RED], figures_override=spec, seed=0)
    hx, hy = res.heads[0].head
    nose_x, nose_y = kps[0][0], kps[0][1]
    assert abs(hx - nose_x) < 0.03 and abs(hy - nose_y) < 0.05


def test_establishing_without_characters_draws_the_place_only():
    res = render(shot=ShotType.ESTABLISHING, characters=[], setting="harbour", time_of_day="dusk", seed=0)
    assert res.heads == [] and res.pose_id is None
    a = np.asarray(res.images[0]).astype(int)
    assert a.std() > 3, "an empty establishing panel still shows the environment"


def test_night_is_darker_and_figures_stay_light():
    day = render(shot=ShotType.WIDE, characters=[RED], setting="street", time_of_day="noon", seed=0)
    night = render(shot=ShotType.WIDE, characters=[RED], setting="street", time_of_day="at night", seed=0)
    d, n = np.asarray(day.images[0]).mean(), np.asarray(night.images[0]).mean()
    assert n < d - 60
    mask = colour_mask(night.images[0], "red")
    fill = np.asarray(night.images[0])[mask]
    assert fill.mean() > np.asarray(night.images[0]).mean(), "figures read lighter than the night"


def test_name_tags_and_label_are_drawn_only_when_enabled():
    kw = dict(shot=ShotType.MEDIUM, characters=[RED], setting="office", seed=0)
    plain = render(**kw, backend_settings={"name_tags": False, "label": False}).images[0]
    tagged = render(**kw, backend_settings={"name_tags": True, "label": False}).images[0]
    labelled = render(**kw, backend_settings={"name_tags": False, "label": True}).images[0]
    assert plain.tobytes() != tagged.tobytes()
    diff = np.asarray(labelled).astype(int) - np.asarray(plain).astype(int)
    ys, xs = np.nonzero(np.abs(diff).sum(axis=2))
    assert ys.max() < 0.2 * 200 and xs.min() < 0.1 * 300, "the place label sits top-left"


def test_supersampling_setting_keeps_the_requested_size():
    for ss in (1, 3):
        res = render(characters=[RED], backend_settings={"supersample": ss}, width=123, height=77)
        assert res.images[0].size == (123, 77)
        assert res.settings["supersample"] == ss


def test_unknown_pose_id_is_a_clear_error():
    with pytest.raises(GenerationError, match="pose_id 'no-such-pose'"):
        render(characters=[RED], pose_id="no-such-pose")


def test_library_pose_by_id_renders_its_figure_count():
    library = pytest.importorskip("comic_studio.poses.library")
    entry = next(e for e in library.load_library() if len(e.figures) == 2)
    res = render(shot=ShotType.WIDE, characters=[RED, GREEN], pose_id=entry.id, seed=0)
    assert res.pose_id == entry.id
    assert sorted(p.figure for p in res.heads) == [0, 1]


def test_default_pose_matching_retrieves_a_fitting_pose():
    retrieval = pytest.importorskip("comic_studio.poses.retrieval")
    res = render(shot=ShotType.WIDE, characters=[RED, GREEN], action="Rosa hugs Gus tightly", actor_id="red",
                 target_id="green", seed=0, backend_settings={"pose_matching": "auto"})  # fmt: skip
    assert res.pose_id and "hug" in res.pose_id, res.pose_id
    assert retrieval is not None and len(res.heads) == 2


def test_setting_words_decide_interior_or_exterior():
    assert classify_setting("Bella's kitchen") == "interior"
    assert classify_setting("INT. OFFICE") == "interior"
    assert classify_setting("the old harbour") == "exterior"
    assert classify_setting("on the roof") == "exterior"
    assert classify_setting("somewhere") == "neutral"
