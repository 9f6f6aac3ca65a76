"""Evaluation cost: metric seconds per panel, and ``comic-studio eval`` wall time. Prints JSON.

    python bench/eval_methods.py [--panels 10] [--backends storyboard,sdxl,consistent] [--out r.json]
    python bench/eval_methods.py --full     # adds the metric cost with ViT-H-14 (random weights, CPU)

* ``metric_s_per_panel``: :meth:`Scorer.score_panel` on the storyboard renders of ``--panels`` panels
  of the sample story with the tiny OpenCLIP model (the tiny kit's), with the person segmenter and
  the MediaPipe pose detector when installed (``pose_detector`` says which ran). The first panel (cold:
  MediaPipe's graph start, the text tower's first call) is reported apart from the rest (warm, the
  feature cache empty: every picture is encoded). ``cached_s_per_panel``: the same panels again,
  every CLIP feature read from the on-disk cache (the segmenter and the detector run again).
* ``*_cpu_s``: the process's CPU time over the same span (all its threads): on a shared machine the
  wall time also counts waiting for a core.
* ``eval_wall_s``: :func:`comic_studio.workflows.evaluation.evaluate` — the ``eval`` command's work —
  for those panels × ``--backends`` on the tiny kit (``--models tiny``: tiny SDXL at 4 steps, max
  side 256), renders and metrics; ``render_s`` / ``metric_s`` per backend from the report.
* ``--full``: the metric cost per panel with ``open_clip.create_model("ViT-H-14")`` — the catalogue's
  default model, the seeds' ViT-H/14 — built with random weights (the compute is the real model's)
  in an :class:`OpenClipEmbedder`. Not part of ``make bench`` (~4 GB of memory, minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import emit_result  # noqa: E402


def _document(n_panels: int):
    from comic_studio.core.character_file import load_characters
    from comic_studio.core.resources import resource
    from comic_studio.testing.tiny import character_picture
    from comic_studio.workflows.batch import DEMO_CHARACTERS, DEMO_STORY
    from comic_studio.workflows.story import story_to_document

    doc = story_to_document(
        resource(*DEMO_STORY).read_text(encoding="utf-8"), load_characters(resource(*DEMO_CHARACTERS))
    )
    import io

    for seed, character in enumerate(doc.project.characters):  # one reference each, so CLIP-I runs
        buffer = io.BytesIO()
        character_picture(seed, 64, 96).save(buffer, format="PNG")
        character.face_refs = [doc.assets.add(buffer.getvalue())]
    panels = [p for page in doc.project.pages for p in page.panels_in_order()][:n_panels]
    return doc, panels


def _metric_cost(embedder, doc, panels, cache: Path) -> dict:
    from comic_studio.core.safe_read import decode_image
    from comic_studio.evaluation.scoring import Scorer
    from comic_studio.generation.request import GenerationRequest
    from comic_studio.workflows.batch import render_panel
    from comic_studio.workflows.evaluation import references_of

    renders = []
    for panel in panels:
        result = render_panel(doc, panel.id, "storyboard")
        request = GenerationRequest.from_dict(result.request)
        renders.append(
            (decode_image(doc.assets.get(result.asset), where="bench"), request, references_of(doc, request))
        )
    scorer = Scorer(embedder, cache)
    times, cpu = [], []
    for image, request, refs in renders:
        t0, c0 = time.perf_counter(), time.process_time()
        scorer.score_panel(image, request, refs)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    again = Scorer(embedder, cache)
    cached = []
    for image, request, refs in renders:
        t0 = time.perf_counter()
        again.score_panel(image, request, refs)
        cached.append(time.perf_counter() - t0)
    return {
        "panels": len(renders),
        "characters_per_panel": statistics.mean(len(r[1].characters) for r in renders),
        "pose_detector": scorer.detector,
        "first_panel_s": round(times[0], 3),
        "metric_s_per_panel": round(statistics.mean(times[1:] or times), 3),
        "metric_cpu_s_per_panel": round(statistics.mean(cpu[1:] or cpu), 3),
        "cached_s_per_panel": round(statistics.mean(cached[1:] or cached), 3),
    }


def _vit_h(arch: str):
    import open_clip
    import torch
    from open_clip.model import get_model_preprocess_cfg
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from comic_studio.poses.openclip_embedder import OpenClipEmbedder, quiet_random_init

    with quiet_random_init():
        model = open_clip.create_model(arch, pretrained=None).eval()
    torch.set_grad_enabled(False)
    preprocess = image_transform_v2(PreprocessCfg(**get_model_preprocess_cfg(model)), is_train=False)
    return OpenClipEmbedder(model, open_clip.get_tokenizer(arch), preprocess, f"random-{arch}", f"random-{arch}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=10)
    parser.add_argument("--backends", default="storyboard,sdxl,consistent")
    parser.add_argument("--full", action="store_true", help="also time ViT-H-14 (random weights) on the CPU")
    parser.add_argument("--full-arch", default="ViT-H-14")
    parser.add_argument("--skip-eval", action="store_true", help="only the metric cost")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    from comic_studio.evaluation.scoring import Scorer
    from comic_studio.poses.openclip_embedder import OpenClipEmbedder
    from comic_studio.testing.tiny import use_tiny_models
    from comic_studio.testing.tiny_eval import tiny_clip_weights
    from comic_studio.workflows.evaluation import evaluate, parse_backends

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = OpenClipEmbedder.load(tiny_clip_weights(root / "models"), model_id="tiny-eval")
        doc, panels = _document(args.panels)
        out["tiny_clip"] = _metric_cost(tiny, doc, panels, root / "cache-tiny")
        if args.full:
            t0 = time.perf_counter()
            big = _vit_h(args.full_arch)
            out["full_clip"] = {"arch": args.full_arch, "build_s": round(time.perf_counter() - t0, 1)}
            out["full_clip"] |= _metric_cost(big, *_document(args.panels), root / "cache-full")
            del big
        if not args.skip_eval:
            use_tiny_models(root / "kit")
            doc, panels = _document(args.panels)
            backends = parse_backends(args.backends)
            t0, c0 = time.perf_counter(), time.process_time()
            report, _json, _html = evaluate(doc, panels, backends, Scorer(tiny, root / "cache-eval"), root / "report",
                                            project_name="bench", clip_model="tiny-eval", dry=True)  # fmt: skip
            out["eval"] = {
                "panels": len(panels), "backends": backends, "eval_wall_s": round(time.perf_counter() - t0, 1),
                "eval_cpu_s": round(time.process_time() - c0, 1),
                "per_backend": {b.backend: {"render_s": round(b.render_seconds, 1), "metric_s": round(b.metric_seconds, 1),
                                            "failed": b.failed} for b in report.backends},
            }  # fmt: skip
    emit_result(out, args.out)
    return out


if __name__ == "__main__":
    main()
