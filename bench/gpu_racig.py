"""racig on a 12 GB card: peak VRAM and seconds per panel in each memory mode, and engine vs raw
diffusers it/s at 1024². Prints JSON.

    python bench/gpu_racig.py [--cap-gib 12] [--steps 17] [--runs 2] [--modes gpu,model-offload,...]
    python bench/gpu_racig.py --smoke          # CPU, tiny architecture, seconds: checks it runs

Every model is full size with random weights, built from its real configuration (no download is
possible on the benchmark machines), so memory and compute are the real ones:

- SDXL base (UNet, VAE, both text encoders) from the bundled ``comic_studio/resources/sdxl/base-1.0`` configs;
  the VAE with ``force_upcast=False``, which is what the fp16-fix VAE racig now uses is in memory
  terms (``--stock-vae`` keeps SDXL's own VAE, upcast to float32 for every decode);
- the OpenPose ControlNet as ``ControlNetModel.from_unet`` (xinsir's is that architecture, 1.25 B);
- both IP-Adapters (Plus-Face and Plus) as h94-layout state dicts at SDXL size
  (:func:`comic_studio.testing.tiny.ip_adapter_plus_state_dict` with ViT-H widths);
- the ViT-H image encoder from h94's ``models/image_encoder/config.json`` (:data:`VIT_H_CONFIG`).

They reach the backend through the engine's model cache under the ids of weights-free folders, as
in bench/gpu_sdxl.py. Each mode runs the racig backend itself (not through the engine, whose
out-of-memory retry would silently change the mode) on a 2-character panel at RaCig's 1344×768
with a face and an outfit reference each, under ``torch.cuda.set_per_process_memory_fraction``
(``--cap-gib``). Reported per mode: ``peak_gib`` (``max_memory_allocated``), ``s_per_panel`` (median
of ``--runs`` after a warm-up that also embeds the references), ``oom``, and where the image encoder
sits after a job. ``auto_mode`` is what the engine's ``auto`` memory mode picks for racig on a card
of the cap's size. The it/s comparison runs uncapped in ``gpu`` mode at 1024² without references
(the path that is bit-identical to the stock ControlNet pipeline), Euler, one UNet call per step.

``--smoke``: the tiny kit's architecture on the CPU in seconds, 160×96, 2 steps. Layer-by-layer
offload is skipped there: with the weights already on the CPU accelerate takes every parameter for
a tied one and fails in the text encoder (stock diffusers too), so only a GPU can run it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "backends"))

from bench.gpu_sdxl import write_config_folder  # noqa: E402
from bench.run import EngineSteps, emit_result, steps_per_second  # noqa: E402
from comic_studio.weights.architecture import bundled_config, read_config  # noqa: E402

_VIT_H_FOLDER = bundled_config("clip-vit-h-image-encoder")
assert _VIT_H_FOLDER is not None
VIT_H_CONFIG = read_config(_VIT_H_FOLDER)
"""h94/IP-Adapter ``models/image_encoder/config.json`` as bundled (OpenCLIP ViT-H-14 laion2B, 632 M
parameters; its ``model.safetensors`` is 2 528 373 448 bytes of float32): one place, the resource."""
VIT_H_RESAMPLER = {"vision_hidden": 1280, "width": 1280, "heads": 20, "queries": 16, "depth": 4}
"""The Resampler of ``ip-adapter-plus{,-face}_sdxl_vit-h``: ViT-H's width in, SDXL's 2048 out."""
MODES = ("gpu", "model-offload", "sequential-offload")
GIB = 2**30


def build_models(smoke: bool, dtype: Any, device: str = "cpu") -> dict[str, Any]:
    """Every component racig runs, built on ``device`` (random initialisation of 5 B parameters is
    minutes on a CPU, seconds on a GPU) and cast to ``dtype``; the adapters as float32 state dicts on
    the CPU, as the backend keeps them. Keys: ``sdxl`` parts, ``controlnet``, ``encoder`` (+
    ``processor``), ``face`` and ``plus``."""
    import torch
    from diffusers import ControlNetModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from comic_studio.generation.models.loading import load_tokenizers_and_scheduler
    from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs, random_sdxl_models
    from comic_studio.testing import tiny

    if smoke:
        parts = tiny.tiny_sdxl_components(0)
        controlnet = tiny.tiny_controlnet(parts["unet"])
        encoder, processor = tiny.tiny_image_encoder()
        resampler: dict[str, int] = {}
    else:
        torch.manual_seed(0)
        parts = random_sdxl_models(device)
        parts.update(load_tokenizers_and_scheduler(bundled_sdxl_configs()[0]))
        with torch.device(device):
            controlnet = ControlNetModel.from_unet(parts["unet"])
            encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H_CONFIG))
        processor = CLIPImageProcessor()  # h94 ships none: CLIP's 224 px defaults, as the loader uses
        resampler = VIT_H_RESAMPLER
    face = tiny.ip_adapter_plus_state_dict(parts["unet"], 30, **resampler)
    plus = tiny.ip_adapter_plus_state_dict(parts["unet"], 31, **resampler)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        parts[name] = parts[name].to(dtype=dtype).eval()
    return {"sdxl": parts, "controlnet": controlnet.to(dtype=dtype).eval(), "encoder": encoder.to(dtype=dtype).eval(),
            "processor": processor, "face": _nested(face), "plus": _nested(plus)}  # fmt: skip


def _nested(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """h94's flat keys → diffusers' ``{"image_proj": …, "ip_adapter": …}`` (what read_adapter_state does)."""
    out: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        out[head][rest] = value
    return out


class Folders:
    """Weights-free folders whose paths are the cache ids the backend looks the models up by."""

    def __init__(self, root: Path, models: dict[str, Any], smoke: bool):
        from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs

        self.sdxl = root / "sdxl-config" if smoke else bundled_sdxl_configs()[0]
        if smoke:
            write_config_folder(models["sdxl"], self.sdxl)
        self.controlnet = root / "controlnet"
        models["controlnet"].save_config(self.controlnet)
        self.encoder = root / "image_encoder"
        models["encoder"].config.save_pretrained(self.encoder)
        # Placeholders: the states are found in the cache under these paths and never read from disk.
        self.face, self.plus = root / "face.safetensors", root / "plus.safetensors"
        for path in (self.face, self.plus):
            path.write_bytes(b"")

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"model": str(self.sdxl), "controlnet": str(self.controlnet), "image_encoder": str(self.encoder),
                "ip_adapter_face": str(self.face), "ip_adapter_plus": str(self.plus), "pose_matching": "overlap",
                "preview_every": 0, **extra}  # fmt: skip


def stock(models: dict[str, Any], folders: Folders, resources: Any, weights_on: str) -> None:
    """Put every model where ``weights_on`` says, into ``resources``' cache under the folders' ids."""
    from comic_studio.backends.racig.adapters import ImageEncoder
    from comic_studio.generation.models.loading import SDXL_COMPONENTS, sdxl_source

    dtype, cache = resources.dtype, resources.models
    source = sdxl_source(folders.sdxl)
    for name in SDXL_COMPONENTS:
        part = models["sdxl"][name]
        cache.put(source.cache_id, name, dtype, weights_on, part.to(weights_on) if hasattr(part, "to") else part)
    cache.put(str(folders.controlnet), "controlnet", dtype, weights_on, models["controlnet"].to(weights_on))
    encoder = ImageEncoder(models["encoder"].to("cpu"), models["processor"], str(folders.encoder), resources.device)
    cache.put(str(folders.encoder), "ip-image-encoder", dtype, resources.device, encoder)
    for path, key in ((folders.face, "face"), (folders.plus, "plus")):
        cache.put(str(path), "ip-adapter-state", "float32", "cpu", models[key])


def backend_class(smoke: bool) -> type:
    from comic_studio.backends.racig import RacigBackend

    if not smoke:
        return RacigBackend

    class OffloadingOnCpu(RacigBackend):
        """Smoke: the CPU stands in for the GPU, so whole-model offload runs its accelerate hooks."""

        @property
        def offloads(self) -> bool:
            return self.resources.memory_mode_for(self) != "gpu"

    return OffloadingOnCpu


def run_mode(mode: str, args: argparse.Namespace, models: dict[str, Any], folders: Folders, device: str) -> dict:
    import torch
    from test_racig_support import REFS, panel_request

    from comic_studio.backends.racig.adapters import reference_images_setting
    from comic_studio.generation.resources import EngineResources
    from comic_studio.generation.settings import EngineSettings

    resources = EngineResources(EngineSettings(device=device, dtype=args.dtype, memory_mode=mode))
    backend = backend_class(args.smoke)()
    backend.bind_resources(resources)
    refs = reference_images_setting(REFS[:4])  # 2 characters × (face, outfit)
    settings = folders.settings(steps=args.steps, size="panel" if args.smoke else "sdxl")
    width, height = (160, 96) if args.smoke else (1344, 768)
    out: dict[str, Any] = {"mode": mode, "oom": False}
    times: list[float] = []
    try:
        stock(models, folders, resources, "cpu" if mode != "gpu" else device)  # under the cap too
        if device == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        for run in range(args.runs + 1):  # the first embeds the references and warms up
            request = panel_request({**settings, "reference_images": refs}, n=2, width=width, height=height, seed=run)
            start = time.perf_counter()
            backend.generate(request)
            _sync(device)
            times.append(time.perf_counter() - start)
    except Exception as exc:
        if "out of memory" not in str(exc).lower():
            raise
        out.update(oom=True, error=str(exc).splitlines()[0][:300])
    if times[1:]:
        out["s_per_panel"] = round(statistics.median(times[1:]), 3)
    if times:
        out["first_panel_s"] = round(times[0], 3)
    if device == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 3)
        out["resident_after_gib"] = round(torch.cuda.memory_allocated() / GIB, 3)
    encoder = resources.models.peek(str(folders.encoder), "ip-image-encoder", args.dtype, device)
    out["encoder_rests_on"] = encoder.model.device.type if encoder is not None else None
    out["vae_upcast"] = bool(models["sdxl"]["vae"].config.force_upcast)
    del backend, resources
    gc.collect()
    return out


def engine_vs_raw(args: argparse.Namespace, models: dict[str, Any], folders: Folders, device: str) -> dict:
    """it/s between step callbacks (steps 2..N) of a stock StableDiffusionXLControlNetPipeline and of
    the engine's racig job on the same objects, no references, uncapped, ``gpu`` mode."""
    import torch
    from diffusers import StableDiffusionXLControlNetPipeline
    from test_racig_support import panel_request

    from comic_studio.backends._diffusers.schedulers import make_scheduler
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.registry import register_backend, unregister_backend
    from comic_studio.generation.settings import EngineSettings

    size = 128 if args.smoke else 1024
    engine = Engine(EngineSettings(device=device, dtype=args.dtype, memory_mode="gpu"))
    stock(models, folders, engine.resources, device)
    register_backend("racig", backend_class(args.smoke))
    request = panel_request(folders.settings(steps=args.steps, scheduler="Euler", size="panel"), n=2, refs=False,
                            width=size, height=size)  # fmt: skip
    engine_steps = EngineSteps(engine)
    probe = backend_class(args.smoke)()
    probe.bind_resources(engine.resources)
    cond = probe.conditioning(request, probe.job_settings(request), (size, size))
    parts = models["sdxl"]
    pipe = StableDiffusionXLControlNetPipeline(**parts, controlnet=models["controlnet"], add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)

    def raw_run() -> float:
        stamps: list[float] = []

        def cb(_pipe: Any, _i: int, _t: Any, tensors: dict) -> dict:
            _sync(device)
            stamps.append(time.perf_counter())
            return tensors

        pipe.scheduler = make_scheduler("Euler", parts["scheduler"].config, seed=1)
        pipe(request.prompt, image=cond.control_image, controlnet_conditioning_scale=0.7, height=size, width=size,
             num_inference_steps=args.steps, guidance_scale=2.5, generator=torch.Generator("cpu").manual_seed(1),
             callback_on_step_end=cb)  # fmt: skip
        return steps_per_second(stamps)

    def engine_run() -> float:
        return engine_steps.run(request)[1]

    try:
        raw_run(), engine_run()  # warm-up
        raw = [raw_run() for _ in range(args.runs)]
        ours = [engine_run() for _ in range(args.runs)]
    finally:
        engine.shutdown()
        unregister_backend("racig")
    return {"size": size, "raw_its": round(statistics.median(raw), 3), "engine_its": round(statistics.median(ours), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap-gib", type=float, default=12.0, help="GPU memory cap for the mode runs (GiB)")
    ap.add_argument("--steps", type=int, default=17, help="racig's preset: 17 steps of DPM++ SDE")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--stock-vae", action="store_true", help="SDXL's own VAE (float32 decodes) instead of fp16-fix")
    ap.add_argument("--skip-its", action="store_true", help="no engine vs raw it/s comparison")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny architecture, seconds (tests)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.steps, args.runs, args.dtype = 2, 1, "float32"

    import torch

    from comic_studio.backends.racig import RacigBackend
    from comic_studio.generation.settings import choose_memory_mode

    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        print("no CUDA GPU: use --smoke for a CPU check", file=sys.stderr)
        raise SystemExit(2)
    start = time.perf_counter()
    models = build_models(args.smoke, getattr(torch, args.dtype), device)
    if device == "cuda":
        torch.cuda.empty_cache()  # the float32 originals are gone; the cap below counts from here
    if not args.stock_vae:
        models["sdxl"]["vae"].register_to_config(force_upcast=False)  # as the fp16-fix VAE's config says
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "smoke": args.smoke,
        "dtype": args.dtype, "steps": args.steps, "runs": args.runs, "cap_gib": args.cap_gib,
        "build_s": round(time.perf_counter() - start, 1),
        "params_m": {k: round(sum(p.numel() for p in models[k].parameters()) / 1e6, 1) for k in ("controlnet", "encoder")}
        | {"unet": round(sum(p.numel() for p in models["sdxl"]["unet"].parameters()) / 1e6, 1),
           "adapters": round(sum(v.numel() for k in ("face", "plus") for d in models[k].values() for v in d.values()) / 1e6, 1)},
        "declared_vram_gb": dict(RacigBackend.vram_gb),
        "auto_mode": choose_memory_mode(args.cap_gib, RacigBackend.vram_gb),
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folders = Folders(Path(tmp), models, args.smoke)
        if not args.skip_its:
            result["engine_vs_raw"] = engine_vs_raw(args, models, folders, device)
        if device == "cuda":
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib * GIB / total))
        runs = []
        for mode in args.modes.split(","):
            if args.smoke and mode == "sequential-offload":
                runs.append({"mode": mode, "skipped": "accelerate's layer-by-layer offload cannot be emulated on "
                             "the CPU (weights already there are taken for tied ones); GPU only"})  # fmt: skip
                continue
            runs.append(run_mode(mode, args, models, folders, device))
            print(f"{mode}: {runs[-1]}", file=sys.stderr)
        result["modes"] = runs
    fits = [r for r in runs if r["mode"] == result["auto_mode"]]
    if fits and "oom" in fits[0]:
        result["auto_mode_fits"] = not fits[0]["oom"]
    emit_result(result, args.out)
    return result


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
