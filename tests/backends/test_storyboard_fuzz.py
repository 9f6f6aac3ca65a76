"""Any valid request renders: odd sizes, shots, casts and seeds never crash or leak off-panel."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from comic_studio.backends.storyboard import StoryboardBackend
from comic_studio.core.model import ShotType
from comic_studio.generation.request import GenerationRequest, RequestCharacter

CAST = [RequestCharacter(id=f"c{i}", name=f"Person {i}", colour=f"#{(i * 0x3A5F27) % 0xFFFFFF:06x}") for i in range(6)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(16, 700),
    height=st.integers(16, 700),
    shot=st.sampled_from(list(ShotType)),
    n=st.integers(0, 5),
    seed=st.integers(0, 2**64 - 1),
    setting=st.sampled_from(["", "kitchen", "street", "forest camp", "??"]),
    time_of_day=st.sampled_from(["", "night", "dusk", "dawn"]),
    action=st.text(max_size=40),
)
def test_any_request_renders_with_heads_in_the_panel(width, height, shot, n, seed, setting, time_of_day, action):
    req = GenerationRequest(width=width, height=height, shot=shot, characters=CAST[:n], seed=seed, setting=setting,
                            time_of_day=time_of_day, action=action, backend_settings={"pose_matching": "overlap"})  # fmt: skip
    res = StoryboardBackend().generate(req)
    assert res.images[0].size == (width, height) and res.images[0].mode == "RGB"
    assert [p.character_id for p in res.heads] == [c.id for c in CAST[:n]]
    for p in res.heads:
        assert p.head is not None and 0 <= p.head[0] <= 1 and 0 <= p.head[1] <= 1
        assert 0 <= p.head_radius <= 1
        if p.body is not None:
            assert 0 <= p.body.x <= p.body.x + p.body.w <= 1 + 1e-9
            assert 0 <= p.body.y <= p.body.y + p.body.h <= 1 + 1e-9
