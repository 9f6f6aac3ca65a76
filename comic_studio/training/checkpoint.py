"""Training checkpoints that resume bit for bit, in one file, without pickles.

A checkpoint holds everything the next step depends on: the trained weights, the optimizer and
learning-rate schedule, the gradients accumulated so far (a cancel may land inside a gradient
accumulation), every random number generator (Python's, NumPy's, torch's global one and the
trainer's own noise, timestep and data-order generators), the data order and the step counters.

The file is a ``.safetensors``: every tensor is stored under a generated key and the structure
around them (numbers, strings, lists, dicts with any keys) is JSON in the file's metadata. Loading
never unpickles anything (a checkpoint from a shared folder cannot run code), and the file is
written atomically (:mod:`comic_studio.core.atomic`): a full disk or a kill mid-write leaves the
previous checkpoint as it was.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError

_STRUCTURE = "comic_studio.training_state"
_FORMAT = 1


class CheckpointError(ComicStudioError):
    """A training checkpoint cannot be written or read (the message names the file)."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists/tuples of tensors, numbers, strings, bools, None)."""
    from safetensors.torch import save

    target = Path(path)
    tensors: dict[str, Any] = {}
    structure = _encode(state, tensors)
    metadata = {_STRUCTURE: json.dumps({"format": _FORMAT, "state": structure})}
    # Serialised in memory (a LoRA's state is megabytes), then written by Python: a full disk is an
    # OSError naming the file, where safetensors' own writer raises a bare SafetensorError.
    data = save(tensors, metadata=metadata)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data, "the training checkpoint")
    except OSError as exc:
        raise CheckpointError(
            f"{target}: cannot write the training checkpoint ({exc.strerror or exc}); "
            "the previous checkpoint is kept — free some space and resume"
        ) from exc
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state written by :func:`save_checkpoint` (tensors on the CPU)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    source = Path(path)
    try:
        with safe_open(str(source), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(source))
        document = json.loads(metadata[_STRUCTURE])
    except FileNotFoundError as exc:
        raise CheckpointError(f"{source}: no training checkpoint there") from exc
    except (OSError, SafetensorError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{source}: not a readable training checkpoint ({exc})") from exc
    if document.get("format") != _FORMAT:
        raise CheckpointError(f"{source}: a training checkpoint of format {document.get('format')!r}, not {_FORMAT}")
    try:
        return _decode(document["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: the training checkpoint is damaged ({exc})") from exc


def _encode(value: Any, tensors: dict[str, Any]) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _encode(v, tensors) for k, v in value.items()}}
        return {"__pairs__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a training checkpoint cannot hold a {type(value).__name__}")


def _decode(value: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}
        if "__pairs__" in value:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__pairs__"]}
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        raise ValueError(f"unknown entry {sorted(value)[:3]}")
    return value


# ------------------------------------------------------------------------------ random generators


def capture_global_rngs() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global generators (and CUDA's, when present)."""
    import numpy as np
    import torch

    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_global_rngs(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
