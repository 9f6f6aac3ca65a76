"""Write the CLIP BPE tokenizer files (``vocab.json`` + ``merges.txt``) bundled with the SDXL config.

Why: single-file SDXL checkpoints (A1111 / ComfyUI ``.safetensors``) carry weights only; the two
tokenizers must come from somewhere, and the app must work offline. SDXL's ``tokenizer`` and
``tokenizer_2`` are both OpenAI's CLIP BPE tokenizer (49,408 tokens; ``tokenizer_2`` only pads with
``!``), so one pair of files serves both (see ``comic_studio/resources/sdxl/README.md``).

Where the data comes from: ``bpe_simple_vocab_16e6.txt.gz``, OpenAI's CLIP BPE merge list
(https://github.com/openai/CLIP, MIT licence, Copyright (c) 2021 OpenAI), shipped unchanged inside
the ``open_clip_torch`` wheel on PyPI (also MIT). The transformation below is the one CLIP's own
``SimpleTokenizer`` performs at start-up, written out in the Hugging Face file format: the 256
byte symbols, the same with the end-of-word mark ``</w>``, one token per merge (the first
49152 - 256 - 2 = 48,894 merges), then ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

Regenerate (deterministic; byte-identical output for the same input file):

    pip download open_clip_torch==3.3.0 --no-deps -d /tmp/oc
    unzip -o /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl 'open_clip/bpe_simple_vocab_16e6.txt.gz' -d /tmp/oc
    python packaging/sdxl/make_clip_tokenizer.py /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz \
        comic_studio/resources/sdxl/base-1.0/tokenizer

The input used for the bundled files has sha256
924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a (open_clip_torch 3.3.0).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

MERGES = 49152 - 256 - 2
"""CLIP keeps the first 48,894 merges of the file, so that the vocabulary has 49,408 entries."""
SPECIAL = ("<|startoftext|>", "<|endoftext|>")
VOCAB_SIZE = 2 * 256 + MERGES + len(SPECIAL)


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible byte → printable character table."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def build(bpe_gz: Path) -> tuple[dict[str, int], list[str]]:
    """(vocabulary token → id, merge lines) exactly as CLIP's SimpleTokenizer builds them."""
    lines = gzip.decompress(bpe_gz.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : MERGES + 1]  # line 0 is the "#version" header
    if len(merges) != MERGES or any(len(m.split()) != 2 for m in merges):
        raise SystemExit(f"{bpe_gz}: not CLIP's BPE merge list (expected {MERGES} 'a b' lines after the header)")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + list(SPECIAL)
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise SystemExit(f"{bpe_gz}: the vocabulary has {len(vocab)} distinct tokens, expected {VOCAB_SIZE}")
    return vocab, merges


def write(vocab: dict[str, int], merges: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # Compact, key order = id order: the same layout as the published CLIP vocab.json files.
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, out = Path(argv[0]), Path(argv[1])
    vocab, merges = build(source)
    write(vocab, merges, out)
    for name in ("vocab.json", "merges.txt"):
        data = (out / name).read_bytes()
        print(f"{out / name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
