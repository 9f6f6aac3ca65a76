"""The training benchmarks run (tiny models, CPU): the figures they print are what the README and
the closing notes quote, so they must not rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_lora_bench_compares_with_the_reference_loop(tmp_path):
    result = _bench("train_lora").main(["--resolution", "64", "--steps", "2", "--out", str(tmp_path / "r.json")])
    assert result["ours_s_per_step"] > 0 and result["reference_s_per_step"] > 0
    assert result["ours_vs_reference"] == pytest.approx(
        result["ours_s_per_step"] / result["reference_s_per_step"], abs=1e-3
    )
    assert (tmp_path / "r.json").is_file()


def test_gpu_train_lora_smoke_runs_every_recipe():
    result = _bench("gpu_train_lora").main(["--smoke"])
    assert [r["recipe"] for r in result["recipes"]] == ["as-the-seed-ran", "16gb", "12gb"]
    assert all(not r["out_of_memory"] and r["s_per_step"] > 0 for r in result["recipes"])


def test_gpu_train_identity_smoke_runs_with_and_without_checkpointing():
    from comic_studio.vision.detect import available_detectors

    if "mediapipe-face" not in available_detectors():
        pytest.skip("mediapipe is not installed")
    result = _bench("gpu_train_identity").main(["--smoke"])
    assert [v["gradient_checkpointing"] for v in result["variants"]] == [False, True]
    assert all(not v["out_of_memory"] and v["s_per_step"] > 0 for v in result["variants"])
