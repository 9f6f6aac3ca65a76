"""Engine resources: out-of-memory retry in a leaner mode, the shared model cache, settings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from engine_fakes import OomBackend, Recorder, SharedModelBackendA, register_fakes, unregister_fakes

from comic_studio.generation.engine import Engine
from comic_studio.generation.messages import JobEvent
from comic_studio.generation.request import GenerationRequest
from comic_studio.generation.resources import CacheKey, EngineResources, ModelCache
from comic_studio.generation.settings import (
    EngineSettings,
    EngineSettingsError,
    lower_memory_mode,
    resolve_device,
    resolve_dtype,
)


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()
    yield
    unregister_fakes()


@pytest.fixture
def engine():
    eng = Engine()
    yield eng
    eng.shutdown()


def req(backend: str, seed: int = 1) -> GenerationRequest:
    return GenerationRequest(backend=backend, width=16, height=16, seed=seed)


def test_out_of_memory_frees_and_retries_once_in_the_next_leaner_mode(engine):
    OomBackend.fails_in = {"gpu"}
    rec = Recorder(engine)
    done = rec.wait(engine.submit(req("test-oom")))
    assert done.event is JobEvent.FINISHED
    backend = engine._backends["test-oom"]
    assert backend.modes == ["gpu", "model-offload"]
    assert done.result.settings == {"mode": "model-offload"}
    assert engine.resources.frees == 1
    # The leaner mode sticks: the next job does not run out of memory again first.
    rec.wait(engine.submit(req("test-oom", seed=2)))
    assert backend.modes == ["gpu", "model-offload", "model-offload"]
    # Under "auto" (the default) only this backend stepped down; the user's choice is unchanged.
    assert engine.settings.memory_mode == "auto"
    assert engine.resources.memory_mode_for(backend) == "model-offload"
    assert engine.resources.memory_mode_for(None) == "gpu"


def test_a_job_steps_down_until_it_fits(engine):
    OomBackend.fails_in = {"gpu", "model-offload"}
    done = Recorder(engine).wait(engine.submit(req("test-oom")))
    assert done.event is JobEvent.FINISHED and done.result.settings == {"mode": "sequential-offload"}
    assert engine._backends["test-oom"].modes == ["gpu", "model-offload", "sequential-offload"]
    assert engine.resources.frees == 2 and engine.resources.memory_mode_for(engine._backends["test-oom"]) == (
        "sequential-offload"
    )


def test_out_of_memory_under_an_explicit_mode_lowers_that_mode():
    OomBackend.fails_in = {"gpu"}
    with Engine(EngineSettings(memory_mode="gpu")) as engine:
        done = Recorder(engine).wait(engine.submit(req("test-oom")))
        assert done.result.settings == {"mode": "model-offload"}
        assert engine.settings.memory_mode == "model-offload"  # as before "auto" existed


def test_out_of_memory_twice_is_a_clear_error_and_the_worker_lives_on(engine):
    OomBackend.fails_in = {"gpu", "model-offload", "sequential-offload"}
    rec = Recorder(engine)
    err = rec.wait(engine.submit(req("test-oom")))
    assert err.event is JobEvent.ERROR
    assert err.error.startswith(
        "Out of GPU memory (also after freeing memory and retrying down to 'sequential-offload' mode, the leanest)"
    )
    assert "OutOfMemoryError: CUDA out of memory" in err.detail
    # One step leaner per out-of-memory error, down to the leanest, within the one job.
    assert engine._backends["test-oom"].modes == ["gpu", "model-offload", "sequential-offload"]
    assert engine.resources.frees == 3 and len(engine.resources.models) == 0
    # Already in the leanest mode: no retry, straight to the error.
    engine.resources.set_memory_mode("sequential-offload")
    err = rec.wait(engine.submit(req("test-oom", seed=2)))
    assert "'sequential-offload' mode, the leanest" in err.error
    OomBackend.fails_in = set()
    assert rec.wait(engine.submit(req("test-oom", seed=3))).event is JobEvent.FINISHED


def test_switching_backends_on_one_base_model_does_not_reload(engine):
    SharedModelBackendA.loads = []
    rec = Recorder(engine)
    for backend in ("test-shared-a", "test-shared-b", "test-shared-a"):
        assert rec.wait(engine.submit(req(backend))).event is JobEvent.FINISHED
    assert sorted(SharedModelBackendA.loads) == ["text_encoder", "text_encoder_2", "unet", "vae"]
    assert engine.resources.models.loads("tiny-sdxl") == 4
    assert engine.resources.models.loads("tiny-sdxl", "unet") == 1
    assert engine._backends["test-shared-a"].resources is engine._backends["test-shared-b"].resources


def test_model_cache_keys_counts_and_eviction():
    cache = ModelCache()
    made = []
    a = cache.get("m", "unet", "float16", "cuda", lambda: made.append(1) or "A")
    assert cache.get("m", "unet", "float16", "cuda", lambda: "other") == "A"
    cache.get("m", "unet", "float32", "cpu", lambda: "B")  # another dtype/device is another entry
    cache.put("n", "vae", "float16", "cuda", "C")
    assert a == "A" and made == [1] and len(cache) == 3
    assert CacheKey("m", "unet", "float16", "cuda") in cache
    assert cache.loads() == 3 and cache.loads("m") == 2 and cache.loads(component="vae") == 1
    assert cache.peek("n", "vae", "float16", "cuda") == "C"
    assert cache.evict("m") == 2 and cache.keys() == [CacheKey("n", "vae", "float16", "cuda")]
    cache.get("m", "unet", "float16", "cuda", lambda: "A2")
    assert cache.loads("m", "unet") == 3  # counters survive eviction: a reload is visible
    assert cache.evict(predicate=lambda k: k.device == "cuda") == 2 and len(cache) == 0


def test_resources_free_hooks_and_settings_changes():
    resources = EngineResources(EngineSettings(device="cpu"))
    resources.models.put("m", "unet", "float32", "cpu", object())
    calls = []
    resources.add_free_hook(lambda: calls.append("hook"))
    resources.add_free_hook(lambda: 1 / 0)  # a broken hook is logged, never raised
    resources.trim()
    assert calls == ["hook"] and len(resources.models) == 1  # trim keeps loaded models
    resources.free()
    assert calls == ["hook", "hook"] and len(resources.models) == 0 and resources.frees == 1
    resources.models.put("m", "unet", "float32", "cpu", object())
    resources.set_settings(EngineSettings(device="cpu", memory_mode="model-offload"))
    assert len(resources.models) == 1  # memory mode alone keeps the cache
    resources.set_settings(EngineSettings(device="cpu", dtype="bfloat16"))
    assert len(resources.models) == 0


def test_engine_settings_validation_and_round_trip():
    s = EngineSettings(device="cuda", dtype="float16", memory_mode="sequential-offload")
    assert EngineSettings.from_dict(s.to_dict()) == s
    with pytest.raises(EngineSettingsError, match="'device'.*'tpu'"):
        EngineSettings(device="tpu")
    with pytest.raises(EngineSettingsError, match="'memory_mode'"):
        EngineSettings(memory_mode="lots")
    with pytest.raises(EngineSettingsError, match="'dev' is unknown"):
        EngineSettings.from_dict({"dev": "cpu"})
    assert [lower_memory_mode(m) for m in ("gpu", "model-offload", "sequential-offload")] == [
        "model-offload",
        "sequential-offload",
        None,
    ]
    assert resolve_dtype(EngineSettings(), "cpu") == "float32"
    assert resolve_dtype(EngineSettings(), "cuda") == "float16"
    assert resolve_dtype(EngineSettings(dtype="bfloat16"), "cuda") == "bfloat16"


def test_resolve_device_uses_torch_only_when_asked():
    import torch

    assert resolve_device(EngineSettings(device="cpu")) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(EngineSettingsError, match="no CUDA GPU"):
            resolve_device(EngineSettings(device="cuda"))
    if not (torch.backends.mps.is_available()):
        assert resolve_device(EngineSettings()) == expected
    assert EngineResources(EngineSettings(device="cpu")).dtype == "float32"


def test_engine_runs_storyboard_jobs_without_importing_torch():
    code = (
        "import sys\n"
        "from comic_studio.generation.engine import Engine\n"
        "from comic_studio.generation.request import GenerationRequest\n"
        "done = []\n"
        "e = Engine(); e.subscribe(lambda m: done.append(m.event.value))\n"
        "e.submit(GenerationRequest(width=64, height=48, seed=3)); e.wait_idle(30); e.shutdown()\n"
        "assert done[-1] == 'finished', done\n"
        "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules, 'heavy import'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
