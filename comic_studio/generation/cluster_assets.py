"""The files a render names by path, shipped to cluster workers through Ray's object store by content
hash (:mod:`comic_studio.generation.cluster`).

A hydrated request (``workflows.requests.hydrate_request``) names files of the client's machine: the
characters' trained LoRAs (``character_loras``, JSON ``[[path, weight], …]``), the LoRA files the
author named in the backend's own ``loras`` setting (``file[:weight], …``), the characters' identity tokens
(``character_identities``, JSON ``{character id: path}``) and the identity banks in ``bank_folder``
that ``banks`` names; reference and init images ride inline as data URIs. A worker on another machine
has none of those paths. So the client, when a job is submitted:

* reads each such file once, hashes it (SHA-256) and ``ray.put``s the bytes once while jobs need
  them (a LoRA named by 300 queued panels crosses the network once; hashes are remembered by path,
  size and mtime); the engine drops its references when no queued or running job names an object,
  and all of them at shutdown (:meth:`AssetShipper.release`), so Ray frees them;
* rewrites the request to name ``cs-asset:<sha256>`` instead of the path, and big data URIs (the
  same reference images in every panel of a character) likewise;
* sends ``{sha256: [ObjectRef]}`` beside it (a nested ref: the worker fetches only what it lacks).

The worker (:func:`materialise`) writes each file it lacks into its cache folder
(``$COMIC_STUDIO_CLUSTER_CACHE``, else the user cache folder's ``cluster-assets``), checking the
hash, and writes banks into its own bank folder; the request it runs names those paths. Banks a job
*makes* there (an anchor job) are read back and returned with the job's final message, and the
client writes them into the folder the request named (:func:`returned_banks`, :func:`keep_banks`),
so recording an anchor works as on one machine.

Model weights are not shipped: they are GBs and each worker has its own models folder (the README's
requirement for workers). A training run (:class:`~comic_studio.generation.tasks.CheckpointedTask`)
keeps its checkpoint in the worker's own folder (:func:`worker_checkpoint`): its pictures ride inline
in the request and the finished LoRA or identity file comes back in the job's result, so no folder is
shared. A cancelled (or failed) run's checkpoint comes back with its final message and the client
writes it at its own checkpoint path (:func:`returned_checkpoint`); a resume ships it to the worker
again (:meth:`AssetShipper.pack_checkpoint`, :func:`place_checkpoint`), whichever worker runs it.

Why content hashes rather than paths: the worker's copy is valid for every job and every client
that names the same bytes, a changed file is a new asset, and a file removed on the client after
submit() does not break the queued job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.safe_read import UnsafeInputError, read_bytes
from comic_studio.generation.backend_api import CONSISTENT_CHARACTERS
from comic_studio.generation.request import GenerationRequest, data_uri_bytes

CACHE_ENV = "COMIC_STUDIO_CLUSTER_CACHE"
ASSET_PREFIX = "cs-asset:"
"""A shipped file in a rewritten request: ``cs-asset:<sha256>``."""
URI_PREFIX = "cs-uri:"
"""A shipped data URI: ``cs-uri:<sha256>:<the URI's header>``."""
LORAS = "character_loras"
STYLE_LORAS = "loras"
"""The backends' own LoRA setting: comma-separated ``file-or-id[:weight]`` (sdxl, racig, consistent,
anime); the items that are files of the client are shipped, ids and names stay for the worker's models."""
IDENTITIES = "character_identities"
BANKS = "banks"
BANK_FOLDER = "bank_folder"
SHIPPED_BANKS = "cluster_banks"
"""Internal to a shipped request: ``{bank hash: content hash}`` of the banks it carries."""
CLIENT_BANK_FOLDER = "cluster_client_bank_folder"
"""Internal to a shipped request: the client's bank folder (put back into the result's settings)."""
INLINE_MIN = 4096
"""Data URIs shorter than this travel inside the request (not worth an object)."""
MAX_FILE_BYTES = 8 * 1024**3
"""Largest file shipped (a real SDXL identity bank is GBs)."""


class AssetShipError(ComicStudioError):
    """A file the job names cannot be read (client) or written (worker): names it and what to do."""


def worker_cache_dir() -> Path:
    """Where a worker keeps shipped files (``<sha256>``): ``$COMIC_STUDIO_CLUSTER_CACHE``, else the
    user cache folder's ``cluster-assets``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir  # noqa: PLC0415 — only on workers

    return Path(user_cache_dir("comic-studio")) / "cluster-assets"


def _banks_class(backend: str) -> Any:
    from comic_studio.generation.registry import get_backend_class, has_capability

    return get_backend_class(backend) if has_capability(backend, CONSISTENT_CHARACTERS) else None


@dataclass
class AssetShipper:
    """The client's side: hashes and object refs of the files shipped this session (thread-safe)."""

    put: Any
    """``ray.put`` (given, so this module never imports Ray)."""
    _hashes: dict[tuple[str, int, int], str] = field(default_factory=dict)
    _refs: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    puts: int = 0
    """How many objects were put (a test's view of the deduplication)."""

    def pack(self, request: GenerationRequest) -> tuple[GenerationRequest, dict[str, list[Any]]]:
        """``request`` naming ``cs-asset:`` hashes instead of this machine's files, and the objects
        behind them (each wrapped in a list so Ray does not fetch it before the worker asks)."""
        settings = dict(request.backend_settings)
        manifest: dict[str, list[Any]] = {}
        if isinstance(settings.get(LORAS), str) and settings[LORAS].strip():
            try:
                entries = json.loads(settings[LORAS])
            except ValueError:
                entries = None  # not ours to judge: the backend's validation names it
            if isinstance(entries, list):
                shipped = []
                for entry in entries:
                    if isinstance(entry, list) and len(entry) == 2 and Path(str(entry[0])).is_file():
                        shipped.append([self._ship_file(Path(str(entry[0])), manifest), entry[1]])
                    else:
                        shipped.append(entry)
                settings[LORAS] = json.dumps(shipped)
        if isinstance(settings.get(STYLE_LORAS), str) and settings[STYLE_LORAS].strip():
            items = []
            for item in _lora_items(settings[STYLE_LORAS]):
                spec, weight = _split_weight(item)
                path = Path(spec).expanduser()
                items.append(self._ship_file(path, manifest) + weight if path.is_file() else item)
            settings[STYLE_LORAS] = ", ".join(items)
        if isinstance(settings.get(IDENTITIES), str) and settings[IDENTITIES].strip():
            try:
                mapping = json.loads(settings[IDENTITIES])
            except ValueError:
                mapping = None
            if isinstance(mapping, dict):
                settings[IDENTITIES] = json.dumps({
                    cid: self._ship_file(Path(str(p)), manifest) if Path(str(p)).is_file() else p
                    for cid, p in mapping.items()
                })  # fmt: skip
        cls = _banks_class(request.backend)
        folder = settings.get(BANK_FOLDER)
        if cls is not None and isinstance(folder, str) and folder:
            shipped_banks = {}
            for digest in cls.parse_banks(str(settings.get(BANKS) or "")).values():
                path = cls.bank_file(folder, digest)
                if path.is_file():
                    shipped_banks[digest] = self._ship_file(path, manifest).removeprefix(ASSET_PREFIX)[:64]
            settings[SHIPPED_BANKS] = json.dumps(shipped_banks)
            settings[CLIENT_BANK_FOLDER] = folder
            del settings[BANK_FOLDER]  # the worker's own folder is set where the job runs
        for key, value in settings.items():
            if isinstance(value, str) and len(value) >= INLINE_MIN:
                settings[key] = self._ship_uris(value, manifest)
        return request.model_copy(update={"backend_settings": settings}), manifest

    def pack_checkpoint(self, task: Any) -> dict[str, list[Any]]:
        """A resumed run's checkpoint (a :class:`~comic_studio.generation.tasks.CheckpointedTask`'s
        file on this machine) as objects for the worker; {} when the run starts afresh."""
        path = Path(task.checkpoint)
        if not task.resume or not path.is_file():
            return {}  # a resume without one here: the worker's own copy, or its clear error
        try:
            data = read_bytes(path, limit=MAX_FILE_BYTES, what="training checkpoint for the cluster")
        except UnsafeInputError as exc:
            raise AssetShipError(f"{path}: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        self._store(digest, data)
        return {digest: [self._refs[digest]]}

    def release(self, keep: set[str] | None = None) -> int:
        """Drop this session's references to every object but those of ``keep`` (the jobs still
        queued or running hold theirs), so Ray frees them; returns how many were dropped. A later
        job naming the same bytes puts them again (the workers still have them in their caches)."""
        with self._lock:
            doomed = set(self._refs) - (keep or set())
            for digest in doomed:
                del self._refs[digest]
        return len(doomed)

    def held(self) -> set[str]:
        with self._lock:
            return set(self._refs)

    def _ship_file(self, path: Path, manifest: dict[str, list[Any]]) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise AssetShipError(f"{path}: cannot be read to send it to the cluster ({exc.strerror or exc})") from exc
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            digest = self._hashes.get(key)
        if digest is None or digest not in self._refs:
            try:
                data = read_bytes(path, limit=MAX_FILE_BYTES, what="file for the cluster")
            except UnsafeInputError as exc:
                raise AssetShipError(f"{path}: {exc}") from exc
            digest = hashlib.sha256(data).hexdigest()
            self._store(digest, data)
            with self._lock:
                self._hashes[key] = digest
        manifest[digest] = [self._refs[digest]]
        # The suffix travels too: loaders tell formats by it (.safetensors).
        return ASSET_PREFIX + digest + path.suffix.lower()

    def _ship_uris(self, value: str, manifest: dict[str, list[Any]]) -> str:
        """A long data URI (or a JSON object of them: ``reference_images``) with each URI shipped."""
        if value.startswith("data:") and ";base64," in value[:100]:
            header, _, _ = value.partition(",")
            try:
                data = data_uri_bytes(value)
            except ValueError:
                return value
            digest = hashlib.sha256(data).hexdigest()
            self._store(digest, data)
            manifest[digest] = [self._refs[digest]]
            return f"{URI_PREFIX}{digest}:{header}"
        if value.startswith("{"):
            try:
                mapping = json.loads(value)
            except ValueError:
                return value
            if isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values()):
                return json.dumps({k: self._ship_uris(v, manifest) if len(v) >= INLINE_MIN else v
                                   for k, v in mapping.items()})  # fmt: skip
        return value

    def _store(self, digest: str, data: bytes) -> None:
        with self._lock:
            if digest in self._refs:
                return
            self._refs[digest] = self.put(data)
            self.puts += 1


def _lora_items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_weight(item: str) -> tuple[str, str]:
    """A ``loras`` item → (the file or id, ``":<weight>"`` or ""). As the backends read it: only a
    number after the last colon is a weight (``C:\\x.safetensors`` has a colon too)."""
    head, sep, tail = item.rpartition(":")
    if sep and head:
        try:
            float(tail)
        except ValueError:
            return item, ""
        return head, sep + tail
    return item, ""


# ------------------------------------------------------------------------------------ the worker


def materialise(request: GenerationRequest, manifest: dict[str, list[Any]], get: Any) -> GenerationRequest:
    """The worker's side of :meth:`AssetShipper.pack`: every shipped file in this worker's cache
    (fetched with ``get``, ``ray.get``, only when missing), the request naming those paths."""
    cache = worker_cache_dir()
    local: dict[str, Path] = {}

    def path_of(name: str) -> Path:
        """``name``: a hash and the file's suffix (``<sha256>.safetensors``)."""
        if name not in local:
            local[name] = _cached(cache, name, manifest, get)
        return local[name]

    def restore(value: str) -> str:
        if value.startswith(ASSET_PREFIX):
            return str(path_of(value.removeprefix(ASSET_PREFIX)))
        if value.startswith(URI_PREFIX):
            digest, _, header = value.removeprefix(URI_PREFIX).partition(":")
            import base64

            return header + "," + base64.b64encode(path_of(digest).read_bytes()).decode("ascii")
        return value

    settings = dict(request.backend_settings)
    if isinstance(settings.get(LORAS), str) and ASSET_PREFIX in settings[LORAS]:
        entries = json.loads(settings[LORAS])
        settings[LORAS] = json.dumps([[restore(str(p)), w] for p, w in entries])
    if isinstance(settings.get(STYLE_LORAS), str) and ASSET_PREFIX in settings[STYLE_LORAS]:
        items = []
        for item in _lora_items(settings[STYLE_LORAS]):
            spec, weight = _split_weight(item)
            items.append(restore(spec) + weight if spec.startswith(ASSET_PREFIX) else item)
        settings[STYLE_LORAS] = ", ".join(items)
    if isinstance(settings.get(IDENTITIES), str) and ASSET_PREFIX in settings[IDENTITIES]:
        settings[IDENTITIES] = json.dumps({k: restore(str(v)) for k, v in json.loads(settings[IDENTITIES]).items()})
    settings.pop(CLIENT_BANK_FOLDER, None)  # the client's path: it puts it back into the result
    if SHIPPED_BANKS in settings:
        cls = _banks_class(request.backend)
        from comic_studio.core.settings import bank_dir

        folder = bank_dir()
        for bank, digest in json.loads(settings.pop(SHIPPED_BANKS)).items():
            if not cls.bank_file(folder, bank).is_file():
                try:
                    cls.write_bank_file(path_of(digest).read_bytes(), folder)
                except OSError as exc:
                    raise AssetShipError(f"cannot write identity bank {bank[:12]}… to {folder} on this worker "
                                         f"({exc.strerror or exc}); free space there") from exc  # fmt: skip
        settings[BANK_FOLDER] = str(folder)
    for key, value in settings.items():
        if isinstance(value, str) and value.startswith(URI_PREFIX):
            settings[key] = restore(value)
        elif isinstance(value, str) and value.startswith("{") and URI_PREFIX in value:
            settings[key] = json.dumps({k: restore(v) for k, v in json.loads(value).items()})
    return request.model_copy(update={"backend_settings": settings})


def _cached(cache: Path, name: str, manifest: dict[str, list[Any]], get: Any) -> Path:
    digest, suffix = name[:64], name[64:]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or "/" in suffix or "\\" in suffix:
        raise AssetShipError(f"the job names a shipped file as {name!r}, which is not a hash; render again")
    path = cache / (digest + suffix)
    if path.is_file():
        return path  # shipped before (this or another job, this or another client): not fetched again
    if digest not in manifest:
        raise AssetShipError(f"the job names file {digest[:12]}… but did not send it; render again")
    data = get(manifest[digest][0])
    if hashlib.sha256(data).hexdigest() != digest:
        raise AssetShipError(f"file {digest[:12]}… arrived damaged from the client; render again")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, "a file shipped from the client")
    except OSError as exc:
        raise AssetShipError(f"cannot write to this worker's cache {cache} ({exc.strerror or exc}); free space "
                             f"there or set ${CACHE_ENV}") from exc  # fmt: skip
    return path


def worker_checkpoint(client_checkpoint: str) -> Path:
    """Where this worker keeps the checkpoint of the run that keeps ``client_checkpoint`` on its
    client: a folder of its own per client path (the samples the run keeps go beside the file)."""
    key = hashlib.sha256(client_checkpoint.encode("utf-8")).hexdigest()[:24]
    return worker_cache_dir() / "training" / key / "checkpoint.safetensors"


def place_checkpoint(task: Any, manifest: dict[str, list[Any]], get: Any) -> Any:
    """Worker: ``task`` keeping its checkpoint in this worker's folder, with the checkpoint the
    client shipped for a resume written there first (it is the newest: it replaces any copy here)."""
    path = worker_checkpoint(task.checkpoint)
    if not task.resume:
        # An earlier run's, left by a cancel: it must not go back over the client's file if this
        # run fails before it saves one (a local run leaves the client's file as it was then).
        with contextlib.suppress(OSError):  # one that cannot be removed cannot be written either: said then
            path.unlink(missing_ok=True)
    for digest, (ref,) in manifest.items():
        data = get(ref)
        if hashlib.sha256(data).hexdigest() != digest:
            raise AssetShipError("the training checkpoint arrived damaged from the client; resume again")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data, "a training checkpoint shipped from the client")
        except OSError as exc:
            raise AssetShipError(f"cannot write the training checkpoint to {path} on this worker "
                                 f"({exc.strerror or exc}); free space there or set ${CACHE_ENV}") from exc  # fmt: skip
    return task.with_checkpoint(str(path))


def returned_checkpoint(worker_path: str) -> bytes | None:
    """Worker: the checkpoint a cancelled or failed run left here, to send back (None: none yet)."""
    try:
        return read_bytes(Path(worker_path), limit=MAX_FILE_BYTES, what="training checkpoint")
    except (OSError, UnsafeInputError):
        return None


def keep_checkpoint(client_checkpoint: str, data: bytes) -> None:
    """Client: write the checkpoint a worker sent back where a local run would have kept it."""
    path = Path(client_checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data, "the training checkpoint sent back by a cluster worker")


def drop_worker_checkpoint(worker_path: str) -> None:
    """Worker: a finished run's folder (checkpoint and samples): its result went back to the client."""
    import shutil

    shutil.rmtree(Path(worker_path).parent, ignore_errors=True)


def returned_banks(client_request: GenerationRequest | None, result_settings: dict[str, Any]) -> dict[str, bytes]:
    """Worker: the banks a finished job names that the client did not send (an anchor job made them
    here), as ``{bank hash: bytes}`` to return with the job."""
    if client_request is None or CLIENT_BANK_FOLDER not in client_request.backend_settings:
        return {}
    cls = _banks_class(client_request.backend)
    sent = json.loads(client_request.backend_settings.get(SHIPPED_BANKS) or "{}")
    folder = result_settings.get(BANK_FOLDER)
    out = {}
    for bank in cls.parse_banks(str(result_settings.get(BANKS) or "")).values():
        if bank not in sent and folder and cls.bank_file(folder, bank).is_file():
            out[bank] = cls.read_bank_file(folder, bank)
    return out


def keep_banks(backend: str, client_folder: str, banks: dict[str, bytes]) -> None:
    """Client: write banks a worker made into the folder the request named."""
    cls = _banks_class(backend)
    for bank, data in banks.items():
        if not cls.bank_file(client_folder, bank).is_file():
            cls.write_bank_file(data, client_folder)
