"""Character libraries as JSON files (``--characters FILE`` on the CLI, import/export in the app).

Format: ``{"characters": [{"name": ..., "aliases": [...], "pronouns": "she", ...}, ...]}`` (a bare
list is accepted too). Reference images, when given as paths relative to the JSON file, are added
to the asset store so a character library travels as "JSON + images".

A library comes from outside, so it is read through :mod:`comic_studio.core.safe_read` (regular
file, bounded size and depth), its image paths must stay inside its folder (a link or ``..`` out is
refused, naming the character and field), and it is held to the limits the project loader applies
(:data:`MAX_CHARACTERS`, the image checks of the asset store): what imports is what saves and reopens.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from comic_studio.core import safe_read
from comic_studio.core.assets import MAX_ASSET_BYTES, AssetStore, sniff_image_format
from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text
from comic_studio.core.errors import AssetError, ComicStudioError
from comic_studio.core.lora_library import MAX_LIBRARY_LORA_BYTES, read_character_lora, store_library_lora
from comic_studio.core.model import Character, Project, lora_fits_project

MAX_LIBRARY_BYTES = 8 * 1024 * 1024
MAX_CHARACTERS: int = next(
    m.max_length for m in Project.model_fields["characters"].metadata if hasattr(m, "max_length")
)
"""The most characters a project holds (the loader's limit), so the most one library may bring."""


def _describe(prefix: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}.{where}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


def load_characters(path: str | Path, assets: AssetStore | None = None) -> list[Character]:
    """Read a character library. Image paths in ``face_refs``/``body_refs`` (relative to the JSON
    file, inside its folder) are imported into ``assets`` (content hashes replace them). Without a
    store (a parse that needs no pictures) they are read and checked all the same and named by their
    hashes, and hashes are kept as they are. Raises :class:`ComicStudioError` naming the file, the
    character and the field."""
    path = Path(path)
    known_hashes_only = assets is not None
    assets = assets if assets is not None else AssetStore()
    try:
        data = safe_read.read_json(path, limit=MAX_LIBRARY_BYTES, what="character library")
    except safe_read.UnsafeInputError as exc:
        raise ComicStudioError(str(exc)) from exc
    items = data.get("characters") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ComicStudioError(f'{path}: expected {{"characters": [...]}} or a list of characters')
    if len(items) > MAX_CHARACTERS:
        raise ComicStudioError(
            f"{path}: {len(items):,} characters is more than the {MAX_CHARACTERS:,} a project can hold; "
            "split the library"
        )
    characters = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ComicStudioError(f"{path}: characters[{index}] is not an object")
        item = dict(item)
        label = f"characters[{index}]" + (f" ({item['name']!r})" if isinstance(item.get("name"), str) else "")
        for slot in ("face_refs", "body_refs"):
            refs = item.get(slot) or []
            if isinstance(refs, list):
                item[slot] = [
                    _import_ref(path, ref, assets, f"{label}.{slot}[{i}]", known_hashes_only)
                    for i, ref in enumerate(refs)
                ]
        for field, kind in (("lora_asset", "LoRA"), ("identity_asset", "identity file")):
            value = item.get(field)
            if field == "lora_asset" and isinstance(value, str) and not _is_hash(value):
                # A file beside the library: kept in the project, or in the user's LoRA library when
                # it is over the project's limit (its size becomes the character's lora_bytes).
                item[field], item["lora_bytes"] = _import_lora(path, value, assets, f"{label}.{field}")
            elif value is not None:
                item[field] = _import_ref(path, item[field], assets, f"{label}.{field}", known_hashes_only,
                                          image=False, kind=kind)  # fmt: skip
        try:
            characters.append(Character.model_validate(item))
        except ValidationError as exc:
            raise ComicStudioError(f"{path}: {_describe(f'characters[{index}]', exc)}") from exc
    ids = [c.id for c in characters]
    if len(set(ids)) != len(ids):
        raise ComicStudioError(f"{path}: two characters share an id")
    return characters


def _import_ref(
    library: Path,
    ref: object,
    assets: AssetStore,
    where: str,
    known_hashes_only: bool,
    *,
    image: bool = True,
    kind: str = "LoRA",
) -> str:
    """``ref`` as an asset hash: a hash already in ``assets`` (any hash when ``known_hashes_only`` is
    off), else a file inside the library's folder, read safely and added — an image (checked as
    one), or with ``image=False`` a trained LoRA or identity file (``kind``; a ``.safetensors``)."""
    what = "reference image" if image else f"{kind} file"
    if not isinstance(ref, str) or not ref.strip():
        raise ComicStudioError(f"{library}: {where}: expected a {what} path relative to the library, got {ref!r}")
    is_hash = _is_hash(ref)
    if is_hash and (ref in assets or not known_hashes_only):
        return ref
    try:
        file = safe_read.inside(library.parent, ref, what=what)
        data = safe_read.read_bytes(file, limit=MAX_ASSET_BYTES, what=what)
        if not image and not _looks_like_safetensors(data):
            raise ComicStudioError(f"{library}: {where}: {ref!r} is not a .safetensors {kind}")
        return assets.add(data, validate_image=image, where=str(file))
    except safe_read.UnsafeInputError as exc:
        raise ComicStudioError(f"{library}: {where}: {ref!r}: {exc.problem}") from exc
    except AssetError as exc:
        raise ComicStudioError(f"{library}: {where}: {exc}") from exc


def _is_hash(ref: str) -> bool:
    return len(ref) == 64 and all(c in "0123456789abcdef" for c in ref)


def _import_lora(library: Path, ref: str, assets: AssetStore, where: str) -> tuple[str, int]:
    """A LoRA file inside the library's folder as (hash, size): a project asset when it fits the
    asset limit, else a file of the user's LoRA library (:mod:`comic_studio.core.lora_library`)."""
    try:
        file = safe_read.inside(library.parent, ref, what="LoRA file")
        data = safe_read.read_bytes(file, limit=MAX_LIBRARY_LORA_BYTES, what="LoRA file")
        if not _looks_like_safetensors(data):
            raise ComicStudioError(f"{library}: {where}: {ref!r} is not a .safetensors LoRA")
        if not lora_fits_project(len(data)):
            return store_library_lora(data), len(data)
        return assets.add(data, validate_image=False, where=str(file)), len(data)
    except safe_read.UnsafeInputError as exc:
        raise ComicStudioError(f"{library}: {where}: {ref!r}: {exc.problem}") from exc
    except AssetError as exc:
        raise ComicStudioError(f"{library}: {where}: {exc}") from exc


def _looks_like_safetensors(data: bytes) -> bool:
    """A safetensors file starts with the length of its JSON header, then ``{``."""
    if len(data) < 10:
        return False
    size = int.from_bytes(data[:8], "little")
    return 2 <= size <= len(data) - 8 and data[8:9] == b"{"


def save_characters(path: str | Path, characters: list[Character], assets: AssetStore) -> None:
    """Write a library folder: ``characters.json`` + ``images/<hash>.png``, ``loras/<hash>.safetensors``
    (a trained LoRA) and ``identities/<hash>.safetensors`` (learned identity tokens) referenced relatively. Identity anchors stay with their project: their banks
    belong to its backend settings and are rebuilt from a new anchor."""
    folder = Path(path)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    out = []
    for character in characters:
        item = character.model_dump(mode="json")
        item.pop("anchor", None)
        item.pop("embedding_asset", None)
        for field, sub_folder, what in (("lora_asset", "loras", "a character's LoRA"),
                                        ("identity_asset", "identities", "a character's identity tokens")):  # fmt: skip
            digest = getattr(character, field)
            data = None
            if digest is not None and digest in assets:
                data = assets.get(digest)
            elif field == "lora_asset" and digest is not None and not character.lora_in_project:
                data = read_character_lora(assets, character)  # a big LoRA: the user's LoRA library's
            if data is not None:
                (folder / sub_folder).mkdir(exist_ok=True)
                item[field] = f"{sub_folder}/{digest}.safetensors"
                atomic_write_bytes(folder / item[field], data, what)
            else:
                item[field] = None
        for slot in ("face_refs", "body_refs"):
            names = []
            for ref in getattr(character, slot):
                data = assets.get(ref)
                ext = {"JPEG": "jpg", "WEBP": "webp"}.get(sniff_image_format(data) or "", "png")
                name = f"images/{ref}.{ext}"
                atomic_write_bytes(folder / name, data, "a reference image")
                names.append(name)
            item[slot] = names
        out.append(item)
    atomic_write_text(
        folder / "characters.json",
        json.dumps({"characters": out}, indent=2, ensure_ascii=False),
        "the character library",
    )
