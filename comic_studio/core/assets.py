"""Content-addressed asset store: every image a project uses, named by the sha256 of its bytes.

The same bytes added twice are stored once. Assets loaded from a ``.comic`` file are read lazily
from that file (a 300-page project does not load every image at open); a document opens a copy of
its file in its session cache (:mod:`comic_studio.core.session_cache`), so the user's file may move
or vanish meanwhile. New assets are kept in memory until the next save, which moves them into the
session cache: never does the store read from the file the user saved to.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from comic_studio.core.errors import AssetError
from comic_studio.core.safe_read import UnsafeInputError, open_regular
from comic_studio.core.session_cache import SessionCache, SessionCacheError

MAX_ASSET_BYTES = 64 * 1024 * 1024
"""Largest single asset accepted (64 MiB): a 600-dpi double-page spread fits with room to spare."""
MAX_IMAGE_PIXELS = 16384 * 16384
"""Largest decoded image (pixels) accepted; guards against decompression bombs."""

_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"RIFF": "WEBP",
}


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff_image_format(data: bytes) -> str | None:
    for magic, fmt in _IMAGE_MAGIC.items():
        if data.startswith(magic):
            if fmt == "WEBP" and data[8:12] != b"WEBP":
                return None
            return fmt
    return None


def validate_image_bytes(data: bytes, where: str, *, decode: bool = True) -> tuple[int, int]:
    """Check that ``data`` is a PNG/JPEG/WebP image of sane size; return ``(width, height)``.

    Reads only the header and then decodes fully, so truncated files and pixel bombs are caught
    before anything downstream touches them. ``where`` names the asset in error messages.
    ``decode=False`` stops after the header (bytes just encoded by a checked encoder, on a thread
    where a full decode would cost too much).
    """
    from PIL import Image  # Pillow is a core dependency; imported here to keep `core` import light

    if len(data) > MAX_ASSET_BYTES:
        raise AssetError(f"{where}: {len(data) / 2**20:.1f} MiB is over the {MAX_ASSET_BYTES // 2**20} MiB asset limit")
    fmt = sniff_image_format(data)
    if fmt is None:
        raise AssetError(f"{where}: not a PNG, JPEG or WebP image (the bytes do not start like one)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w <= 0 or h <= 0 or w * h > MAX_IMAGE_PIXELS:
                raise AssetError(f"{where}: image of {w}×{h} pixels is over the {MAX_IMAGE_PIXELS:,}-pixel limit")
            if im.format != fmt:
                raise AssetError(f"{where}: claims to be {fmt} but decodes as {im.format}")
            if decode:
                im.load()
    except AssetError:
        raise
    except Image.DecompressionBombError as exc:
        raise AssetError(f"{where}: image is a decompression bomb ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for broken data
        raise AssetError(f"{where}: image data is broken ({exc.__class__.__name__}: {exc})") from exc
    return w, h


class AssetStore:
    """Maps content hashes to bytes. Thread-safe for reads of immutable data (bytes): an autosave
    or export thread may read while the GUI thread adds or a save moves memory copies to disk."""

    def __init__(self, cache: SessionCache | None = None) -> None:
        self._memory: dict[str, bytes] = {}
        # hash -> (zip path, member name), or (plain file, None) for an asset kept in the cache
        self._lazy: dict[str, tuple[Path, str | None]] = {}
        self.cache = cache if cache is not None else SessionCache()
        """This store's private folder (made at first use, deleted with the store)."""

    # ------------------------------------------------------------------ adding
    def add(self, data: bytes, *, validate_image: bool = True, where: str = "asset", hashed: str = "") -> str:
        """Store ``data`` and return its hash. Images are validated unless told otherwise.
        ``hashed``: the hash of ``data``, already computed and checked by the caller off the GUI
        thread (a 64 MiB identity bank takes a noticeable moment to hash); never a guess."""
        if validate_image:
            validate_image_bytes(data, where)
        elif len(data) > MAX_ASSET_BYTES:
            raise AssetError(f"{where}: {len(data) / 2**20:.1f} MiB is over the asset limit")
        digest = hashed or content_hash(data)
        if digest not in self._lazy:
            self._memory.setdefault(digest, data)
        return digest

    def add_image(self, image, fmt: str = "PNG") -> str:
        """Encode a PIL image and store it (generation results, crops)."""
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        return self.add(buf.getvalue(), validate_image=False)

    def register_lazy(self, digest: str, zip_path: Path, member: str) -> None:
        """Record that ``digest`` can be read from ``member`` of the zip at ``zip_path``."""
        self._lazy[digest] = (Path(zip_path), member)
        self._memory.pop(digest, None)  # after: a reader finds the asset in one place or the other

    def release_memory(self, digests: Iterable[str]) -> None:
        """Move the in-memory copies of ``digests`` into the session cache (after a save: memory
        stays bounded however many images a session makes). Where the cache cannot be written
        they simply stay in memory: nothing is lost, and the save has already succeeded."""
        for digest in list(digests):
            data = self._memory.get(digest)
            if data is None:
                continue
            try:
                kept = self.cache.keep(digest, data)
            except SessionCacheError:
                return
            self._lazy[digest] = (kept, None)
            self._memory.pop(digest, None)

    # ------------------------------------------------------------------ reading
    def __contains__(self, digest: str) -> bool:
        return digest in self._memory or digest in self._lazy

    def hashes(self) -> Iterable[str]:
        return set(self._memory) | set(self._lazy)

    def get(self, digest: str) -> bytes:
        data = self._memory.get(digest)
        if data is not None:
            return data
        source = self._lazy.get(digest)
        if source is None:
            raise AssetError(f"asset {digest[:12]}… is not in this project")
        path, member = source
        try:
            # Regular files only: the archive may have been swapped for a FIFO since it was opened.
            with open_regular(path, what="asset source") as fh:
                if member is None:
                    data = fh.read()
                else:
                    with zipfile.ZipFile(fh) as zf:
                        data = zf.read(member)
        except UnsafeInputError as exc:
            raise AssetError(f"{path}: asset {member or digest[:12] + '…'} cannot be read ({exc.problem})") from exc
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise AssetError(f"{path}: asset {member or digest[:12] + '…'} cannot be read ({exc})") from exc
        if content_hash(data) != digest:
            raise AssetError(
                f"{path}: asset {member or digest[:12] + '…'} does not match its hash (the file is damaged)"
            )
        return data

    def open_image(self, digest: str):
        """The asset decoded as a PIL image (RGBA or RGB)."""
        from PIL import Image

        data = self.get(digest)
        im = Image.open(io.BytesIO(data))
        im.load()
        return im

    def source_of(self, digest: str) -> tuple[Path, str] | None:
        """The zip archive and member a lazily loaded asset is read from (a save copies many
        assets out of one archive opened once); ``None`` for assets in memory or kept as files."""
        source = self._lazy.get(digest)
        if source is None:
            return None
        path, member = source
        return None if member is None else (path, member)

    def size_of(self, digest: str) -> int:
        return len(self.get(digest))
