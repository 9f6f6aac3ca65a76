"""OpenCLIP pose retrieval: encoding rates, the picture-feature cache, search latency. Prints JSON.

    python bench/openclip_poses.py [--pictures 48] [--queries 40] [--threads 1] [--out r.json]
    python bench/openclip_poses.py --full      # adds ViT-H-14's real architecture (random weights, CPU)

No CLIP weights can be downloaded here, so the main run uses a tiny random OpenCLIP model (the toy
config of tests/poses/test_openclip_retrieval.py) written to disk in the laion layout
(``open_clip_config.json`` + ``open_clip_model.safetensors``) and loaded by the real loader:

* ``images_per_s`` / ``text_queries_per_s``: :class:`OpenClipEmbedder` on decoded pictures (its own
  preprocessing included) and on one query per call, as ``search`` encodes a new action;
  ``text_batched_per_s``: all queries in one call, as ``prepare`` does before "render all". At toy
  width the image rate is mostly the preprocessing (resize, crop, normalise), not the tower.
* ``first_build_s`` / ``second_build_s``: a :class:`PoseRetriever` over the bundled library plus
  ``--pictures`` pictured one-figure entries (distinct synthetic PNGs). The first build encodes
  every picture and the bundled captions; the second must read both from the disk caches
  (``second_build_encoded_images`` 0), ``cache_speedup`` = first / second.
* ``search_ms_*``: per query among the pictured entries, a new text each time (includes encoding
  it) and a repeated text (memoised query: only the dot products and the sort).

The toy model runs on one torch thread by default: its ops last microseconds, and with two threads on
a busy two-core machine each call can wait tens of milliseconds for the second thread to be scheduled
(measured: 0.4 ms vs 72 ms per query), which would time the machine's load, not the code.

``--full`` builds ``open_clip.create_model("ViT-H-14", pretrained=None)`` (the catalogue's default
model, ~1 B parameters, random weights: the real compute cost) and reports its images/s and
queries/s on the CPU (``--full-arch`` picks another open_clip architecture). Not part of ``make bench``
(a minute or more, ~4 GB of memory).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import _timed, emit_result  # noqa: E402

TINY_ARCH = "bench-tiny-pose-clip"
PICTURE_SIZES = ((320, 480), (480, 320), (400, 400), (256, 512))
"""Photo-like shapes: portrait, landscape, square, tall; the preprocessing resizes and crops each."""


def synthetic_pictures(n: int, seed: int = 0) -> list:
    """``n`` distinct RGB pictures (noise plus a few shapes) in the sizes of :data:`PICTURE_SIZES`."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = PICTURE_SIZES[i % len(PICTURE_SIZES)]
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            draw.ellipse((x0, y0, x0 + w // 3, y0 + h // 3), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        out.append(im)
    return out


def pictured_entries(pictures: list, folder: Path) -> list:
    """One-figure entries of the bundled library, each given one of ``pictures`` (saved as PNG) as
    its picture, as a photo-folder import would: these are the entries ranked by picture."""
    from comic_studio.poses.library import load_library

    folder.mkdir(parents=True, exist_ok=True)
    singles = [e for e in load_library() if e.n_figures == 1]
    out = []
    for i, im in enumerate(pictures):
        path = folder / f"picture-{i:04d}.png"
        im.save(path)
        out.append(replace(singles[i % len(singles)], id=f"user:bench/picture-{i:04d}", image=str(path)))
    return out


def _per_item_rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else float("inf")


def encoding_rates(clip, pictures: list, queries: list[str]) -> dict:
    """Images/s and queries/s of ``clip`` (after one warm-up call of each kind)."""
    clip.encode_images(pictures[:1])
    clip.encode_text(queries[:1])
    image_s, _ = _timed(clip.encode_images, pictures)
    single_s = sum(_timed(clip.encode_text, [q])[0] for q in queries)
    batched_s, _ = _timed(clip.encode_text, queries)
    return {
        "images": len(pictures), "images_per_s": _per_item_rate(len(pictures), image_s),
        "queries": len(queries), "text_queries_per_s": _per_item_rate(len(queries), single_s),
        "text_batched_per_s": _per_item_rate(len(queries), batched_s),
    }  # fmt: skip


def full_size(images: int, queries: list[str], arch: str = "ViT-H-14") -> dict:
    """An open_clip architecture (``ViT-H-14``) at its real size with random weights, through
    :class:`OpenClipEmbedder`."""
    import open_clip

    from comic_studio.poses.openclip_embedder import OpenClipEmbedder, quiet_random_init

    with quiet_random_init():
        build_s, (model, _, preprocess) = _timed(open_clip.create_model_and_transforms, arch, pretrained=None)
    model.eval()
    clip = OpenClipEmbedder(model, open_clip.get_tokenizer(arch), preprocess, f"{arch}-random", "bench-random")
    params = sum(p.numel() for p in model.parameters())
    rates = encoding_rates(clip, synthetic_pictures(images, seed=1), queries)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the whole process, toy model included
    return {"arch": arch, "weights": "random", "params_m": round(params / 1e6, 1), "build_s": round(build_s, 2),
            "dim": clip.dim, **rates, "process_peak_rss_mb": round(peak_mb)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, default=48, help="pictured entries (and images encoded)")
    ap.add_argument("--queries", type=int, default=40, help="distinct text queries")
    ap.add_argument("--repeats", type=int, default=200, help="searches of one memoised query")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for the tiny model (0 = torch's default)")
    ap.add_argument("--full", action="store_true", help="also a full-size architecture, random weights (slow)")
    ap.add_argument("--full-arch", default="ViT-H-14", help="open_clip architecture for --full")
    ap.add_argument("--full-images", type=int, default=4)
    ap.add_argument("--full-queries", type=int, default=4)
    ap.add_argument("--full-threads", type=int, default=0, help="torch CPU threads for --full (0 = torch's default)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    from comic_studio.poses.bench import _queries
    from comic_studio.poses.library import load_library
    from comic_studio.poses.openclip_embedder import OpenClipEmbedder
    from comic_studio.poses.retrieval import PoseRetriever
    from comic_studio.testing.tiny import write_tiny_openclip

    queries = [text for text, _n in _queries(args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights, _model, _preprocess = write_tiny_openclip(root / "models" / "tiny-openclip", arch=TINY_ARCH)
        load_s, clip = _timed(OpenClipEmbedder.load, weights, model_id="bench-tiny-openclip")
        pictures = synthetic_pictures(args.pictures)
        rates = encoding_rates(clip, pictures, queries)

        entries = load_library() + pictured_entries(pictures, root / "pictures")
        cache, no_user_poses = root / "cache", root / "user-poses"

        def build() -> PoseRetriever:
            return PoseRetriever(entries, embedder="openclip", cache_dir=cache, clip_model=clip, user_dir=no_user_poses)

        first_s, first = _timed(build)
        second_s, second = _timed(build)
        if first.encoded_images != args.pictures or second.encoded_images != 0:
            raise RuntimeError(f"picture cache: first build encoded {first.encoded_images} of {args.pictures} "
                               f"pictures, the second {second.encoded_images} (expected 0)")  # fmt: skip
        fresh = [f"{q}, seen from the side" for q in queries]  # not memoised by the warm-up below
        second.search(queries[0], 1)
        new_ms = [_timed(second.search, q, 1)[0] * 1e3 for q in fresh]
        repeat_ms = [_timed(second.search, queries[0], 1)[0] * 1e3 for _ in range(args.repeats)]
        ranked = second.search(queries[0], 1, k=args.pictures + 10)
        if {e.image is not None for e, _s in ranked} != {True} or len(ranked) != args.pictures:
            raise RuntimeError("a one-figure search must rank exactly the pictured entries")

    result: dict = {
        "device": "cpu", "threads": torch.get_num_threads(),
        "tiny_model": {"arch": "toy OpenCLIP: 1-layer towers of width 32, 32 px images", "load_s": round(load_s, 3),
                       "dim": clip.dim, **rates},
        "library_entries": len(entries), "pictured_entries": args.pictures,
        "first_build_s": round(first_s, 3), "first_build_encoded_images": first.encoded_images,
        "first_build_embedded_captions": first.embedded_captions,
        "second_build_s": round(second_s, 4), "second_build_encoded_images": second.encoded_images,
        "second_build_embedded_captions": second.embedded_captions,
        "cache_speedup": round(first_s / second_s, 1),
        "search_ms_new_query": round(statistics.median(new_ms), 3),
        "search_ms_repeated_query": round(statistics.median(repeat_ms), 4),
    }  # fmt: skip
    if args.full:
        torch.set_num_threads(args.full_threads or default_threads)
        result["full"] = {"threads": torch.get_num_threads(),
                          **full_size(args.full_images, queries[: args.full_queries], args.full_arch)}  # fmt: skip
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
