"""Long prompts on the tiny kit: a generation with a prompt that fits one CLIP window (stock diffusers
encoding) vs one of three windows (our windowed encoding), and the encoding alone. Prints JSON.

    python bench/long_prompt.py [--runs 7] [--steps 4] [--size 64] [--threads 1] [--kit DIR] [--out FILE]

* ``fits_s`` / ``windows_3_s``: median wall time of ``SdxlBackend.generate`` (the real job path:
  ``apply_long_prompt`` leaves the fitting prompt to diffusers and windows the long one), runs
  alternated so load drifts hit both; ``ratio_3_vs_fits``. Both prompts fill their windows (75
  tokens; 3 × 75 minus a few), with the same short negative prompt (padded to 3 windows for the
  long one, as classifier-free guidance needs).
* ``encode_ms``: the windowed encoding of one text of 1, 2 and 3 windows through both text encoders
  (``encode_windows``), ``stock_encode_ms_1_window``: diffusers' own ``encode_prompt`` of the
  fitting prompt (no guidance half), and ``apply_long_prompt_ms_3_windows``: what a 3-window job
  pays before denoising (prompt and negative).

The tiny kit's tokenizer makes one token per character, so the prompts are short in words; the
window count is what the cost depends on. Its text encoders and UNet are toy-sized, so the ratio
shows the share of the extra encoding and of cross-attention over 3 × 77 tokens next to a toy UNet,
not SDXL's (where the UNet dominates and the ratio is closer to 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import _timed, emit_result  # noqa: E402

TEXT = ("ana hands ben a brass key on the windy pier at dusk while gulls circle the mast, ana: tall woman with "
        "a red scarf, a green raincoat and short curly auburn hair, ben: short man in a grey wool cap, a navy "
        "peacoat and heavy boots, the lighthouse behind them throws a long beam over the waves, rain on the "
        "planks, lanterns swinging, ink and flat colour, bold outlines, comic panel, dramatic lighting")  # fmt: skip
NEGATIVE = "blurry, low quality, watermark"


def prompt_of_windows(pipe, windows: int) -> str:
    """The longest word prefix of :data:`TEXT` that needs exactly ``windows`` CLIP windows."""
    from comic_studio.backends._diffusers.long_prompt import windows_needed

    words, best = TEXT.split(), ""
    for end in range(1, len(words) + 1):
        text = " ".join(words[:end])
        need = windows_needed(pipe, text, None)
        if need == windows:
            best = text
        elif need > windows:
            break
    if not best or windows_needed(pipe, best, None) != windows:
        raise ValueError(f"bench/long_prompt.py: TEXT is too short for {windows} windows with this tokenizer")
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--kit", help="tiny kit folder (default: a temporary one)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from comic_studio.backends._diffusers.long_prompt import apply_long_prompt, encode_windows, token_ids
    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.generation.request import GenerationRequest
    from comic_studio.testing.tiny import build_tiny_kit

    with tempfile.TemporaryDirectory() as tmp:
        kit = build_tiny_kit(Path(args.kit) if args.kit else Path(tmp) / "kit")
        backend = SdxlBackend()
        settings = {"model": str(kit.sdxl), "steps": args.steps, "preview_every": 0}

        def request(prompt: str) -> GenerationRequest:
            return GenerationRequest(backend="sdxl", backend_settings=settings, prompt=prompt, negative_prompt=NEGATIVE,
                                     seed=1, width=args.size, height=args.size)  # fmt: skip

        pipe, _call = backend.prepare_call(request(""), backend.validate_settings(settings))
        prompts = {w: prompt_of_windows(pipe, w) for w in (1, 2, 3)}
        fits, long = request(prompts[1]), request(prompts[3])
        backend.generate(fits), backend.generate(long)  # warm-up: loads the kit into the model cache
        times: dict[str, list[float]] = {"fits": [], "windows_3": []}
        for _ in range(args.runs):
            times["fits"].append(_timed(backend.generate, fits)[0])
            times["windows_3"].append(_timed(backend.generate, long)[0])

        def median_ms(fn, *fn_args) -> float:
            with torch.no_grad():
                fn(*fn_args)  # warm-up
                return round(statistics.median(_timed(fn, *fn_args)[0] for _ in range(args.runs)) * 1e3, 3)

        encode_ms = {str(w): median_ms(encode_windows, pipe, prompts[w], w) for w in (1, 2, 3)}
        stock_ms = median_ms(lambda: pipe.encode_prompt(prompts[1], do_classifier_free_guidance=False))
        apply_ms = median_ms(lambda: apply_long_prompt(pipe, {"prompt": prompts[3], "negative_prompt": NEGATIVE}))
        tokens = {str(w): len(token_ids(pipe.tokenizer, p)) for w, p in prompts.items()}

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "device": "cpu", "threads": torch.get_num_threads(), "size": args.size, "steps": args.steps, "runs": args.runs,
        "components": "tiny kit (SDXL architecture, toy width)", "prompt_tokens_by_windows": tokens,
        "fits_s": round(med["fits"], 4), "windows_3_s": round(med["windows_3"], 4),
        "ratio_3_vs_fits": round(med["windows_3"] / med["fits"], 3),
        "encode_ms": encode_ms, "stock_encode_ms_1_window": stock_ms,
        "windowed_1_vs_stock": round(encode_ms["1"] / stock_ms, 3),
        "apply_long_prompt_ms_3_windows": apply_ms,
    }  # fmt: skip
    emit_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
