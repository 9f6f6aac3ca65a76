"""IdentityBank: the sampled hidden-state tokens of characters' anchor images, keyed by
(character, level, layer) — the level being the UNet timestep the tokens were recorded at (not the
denoising loop's index: see :class:`~comic_studio.backends.consistent.processors.RunState`).

StoryDiffusion keeps every token of every step on the GPU for the whole run (gigabytes per identity
image). Here only the sampled tokens are kept, in fp16/bf16 on the host by default, and a layer's
tokens go to the device only while that layer reads them. A bank serialises to safetensors bytes, so
the app can store it as a content-addressed project asset and a later single-panel regenerate reads
exactly the tokens the whole-story run used. torch/safetensors are imported lazily.

Real-size banks are ≈2.6 GB per anchor at 1024² (:func:`bank_bytes_formula`), so a saved bank is
never loaded whole: :meth:`IdentityBank.open` memory-maps the file (safetensors ``safe_open``) and
each read fetches only the one (level, layer) tensor it needs, which the OS can drop again (page
cache, not the process's own memory); and a bank is serialised by streaming its tensors one at a
time to the hash and to the file (:meth:`IdentityBank.save`), never as one joined copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_path, atomic_write_bytes
from comic_studio.core.safe_read import UnsafeInputError, check_regular_file, open_regular, read_bytes

BANK_FORMAT = "comic-studio-identity-bank/2"
LEGACY_FORMAT = "comic-studio-identity-bank/1"
"""Version 1 keyed tokens by the denoising loop's index; :meth:`IdentityBank.by_level` converts."""
PRECISIONS = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
BYTES_PER_ELEMENT = {"fp16": 2, "bf16": 2, "fp32": 4}
_SHA = re.compile(r"^[0-9a-f]{64}$")


class BankError(ValueError):
    """A bank could not be read, found or combined; the message says which and why."""


@dataclass(frozen=True)
class _Stored:
    """A tensor still in a memory-mapped bank file: fetched from the map at each use, never kept."""

    source: Any  # the safetensors ``safe_open`` handle (it holds the map)
    name: str
    nbytes: int

    def load(self) -> Any:
        return self.source.get_tensor(self.name)


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
        old = self._tensor(key)
        self._tokens[key] = stored.contiguous() if old is None else torch.cat([old.to(self.location), stored], dim=1)

    def get(self, character: str, level: float, layer: str) -> Any | None:
        return self._tensor((character, _level(level), layer))

    def _tensor(self, key: tuple[str, float, str]) -> Any | None:
        """The tensor under ``key``: in memory, or fetched from the bank's memory-mapped file."""
        value = self._tokens.get(key)
        return value.load() if isinstance(value, _Stored) else value

    def read(self, characters: Iterable[str], level: float, layer: str, device: Any, dtype: Any) -> Any | None:
        """The tokens of ``characters`` at (level, layer), concatenated and moved to ``device``/``dtype``:
        the only moment bank tokens occupy device memory."""
        return self.read_levels({c: level for c in characters}, layer, device, dtype)

    def read_levels(self, levels: dict[str, float], layer: str, device: Any, dtype: Any) -> Any | None:
        """Like :meth:`read`, each character at its own recorded level (``{character: level}``)."""
        import torch

        parts = [t for c, lv in levels.items() if (t := self._tensor((c, _level(lv), layer))) is not None]
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
        """Bytes of the tokens, wherever they are (memory or a mapped file)."""
        return sum(_nbytes(t) for (c, _, _), t in self._tokens.items() if character in (None, c))

    def resident_bytes(self) -> int:
        """Bytes this bank holds in the process's own memory: its tensors that are not in a mapped
        file (what a cache of banks must count; mapped pages are the OS's to drop)."""
        return sum(_nbytes(t) for t in self._tokens.values() if not isinstance(t, _Stored))

    def merge(self, other: IdentityBank) -> None:
        """Take over ``other``'s characters (a panel with two characters reads two saved banks)."""
        clash = set(self.characters) & set(other.characters)
        if clash:
            raise BankError(f"both banks hold character(s) {sorted(clash)}")
        for (c, s, layer), t in other._tokens.items():
            self._tokens[(c, s, layer)] = t if isinstance(t, _Stored) else t.to(self.location)

    def only(self, character: str) -> IdentityBank:
        out = IdentityBank(self.precision, self.location, dict(self.meta), self.indexed_by)
        out._tokens = {k: v for k, v in self._tokens.items() if k[0] == character}
        return out

    # ------------------------------------------------------------------ persistence

    def _chunks(self) -> Iterator[Any]:
        """The safetensors file, piece by piece: the header, then each tensor's bytes as a view of the
        tensor (no copy). Deterministic — the same bank always gives the same bytes, so the same
        asset hash — which is why the header is written here with sorted keys (the safetensors
        library orders its metadata map arbitrarily)."""
        index = self.keys()
        header: dict[str, Any] = {
            "__metadata__": {
                "format": BANK_FORMAT,
                "precision": self.precision,
                "index": json.dumps([list(k) for k in index]),
                "meta": json.dumps(self.meta, sort_keys=True),
            }
        }
        offset = 0
        for i, key in enumerate(index):
            shape, size = _shape_and_bytes(self._tokens[key])
            header[f"t{i}"] = {"dtype": _ST_DTYPES[self.precision], "shape": shape,
                               "data_offsets": [offset, offset + size]}  # fmt: skip
            offset += size
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
        yield len(text).to_bytes(8, "little") + text
        for key in index:
            tensor = self._tensor(key).to("cpu").contiguous()
            yield memoryview(tensor.reshape(-1).view(_uint8()).numpy())  # one tensor at a time, as a view

    def write_to(self, stream: Any) -> int:
        """Stream the safetensors bytes into a binary file object; returns the byte count."""
        return sum(stream.write(chunk) for chunk in self._chunks())

    def to_bytes(self) -> bytes:
        """The safetensors bytes in memory (small banks, tests; a real-size bank uses :meth:`save`)."""
        buffer = io.BytesIO()
        self.write_to(buffer)
        return buffer.getvalue()

    def sha256(self) -> str:
        """The hash of :meth:`to_bytes`, computed by streaming (the bytes are never joined)."""
        digest = hashlib.sha256()
        for chunk in self._chunks():
            digest.update(chunk)
        return digest.hexdigest()

    def save(self, folder: str | Path) -> str:
        """Write the bank as ``<folder>/<sha256>.safetensors`` (atomically, streamed: one pass to hash,
        one to write, never more than one tensor's bytes besides the bank itself); returns the hash,
        the same :func:`write_bank_file` and the project's asset store give its bytes."""
        digest = self.sha256()
        path = bank_file(folder, digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, "the identity bank") as tmp, tmp.open("wb") as stream:
                self.write_to(stream)
        return digest

    @classmethod
    def open(cls, path: str | Path, *, location: str = "cpu", where: str = "identity bank") -> IdentityBank:
        """A bank file memory-mapped (safetensors ``safe_open``): only the header is read now, and
        each read fetches its one tensor from the map. Renders are bit-identical to a bank loaded
        whole (:meth:`from_bytes`): the same bytes become the same tensors."""
        from safetensors import safe_open

        try:
            check_regular_file(path, limit=MAX_BANK_FILE_BYTES, what="identity bank")  # no FIFO or device mapped
            source = safe_open(str(path), framework="pt", device="cpu")
            header = dict(source.metadata() or {})
            bank = cls._from_header(header, location, where)
            for i, (character, level, layer) in enumerate(json.loads(header["index"])):
                name = f"t{i}"
                view = source.get_slice(name)
                count = 1
                for dim in view.get_shape():
                    count *= int(dim)
                stored = _Stored(source, name, count * BYTES_PER_ELEMENT[bank.precision])
                bank._tokens[(str(character), _level(level), str(layer))] = stored
        except BankError:
            raise
        except UnsafeInputError as exc:
            raise BankError(f"{where}: cannot read {path} ({exc.problem})") from exc
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise BankError(f"{where}: damaged or unreadable ({exc})") from exc
        return bank

    @classmethod
    def _from_header(cls, header: dict[str, str], location: str, where: str) -> IdentityBank:
        if header.get("format") not in (BANK_FORMAT, LEGACY_FORMAT):
            raise BankError(f"{where}: not an identity bank (format {header.get('format')!r})")
        indexed_by = "level" if header["format"] == BANK_FORMAT else "step"
        meta = json.loads(header.get("meta", "{}"))
        return cls(header.get("precision", "fp16"), location, meta, indexed_by)

    @classmethod
    def from_bytes(cls, data: bytes, *, location: str = "cpu", where: str = "identity bank") -> IdentityBank:
        from safetensors.torch import load

        try:
            tensors = load(data)
            header = _header(data)
            bank = cls._from_header(header, location, where)
            for i, (character, level, layer) in enumerate(json.loads(header["index"])):
                bank._tokens[(str(character), _level(level), str(layer))] = tensors[f"t{i}"].to(location)
        except BankError:
            raise
        except Exception as exc:  # safetensors raises its own error types for damaged bytes
            raise BankError(f"{where}: damaged or unreadable ({exc})") from exc
        return bank

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


def _nbytes(value: Any) -> int:
    return value.nbytes if isinstance(value, _Stored) else value.numel() * value.element_size()


def _shape_and_bytes(value: Any) -> tuple[list[int], int]:
    if isinstance(value, _Stored):
        return [int(d) for d in value.source.get_slice(value.name).get_shape()], value.nbytes
    return list(value.shape), _nbytes(value)


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


MAX_BANK_FILE_BYTES = 64 * 1024**3
"""Far above any bank (≈2.6 GB per anchor at 1024², four anchors at most); the cap only refuses a
runaway file. Banks this size are memory-mapped (:func:`open_bank_file`), never read whole."""

MAX_BANK_READ_BYTES = 1024**3
"""The most :func:`read_bank_file` takes into memory (banks a project stores are far smaller)."""

_HASH_CHUNK = 8 * 1024**2


def read_bank_file(folder: str | Path, digest: str, *, limit: int = MAX_BANK_READ_BYTES) -> bytes:
    """The bytes of bank ``digest``, whole (to store them in a project, whose asset limit is far
    below ``limit``); jobs memory-map banks instead (:func:`open_bank_file`)."""
    if not _SHA.match(digest):
        raise BankError(f"bank {digest!r} is not a sha256 hash")
    path = bank_file(folder, digest)
    try:
        data = read_bytes(path, limit=limit, what="identity bank")  # a FIFO there must not hang a job
    except UnsafeInputError as exc:
        raise BankError(f"bank {digest[:12]}…: cannot read {path} ({exc.problem})") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise BankError(f"bank file {path} does not match its hash (damaged or replaced)")
    return data


def open_bank_file(folder: str | Path, digest: str, *, location: str = "cpu") -> IdentityBank:
    """Bank ``digest`` memory-mapped (:meth:`IdentityBank.open`) after checking the file against its
    hash by streaming it (8 MiB at a time: the check never holds the file in memory)."""
    if not _SHA.match(digest):
        raise BankError(f"bank {digest!r} is not a sha256 hash")
    path = bank_file(folder, digest)
    hasher = hashlib.sha256()
    try:
        check_regular_file(path, limit=MAX_BANK_FILE_BYTES, what="identity bank")
        with open_regular(path, what="identity bank") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                hasher.update(chunk)
    except UnsafeInputError as exc:
        raise BankError(f"bank {digest[:12]}…: cannot read {path} ({exc.problem})") from exc
    except OSError as exc:
        raise BankError(f"bank {digest[:12]}…: cannot read {path} ({exc.strerror or exc})") from exc
    if hasher.hexdigest() != digest:
        raise BankError(f"bank file {path} does not match its hash (damaged or replaced)")
    return IdentityBank.open(path, location=location, where=f"bank {digest[:12]}…")


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
