"""The benchmarks of OpenCLIP pose retrieval, long prompts and the pose overlay run through the real
code paths (small sizes, few iterations) and report their figures under the expected keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """The repository's ``bench`` package, importable as the scripts import it."""
    monkeypatch.syspath_prepend(str(ROOT))
    import bench

    return bench


def test_pose_overlay_section_times_1_2_4_characters(bench):
    from bench.run import BENCHES, bench_pose_overlay

    assert {"openclip", "long_prompt", "pose_overlay"} <= set(BENCHES)
    result = bench_pose_overlay(runs=3, width=240, height=160)
    assert result["matcher"] == "overlap" and result["runs"] == 3 and result["first_panel_ms"] > 0
    for n in (1, 2, 4):
        row = result[f"characters_{n}"]
        assert 0 < row["median_ms"] <= row["p90_ms"]
    assert result["ratio_4_vs_1"] > 0


def test_openclip_bench_reports_rates_the_cache_hit_and_search_latency(bench, tmp_path):
    pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")
    from bench import openclip_poses

    out = tmp_path / "openclip.json"
    result = openclip_poses.main(["--pictures", "5", "--queries", "3", "--repeats", "3", "--out", str(out),
                                  "--full", "--full-arch", "ViT-B-32", "--full-images", "1", "--full-queries", "1"])  # fmt: skip
    tiny = result["tiny_model"]
    assert tiny["images"] == 5 and tiny["queries"] == 3 and tiny["dim"] == 32
    assert tiny["images_per_s"] > 0 and tiny["text_queries_per_s"] > 0 and tiny["text_batched_per_s"] > 0
    assert result["pictured_entries"] == 5 and result["library_entries"] > 5
    assert result["first_build_encoded_images"] == 5 and result["first_build_embedded_captions"]
    assert result["second_build_encoded_images"] == 0 and not result["second_build_embedded_captions"]
    assert result["cache_speedup"] == pytest.approx(result["first_build_s"] / result["second_build_s"], rel=0.1)
    assert result["search_ms_new_query"] > 0 and result["search_ms_repeated_query"] > 0
    full = result["full"]
    assert full["arch"] == "ViT-B-32" and full["dim"] == 512 and 140 < full["params_m"] < 160
    assert full["images_per_s"] > 0 and full["text_queries_per_s"] > 0
    assert json.loads(out.read_text()) == result


def test_long_prompt_bench_compares_one_and_three_windows(bench, tmp_path_factory):
    pytest.importorskip("diffusers")
    from bench import long_prompt

    result = long_prompt.main(["--runs", "1", "--steps", "1", "--size", "32",
                               "--kit", str(tmp_path_factory.getbasetemp() / "tiny-kit")])  # fmt: skip
    tokens = result["prompt_tokens_by_windows"]
    assert tokens["1"] <= 75 < tokens["2"] <= 150 < tokens["3"] <= 225
    assert result["fits_s"] > 0 and result["windows_3_s"] > 0
    assert result["ratio_3_vs_fits"] == pytest.approx(result["windows_3_s"] / result["fits_s"], rel=0.05)
    assert set(result["encode_ms"]) == {"1", "2", "3"} and all(v > 0 for v in result["encode_ms"].values())
    assert result["stock_encode_ms_1_window"] > 0 and result["apply_long_prompt_ms_3_windows"] > 0
