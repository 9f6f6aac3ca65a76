"""Named, undoable edits of the character library (the dock, the editor dialog, import).

Like :mod:`comic_studio.core.editing`, every function builds commands and executes them on the
document's undo stack, so the UI mirrors them with ``ctx.edit(character_edits.fn, ...)``.

Reference images go into the content-addressed asset store first (that is not undoable and need
not be: an asset nothing references is simply not saved), then the character's ``face_refs`` /
``body_refs`` list is changed by an undoable command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from comic_studio.core import safe_read
from comic_studio.core.assets import MAX_ASSET_BYTES, AssetStore
from comic_studio.core.changes import Changes
from comic_studio.core.character_file import MAX_CHARACTERS
from comic_studio.core.commands import Compound, InsertItem, MoveItem, RemoveItem, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import AssetError, CommandError
from comic_studio.core.ids import new_id
from comic_studio.core.model import Box, Character

Slot = Literal["face", "body"]
ImageSource = bytes | str | Path | Any  # Any: a PIL image
MAX_REFS_PER_SLOT = 64  # the model's limit for face_refs / body_refs
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "aliases",
        "pronouns",
        "description",
        "style_notes",
        "colour",
        "face_refs",
        "body_refs",
        "lora_asset",
        "lora_bytes",
        "lora_scale",
        "lora_enabled",
        "embedding_asset",
        "identity_asset",
        "identity_enabled",
        "identity_scale",
        "face_scale",
        "body_scale",
    }
)
"""``face_scale`` / ``body_scale``: the character's reference strengths (0..2, ``None`` = the
backend's default), validated by the model like every other field."""


def _character(doc: Document, character_id: str) -> Character:
    character = doc.project.character(character_id)
    if character is None:
        raise CommandError(f"character {character_id!r} does not exist")
    return character


def _slot_field(slot: str) -> str:
    if slot not in ("face", "body"):
        raise CommandError(f"reference slot must be 'face' or 'body', not {slot!r}")
    return f"{slot}_refs"


def _refs_without(character: Character, slot: str, asset: str) -> tuple[str, list[str]]:
    """The slot's field name and its references minus ``asset`` (which must be there)."""
    field = _slot_field(slot)
    refs = list(getattr(character, field))
    if asset not in refs:
        raise CommandError(f"character {character.name!r} has no {slot} reference {asset[:12]}…")
    refs.remove(asset)
    return field, refs


def _validated(character: Character, **fields: Any) -> Character:
    """The character with ``fields`` applied, validated like a loaded file would be, so a bad
    colour or an empty name is refused before it reaches the undo stack."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise CommandError(f"character has no editable field(s) {', '.join(sorted(unknown))}")
    data = character.model_dump()
    data.update(fields)
    try:
        return Character.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CommandError(f"character {character.name!r}: {where}: {err['msg']}") from exc


# --------------------------------------------------------------------------- characters


def add_character(
    doc: Document, character: Character | None = None, index: int | None = None, **fields: Any
) -> Character:
    """Add ``character`` (or a new one built from ``fields``) as one undo step. Its references
    must already be in ``doc.assets`` (the editor adds them while the dialog is open)."""
    if character is None:
        character = _validated(Character(name=fields.pop("name", "New character")), **fields)
    elif fields:
        character = _validated(character, **fields)
    missing = [ref for ref in (*character.face_refs, *character.body_refs) if ref not in doc.assets]
    if missing:
        raise CommandError(f"character {character.name!r}: reference {missing[0][:12]}… is not in the project's assets")
    if doc.project.character(character.id) is not None:
        character = character.model_copy(update={"id": new_id()})
    doc.execute(InsertItem(("characters",), character, index, text=f"Add character {character.name}"))
    return character


def update_character(
    doc: Document, character_id: str, label: str = "Edit character", merge_key=None, **fields: Any
) -> Changes:
    """Change any editable fields at once (the editor's OK is one undo step). Fields equal to the
    current value are left out; nothing changed → no undo step."""
    character = _character(doc, character_id)
    checked = _validated(character, **fields)
    changed = {name: getattr(checked, name) for name in fields if getattr(checked, name) != getattr(character, name)}
    for ref in (*changed.get("face_refs", []), *changed.get("body_refs", [])):
        if ref not in doc.assets:
            raise CommandError(f"character {character.name!r}: reference {ref[:12]}… is not in the project's assets")
    if not changed:
        return Changes()
    return doc.execute(SetFields(("character", character_id), label, merge_key=merge_key, **changed))


def delete_character(doc: Document, character_id: str) -> Changes:
    return delete_characters(doc, [character_id])


def delete_characters(doc: Document, character_ids: list[str]) -> Changes:
    """Delete characters (a multi-selection in the dock) as one undo step, together with every
    mention of them, so nothing points at a character that no longer exists (see :func:`_forget`)."""
    names = [_character(doc, cid).name for cid in character_ids]
    removes = [RemoveItem(("characters",), cid, text="Delete character") for cid in character_ids]
    label = f"Delete character {names[0]}" if len(names) == 1 else f"Delete {len(names)} characters"
    return doc.execute(Compound(label, [*_forget(doc.project, set(character_ids)), *removes]))


def _forget(project: Any, gone: set[str]) -> list[Any]:
    """Commands that drop the ``gone`` characters from what names them: beats (cast, actor/target;
    their dialogue lines become unattributed voices), panel placements, and balloon tails aimed at
    them (a tail with an explicit tip keeps it; otherwise the balloon loses its tail)."""
    commands: list[Any] = []
    for scene in project.story.scenes:
        for beat in scene.beats:
            fields: dict[str, Any] = {}
            if gone.intersection(beat.characters):
                fields["characters"] = [c for c in beat.characters if c not in gone]
            if beat.actor_id in gone:
                fields["actor_id"] = None
            if beat.target_id in gone:
                fields["target_id"] = None
            if any(line.speaker_id in gone for line in beat.dialogue):
                fields["dialogue"] = [line.model_copy(update={"speaker_id": None}) if line.speaker_id in gone else line
                                      for line in beat.dialogue]  # fmt: skip
            if fields:
                commands.append(SetFields(("beat", beat.id), "Forget character", **fields))
    for page in project.pages:
        for panel in page.panels:
            if any(p.character_id in gone for p in panel.characters):
                kept = [p for p in panel.characters if p.character_id not in gone]
                commands.append(SetFields(("panel", panel.id), "Forget character", characters=kept))
            for balloon in panel.balloons:
                if balloon.tail is not None and balloon.tail.character_id in gone:
                    tail = (
                        balloon.tail.model_copy(update={"character_id": None})
                        if balloon.tail.point is not None
                        else None
                    )
                    commands.append(SetFields(("balloon", balloon.id), "Forget character", tail=tail))
    return commands


def move_character(doc: Document, character_id: str, new_index: int) -> Changes:
    """Reorder the library (drag in the dock)."""
    _character(doc, character_id)
    return doc.execute(MoveItem(("characters",), character_id, new_index, text="Reorder characters"))


def import_characters(doc: Document, characters: list[Character]) -> list[Character]:
    """Add a whole library as one undo step. Ids already in the project get fresh ones (importing
    the same library twice gives two copies rather than an error). A library that would take the
    project past the characters the loader accepts is refused whole: the project must reopen."""
    have = len(doc.project.characters)
    if have + len(characters) > MAX_CHARACTERS:
        raise CommandError(
            f"importing {len(characters):,} character(s) into a project with {have:,} would pass the "
            f"{MAX_CHARACTERS:,} characters a project can hold; nothing was imported"
        )
    taken = {c.id for c in doc.project.characters}
    added: list[Character] = []
    for character in characters:
        if character.id in taken:
            character = character.model_copy(update={"id": new_id()})
        taken.add(character.id)
        added.append(character)
    if added:
        doc.execute(
            Compound(
                f"Import {len(added)} character(s)", [InsertItem(("characters",), c, text="Import") for c in added]
            )
        )
    return added


# --------------------------------------------------------------------------- reference images


def store_reference_image(
    assets: AssetStore, image: ImageSource, crop: Box | None = None, where: str = "reference image"
) -> str:
    """Put a reference image into ``assets`` and return its hash; raises AssetError for anything
    that is not a sane image. With ``crop`` (pixels of the source image) the cropped region is
    stored as a new PNG. Shared by :func:`add_reference` and the editor dialog's draft."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        # A file the user picked: read like any outside file (a FIFO or a huge file is refused, not
        # waited on or read whole).
        try:
            data = safe_read.read_bytes(image, limit=MAX_ASSET_BYTES, what="reference image")
        except safe_read.UnsafeInputError as exc:
            raise AssetError(str(exc)) from exc
        where = str(image)
        digest = assets.add(data, where=where)
    elif isinstance(image, (bytes, bytearray)):
        digest = assets.add(bytes(image), where=where)
    elif isinstance(image, Image.Image):
        if crop is None:
            return assets.add_image(_storable(image))
        return assets.add_image(_storable(crop_image(image, crop)))
    else:
        raise AssetError(f"{where}: expected image bytes, a file path or a PIL image, not {type(image).__name__}")
    if crop is None:
        return digest
    return assets.add_image(_storable(crop_image(assets.open_image(digest), crop)))


def crop_image(image, box: Box):
    """``image`` cut to ``box`` (pixels), clamped to the image; an empty crop is an error."""
    left, top = max(0, round(box.x)), max(0, round(box.y))
    right, bottom = min(image.width, round(box.x + box.w)), min(image.height, round(box.y + box.h))
    if right - left < 2 or bottom - top < 2:
        raise AssetError(
            f"crop {box.w:.0f}×{box.h:.0f} at ({box.x:.0f}, {box.y:.0f}) lies outside the {image.width}×{image.height} image"
        )
    return image.crop((left, top, right, bottom))


def _storable(image):
    # PNG keeps RGB/RGBA/L exactly; palette or CMYK images are converted so every crop reads back the same.
    return image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGBA")


def add_reference(doc: Document, character_id: str, slot: Slot, image: ImageSource, crop: Box | None = None) -> str:
    """Store ``image`` (bytes, a path or a PIL image; optionally cropped) and append it to the
    character's face or body references as one undo step. Returns the asset hash. Adding an image
    the slot already holds changes nothing."""
    character = _character(doc, character_id)
    field = _slot_field(slot)
    refs = list(getattr(character, field))
    if len(refs) >= MAX_REFS_PER_SLOT:
        raise CommandError(f"character {character.name!r} already has {MAX_REFS_PER_SLOT} {slot} references")
    digest = store_reference_image(doc.assets, image, crop)
    if digest not in refs:
        doc.execute(SetFields(("character", character_id), f"Add {slot} reference", None, **{field: [*refs, digest]}))
    return digest


def remove_reference(doc: Document, character_id: str, slot: Slot, asset: str) -> Changes:
    field, refs = _refs_without(_character(doc, character_id), slot, asset)
    return doc.execute(SetFields(("character", character_id), f"Remove {slot} reference", None, **{field: refs}))


def move_reference(doc: Document, character_id: str, slot: Slot, asset: str, new_index: int) -> Changes:
    """Reorder a slot (the first face reference is the card's thumbnail and the backend's main one)."""
    field, refs = _refs_without(_character(doc, character_id), slot, asset)
    refs.insert(max(0, min(new_index, len(refs))), asset)
    return doc.execute(SetFields(("character", character_id), f"Reorder {slot} references", None, **{field: refs}))
