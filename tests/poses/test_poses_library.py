"""The bundled pose library: size, coverage, validity, and that the file matches the authoring code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from comic_studio.poses.authoring import ACTIONS, NONSENSICAL, build_entries, main as authoring_main
from comic_studio.poses.library import (
    KEYPOINT_NAMES,
    KP,
    LIMBS,
    MAX_FIGURES,
    ROLES,
    PoseLibraryError,
    default_library_path,
    dump_library,
    load_library,
)


@pytest.fixture(scope="module")
def entries():
    return load_library()


def test_library_file_is_up_to_date_with_the_authoring_code(tmp_path):
    # Regenerate through the real entry point and compare bytes with the bundled file.
    out = tmp_path / "library.json"
    assert authoring_main([str(out)]) == 0
    assert out.read_bytes() == default_library_path().read_bytes(), (
        "comic_studio/resources/poses/library.json is stale: run `python -m comic_studio.poses.authoring`"
    )


def test_authoring_is_deterministic():
    assert dump_library(build_entries()) == dump_library(build_entries())


def test_library_has_at_least_150_entries_with_unique_ids(entries):
    assert len(entries) >= 150
    assert len({e.id for e in entries}) == len(entries)


def test_every_action_is_covered_for_one_two_and_three_people(entries):
    have = {(tag, e.n_figures) for e in entries for tag in e.tags}
    missing = [(a, n) for a in ACTIONS for n in (1, 2, 3) if (a, n) not in NONSENSICAL and (a, n) not in have]
    assert not missing, f"no entry for {missing}"
    # The documented exclusions are genuinely solo-impossible actions.
    assert all(n == 1 for _, n in NONSENSICAL)


def test_figures_are_valid(entries):
    for e in entries:
        assert 1 <= e.n_figures <= MAX_FIGURES == 4, e.id
        assert 0.5 <= e.aspect <= 3.0, e.id
        assert e.caption and e.caption == e.caption.strip() and e.tags, e.id
        for f in e.figures:
            assert f.role in ROLES
            assert -1.0 <= f.facing <= 1.0
            assert len(f.keypoints) == 18
            for x, y, v in f.keypoints:
                assert 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0, e.id
                assert v in (0.0, 1.0)
            # Never a degenerate figure: body keypoints are always visible and the torso has length.
            assert all(f.keypoints[KP[n]][2] == 1.0 for n in KEYPOINT_NAMES[:14]), e.id
            assert math.dist(f.point("neck"), f.hip_centre) > 0.05, e.id


def test_interaction_entries_have_an_actor_and_a_target_where_the_caption_implies_one(entries):
    by_id = {e.id: e for e in entries}
    for eid in ("punch-2p", "kick-2p", "grab-arm-2p", "kneel-beg-2p", "carry-arms-2p"):
        roles = sorted(f.role for f in by_id[eid].figures)
        assert roles == ["actor", "target"], eid


def test_mirrored_twins_swap_sides(entries):
    by_id = {e.id: e for e in entries}
    twins = [(by_id[i[:-2]], e) for i, e in by_id.items() if i.endswith("-m")]
    assert len(twins) > 50
    for base, mirror in twins:
        assert mirror.caption == base.caption and mirror.aspect == base.aspect
        for fb, fm in zip(base.figures, mirror.figures):
            assert fm.facing == -fb.facing
            assert fm.point("l_wrist")[0] == pytest.approx(1 - fb.point("r_wrist")[0], abs=2e-4)


def test_limb_table_is_openpose_18():
    assert len(KEYPOINT_NAMES) == 18 and len(LIMBS) == 17
    assert all(0 <= a < 18 and 0 <= b < 18 for a, b in LIMBS)
    assert {i for pair in LIMBS for i in pair} == set(range(18))


def test_loader_round_trips_and_caches(entries, tmp_path):
    path = tmp_path / "copy.json"
    path.write_text(dump_library(entries), encoding="utf-8")
    again = load_library(path)
    assert [e.id for e in again] == [e.id for e in entries]
    assert again[5].figures == entries[5].figures


def _write(tmp_path: Path, mutate) -> Path:
    doc = json.loads(default_library_path().read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["entries"][3]["figures"][0].update(role="villain"), r"entries\[3\] \(.*\)\.figures\[0\]\.role"),
    (lambda d: d["entries"][0]["figures"][0]["keypoints"].__setitem__(3, 1.7), r"keypoints\[neck\]\.x: 1.7 is outside"),
    (lambda d: d["entries"][2]["figures"][0]["keypoints"].pop(), r"keypoints: expected 54 numbers"),
    (lambda d: d["entries"][1].update(aspect="wide"), r"aspect: expected a number"),
    (lambda d: d["entries"][1].update(figures=[]), r"figures: expected a list of 1 to 4"),
    (lambda d: d["entries"][4].update(id=d["entries"][0]["id"]), r"duplicate id"),
    (lambda d: d["entries"][0].update(colour="red"), r"unknown field\(s\) \['colour'\]"),
    (lambda d: d.update(version=99), r"version"),
])  # fmt: skip
def test_malformed_library_is_rejected_naming_the_field(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(PoseLibraryError, match=message) as info:
        load_library(path)
    assert str(path) in str(info.value)


def test_missing_and_non_json_files_are_clear_errors(tmp_path):
    with pytest.raises(PoseLibraryError, match="cannot read the pose library"):
        load_library(tmp_path / "nope.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PoseLibraryError, match="not valid JSON"):
        load_library(bad)
