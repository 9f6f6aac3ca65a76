"""RaCig and the consistent backend (identity banks) on a real local Ray cluster give the local
engine's pixels at the same seeds. The workers get their own bank folder (``worker_env``), so banks
travel both ways through the object store: an anchor job's bank comes back to the client's folder,
and a panel's banks go to the worker's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from anchor_helpers import cid, make_document  # noqa: E402
from test_racig_support import REFS, build_kit, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.core.settings import BANK_DIR_ENV  # noqa: E402
from comic_studio.generation.cluster import ClusterEngine  # noqa: E402
from comic_studio.generation.engine import Engine  # noqa: E402
from comic_studio.generation.messages import JobEvent, JobMessage  # noqa: E402
from comic_studio.workflows.anchors import anchor_request, record_anchor  # noqa: E402
from comic_studio.workflows.batch import render_document  # noqa: E402

pytestmark = pytest.mark.slow
WAIT_S = 400


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="cs-methods")
    yield
    ray.shutdown()


def _finals(engine, requests) -> list[JobMessage]:
    messages: dict[str, JobMessage] = {}
    cond = threading.Condition()

    def record(message: JobMessage) -> None:
        if message.event.is_final:
            with cond:
                messages[message.job_id] = message
                cond.notify_all()

    unsubscribe = engine.subscribe(record)
    try:
        ids = [engine.submit(r) for r in requests]
        with cond:
            assert cond.wait_for(lambda: all(i in messages for i in ids), WAIT_S)
        return [messages[i] for i in ids]
    finally:
        unsubscribe()


def _pixels(message: JobMessage) -> np.ndarray:
    assert message.event is JobEvent.FINISHED, message.error
    return np.asarray(message.result.images[0].convert("RGB"))


def test_racig_on_two_workers_equals_the_local_engine(ray_session, tmp_path_factory):
    tiny, strong = build_kit(tmp_path_factory.mktemp("racig"))
    settings = kit_settings(tiny, strong, reference_images=reference_images_setting(REFS))
    requests = [panel_request(settings, seed=seed) for seed in (3, 4)]
    with Engine() as local:
        expected = [_pixels(m) for m in _finals(local, requests)]
    with ClusterEngine(workers=2) as engine:
        engine.submit(requests[0])
        sent = engine._shipper.puts
        assert sent > 0  # the reference images went through the object store …
        finals = _finals(engine, requests)
        assert engine._shipper.puts == sent  # … once: the other panels name the same objects
    for want, got in zip(expected, finals):
        assert np.array_equal(want, _pixels(got))


def _anchor(engine, doc, name: str, folder) -> None:
    request = anchor_request(doc.project, cid(doc, name), doc.assets, folder=folder)
    (final,) = _finals(engine, [request])
    assert final.event is JobEvent.FINISHED, final.error
    record_anchor(doc, cid(doc, name), final.request, final.result, folder, png=final.png)


def test_consistent_with_banks_on_a_cluster_equals_the_local_engine(ray_session, tiny_kit, tmp_path, monkeypatch):
    here, client, worker = tmp_path / "here-banks", tmp_path / "client-banks", tmp_path / "worker-banks"
    local_doc, cluster_doc = make_document(tiny_kit), make_document(tiny_kit)

    monkeypatch.setenv(BANK_DIR_ENV, str(here))
    with Engine() as local:
        for name in ("Ana", "Ben"):
            _anchor(local, local_doc, name, here)
        render_document(local_doc, engine=local)

    monkeypatch.setenv(BANK_DIR_ENV, str(client))
    with ClusterEngine(workers=2, worker_env={BANK_DIR_ENV: str(worker)}) as engine:
        for name in ("Ana", "Ben"):
            _anchor(engine, cluster_doc, name, client)  # reads the bank the worker made, from the client's folder
        render_document(cluster_doc, engine=engine)

    for name in ("Ana", "Ben"):
        mine = local_doc.project.character(cid(local_doc, name)).anchor
        theirs = cluster_doc.project.character(cid(cluster_doc, name)).anchor
        assert theirs.bank == mine.bank  # the same identity bank, bit for bit
        assert (client / theirs.bank).exists() or any(client.rglob(f"{theirs.bank}*"))
        assert any(worker.rglob(f"{theirs.bank}*"))  # made there, kept there
    local_panels = [p for page in local_doc.project.pages for p in page.panels_in_order()]
    cluster_panels = [p for page in cluster_doc.project.pages for p in page.panels_in_order()]
    assert len(local_panels) == 3
    for want, got in zip(local_panels, cluster_panels):
        assert local_doc.assets.get(want.result().asset) == cluster_doc.assets.get(got.result().asset)
