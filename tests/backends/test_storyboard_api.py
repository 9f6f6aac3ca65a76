"""The request/result API through the storyboard backend: JSON, settings, progress and cancel."""

from __future__ import annotations

import json

import pytest

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.core.model import PanelResult, ShotType
from comic_studio.generation.backend_api import BackendSettingsError
from comic_studio.generation.request import (
    Cancelled,
    GenerationError,
    GenerationRequest,
    PoseSpec,
    RequestCharacter,
)
from comic_studio.poses.staging.figures import fallback_pose

SHA = "ab" * 32


def full_request() -> GenerationRequest:
    return GenerationRequest(
        backend="storyboard",
        backend_settings={"line_weight": 1.5, "paper": "white"},
        width=320,
        height=240,
        seed=2**40 + 7,
        prompt="two friends argue",
        negative_prompt="blurry",
        shot=ShotType.OVER_THE_SHOULDER,
        setting="a smoky bar",
        time_of_day="night",
        action="Ana argues with Ben",
        characters=[
            RequestCharacter(
                id="ana", name="Ana Núñez", colour="#aa3366", description="red scarf", face_refs=[SHA], figure=1
            ),
            RequestCharacter(id="ben", name="Ben", colour="#3366aa", body_refs=[SHA]),
        ],
        actor_id="ana",
        target_id="ben",
        pose_id=None,
        figures_override=PoseSpec.from_entry(fallback_pose(2)),
        steps=3,
        guidance=2.5,
        panel_id="p1",
    )


def test_request_round_trips_through_json_and_renders_identically():
    req = full_request()
    text = req.to_json()
    back = GenerationRequest.from_json(text)
    assert back == req
    assert back.shot is ShotType.OVER_THE_SHOULDER
    assert json.loads(text)["characters"][0]["name"] == "Ana Núñez"
    # What a panel stores (PanelResult.request) replays exactly.
    stored = PanelResult(asset=SHA, backend="storyboard", seed=req.seed, request=req.to_dict(), created_at="now")
    again = GenerationRequest.from_dict(stored.request)
    backend = StoryboardBackend()
    assert backend.generate(again).images[0].tobytes() == backend.generate(req).images[0].tobytes()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"width": 0}, "width"),
        ({"characters": [{"id": "x", "name": "X", "colour": "red"}]}, "characters.0.colour"),
        ({"shot": "dutch-angle"}, "shot"),
        ({"surprise": 1}, "surprise"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_request_json_names_the_field(patch, field):
    data = {**full_request().to_dict(), **patch}
    with pytest.raises(GenerationError, match=f"invalid generation request: {field}"):
        GenerationRequest.from_json(json.dumps(data))


def test_duplicate_character_ids_are_rejected():
    c = RequestCharacter(id="a", name="A")
    with pytest.raises(ValueError, match="character id 'a' appears twice"):
        GenerationRequest(width=64, height=64, characters=[c, c])


def test_settings_defaults_are_filled_and_reported():
    backend = StoryboardBackend()
    settings = backend.validate_settings({"line_weight": 2})
    assert settings == {**StoryboardBackend.default_settings(), "line_weight": 2.0}
    schema = backend.settings_schema()
    for spec in schema.values():
        assert {"type", "default", "label"} <= set(spec)
    result = backend.generate(GenerationRequest(width=64, height=48, backend_settings={"paper": "white"}))
    assert result.settings["paper"] == "white" and result.settings["supersample"] == 2
    assert result.backend == "storyboard" and result.seed == 0


@pytest.mark.parametrize(
    ("settings", "field", "problem"),
    [
        ({"line_weight": 9}, "line_weight", "above the maximum"),
        ({"line_weight": "thick"}, "line_weight", "expected a number"),
        ({"supersample": 1.5}, "supersample", "whole number"),
        ({"supersample": True}, "supersample", "expected a number"),
        ({"name_tags": "yes"}, "name_tags", "true/false"),
        ({"paper": "blue"}, "paper", "not one of"),
        ({"linewidth": 1}, "linewidth", "unknown setting"),
        ({"line_weight": float("nan")}, "line_weight", "finite"),
    ],
)
def test_invalid_settings_raise_a_clear_error(settings, field, problem):
    with pytest.raises(BackendSettingsError, match=problem) as info:
        StoryboardBackend().validate_settings(settings)
    assert info.value.field == field
    assert f"setting {field!r}" in str(info.value) and "storyboard" in str(info.value)
    with pytest.raises(BackendSettingsError):
        StoryboardBackend().generate(GenerationRequest(width=64, height=64, backend_settings=settings))


def test_progress_reaches_the_end_with_a_preview():
    calls = []

    def on_step(step, total, preview):
        calls.append((step, total, preview))
        return None  # a callback that returns nothing must not cancel

    req = GenerationRequest(width=80, height=60, characters=[RequestCharacter(id="a", name="A")], shot=ShotType.WIDE,
                            backend_settings={"pose_matching": "overlap"})  # fmt: skip
    result = StoryboardBackend().generate(req, on_step)
    steps = [s for s, _, _ in calls]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == calls[-1][1]
    assert calls[-1][2] is not None and calls[-1][2].tobytes() == result.images[0].tobytes()


def test_on_step_returning_false_cancels():
    seen = []

    def stop_at_two(step, total, preview):
        seen.append(step)
        return step < 2

    req = GenerationRequest(width=80, height=60, characters=[RequestCharacter(id="a", name="A")], panel_id="p9",
                            backend_settings={"pose_matching": "overlap"})  # fmt: skip
    with pytest.raises(Cancelled, match="p9.*step 2"):
        StoryboardBackend().generate(req, stop_at_two)
    assert seen[-1] == 2


def test_bench_reports_throughput():
    from comic_studio.backends.storyboard.bench import bench_storyboard

    result = bench_storyboard(n=4, width=120, height=80)
    assert result["panels_per_s_overlap_matching"] > 0 and result["panels_per_s_no_supersample"] > 0
