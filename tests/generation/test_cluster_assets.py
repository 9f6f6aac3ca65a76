"""Files a render names by path reach the cluster's workers through Ray's object store, by content
hash, once (real local Ray, no mock).

What a local cluster can prove: the worker shares this machine's disk, so "another machine" is
simulated by giving the workers their own cache and bank folders (``worker_env``) and by deleting
the client's file after ``submit()`` returned and before the worker started the job: the job can
then only have read the bytes it was sent. It cannot prove a transfer over a real network (Ray's
object store does that part)."""

from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest

from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent, JobMessage
from comic_studio.generation.request import GenerationRequest
from comic_studio.testing.tiny import write_tiny_lora

ray = pytest.importorskip("ray")

from comic_studio.generation.cluster import ClusterEngine  # noqa: E402
from comic_studio.generation.cluster_assets import CACHE_ENV  # noqa: E402

pytestmark = pytest.mark.slow
WAIT_S = 300


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, namespace="cs-assets-tests")
    yield
    ray.shutdown()


def _request(kit, seed: int, loras: str = "", steps: int = 2, style_loras: str = "") -> GenerationRequest:
    settings = {"model": str(kit.sdxl), "steps": steps, "preview_every": 0}
    if loras:
        settings["character_loras"] = loras
    if style_loras:
        settings["loras"] = style_loras
    return GenerationRequest(
        backend="sdxl", width=64, height=64, seed=seed, prompt="a lantern", backend_settings=settings
    )


def _finals(engine, requests, before_first_start=None) -> list[JobMessage]:
    messages: list[JobMessage] = []
    cond = threading.Condition()

    def record(message: JobMessage) -> None:
        with cond:
            messages.append(message)
            cond.notify_all()

    unsubscribe = engine.subscribe(record)
    try:
        ids = [engine.submit(r) for r in requests]
        if before_first_start is not None:
            before_first_start()
        with cond:
            assert cond.wait_for(lambda: all(any(m.job_id == i and m.event.is_final for m in messages) for i in ids),
                                 WAIT_S), [(m.job_id, m.event.value, m.error) for m in messages]  # fmt: skip
            return [next(m for m in messages if m.job_id == i and m.event.is_final) for i in ids]
    finally:
        unsubscribe()


def _pixels(message: JobMessage) -> np.ndarray:
    assert message.event is JobEvent.FINISHED, message.error
    return np.asarray(message.result.images[0].convert("RGB"))


def test_a_lora_deleted_on_the_client_after_submit_is_rendered_from_the_shipped_copy(ray_session, tiny_kit, tmp_path):
    lora = write_tiny_lora(tmp_path / "client" / "ana.safetensors")
    loras = json.dumps([[str(lora), 1.0]])
    digest = hashlib.sha256(lora.read_bytes()).hexdigest()
    with Engine() as local:
        plain, with_lora = (_pixels(m) for m in _finals(local, [_request(tiny_kit, 7), _request(tiny_kit, 7, loras)]))
    assert not np.array_equal(plain, with_lora)  # the LoRA changes the panel: a render without it would show

    cache = tmp_path / "worker-cache"
    with ClusterEngine(workers=1, worker_env={CACHE_ENV: str(cache)}) as engine:
        # A long job first: the LoRA jobs wait in the queue while the client's file is deleted.
        blocker = _request(tiny_kit, 1, steps=30)
        finals = _finals(engine, [blocker, _request(tiny_kit, 7, loras), _request(tiny_kit, 7, loras)],
                         before_first_start=lora.unlink)  # fmt: skip
        assert engine._shipper.puts == 1  # two jobs, one file: sent once
    assert not lora.exists()
    for message in finals[1:]:
        assert np.array_equal(_pixels(message), with_lora)
    # The stored request names the client's file (it replays here), the worker read its own copy.
    assert finals[1].request.backend_settings["character_loras"] == loras
    assert [p.name for p in cache.iterdir()] == [digest + ".safetensors"]


def test_a_file_in_the_loras_setting_is_shipped_once_with_the_characters_lora_of_the_same_bytes(
    ray_session, tiny_kit, tmp_path
):
    lora = write_tiny_lora(tmp_path / "client" / "ink.safetensors")
    style = f"{lora}:0.7"
    with Engine() as local:
        expected = _pixels(_finals(local, [_request(tiny_kit, 9, style_loras=style)])[0])
        plain = _pixels(_finals(local, [_request(tiny_kit, 9)])[0])
    assert not np.array_equal(plain, expected)

    cache = tmp_path / "worker-cache"
    with ClusterEngine(workers=1, worker_env={CACHE_ENV: str(cache)}) as engine:
        blocker = _request(tiny_kit, 1, steps=30)
        same_bytes = json.dumps([[str(lora), 1.0]])
        finals = _finals(engine, [blocker, _request(tiny_kit, 9, style_loras=style),
                                  _request(tiny_kit, 9, loras=same_bytes)],
                         before_first_start=lora.unlink)  # fmt: skip
        assert engine._shipper.puts == 1  # the 'loras' file and the character's LoRA: one object
        assert engine.wait_idle(WAIT_S)
        assert engine._shipper.held() == set()  # no queued job names it any more: Ray may free it
    assert not lora.exists()
    assert np.array_equal(_pixels(finals[1]), expected)  # rendered from the shipped copy, weight 0.7 kept
    assert finals[1].request.backend_settings["loras"] == style  # the client's path: replays here
    assert finals[1].result.settings["loras"] == style
    assert len(list(cache.iterdir())) == 1
