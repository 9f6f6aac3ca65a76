"""Batch preparation of pose queries changes speed, never results."""

import pytest

from comic_studio.poses.library import load_library
from comic_studio.poses.retrieval import PoseRetriever, minilm_available

TEXTS = ["Mara hugs the captain", "Theo sprints down the pier", "Brandt grabs Theo's arm", "Mara reads a letter"]


@pytest.mark.skipif(not minilm_available(), reason="needs the ML extra")
def test_prepare_batches_queries_and_keeps_picks_identical(tmp_path):
    entries = load_library()
    cold = PoseRetriever(entries, embedder="minilm", cache_dir=tmp_path)
    expected = [cold.pick(t, 2, seed=7).id for t in TEXTS]
    warm = PoseRetriever(entries, embedder="minilm", cache_dir=tmp_path)
    assert warm.prepare(TEXTS + TEXTS) == len(TEXTS)  # duplicates embedded once
    assert warm.prepare(TEXTS) == 0  # already known
    assert [warm.pick(t, 2, seed=7).id for t in TEXTS] == expected


def test_prepare_is_a_no_op_for_the_overlap_matcher():
    retriever = PoseRetriever(load_library(), embedder="overlap")
    assert retriever.prepare(TEXTS) == 0
