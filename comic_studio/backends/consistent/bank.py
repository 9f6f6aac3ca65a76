"""IdentityBank: the sampled hidden-state tokens of characters' anchor images, keyed by
(character, level, layer) — the level being the UNet timestep the tokens were recorded at (not the
denoising loop's index: see :class:`~comic_studio.backends.consistent.processors.RunState`).

StoryDiffusion keeps every token of every step on the GPU for the whole run (gigabytes per identity
image). Here only the sampled tokens are kept, in fp16/bf16 on the host by default, and a layer's
tokens go to the device only while that layer reads them. A bank serialises to safetensors bytes, so
the app can store it as a content-addressed project asset and a later single-panel regenerate reads
exactly the tokens the whole-story run used. torch/safetensors are imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.safe_read import UnsafeInputError, read_bytes

BANK_FORMAT = "comic-studio-identity-bank/2"
LEGACY_FORMAT = "comic-studio-identity-bank/1"
"""Version 1 keyed tokens by the denoising loop's index; :meth:`IdentityBank.by_level` converts."""
PRECISIONS = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
BYTES_PER_ELEMENT = {"fp16": 2, "bf16": 2, "fp32": 4}
_SHA = re.compile(r"^[0-9a-f]{64}$")


class BankError(ValueError):
    """A bank could not be read, found or combined; the message says which and why."""


@dataclass
class IdentityBank:
    precision: str = "fp16"
    location: str = "cpu"
    """Where tokens live between reads: "cpu" (default) or a torch device name."""
    meta: dict[str, Any] = field(default_factory=dict)
    """How the bank was made (model, steps, sampler, anchor prompts, seeds, size): recorded, checked by
    the backend against the panel job so a mismatch is an error, not a silent drift."""
    indexed_by: str = "level"
    """"level" (timesteps); "step" only for a version-1 file until :meth:`by_level` converts it."""
    _tokens: dict[tuple[str, float, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BankError(f"bank precision {self.precision!r} is not one of {sorted(PRECISIONS)}")

    # ------------------------------------------------------------------ writing and reading

    def put(self, character: str, level: float, layer: str, tokens: Any) -> None:
        """Add ``tokens`` ``[batch, n, channels]`` recorded at timestep ``level``; a second anchor of
        the same character appends its tokens along ``n``."""
        import torch

        stored = tokens.detach().to(self.location, getattr(torch, PRECISIONS[self.precision]))
        key = (character, _level(level), layer)
        old = self._tokens.get(key)
        self._tokens[key] = stored.contiguous() if old is None else torch.cat([old, stored], dim=1)

    def get(self, character: str, level: float, layer: str) -> Any | None:
        return self._tokens.get((character, _level(level), layer))

    def read(self, characters: Iterable[str], level: float, layer: str, device: Any, dtype: Any) -> Any | None:
        """The tokens of ``characters`` at (level, layer), concatenated and moved to ``device``/``dtype``:
        the only moment bank tokens occupy device memory."""
        return self.read_levels({c: level for c in characters}, layer, device, dtype)

    def read_levels(self, levels: dict[str, float], layer: str, device: Any, dtype: Any) -> Any | None:
        """Like :meth:`read`, each character at its own recorded level (``{character: level}``)."""
        import torch

        parts = [t for c, lv in levels.items() if (t := self._tokens.get((c, _level(lv), layer))) is not None]
        if not parts:
            return None
        batch = max(p.shape[0] for p in parts)
        parts = [p if p.shape[0] == batch else p[-1:].expand(batch, -1, -1) for p in parts]
        return torch.cat([p.to(device=device, dtype=dtype, non_blocking=True) for p in parts], dim=1)

    @property
    def characters(self) -> list[str]:
        return sorted({c for c, _, _ in self._tokens})

    def levels(self, character: str | None = None) -> list[float]:
        """The timesteps tokens were recorded at, highest (noisiest) first."""
        return sorted({s for c, s, _ in self._tokens if character in (None, c)}, reverse=True)

    def keys(self) -> list[tuple[str, int, str]]:
        return sorted(self._tokens)

    def nbytes(self, character: str | None = None) -> int:
        return sum(t.numel() * t.element_size() for (c, _, _), t in self._tokens.items() if character in (None, c))

    def merge(self, other: IdentityBank) -> None:
        """Take over ``other``'s characters (a panel with two characters reads two saved banks)."""
        clash = set(self.characters) & set(other.characters)
        if clash:
            raise BankError(f"both banks hold character(s) {sorted(clash)}")
        for (c, s, layer), t in other._tokens.items():
            self._tokens[(c, s, layer)] = t.to(self.location)

    def only(self, character: str) -> IdentityBank:
        out = IdentityBank(self.precision, self.location, dict(self.meta), self.indexed_by)
        out._tokens = {k: v for k, v in self._tokens.items() if k[0] == character}
        return out

    # ------------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """safetensors bytes; the key index and ``meta`` go in its header. Deterministic — the same
        bank always gives the same bytes, so the same asset hash — which is why the header is written
        here with sorted keys (the safetensors library orders its metadata map arbitrarily)."""
        index = self.keys()
        header: dict[str, Any] = {
            "__metadata__": {
                "format": BANK_FORMAT,
                "precision": self.precision,
                "index": json.dumps([list(k) for k in index]),
                "meta": json.dumps(self.meta, sort_keys=True),
            }
        }
        blobs, offset = [], 0
        for i, key in enumerate(index):
            tensor = self._tokens[key].to("cpu").contiguous()
            blob = tensor.reshape(-1).view(_uint8()).numpy().tobytes()
            header[f"t{i}"] = {
                "dtype": _ST_DTYPES[self.precision],
                "shape": list(tensor.shape),
                "data_offsets": [offset, offset + len(blob)],
            }
            blobs.append(blob)
            offset += len(blob)
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
        return len(text).to_bytes(8, "little") + text + b"".join(blobs)

    @classmethod
    def from_bytes(cls, data: bytes, *, location: str = "cpu", where: str = "identity bank") -> IdentityBank:
        from safetensors.torch import load

        try:
            tensors = load(data)
            header = _header(data)
            if header.get("format") not in (BANK_FORMAT, LEGACY_FORMAT):
                raise BankError(f"{where}: not an identity bank (format {header.get('format')!r})")
            index = json.loads(header["index"])
            indexed_by = "level" if header["format"] == BANK_FORMAT else "step"
            meta = json.loads(header.get("meta", "{}"))
            bank = cls(header.get("precision", "fp16"), location, meta, indexed_by)
            for i, (character, level, layer) in enumerate(index):
                bank._tokens[(str(character), _level(level), str(layer))] = tensors[f"t{i}"].to(location)
        except BankError:
            raise
        except Exception as exc:  # safetensors raises its own error types for damaged bytes
            raise BankError(f"{where}: damaged or unreadable ({exc})") from exc
        return bank

    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def by_level(self, unet_timesteps: list[float]) -> IdentityBank:
        """A version-1 bank (keyed by loop index) keyed by level instead: loop index ``i`` of the run
        that recorded it was the UNet call at ``unet_timesteps[i]`` (that run's sampler and steps,
        which the bank's metadata names). A bank already keyed by level is returned as it is."""
        if self.indexed_by == "level":
            return self
        out = IdentityBank(self.precision, self.location, dict(self.meta))
        for (c, index, layer), t in self._tokens.items():
            if not 0 <= int(index) < len(unet_timesteps):
                raise BankError(f"bank of {c!r}: step {int(index)} is outside its {len(unet_timesteps)}-call schedule")
            out._tokens[(c, _level(unet_timesteps[int(index)]), layer)] = t
        return out


_ST_DTYPES = {"fp16": "F16", "bf16": "BF16", "fp32": "F32"}


def _level(value: float) -> float:
    """Levels are rounded to 1/1000 of a timestep, as ``processors.canonical_level`` rounds them."""
    return round(float(value), 3)


def _uint8() -> Any:
    import torch

    return torch.uint8


def _header(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise BankError("identity bank: too short")
    size = int.from_bytes(data[:8], "little")
    return dict(json.loads(data[8 : 8 + size]).get("__metadata__", {}))


# ------------------------------------------------------------------ files named by hash


def bank_file(folder: str | Path, digest: str) -> Path:
    """Where the bank ``digest`` lives in a bank folder (content-addressed)."""
    return Path(folder) / f"{digest}.safetensors"


def write_bank_file(data: bytes, folder: str | Path) -> str:
    """Materialise bank bytes (e.g. from the project's AssetStore) as ``<folder>/<sha256>.safetensors``
    for a job to read; returns the hash (the same one ``AssetStore.add`` gives)."""
    digest = hashlib.sha256(data).hexdigest()
    path = bank_file(folder, digest)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, "the identity bank")  # a reader never sees half a bank
    return digest


MAX_BANK_FILE_BYTES = 1024**3
"""Far above any bank (a few MB to a few hundred MB); the cap only stops a runaway read."""


def read_bank_file(folder: str | Path, digest: str) -> bytes:
    if not _SHA.match(digest):
        raise BankError(f"bank {digest!r} is not a sha256 hash")
    path = bank_file(folder, digest)
    try:
        data = read_bytes(path, limit=MAX_BANK_FILE_BYTES, what="identity bank")  # a FIFO there must not hang a job
    except UnsafeInputError as exc:
        raise BankError(f"bank {digest[:12]}…: cannot read {path} ({exc.problem})") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise BankError(f"bank file {path} does not match its hash (damaged or replaced)")
    return data


# ------------------------------------------------------------------ the memory formula


def sampled_tokens(tokens: int, rate: float) -> int:
    """How many of a layer's ``tokens`` a write keeps at sampling ``rate`` (the processors use this)."""
    return int(round(tokens * rate))


def bank_bytes_formula(
    layers: Iterable[tuple[int, int, float]], *, steps: int, batch: int = 2, anchors: int = 1, precision: str = "fp16"
) -> int:
    """Host bytes of one character's bank: Σ over (tokens, channels, rate) layers of
    steps × anchors × batch × round(tokens × rate) × channels × bytes per element."""
    per = BYTES_PER_ELEMENT[precision]
    return sum(steps * anchors * batch * sampled_tokens(n, rate) * ch * per for n, ch, rate in layers)


def sdxl_1024_layers(rate_32: float, rate_16: float) -> list[tuple[int, int, float]]:
    """SDXL at 1024²: the 36 decoder attn1 layers — 30 at 32×32×1280 and 6 at 64×64×640."""
    return [(32 * 32, 1280, rate_32)] * 30 + [(64 * 64, 640, rate_16)] * 6
