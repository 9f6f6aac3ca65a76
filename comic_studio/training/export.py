"""A trained LoRA as files other tools load: diffusers' layout, kohya's layout, and a card.

- ``NAME.safetensors``: diffusers/peft keys (``unet.…lora_A.weight``), what
  ``pipe.load_lora_weights`` and this app's LoRA setting read;
- ``NAME.kohya.safetensors``: ``lora_unet_…`` keys (``lora_te1_…``/``lora_te2_…`` for a text-encoder
  LoRA) with ``.alpha``, what A1111, ComfyUI and kohya's
  scripts load (converted with diffusers' own ``convert_state_dict_to_kohya``, as diffusers'
  DreamBooth-LoRA script does with ``--output_kohya_format``);
- ``NAME.json``: the card — base model, trigger words, recipe, steps, the pictures' hashes and the
  files' sha256 — so a LoRA can always be traced to what made it.

Each file is written atomically: a full disk never leaves half a LoRA behind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text
from comic_studio.core.safe_read import parse_json

CARD_KEY = "comic_studio.card"
"""The safetensors metadata key holding the card, so the LoRA file alone says what made it."""


@dataclass(frozen=True)
class LoraFiles:
    diffusers: Path
    kohya: Path
    card: Path


def save_lora(folder: str | Path, name: str, state: dict[str, Any], card: dict[str, Any]) -> LoraFiles:
    """Write ``state`` (diffusers layout, ``unet.``-prefixed, plus ``text_encoder.``/``text_encoder_2.``
    keys when the text encoders were trained) as the three files; return their paths."""
    from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya
    from safetensors.torch import save

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = LoraFiles(out / f"{name}.safetensors", out / f"{name}.kohya.safetensors", out / f"{name}.json")
    meta = {"format": "pt", CARD_KEY: json.dumps(card)}
    # Serialised in memory, written by Python: a full disk is an OSError naming the file (safetensors'
    # own writer raises a bare SafetensorError), and nothing half-written stays behind.
    atomic_write_bytes(files.diffusers, save(state, metadata=meta), "the LoRA")
    # The UNet's keys (``lora.down``) and the text encoders' (``lora_linear_layer.down``) are two
    # diffusers layouts; the converter infers one layout per call, so each part is converted alone.
    unet_part = {k: v for k, v in state.items() if k.startswith("unet.")}
    text_part = {k: v for k, v in state.items() if not k.startswith("unet.")}
    peft_state = {
        k: v for part in (unet_part, text_part) if part for k, v in convert_all_state_dict_to_peft(part).items()
    }
    kohya = {k: v.contiguous() for k, v in convert_state_dict_to_kohya(peft_state).items()}
    atomic_write_bytes(files.kohya, save(kohya, metadata=meta), "the LoRA (kohya format)")
    full_card = {
        **card,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {
            "diffusers": {"name": files.diffusers.name, "sha256": file_sha256(files.diffusers)},
            "kohya": {"name": files.kohya.name, "sha256": file_sha256(files.kohya)},
        },
    }
    atomic_write_text(files.card, json.dumps(full_card, indent=2), "the LoRA card")
    return files


def file_sha256(path: Path) -> str:
    """sha256 of a file's contents, read in 1 MB blocks (a base model is gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(data: bytes) -> dict[str, Any]:
    """The card in a LoRA file's safetensors metadata (``{}`` when it has none). Reads only the
    header; raises ``ValueError`` (or :class:`UnsafeInputError`) for bytes that are not one."""
    if len(data) < 8:
        raise ValueError("not a safetensors file")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, 100_000_000):
        raise ValueError("not a safetensors file")
    header = parse_json(data[8 : 8 + size], where="the LoRA's header", limit=size)
    card = (header.get("__metadata__") or {}).get(CARD_KEY) if isinstance(header, dict) else None
    return parse_json(card, where="the LoRA's card") if isinstance(card, str) else {}
