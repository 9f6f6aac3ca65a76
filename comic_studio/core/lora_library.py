"""The user's LoRA library: trained LoRAs too big for a project (over its asset limit), kept by
content hash in :func:`~comic_studio.core.settings.lora_library_dir` and named from the project by
that hash (the character's ``lora_asset``, with ``lora_bytes`` above the limit) — issue 16 §1: "stored
in the project when small, in the user's library folder otherwise, by content hash".

A project opened on a machine without the file stays usable: every reader raises
:class:`MissingLoraError` naming the character, the hash and what to do (retrain, or copy the file
into the folder), and the character's other settings are untouched.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from comic_studio.core import safe_read
from comic_studio.core.assets import AssetStore, content_hash
from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character
from comic_studio.core.settings import lora_library_dir

MAX_LIBRARY_LORA_BYTES = 8 * 1024**3
"""The largest library LoRA read back (rank 256 on SDXL's UNet and text encoders is about 1.7 GB)."""


class MissingLoraError(ComicStudioError):
    """A character's LoRA is in neither the project nor this machine's LoRA library."""


def library_lora_path(digest: str) -> Path:
    return lora_library_dir() / f"{digest}.safetensors"


def missing_lora_message(character_name: str, digest: str) -> str:
    folder = lora_library_dir()
    return (
        f"{character_name}'s LoRA {digest[:12]}… is neither in the project nor in this machine's LoRA library "
        f"({folder}, where a LoRA too big for a project is kept): retrain {character_name}'s LoRA here, or copy "
        f"{digest}.safetensors from the LoRA library of the machine that trained it into {folder}"
    )


def check_library_writable() -> Path:
    """The library folder, created; raises :class:`ComicStudioError` when a file cannot be written
    there (asked before a long run that will need it, not after)."""
    folder = lora_library_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ComicStudioError(
            f"cannot write to the LoRA library folder {folder} ({exc.strerror or exc}); a LoRA this big is kept "
            f"there — make the folder writable (or set $COMIC_STUDIO_LORA_DIR), or choose a lower rank"
        ) from exc
    return folder


def store_library_lora(data: bytes) -> str:
    """Keep ``data`` as ``<sha256>.safetensors`` in the library (atomically; once) and return the hash."""
    digest = content_hash(data)
    path = library_lora_path(digest)
    if path.is_file() and path.stat().st_size == len(data):
        return digest
    folder = check_library_writable()
    try:
        atomic_write_bytes(path, data, "a LoRA in the LoRA library")
    except OSError as exc:
        raise ComicStudioError(f"cannot write the LoRA to {folder} ({exc.strerror or exc})") from exc
    return digest


def library_lora_file(character: Character) -> Path:
    """The library file of ``character``'s big LoRA; :class:`MissingLoraError` when it is absent."""
    if character.lora_asset is None:
        raise ComicStudioError(f"{character.name!r} has no trained LoRA — train one first")
    path = library_lora_path(character.lora_asset)
    if not path.is_file():
        raise MissingLoraError(missing_lora_message(character.name, character.lora_asset))
    return path


def read_character_lora(assets: AssetStore, character: Character) -> bytes:
    """The bytes of ``character``'s LoRA, from the project or the library (checked against its hash).
    Raises :class:`ComicStudioError` (:class:`MissingLoraError` for a library file not here)."""
    digest = character.lora_asset
    if digest is None:
        raise ComicStudioError(f"{character.name!r} has no trained LoRA — train one first")
    if character.lora_in_project:
        if digest not in assets:
            raise ComicStudioError(f"{character.name}'s LoRA {digest[:12]}… is missing from the project's assets")
        return assets.get(digest)
    path = library_lora_file(character)
    try:
        data = safe_read.read_bytes(path, limit=MAX_LIBRARY_LORA_BYTES, what="LoRA")
    except safe_read.UnsafeInputError as exc:
        raise ComicStudioError(f"{character.name}'s LoRA: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise ComicStudioError(
            f"{path}: this file is not {character.name}'s LoRA any more (its contents changed); "
            f"copy the right {digest}.safetensors there, or retrain {character.name}'s LoRA"
        )
    return data


def character_lora_header(assets: AssetStore, character: Character) -> tuple[bytes | None, str]:
    """The start of ``character``'s LoRA file up to the end of its safetensors header (where the
    training card is) and ``""``; or ``None`` and why it cannot be read. Reads only the header of a
    library file, so the card of a big LoRA shows without loading it (the character card's path)."""
    digest = character.lora_asset
    if digest is None:
        return None, "no trained LoRA"
    if character.lora_in_project:
        if digest not in assets:
            return None, "the file is missing from the project"
        return assets.get(digest), ""
    path = library_lora_path(digest)
    if not path.is_file():
        return None, missing_lora_message(character.name, digest)
    try:
        with safe_read.open_regular(path, what="LoRA") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            return head + fh.read(min(size, 100_000_000)), ""
    except (OSError, safe_read.UnsafeInputError) as exc:
        return None, f"cannot read {path} ({exc})"
