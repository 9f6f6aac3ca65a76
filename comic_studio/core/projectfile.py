"""The ``.comic`` project file: save, load, and refuse anything hostile or damaged.

Layout of the zip archive::

    mimetype                   "application/x-comic-studio", first and uncompressed (like ODF/EPUB,
                               so ``file``-style sniffers recognise it)
    project.json               the Project as UTF-8 JSON (deflated), with its schema_version
    assets/<sha256>.<ext>      each referenced asset once, named by the hash of its bytes; ext is
                               png/jpg/webp from the sniffed format, bin for everything else.
                               Images are already compressed, so they are stored as they are.

Saving is atomic (:mod:`comic_studio.core.atomic`): the archive is written to a temporary file beside
the target, fsynced, the old file is kept as ``NAME.comic.bak`` and the temporary file is renamed over
the target (``os.replace``), so the target is at every instant either the complete old or the
complete new file.

Loading treats the file as untrusted: every way a crafted or damaged file can fail ends in
:class:`ProjectFileError` with the path and a readable reason, and the file is only ever opened for
reading.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import re
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from comic_studio.core.assets import (
    MAX_ASSET_BYTES,
    MAX_IMAGE_PIXELS,
    AssetStore,
    content_hash,
    sniff_image_format,
    validate_image_bytes,
)
from comic_studio.core.atomic import FileWriteError, atomic_path, real_target, remove_stale_temporaries
from comic_studio.core.errors import AssetError, ProjectFileError
from comic_studio.core.migrations import migrate
from comic_studio.core.model import MAX_PROJECT_JSON_BYTES, Project
from comic_studio.core.safe_read import UnsafeInputError, finite_json_float, open_regular, refuse_json_constant
from comic_studio.core.session_cache import SessionCacheError

MIMETYPE = b"application/x-comic-studio"
MIMETYPE_MEMBER = "mimetype"
PROJECT_MEMBER = "project.json"
ASSET_PREFIX = "assets/"

MAX_MEMBERS = 100_000
"""Most archive members accepted; far above what a real project holds."""
MAX_MEMBER_NAME = 255
FULL_DECODE_PIXELS = 512 * 512
"""Images up to this many pixels are fully decoded at load (cheap); larger ones get the header and
pixel-limit check plus a structural check, so opening a project of big renders stays fast."""

_EXT_FOR_FORMAT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_FORMAT_FOR_EXT = {ext: fmt for fmt, ext in _EXT_FOR_FORMAT.items()}
_ASSET_MEMBER = re.compile(r"assets/([0-9a-f]{64})\.(png|jpg|webp|bin)")
_ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_log = logging.getLogger(__name__)


# =========================================================================== saving


def save_project(path: str | Path, project: Project, assets: AssetStore) -> None:
    """Write ``project`` and the assets it references to ``path`` atomically.

    The previous file, if any, becomes ``PATH.bak``. Afterwards the in-memory copies of the saved
    assets move into the store's session cache: the store never reads from the file just written,
    which the user may move, delete or overwrite while the document stays open.
    Raises :class:`ProjectFileError` (and leaves ``path`` untouched) if an asset is missing or
    unreadable, the project does not validate, or the disk write fails.
    """
    target = real_target(path)
    written = write_archive(target, project, assets, keep_backup=True)
    assets.release_memory(written)


def write_archive(
    target: Path,
    project: Project,
    assets: AssetStore,
    *,
    keep_backup: bool,
    extra_members: dict[str, bytes] | None = None,
) -> dict[str, str]:
    """Atomically write a ``.comic`` archive to ``target``; return ``{hash: member name}``.

    The asset store is not changed (autosave uses this directly so the store keeps pointing at the
    user's own file, not at a recovery copy). ``extra_members`` are added deflated (e.g. recovery
    metadata); the loader ignores members it does not know.
    """
    required = project.asset_refs()
    missing = sorted(r for r in required if r not in assets)
    if missing:
        raise ProjectFileError(
            target,
            f"cannot save: {len(missing)} referenced asset(s) are missing from the project: {_list_hashes(missing)}",
        )
    # Images named in backend settings and stored requests (an init image) go along when the store
    # has them, so a render or a replay after reopening finds them; a document opened from an
    # older file may lack them.
    refs = sorted(required | {r for r in project.setting_asset_refs() if r in assets})
    project_json = _project_json_for_save(target, project)
    image_refs = _image_refs(project)

    try:
        with atomic_path(target, "the project", keep_backup=keep_backup) as tmp, open(tmp, "wb") as fh:
            written = _write_zip(fh, target, project_json, refs, image_refs, assets, extra_members or {})
    except FileWriteError as exc:
        raise ProjectFileError(target, f"cannot save: {exc.problem}") from exc
    remove_stale_temporaries(target)
    return written


def _project_json_for_save(target: Path, project: Project) -> bytes:
    """Serialise, then parse it back exactly as :func:`load_project` will: a save must never
    produce a file that the loader refuses (e.g. after an unvalidated assignment in the model)."""
    data = project.model_dump_json().encode("utf-8")
    try:
        _project_from_json(target, data)
    except ProjectFileError as exc:
        raise ProjectFileError(target, f"cannot save: the project would not load back ({exc.problem})") from exc
    return data


def _write_zip(
    fh: io.BufferedWriter,
    target: Path,
    project_json: bytes,
    refs: list[str],
    image_refs: set[str],
    assets: AssetStore,
    extra_members: dict[str, bytes],
) -> dict[str, str]:
    stamp = time.localtime()[:6]
    written: dict[str, str] = {}
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf, ExitStack() as sources:
        zf.writestr(zipfile.ZipInfo(MIMETYPE_MEMBER, stamp), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            zipfile.ZipInfo(PROJECT_MEMBER, stamp), project_json, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6
        )
        for name, data in extra_members.items():
            zf.writestr(zipfile.ZipInfo(name, stamp), data, compress_type=zipfile.ZIP_DEFLATED)
        for digest, data in _asset_bytes(target, refs, assets, sources):
            fmt = sniff_image_format(data)
            if digest in image_refs and fmt is None:
                raise ProjectFileError(
                    target,
                    f"cannot save: asset {digest[:12]}… is used as an image but its bytes are not a PNG, JPEG or WebP image",
                )
            # Only pictures get an image extension: the loader checks every .png/.jpg/.webp member
            # as an image, so a LoRA whose bytes merely start like a PNG must stay .bin (it loaded
            # as .bin; named .png it would make the saved file unloadable).
            ext = _EXT_FOR_FORMAT.get(fmt or "", "bin") if digest in image_refs else "bin"
            member = f"{ASSET_PREFIX}{digest}.{ext}"
            zf.writestr(zipfile.ZipInfo(member, stamp), data, compress_type=zipfile.ZIP_STORED)
            written[digest] = member
    return written


def _asset_bytes(target: Path, refs: list[str], assets: AssetStore, sources: ExitStack) -> Iterator[tuple[str, bytes]]:
    """Yield ``(hash, bytes)`` for each ref, one at a time (a big project never sits in memory whole).

    Lazily loaded assets are copied straight out of their source archive, opened once per archive.
    Every copy is re-hashed so a damaged source is caught here rather than propagated.
    """
    open_sources: dict[Path, zipfile.ZipFile] = {}
    for digest in refs:
        source = assets.source_of(digest)
        try:
            if source is None:
                data = assets.get(digest)
            else:
                zip_path, member = source
                if zip_path not in open_sources:
                    open_sources[zip_path] = sources.enter_context(zipfile.ZipFile(zip_path))
                data = open_sources[zip_path].read(member)
        except AssetError as exc:
            raise ProjectFileError(target, f"cannot save: {exc}") from exc
        except (OSError, zipfile.BadZipFile, KeyError, zlib.error, EOFError, RuntimeError, ValueError) as exc:
            raise ProjectFileError(
                target,
                f"cannot save: asset {digest[:12]}… cannot be read from {source[0] if source else 'memory'} ({exc})",
            ) from exc
        if content_hash(data) != digest:
            raise ProjectFileError(
                target,
                f"cannot save: asset {digest[:12]}… in {source[0] if source else 'memory'} does not match its hash (the source is damaged)",
            )
        yield digest, data


# =========================================================================== loading

# What hostile or damaged input makes the standard library, json, pydantic or Pillow raise. Bugs
# (TypeError, KeyError, ...) deliberately fall through to the "internal error" report instead.
_DAMAGE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    struct.error,
    UnicodeError,
    ValueError,
    OverflowError,
    AssetError,
)


def load_project(path: str | Path, *, stage: bool = False) -> tuple[Project, AssetStore]:
    """Read a ``.comic`` file; return the project and a store that reads its assets lazily.

    With ``stage``, the file is first copied into the store's session cache and everything is read
    from that copy, so the document stays whole and saveable if the file is moved, deleted or
    overwritten afterwards (an open document wants this; a quick look at a file does not). Where
    the copy cannot be made (a full disk) the file itself is read, as without ``stage``.
    Raises :class:`ProjectFileError` naming the file and the problem for anything that is not a
    complete, valid project file. The file is never modified.
    """
    path = Path(path).absolute()
    try:
        store = AssetStore()
        read_from = _staged_copy(path, store) if stage else path
        return _load(path, read_from, store)
    except ProjectFileError:
        raise
    except UnsafeInputError as exc:  # not a regular file (a FIFO, /dev/zero, a socket), missing, a folder
        raise ProjectFileError(path, exc.problem) from exc
    except FileNotFoundError as exc:
        raise ProjectFileError(path, "does not exist") from exc
    except IsADirectoryError as exc:
        raise ProjectFileError(path, "is a folder, not a .comic file") from exc
    except PermissionError as exc:
        raise ProjectFileError(path, "cannot be read: permission denied") from exc
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a seek before the start: the zip directory points outside the file
            raise ProjectFileError(
                path, "is damaged or not a .comic file (its zip directory points outside the file — is it truncated?)"
            ) from exc
        raise ProjectFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except RecursionError as exc:
        raise ProjectFileError(path, "project.json is nested too deeply to be a project") from exc
    except MemoryError as exc:
        raise ProjectFileError(path, "is too large to load into memory") from exc
    except NotImplementedError as exc:
        raise ProjectFileError(path, f"uses a zip feature this build does not support ({exc})") from exc
    except zlib.error as exc:
        raise ProjectFileError(path, f"is damaged: compressed data is corrupt ({exc})") from exc
    except EOFError as exc:
        raise ProjectFileError(path, f"is damaged: the data ends too early ({exc or 'truncated'})") from exc
    except (zipfile.BadZipFile, struct.error) as exc:
        raise ProjectFileError(path, f"is damaged or not a .comic file ({_reason(exc)})") from exc
    except _DAMAGE_ERRORS as exc:
        raise ProjectFileError(path, f"is damaged ({_reason(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 — the promise is: nothing but ProjectFileError escapes
        raise ProjectFileError(path, f"cannot be read (internal error {_reason(exc)}); please report this") from exc


def _staged_copy(path: Path, store: AssetStore) -> Path:
    try:
        return store.cache.stage_archive(path)
    except SessionCacheError as exc:
        _log.warning("%s; reading %s in place: keep it where it is while it is open", exc, path)
        return path


def _load(path: Path, read_from: Path, store: AssetStore) -> tuple[Project, AssetStore]:
    """Read the archive at ``read_from`` (``path`` itself or the session's copy of it); errors
    name ``path``, the file the user knows. Only a regular file is opened: zipfile would wait
    forever on a FIFO and read ``/dev/zero`` without end."""
    with open_regular(read_from, what="project file") as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except zipfile.BadZipFile as exc:
            raise ProjectFileError(
                path, f"is not a .comic project file, or it is truncated (not a readable zip archive: {exc})"
            ) from exc
        with zf:
            infos = _checked_members(path, zf)
            _check_mimetype(path, zf, infos)
            if PROJECT_MEMBER not in infos:
                raise ProjectFileError(
                    path, "has no project.json: this is not a comic_studio project (or it is damaged)"
                )
            project = _read_project(path, zf, infos[PROJECT_MEMBER])
            members = _read_assets(path, zf, infos)
    missing = sorted(project.asset_refs() - members.keys())
    if missing:
        raise ProjectFileError(
            path, f"{len(missing)} asset(s) used by the project are missing from the file: {_list_hashes(missing)}"
        )
    for digest in sorted(_image_refs(project)):
        if members[digest].endswith(".bin"):
            raise ProjectFileError(
                path, f"asset {digest[:12]}… is used as an image but is stored as non-image data ({members[digest]})"
            )
    for digest in project.asset_refs() | (project.setting_asset_refs() & members.keys()):
        store.register_lazy(digest, read_from, members[digest])
    return project, store


def _checked_members(path: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Every member by name, after refusing unsafe names, duplicates and unsupported entries."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ProjectFileError(path, f"has {len(infos):,} archive members (more than the {MAX_MEMBERS:,} allowed)")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        problem = _unsafe_name_problem(info.orig_filename) or _unsafe_name_problem(name)
        if problem:
            raise ProjectFileError(path, f"archive member {name[:80]!r} {problem}")
        if name in by_name:
            raise ProjectFileError(
                path, f"archive member {name[:80]!r} appears twice (the file was tampered with or damaged)"
            )
        if info.flag_bits & 0x1:
            raise ProjectFileError(path, f"archive member {name[:80]!r} is encrypted; .comic files are never encrypted")
        if info.compress_type not in _ALLOWED_COMPRESSION and not info.is_dir():
            raise ProjectFileError(
                path,
                f"archive member {name[:80]!r} uses compression method {info.compress_type}; only stored and deflated are supported",
            )
        by_name[name] = info
    return by_name


def _unsafe_name_problem(name: str) -> str | None:
    """Why a member name is unsafe (zip-slip and friends), or ``None`` if it is fine.

    The loader never extracts to disk, but a name that could escape a folder is a sure sign of a
    crafted file, and other tools (or a future "extract assets") must not be handed one.
    """
    if not name:
        return "has an empty name"
    if len(name) > MAX_MEMBER_NAME:
        return "has an overlong name"
    if "\x00" in name or any(ord(ch) < 32 for ch in name):
        return "has control characters in its name"
    if "\\" in name:
        return "uses backslashes in its name (not allowed in a .comic file)"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "has an absolute path as its name"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has '..', '.' or empty parts in its path (a path-traversal name)"
    return None


def _check_mimetype(path: Path, zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> None:
    info = infos.get(MIMETYPE_MEMBER)
    if info is None:
        return  # optional: hand-made archives (zip -r) work without it
    if _read_member(path, zf, info, len(MIMETYPE) + 64, "mimetype").strip() != MIMETYPE:
        raise ProjectFileError(path, "is some other kind of zip file (its mimetype is not application/x-comic-studio)")


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str) -> bytes:
    """Read a member, refusing it if the directory *or the actual decompressed data* exceed ``limit``."""
    if info.file_size > limit:
        raise ProjectFileError(path, f"{what} is {info.file_size:,} bytes, over the {_size(limit)} limit")
    with zf.open(info) as stream:
        data = stream.read(limit + 1)  # the directory can lie about sizes: bound the real read too
    if len(data) > limit:
        raise ProjectFileError(path, f"{what} decompresses to more than the {_size(limit)} limit")
    return data


def _read_project(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Project:
    return _project_from_json(path, _read_member(path, zf, info, MAX_PROJECT_JSON_BYTES, "project.json"))


def _project_from_json(path: Path, raw: bytes) -> Project:
    """Decode, parse, migrate and validate ``project.json`` bytes (shared by load and save)."""
    if len(raw) > MAX_PROJECT_JSON_BYTES:
        raise ProjectFileError(
            path, f"project.json is {len(raw):,} bytes, over the {_size(MAX_PROJECT_JSON_BYTES)} limit"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(path, f"project.json is not valid UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=refuse_json_constant, parse_float=finite_json_float)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(
            path, f"project.json is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise ProjectFileError(path, "project.json is nested too deeply to be a project") from exc
    except ValueError as exc:  # from the number hooks, or ints with thousands of digits
        raise ProjectFileError(path, f"project.json has an unusable number ({exc})") from exc
    if not isinstance(data, dict):
        raise ProjectFileError(path, f"project.json must hold a JSON object, not {_json_kind(data)}")
    data = migrate(data, path)
    try:
        return Project.model_validate(data)
    except ValidationError as exc:
        raise ProjectFileError(path, f"project.json is not a valid project — {_summarise_validation(exc)}") from exc


def _read_assets(path: Path, zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> dict[str, str]:
    """Check every asset member (name, size, hash, image sanity); return ``{hash: member name}``."""
    members: dict[str, str] = {}
    for name, info in infos.items():
        if not name.startswith(ASSET_PREFIX) or name == ASSET_PREFIX:
            continue  # unknown top-level members (future metadata, recovery info) are ignored
        match = _ASSET_MEMBER.fullmatch(name)
        if match is None:
            raise ProjectFileError(
                path,
                f"archive member {name[:80]!r} is not a valid asset name (expected assets/<sha256>.png|jpg|webp|bin)",
            )
        digest, ext = match.groups()
        if digest in members:
            raise ProjectFileError(path, f"asset {digest[:12]}… is stored twice ({members[digest]} and {name})")
        data = _read_member(path, zf, info, MAX_ASSET_BYTES, f"asset {name}")
        if content_hash(data) != digest:
            raise ProjectFileError(
                path, f"asset {name} does not match its hash (the file is damaged or was tampered with)"
            )
        if ext != "bin":
            _check_image(path, data, ext, name)
        members[digest] = name
    return members


def _check_image(path: Path, data: bytes, ext: str, name: str) -> None:
    """Refuse non-images posing as images, pixel bombs, and (for small images) broken pixel data."""
    from PIL import Image  # noqa: PLC0415 — keep Pillow out of `import comic_studio.core`

    fmt = sniff_image_format(data)
    if fmt != _FORMAT_FOR_EXT[ext]:
        found = f"{fmt} data" if fmt else "not an image at all"
        raise ProjectFileError(path, f"asset {name} claims to be a {_FORMAT_FOR_EXT[ext]} image but is {found}")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own soft limit; our hard limit below decides, so no noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # reads the header only
        with im:
            width, height = im.size
            if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
                raise ProjectFileError(
                    path,
                    f"asset {name} is a {width}×{height}-pixel image, over the {MAX_IMAGE_PIXELS:,}-pixel limit (a decompression bomb?)",
                )
            if width * height > FULL_DECODE_PIXELS:
                im.verify()  # PNG: chunk structure and CRCs, without inflating the pixels
                return
    except ProjectFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise ProjectFileError(path, f"asset {name} is a decompression bomb ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 — Pillow raises many types for broken data
        raise ProjectFileError(path, f"asset {name} is not a readable image ({_reason(exc)})") from exc
    try:
        validate_image_bytes(data, f"asset {name}")
    except AssetError as exc:
        raise ProjectFileError(path, str(exc)) from exc


# =========================================================================== helpers


def _image_refs(project: Project) -> set[str]:
    """Assets the project uses as pictures (the rest, e.g. LoRA weights, may be any bytes)."""
    refs: set[str] = set()
    for character in project.characters:
        refs.update(character.face_refs)
        refs.update(character.body_refs)
        if character.anchor is not None:
            refs.add(character.anchor.image)
    for page in project.pages:
        for panel in page.panels:
            refs.update(result.asset for result in panel.results)
    return refs


def _summarise_validation(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    more = f" (and {len(errors) - limit} more problem(s))" if len(errors) > limit else ""
    return "; ".join(parts) + more


def _json_kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), "a number")


def _list_hashes(hashes: list[str], limit: int = 5) -> str:
    shown = ", ".join(h[:12] + "…" for h in hashes[:limit])
    return shown + (f" and {len(hashes) - limit} more" if len(hashes) > limit else "")


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n:,} bytes"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
