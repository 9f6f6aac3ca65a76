"""The halftone plugin: installed through its entry point, the screen's tone, and what it returns."""

from __future__ import annotations

import importlib.metadata

import numpy as np
from comic_studio_example_backend import HalftoneBackend
from comic_studio_example_backend.screen import INK, PAPER, dot_mask, halftone
from PIL import Image

from comic_studio.backends import (
    ENTRY_POINT_GROUP,
    GenerationRequest,
    RequestCharacter,
    available_backends,
    backend_origins,
    get_backend,
)


def test_found_through_its_installed_entry_point():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert eps.get("halftone") == "comic_studio_example_backend:HalftoneBackend", (
        "install the plugin: pip install -e plugins/comic-studio-example-backend"
    )
    assert available_backends()["halftone"] is HalftoneBackend
    assert "entry point" in backend_origins()["halftone"]


def test_dot_area_follows_the_tone():
    for tone in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9):
        ink = dot_mask(np.full((120, 120), tone), cell=8, angle_deg=30).mean()
        assert abs(ink - tone) < 0.03, (tone, ink)
    assert dot_mask(np.ones((64, 64)), cell=8, angle_deg=0).mean() > 0.95


def test_mono_prints_one_ink_with_solid_lines():
    img = Image.new("RGB", (80, 40), (255, 255, 255))
    img.paste((128, 128, 128), (0, 0, 40, 40))
    img.paste((0, 0, 0), (60, 0, 62, 40))  # a keyline
    out = np.asarray(halftone(img, cell=6, angle_deg=45, colour=False))
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert colours <= {INK, PAPER}
    assert (out[:, 60:62] == INK).all(), "line art stays solid"
    assert (out[:, 44:56] == PAPER).all(), "white stays paper"
    grey_ink = (out[:, :40] == INK).all(axis=2).mean()
    assert 0.3 < grey_ink < 0.6


def test_colour_screen_keeps_the_hue():
    img = Image.new("RGB", (96, 48), (220, 60, 50))
    img.paste((50, 80, 220), (48, 0, 96, 48))
    out = np.asarray(halftone(img, cell=5, angle_deg=45, colour=True)).astype(float)
    red, blue = out[:, :48].mean(axis=(0, 1)), out[:, 48:].mean(axis=(0, 1))
    assert red[0] > red[2] + 40 and blue[2] > blue[0] + 40


def test_heads_and_pose_match_the_storyboard_it_screens():
    request = GenerationRequest(
        backend="halftone", width=200, height=150, seed=3, action="Ana waves at Ben", setting="a harbour",
        characters=[RequestCharacter(id="ana", name="Ana"), RequestCharacter(id="ben", name="Ben")],
        backend_settings={"pose_matching": "overlap", "cell": 4},
    )  # fmt: skip
    result = get_backend("halftone").generate(request)
    base = get_backend("storyboard").generate(
        request.model_copy(
            update={"backend": "storyboard", "backend_settings": {"pose_matching": "overlap", "supersample": 1}}
        )
    )
    assert result.heads == base.heads and result.pose_id == base.pose_id
    assert result.settings == {"cell": 4, "angle": 45.0, "colour": True, "pose_matching": "overlap"}
