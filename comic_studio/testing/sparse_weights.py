"""Full-size weights files in the real single-file layouts, written sparse (no disk cost).

The tensor names, shapes and dtypes are those of the model built (on the meta device) from the
config bundled for a catalogue entry; the data is a hole the file system never stores, so a test can
hold a 2.5 GB ControlNet whose header is exactly what the download's header describes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from comic_studio.weights.architecture import bundled_config, read_config

CONTROLNET, ENCODER, VAE = "controlnet-openpose-sdxl", "clip-vit-h-image-encoder", "sdxl-vae-fp16-fix"
DTYPE_BYTES = {"F16": 2, "F32": 4, "I64": 8}


def real_shapes(entry_id: str, **changes: object) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of the model built (on the meta device) from its bundled config."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = bundled_config(entry_id)
    assert folder is not None, entry_id
    config = {**read_config(folder), **changes}
    with torch.device("meta"):
        if entry_id == CONTROLNET:
            model = ControlNetModel.from_config(config)
        elif entry_id == VAE:
            model = AutoencoderKL.from_config(config)
        else:
            model = CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def write_sparse_safetensors(
    path: Path, shapes: dict[str, tuple[int, ...]], dtype: str, size: int | None = None
) -> Path:
    """A valid safetensors file of zeros; ``size``: pad the header so the file has exactly this size."""
    header: dict[str, object] = {}
    offset = 0
    for name, shape in sorted(shapes.items()):
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        kind = "I64" if name.endswith("position_ids") else dtype
        n = n // DTYPE_BYTES[dtype] * DTYPE_BYTES[kind]
        header[name] = {"dtype": kind, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    length = len(raw) + (-len(raw)) % 8
    if size is not None:
        length = size - 8 - offset
        assert length >= len(raw)
    raw = raw + b" " * (length - len(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return path
