"""Character ↔ figure assignment."""

from __future__ import annotations

import pytest

from comic_studio.core.model import CharacterPlacement
from comic_studio.poses.assign import assign_figures
from comic_studio.poses.library import PoseEntry, load_library
from comic_studio.poses.skeleton import mirror_entry


@pytest.fixture(scope="module")
def by_id() -> dict[str, PoseEntry]:
    return {e.id: e for e in load_library()}


def test_actor_and_target_take_their_figures_whatever_the_order_of_mention(by_id):
    for eid in ("punch-2p", "punch-2p-m", "kneel-beg-2p", "carry-back-2p", "pull-hand-2p-m"):
        entry = by_id[eid]
        for chars in (["alia", "mo"], ["mo", "alia"]):
            got = assign_figures(entry, chars, actor_id="alia", target_id="mo")
            assert entry.figures[got[chars.index("alia")]].role == "actor", eid
            assert entry.figures[got[chars.index("mo")]].role == "target", eid


def test_mirrored_entry_moves_the_actor_to_the_other_side(by_id):
    base, mirrored = by_id["punch-2p"], by_id["punch-2p-m"]
    a = assign_figures(base, ["x", "y"], "x", "y")
    b = assign_figures(mirrored, ["x", "y"], "x", "y")
    assert a == b  # figure indices keep their roles…
    xa = base.figures[a[0]].hip_centre[0]
    xb = mirrored.figures[b[0]].hip_centre[0]
    assert (xa < 0.5) != (xb < 0.5)  # …but the actor stands on the opposite side


def test_without_roles_order_of_mention_goes_left_to_right(by_id):
    entry = by_id["stand-row-3p"]
    got = assign_figures(entry, ["c", "a", "b"])
    xs = [entry.figures[i].hip_centre[0] for i in got]
    assert xs == sorted(xs) and sorted(got) == [0, 1, 2]
    # With a mirrored copy (figure order reversed on screen) the first-mentioned is still leftmost.
    flipped = mirror_entry(entry, "flipped")
    got = assign_figures(flipped, ["c", "a", "b"])
    xs = [flipped.figures[i].hip_centre[0] for i in got]
    assert xs == sorted(xs)


def test_actor_first_then_the_rest_left_to_right(by_id):
    entry = by_id["punch-watched-3p"]  # roles: actor, target, neutral
    got = assign_figures(entry, ["watcher", "hero", "villain"], actor_id="hero", target_id="villain")
    roles = [entry.figures[i].role for i in got]
    assert roles == ["neutral", "actor", "target"]
    # Unknown or absent actor/target ids are ignored rather than crashing.
    got = assign_figures(entry, ["p", "q", "r"], actor_id="nobody", target_id=None)
    assert sorted(got) == [0, 1, 2]


def test_more_characters_than_figures_and_empty_scenes(by_id):
    entry = by_id["hug-2p"]
    got = assign_figures(entry, ["a", "b", "c", "d"], "a", "b")
    assert sorted(got[:2]) == [0, 1] and got[2:] == [2, 3]  # ≥ len(figures): not in this pose
    assert assign_figures(None, ["a", "b"]) == [0, 1]
    assert assign_figures(entry, []) == []
    with pytest.raises(ValueError, match="unique"):
        assign_figures(entry, ["a", "a"])


def test_assignment_is_storable_in_the_panel(by_id):
    entry = by_id["grab-arms-3p"]
    chars = ["g1", "prisoner", "g2"]
    got = assign_figures(entry, chars, actor_id="g1", target_id="prisoner")
    placements = [CharacterPlacement(character_id=c, figure=f) for c, f in zip(chars, got)]
    assert [p.figure for p in placements] == got
    assert entry.figures[placements[1].figure].role == "target"
