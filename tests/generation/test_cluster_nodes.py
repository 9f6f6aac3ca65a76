"""Two Ray nodes on this machine (``ray.cluster_utils.Cluster``: a head and a worker node, each its own
raylet): the workers land on different nodes, and a node that goes away mid-job costs that job
nothing but time — it is rendered again on the node that is left, with the same pixels."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.request import GenerationRequest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from comic_studio.generation.cluster import ClusterEngine  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def two_nodes():
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    extra = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="comic-studio-nodes", log_to_driver=False)
    try:
        yield cluster, extra
    finally:
        ray.shutdown()
        cluster.shutdown()


def _final(messages: list[JobMessage], cond: threading.Condition, job_id: str, timeout: float = 300) -> JobMessage:
    deadline = time.monotonic() + timeout
    with cond:
        while not any(m.job_id == job_id and m.event.is_final for m in messages):
            left = deadline - time.monotonic()
            assert left > 0, [(m.job_id, m.event.value) for m in messages]
            cond.wait(left)
        return next(m for m in messages if m.job_id == job_id and m.event.is_final)


def test_a_node_lost_mid_job(two_nodes, tiny_kit):
    cluster, extra = two_nodes
    settings = {"model": str(tiny_kit.sdxl), "steps": 60, "preview_every": 0}
    requests = [GenerationRequest(backend="sdxl", width=64, height=64, seed=seed, prompt="a harbour",
                                  backend_settings=settings) for seed in (5, 6)]  # fmt: skip
    messages: list[JobMessage] = []
    cond = threading.Condition()

    def record(message: JobMessage) -> None:
        with cond:
            messages.append(message)
            cond.notify_all()

    with Engine() as local:
        local.subscribe(record)
        expected = [np.asarray(_final(messages, cond, local.submit(r)).result.images[0]) for r in requests]
    messages.clear()

    with ClusterEngine(workers=2) as engine:
        nodes = {w["node"] for w in engine.workers()}
        assert nodes == {cluster.head_node.node_id, extra.node_id}  # one worker per node
        engine.subscribe(record)
        jobs = [engine.submit(r) for r in requests]
        with cond:  # both running: one of them on the node about to go
            while not all(any(m.job_id == j and m.event is JobEvent.PROGRESS for m in messages) for j in jobs):
                assert cond.wait(300)
        cluster.remove_node(extra)
        for job, want in zip(jobs, expected):
            final = _final(messages, cond, job)
            assert final.event is JobEvent.FINISHED, final.error
            assert np.array_equal(np.asarray(final.result.images[0]), want)
        alive = [w for w in engine.workers() if w["alive"]]
        assert [w["node"] for w in alive] == [cluster.head_node.node_id]
