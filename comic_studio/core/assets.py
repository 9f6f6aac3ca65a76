"""Content-addressed asset store: every image a project uses, named by the sha256 of its bytes.

The same bytes added twice are stored once. Assets loaded from a ``.comic`` file are read lazily
from that file (a 300-page project does not load every image at open), new ones are kept in memory
until the next save writes them into the new file.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from comic_studio.core.errors import AssetError

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


def validate_image_bytes(data: bytes, where: str) -> tuple[int, int]:
    """Check that ``data`` is a PNG/JPEG/WebP image of sane size; return ``(width, height)``.

    Reads only the header and then decodes fully, so truncated files and pixel bombs are caught
    before anything downstream touches them. ``where`` names the asset in error messages.
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
            im.load()
    except AssetError:
        raise
    except Image.DecompressionBombError as exc:
        raise AssetError(f"{where}: image is a decompression bomb ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for broken data
        raise AssetError(f"{where}: image data is broken ({exc.__class__.__name__}: {exc})") from exc
    return w, h


class AssetStore:
    """Maps content hashes to bytes. Thread-safe for reads of immutable data (bytes)."""

    def __init__(self) -> None:
        self._memory: dict[str, bytes] = {}
        self._lazy: dict[str, tuple[Path, str]] = {}  # hash -> (zip path, member name)

    # ------------------------------------------------------------------ adding
    def add(self, data: bytes, *, validate_image: bool = True, where: str = "asset") -> str:
        """Store ``data`` and return its hash. Images are validated unless told otherwise."""
        if validate_image:
            validate_image_bytes(data, where)
        elif len(data) > MAX_ASSET_BYTES:
            raise AssetError(f"{where}: {len(data) / 2**20:.1f} MiB is over the asset limit")
        digest = content_hash(data)
        if digest not in self._lazy:
            self._memory.setdefault(digest, data)
        return digest

    def add_file(self, path: str | Path) -> str:
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_ASSET_BYTES:
                raise AssetError(
                    f"{path}: {size / 2**20:.1f} MiB is over the {MAX_ASSET_BYTES // 2**20} MiB asset limit"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise AssetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        return self.add(data, where=str(path))

    def add_image(self, image, fmt: str = "PNG") -> str:
        """Encode a PIL image and store it (generation results, crops)."""
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        return self.add(buf.getvalue(), validate_image=False)

    def register_lazy(self, digest: str, zip_path: Path, member: str) -> None:
        """Record that ``digest`` can be read from ``member`` of the zip at ``zip_path``."""
        self._memory.pop(digest, None)
        self._lazy[digest] = (Path(zip_path), member)

    # ------------------------------------------------------------------ reading
    def __contains__(self, digest: str) -> bool:
        return digest in self._memory or digest in self._lazy

    def hashes(self) -> Iterable[str]:
        return set(self._memory) | set(self._lazy)

    def get(self, digest: str) -> bytes:
        if digest in self._memory:
            return self._memory[digest]
        if digest in self._lazy:
            zip_path, member = self._lazy[digest]
            try:
                with zipfile.ZipFile(zip_path) as zf:
                    data = zf.read(member)
            except (OSError, zipfile.BadZipFile, KeyError) as exc:
                raise AssetError(f"{zip_path}: asset {member} cannot be read ({exc})") from exc
            if content_hash(data) != digest:
                raise AssetError(f"{zip_path}: asset {member} does not match its hash (the file is damaged)")
            return data
        raise AssetError(f"asset {digest[:12]}… is not in this project")

    def open_image(self, digest: str):
        """The asset decoded as a PIL image (RGBA or RGB)."""
        from PIL import Image

        data = self.get(digest)
        im = Image.open(io.BytesIO(data))
        im.load()
        return im

    def source_of(self, digest: str) -> tuple[Path, str] | None:
        """Where a lazily loaded asset lives (lets a save copy it without decoding)."""
        return self._lazy.get(digest)

    def size_of(self, digest: str) -> int:
        return len(self.get(digest))
