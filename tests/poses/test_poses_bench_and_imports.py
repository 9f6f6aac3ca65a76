"""The retrieval benchmark runs, and the pose package stays light to import."""

from __future__ import annotations

import subprocess
import sys

from comic_studio.poses.bench import bench_retrieval
from comic_studio.poses.retrieval import minilm_available


def test_bench_reports_queries_per_second_for_both_embedders(tmp_path):
    out = bench_retrieval(n_queries=20, cache_dir=tmp_path)
    assert out["entries"] >= 150 and out["overlap_qps"] > 0
    if minilm_available():
        assert out["minilm_qps"] > 0 and out["minilm_cached_start_s"] < out["minilm_cold_start_s"]


def test_importing_the_pose_package_does_not_import_torch_or_sentence_transformers():
    code = (
        "import sys, comic_studio.poses, comic_studio.poses.authoring, comic_studio.poses.bench;"
        "bad = [m for m in ('torch', 'sentence_transformers', 'PySide6') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
