"""Identity anchors: each character's anchor picture and identity bank for consistent-character
backends (capability ``consistent_characters``), and the jobs that make and rebuild the banks.

An anchor job renders the character solo (or re-noises a picture the author chose, e.g. a panel
result) and writes the character's identity bank to the app's bank folder
(:func:`comic_studio.core.settings.bank_dir`). :func:`record_anchor` stores the picture, the bank's
hash and the job's effective request on the character as one undoable step, and the bank bytes as a
project asset when they fit the asset limit; a bigger bank (a real SDXL bank is GBs) stays in the
bank folder only and is rebuilt from the recorded request when missing
(:func:`rebuild_missing_banks`). How panel jobs then find the banks is :mod:`.banks`.

Shared by the CLI (``comic-studio anchor``), :func:`.batch.render_panel` and the app's anchor jobs.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from comic_studio.core.assets import MAX_ASSET_BYTES, AssetStore
from comic_studio.core.commands import SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lookup import find_character
from comic_studio.core.model import Character, CharacterAnchor, Project
from comic_studio.core.safe_read import UnsafeInputError, check_regular_file
from comic_studio.core.settings import bank_dir
from comic_studio.generation.registry import get_backend, get_backend_class
from comic_studio.generation.request import (
    GenerationError,
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
    checked_result_png,
    result_png,
)
from comic_studio.workflows.banks import BANK_FOLDER_SETTING, BANKS_SETTING, ensure_banks, uses_identity_banks
from comic_studio.workflows.requests import ASSET_PREFIX, dehydrate_request, hydrate_request

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "consistent"
"""The backend of anchor jobs when no panel of the project uses a consistent-character backend yet."""
PANEL_ONLY_SETTINGS = frozenset(
    {
        "mode",
        "strength",
        "init_image",
        "mask_image",
        "mask_region",
        "max_side",
        "banks",
        "bank_folder",
        "anchor_for",
        "anchor_image",
        "auto_anchors",
    }
)
"""Settings of a panel job that mean nothing for its characters' anchor jobs."""


def _character(project: Project, character_id: str) -> Character:
    character = project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    return character


def character_named(project: Project, name: str) -> Character:
    """The project's character called ``name`` (its id, name or an alias; case-insensitive)."""
    names = ", ".join(c.name for c in project.characters) or "none"
    return find_character(project.characters, name, f"this project (its characters: {names})")


# --------------------------------------------------------------------------- anchor jobs


def anchor_settings(project: Project) -> tuple[str, dict[str, Any]]:
    """Backend and settings for anchor jobs: those of the project's panels that use a
    consistent-character backend (the most common combination of the settings that shape a bank,
    so the banks match most panels' steps and sampler), else that backend's defaults."""
    counts: Counter[str] = Counter()
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    for page in project.pages:
        for panel in page.panels:
            name = panel.backend or project.default_backend
            if not uses_identity_banks(name):
                continue
            settings = panel.backend_settings if panel.backend else {}
            relevant = get_backend_class(name).bank_relevant_settings()
            key = json.dumps([name, {k: settings.get(k) for k in relevant}], sort_keys=True, default=str)
            counts[key] += 1
            first.setdefault(key, (name, settings))
    if not counts:
        return DEFAULT_BACKEND, {}
    name, settings = first[counts.most_common(1)[0][0]]
    return name, {k: v for k, v in settings.items() if k not in PANEL_ONLY_SETTINGS}


def anchor_request(
    project: Project,
    character_id: str,
    assets: AssetStore,
    picture: str | None = None,
    settings: dict[str, Any] | None = None,
    *,
    folder: str | Path | None = None,
) -> GenerationRequest:
    """The job that makes ``character_id``'s anchor, ready to run: rendered from the character's solo
    prompt, or (``picture``: an asset hash, e.g. a panel result) banked from that picture.
    ``settings`` override :func:`anchor_settings` (e.g. ``anchor_seed`` for a new variation)."""
    character = _character(project, character_id)
    if picture is not None and picture not in assets:
        raise ComicStudioError(
            f"the picture {picture[:12]}… for {character.name}'s anchor is not in this project's assets"
        )
    backend, base = anchor_settings(project)
    base = {
        **base,
        **(settings or {}),
        "anchor_for": character.id,
        "anchor_image": ASSET_PREFIX + picture if picture else "",
    }
    cls = get_backend_class(backend)
    checked = cls.validate_settings(cls.__new__(cls), base)  # names and ranges, defaults filled
    side = max(16, checked["anchor_size"] // 8 * 8)
    who = RequestCharacter(
        id=character.id, name=character.name, colour=character.colour, description=character.description
    )
    request = GenerationRequest(backend=backend, backend_settings=base, width=side, height=side, seed=checked["anchor_seed"],
                                prompt=cls.anchor_prompt(who), characters=[who])  # fmt: skip
    request = hydrate_request(request, assets)
    return _in_folder(request, folder) if folder is not None else request


def _in_folder(request: GenerationRequest, folder: str | Path) -> GenerationRequest:
    return request.model_copy(
        update={"backend_settings": {**request.backend_settings, BANK_FOLDER_SETTING: str(folder)}}
    )


def _job_bank(result: GenerationResult, character: Character) -> str:
    """The bank an anchor job made (its result's ``banks`` names it)."""
    named = get_backend_class(result.backend).parse_banks(str(result.settings.get(BANKS_SETTING) or ""))
    digest = named.get(character.id)
    if not digest:
        raise ComicStudioError(f"the anchor job for {character.name} returned no identity bank")
    return digest


MAX_BANK_FILE_BYTES = 2**40
"""Only a runaway file is refused: a real SDXL bank is GBs, and its size is all that is read here."""


@dataclass(frozen=True)
class JobBank:
    """What recording an anchor job needs of the bank file it wrote (:func:`job_bank`)."""

    digest: str
    size: int
    data: bytes | None
    """The bytes, checked against ``digest``, when the bank fits the project's asset limit (it is
    then stored in the project); ``None`` for a bigger bank, which stays in the bank folder."""


def job_bank(result: GenerationResult, folder: str | Path, character: Character) -> JobBank:
    """The bank an anchor job made: its size, and its checked bytes when the project will keep them.

    Reads and hashes up to the asset limit (64 MiB) and only stats a bigger bank (a real one is
    ≈2.6 GB per anchor): the app runs this on a helper thread, then records on the GUI thread."""
    digest = _job_bank(result, character)
    cls = get_backend_class(result.backend)
    path = cls.bank_file(folder, digest)
    try:
        size = check_regular_file(path, limit=MAX_BANK_FILE_BYTES, what="identity bank")
    except UnsafeInputError as exc:
        raise ComicStudioError(f"{character.name}'s identity bank: {exc}") from exc
    data = _read_bank(result.backend, folder, digest, character) if size <= MAX_ASSET_BYTES else None
    return JobBank(digest, size, data)


def _read_bank(backend: str, folder: str | Path, digest: str, character: Character) -> bytes:
    try:
        return get_backend_class(backend).read_bank_file(folder, digest)
    except ValueError as exc:  # what the hook raises for a missing or damaged bank
        raise ComicStudioError(f"{character.name}'s identity bank: {exc}") from exc


def _keep_bank(doc: Document, bank: JobBank, character: Character) -> None:
    """Store the bank's bytes as a project asset (they were hashed and checked by :func:`job_bank`)."""
    if bank.data is not None:
        doc.assets.add(bank.data, validate_image=False, where=f"identity bank of {character.name}", hashed=bank.digest)


def record_anchor(
    doc: Document,
    character_id: str,
    request: GenerationRequest,
    result: GenerationResult,
    bank_folder: str | Path,
    png: bytes | None = None,
    bank: JobBank | None = None,
) -> CharacterAnchor:
    """Store a finished anchor job on the character (one undoable "Set anchor" step): the anchor
    picture, the bank's hash and size, and the job's effective request (hashes only, no machine
    paths); the bank bytes become a project asset when they fit the asset limit. ``bank``: the
    job's bank as :func:`job_bank` read it (on a helper thread); read here when not given."""
    character = _character(doc.project, character_id)
    if bank is None or bank.digest != _job_bank(result, character):
        bank = job_bank(result, bank_folder, character)
    digest = bank.digest
    effective = {k: v for k, v in (result.settings or request.backend_settings).items() if k != BANKS_SETTING}
    stored = dehydrate_request(request.model_copy(update={"backend_settings": effective}), doc.assets)
    chosen = str(stored.backend_settings.get("anchor_image") or "").removeprefix(ASSET_PREFIX)
    source: Literal["rendered", "picture"]
    if chosen in doc.assets:  # banked from an existing picture: that picture is the anchor shown
        image, source = chosen, "picture"
    else:
        # The same check as a panel result: nothing the project loader would refuse gets in.
        where = f"the anchor of {character.name}"
        png = (
            checked_result_png(png, backend=result.backend, panel=where, decode=False)
            if png
            else result_png(result, backend=result.backend, panel=where)
        )
        image = doc.assets.add(png, validate_image=False)
        source = "rendered"
    try:
        anchor = CharacterAnchor(image=image, bank=digest, bank_bytes=bank.size, source=source,
                                 request=stored.to_dict(), created_at=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
    except ValidationError as exc:  # the loader's own model: a stored request too deep or too large
        error = exc.errors(include_url=False)[0]
        raise GenerationError(
            f"the {result.backend!r} backend's anchor for {character.name} cannot be kept in the project "
            f"({'.'.join(map(str, error['loc']))}: {error['msg']}); it was not added"
        ) from exc
    if anchor.stored_in_project:
        _keep_bank(doc, bank, character)
    doc.execute(SetFields(("character", character.id), "Set anchor", anchor=anchor))
    return anchor


def clear_anchor(doc: Document, character_id: str) -> None:
    """Remove the character's anchor (one undoable "Clear anchor" step); its panels then build the
    identity in the job again, from the character's description."""
    character = _character(doc.project, character_id)
    if character.anchor is None:
        raise ComicStudioError(f"{character.name} has no anchor to clear")
    doc.execute(SetFields(("character", character.id), "Clear anchor", anchor=None))


def generate_anchor(
    doc: Document,
    character_id: str,
    picture: str | None = None,
    settings: dict[str, Any] | None = None,
    *,
    folder: str | Path | None = None,
    on_step: StepCallback | None = None,
) -> CharacterAnchor:
    """Headless: run the anchor job here, synchronously, and record it (what the CLI does; the app
    submits the same request to its engine and records on the GUI thread)."""
    folder = Path(folder) if folder else bank_dir()
    request = anchor_request(doc.project, character_id, doc.assets, picture, settings, folder=folder)
    backend = get_backend(request.backend)
    request = request.model_copy(update={"backend_settings": backend.validate_settings(request.backend_settings)})
    return record_anchor(doc, character_id, request, backend.generate(request, on_step), folder)


# --------------------------------------------------------------------------- rebuilding missing banks


def rebuild_request(project: Project, assets: AssetStore, character_id: str, folder: str | Path) -> GenerationRequest:
    """The character's recorded anchor job, ready to run again (writes its bank into ``folder``)."""
    character = _character(project, character_id)
    if character.anchor is None:
        raise ComicStudioError(f"{character.name} has no anchor to rebuild")
    if not character.anchor.request:
        raise ComicStudioError(
            f"{character.name}'s identity bank is missing and its anchor has no recorded job; regenerate the anchor"
        )
    return _in_folder(hydrate_request(GenerationRequest.from_dict(character.anchor.request), assets), folder)


def record_rebuild(
    doc: Document,
    character_id: str,
    result: GenerationResult,
    folder: str | Path,
    expected_bank: str,
    bank: JobBank | None = None,
) -> str | None:
    """After a rebuild job: ``None`` when the bank came out identical (the usual case on the same
    kind of device). Otherwise the new bank is recorded on the character (one undoable step) and a
    notice for the user is returned. Nothing happens if the anchor was replaced meanwhile. ``bank``
    as in :func:`record_anchor`."""
    character = _character(doc.project, character_id)
    anchor = character.anchor
    digest = _job_bank(result, character)
    if anchor is None or anchor.bank != expected_bank or digest == anchor.bank:
        return None
    if bank is None or bank.digest != digest:
        bank = job_bank(result, folder, character)
    rebuilt = anchor.model_copy(update={"bank": digest, "bank_bytes": bank.size})
    if rebuilt.stored_in_project:
        _keep_bank(doc, bank, character)
    doc.execute(SetFields(("character", character.id), "Rebuild anchor bank", anchor=rebuilt))
    return (
        f"{character.name}'s identity bank was rebuilt here and differs from the recorded one (another device "
        "or library version): new panels use the rebuilt bank; earlier panels may not regenerate exactly"
    )


def rebuild_missing_banks(
    doc: Document,
    backend: str,
    character_ids: Iterable[str],
    *,
    folder: str | Path | None = None,
    on_step: StepCallback | None = None,
) -> list[str]:
    """Headless: make sure the listed characters' banks are in ``folder`` for a ``backend`` job,
    rebuilding those the project does not carry. Returns the notices of banks that came out
    different (also logged)."""
    folder = Path(folder) if folder else bank_dir()
    notices = []
    for character_id in ensure_banks(backend, doc.project, doc.assets, folder, list(character_ids)):
        expected = _character(doc.project, character_id).anchor.bank  # type: ignore[union-attr]
        request = rebuild_request(doc.project, doc.assets, character_id, folder)
        engine = get_backend(request.backend)
        request = request.model_copy(update={"backend_settings": engine.validate_settings(request.backend_settings)})
        notice = record_rebuild(doc, character_id, engine.generate(request, on_step), folder, expected)
        if notice:
            log.warning(notice)
            notices.append(notice)
    return notices


__all__ = [
    "JobBank", "anchor_request", "anchor_settings", "character_named", "clear_anchor", "generate_anchor", "job_bank",
    "rebuild_missing_banks", "rebuild_request", "record_anchor", "record_rebuild",
]  # fmt: skip
