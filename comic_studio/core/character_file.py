"""Character libraries as JSON files (``--characters FILE`` on the CLI, import/export in the app).

Format: ``{"characters": [{"name": ..., "aliases": [...], "pronouns": "she", ...}, ...]}`` (a bare
list is accepted too). Reference images, when given as paths relative to the JSON file, are added
to the asset store so a character library travels as "JSON + images".
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from comic_studio.core.assets import AssetStore, sniff_image_format
from comic_studio.core.atomic import atomic_write_bytes, atomic_write_text
from comic_studio.core.errors import AssetError, ComicStudioError
from comic_studio.core.model import Character

MAX_LIBRARY_BYTES = 8 * 1024 * 1024


def _describe(prefix: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}.{where}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


def load_characters(path: str | Path, assets: AssetStore | None = None) -> list[Character]:
    """Read a character library. Image paths in ``face_refs``/``body_refs`` are imported into
    ``assets`` (content hashes replace them); without a store they must already be hashes."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LIBRARY_BYTES:
            raise ComicStudioError(f"{path}: a character library over 8 MiB is not plausible")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComicStudioError(f"{path}: no such character library file") from None
    except OSError as exc:
        raise ComicStudioError(f"{path}: cannot read the character library ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ComicStudioError(f"{path}: not valid JSON ({exc})") from exc
    items = data.get("characters") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ComicStudioError(f'{path}: expected {{"characters": [...]}} or a list of characters')
    characters = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ComicStudioError(f"{path}: characters[{index}] is not an object")
        item = dict(item)
        for slot in ("face_refs", "body_refs"):
            refs = item.get(slot) or []
            if assets is not None and isinstance(refs, list):
                item[slot] = [_import_ref(path, ref, assets, f"characters[{index}].{slot}") for ref in refs]
        try:
            characters.append(Character.model_validate(item))
        except ValidationError as exc:
            raise ComicStudioError(f"{path}: {_describe(f'characters[{index}]', exc)}") from exc
    ids = [c.id for c in characters]
    if len(set(ids)) != len(ids):
        raise ComicStudioError(f"{path}: two characters share an id")
    return characters


def _import_ref(library: Path, ref: str, assets: AssetStore, where: str) -> str:
    if isinstance(ref, str) and len(ref) == 64 and all(c in "0123456789abcdef" for c in ref) and ref in assets:
        return ref
    image = (library.parent / str(ref)).resolve()
    try:
        return assets.add_file(image)
    except AssetError as exc:
        raise ComicStudioError(f"{library}: {where}: {exc}") from exc


def save_characters(path: str | Path, characters: list[Character], assets: AssetStore) -> None:
    """Write a library folder: ``characters.json`` + ``images/<hash>.png`` referenced relatively."""
    folder = Path(path)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    out = []
    for character in characters:
        item = character.model_dump(mode="json")
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
