"""racig on a 12 GB card (issue 15 item 2), what the CPU can show: the fp16-fix VAE in float16 (a
setting turns it off), VAE tiling per setting and size with the shared VAE put back after the job,
the image encoder resting on the CPU after embedding. The GPU figures come from bench/gpu_racig.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import REFS, as_array, build_kit, kit_settings, panel_request  # noqa: E402

from comic_studio.backends._diffusers.backend import VAE_TILING_PIXELS, vae_tiles  # noqa: E402
from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.core.settings import CONFIG_DIR_ENV  # noqa: E402
from comic_studio.generation.models.loading import FP16_FIX_VAE_ID  # noqa: E402
from comic_studio.generation.resources import EngineResources  # noqa: E402
from comic_studio.generation.settings import EngineSettings  # noqa: E402

ALL_REFS = reference_images_setting(REFS)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


def settings(kit, **extra):
    tiny, strong = kit
    return kit_settings(tiny, strong, **{"reference_images": ALL_REFS, **extra})


def _backend(dtype: str = "float32") -> RacigBackend:
    backend = RacigBackend()
    backend.bind_resources(EngineResources(EngineSettings(device="cpu", dtype=dtype)))
    return backend


def test_fp16_fix_vae_is_racigs_vae_in_float16_unless_turned_off(kit, tmp_path, monkeypatch):
    tiny, _ = kit
    models = tmp_path / "models"
    shutil.copytree(tiny.sdxl / "vae", models / FP16_FIX_VAE_ID)  # the catalogue entry's place
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"models_folder": str(models)}), encoding="utf-8")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))

    half = _backend("float16")
    req = panel_request(settings(kit), refs=False)
    pipe, _call, _cond = half.prepare_call(req, half.job_settings(req))
    fixed = half.resources.models.peek(FP16_FIX_VAE_ID, "vae", "float16", "cpu")
    assert fixed is not None and pipe.vae is fixed and pipe.vae.dtype == torch.float16

    off = panel_request(settings(kit, fp16_vae_fix=False), refs=False)
    pipe_off, _call, _cond = half.prepare_call(off, half.job_settings(off))
    assert pipe_off.vae is not fixed and pipe_off.vae.dtype == torch.float16  # SDXL's own VAE

    full = _backend("float32")  # float32 needs no fix: SDXL's own VAE, as before
    pipe32, _call, _cond = full.prepare_call(req, full.job_settings(req))
    assert full.resources.models.peek(FP16_FIX_VAE_ID, "vae", "float32", "cpu") is None
    assert pipe32.vae.dtype == torch.float32
    assert RacigBackend.default_settings()["fp16_vae_fix"] is True


def test_vae_tiling_threshold():
    assert not vae_tiles("auto", 1344, 768) and not vae_tiles("auto", 1024, 1024) and not vae_tiles("auto", 1536, 640)
    assert not vae_tiles("auto", 1536, 1024) and VAE_TILING_PIXELS == 1536 * 1024
    assert vae_tiles("auto", 1544, 1024) and vae_tiles("auto", 2048, 2048)
    assert vae_tiles("on", 64, 64) and not vae_tiles("off", 4096, 4096)


def _tiling_during_job(backend: RacigBackend, req) -> tuple[list[bool], object]:
    """(VAE tiling seen at every step of the job, the image)."""
    seen: list[bool] = []

    def on_step(step, total, preview=None) -> bool:
        vae = next(v for k, v in backend.resources.models._items.items() if k.component == "vae")
        seen.append(bool(vae.use_tiling and vae.use_slicing))
        return True

    return seen, backend.generate(req, on_step).image


def test_vae_tiling_per_setting_and_the_shared_vae_is_put_back(kit):
    backend = _backend()
    seen_auto, auto = _tiling_during_job(backend, panel_request(settings(kit, steps=2)))
    seen_on, tiled = _tiling_during_job(backend, panel_request(settings(kit, steps=2, vae_tiling="on")))
    seen_off, whole = _tiling_during_job(backend, panel_request(settings(kit, steps=2, vae_tiling="off")))
    assert set(seen_auto) == {False} and set(seen_on) == {True} and set(seen_off) == {False}
    assert np.array_equal(as_array(auto), as_array(whole))  # below the threshold auto decodes whole
    assert not np.array_equal(as_array(tiled), as_array(whole))  # the tiny VAE's 32 px tiles show
    vae = next(v for k, v in backend.resources.models._items.items() if k.component == "vae")
    assert not vae.use_tiling and not vae.use_slicing  # the sdxl backend finds it as it was


def test_the_image_encoder_rests_on_the_cpu_after_embedding(kit):
    tiny, _ = kit
    backend = _backend()
    backend.generate(panel_request(settings(kit, steps=1)))
    encoder = backend.resources.models.peek(str(tiny.image_encoder), "ip-image-encoder", "float32", "cpu")
    # Computes on the engine's device (here the CPU; bench/gpu_racig.py checks it on CUDA) and rests
    # on the CPU: denoising never has the 1.3 GB ViT-H on the GPU.
    assert encoder.device == backend.resources.device
    assert encoder.model.device.type == "cpu"
    assert backend.embeddings.computed == 5


def _bench():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "gpu_racig.py"
    spec = importlib.util.spec_from_file_location("gpu_racig", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_racig"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_gpu_racig_smoke_runs_every_mode_the_cpu_can(tmp_path):
    bench = _bench()
    result = bench.main(["--smoke", "--out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == result
    modes = {r["mode"]: r for r in result["modes"]}
    assert set(modes) == {"gpu", "model-offload", "sequential-offload"}
    for mode in ("gpu", "model-offload"):
        assert not modes[mode]["oom"] and modes[mode]["s_per_panel"] > 0
        assert modes[mode]["encoder_rests_on"] == "cpu"
    assert "GPU only" in modes["sequential-offload"]["skipped"]
    assert result["auto_mode"] == "model-offload"  # racig on a 12 GiB card
    assert result["engine_vs_raw"]["raw_its"] > 0 and result["engine_vs_raw"]["engine_its"] > 0


def test_bench_gpu_racig_builds_the_real_sizes():
    """The full-size stand-ins have the real models' parameter counts: h94's ViT-H image encoder file
    is 2 528 373 448 bytes of float32, each SDXL Plus adapter 847 517 512 bytes of float16."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from comic_studio.generation.models.sdxl_config import random_sdxl_models
    from comic_studio.testing.tiny import ip_adapter_plus_state_dict

    bench = _bench()
    with torch.device("meta"):
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**bench.VIT_H_CONFIG))
    assert sum(p.numel() for p in encoder.parameters()) * 4 == pytest.approx(2_528_373_448, rel=1e-3)
    unet = random_sdxl_models("meta")["unet"]
    state = ip_adapter_plus_state_dict(unet, 0, **bench.VIT_H_RESAMPLER)
    assert sum(v.numel() for v in state.values()) * 2 == pytest.approx(847_517_512, rel=1e-3)
    assert len([k for k in state if k.endswith("to_k_ip.weight")]) == 70  # SDXL's cross-attention layers
