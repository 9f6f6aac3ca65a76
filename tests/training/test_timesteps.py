"""StoryBooth's timestep law, by the numbers: 200k draws against the exact distribution."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from comic_studio.training.timesteps import logit_normal_mass, sample_timesteps  # noqa: E402

BINS = [(0, 100), (100, 300), (300, 500), (500, 700), (700, 900), (900, 1000)]
# The masses of wave2_methods_engine_sota.md §2.1, computed there from Φ((logit(t/999) − μ)/σ).
PUBLISHED = [0.118, 0.249, 0.208, 0.189, 0.178, 0.059]


def test_the_exact_masses_match_the_published_table():
    for (lo, hi), published in zip(BINS, PUBLISHED, strict=True):
        assert logit_normal_mass(lo, hi) == pytest.approx(published, abs=0.0006)  # the table's rounding
    assert sum(logit_normal_mass(lo, hi) for lo, hi in BINS) == pytest.approx(1.0)


def test_200k_draws_follow_the_law_and_never_reach_999():
    t = sample_timesteps(200_000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and int(t.min()) >= 0 and int(t.max()) <= 998
    assert abs(float(t.float().median()) - 425) <= 3  # 999 · sigmoid(−0.3)
    for (lo, hi), expected in zip(BINS, PUBLISHED, strict=True):
        share = float(((t >= lo) & (t < hi)).float().mean())
        assert share == pytest.approx(logit_normal_mass(lo, hi), abs=0.005), (lo, hi)
        assert share == pytest.approx(expected, abs=0.005)
    assert float((t < 500).float().mean()) == pytest.approx(0.575, abs=0.005)  # leans to low noise


def test_uniform_and_the_generator_decide_everything():
    t = sample_timesteps(200_000, torch.Generator().manual_seed(1), law="uniform")
    assert int(t.min()) == 0 and int(t.max()) == 999
    assert abs(float(t.float().median()) - 499.5) <= 3
    a = sample_timesteps(50, torch.Generator().manual_seed(7))
    b = sample_timesteps(50, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown timestep law"):
        sample_timesteps(1, torch.Generator(), law="cosine")
