"""Identity anchors: each character's anchor picture and identity bank for consistent-character
backends (capability ``consistent_characters``), kept with the project so panels reproduce anywhere.

An anchor job renders the character solo (or re-noises a picture the author chose, e.g. a panel
result) and writes the character's identity bank, a content-addressed ``<sha256>.safetensors``, to
the app's bank folder (:func:`comic_studio.core.settings.bank_dir`). :func:`record_anchor` stores the
picture, the bank's hash and the job's effective request on the character as one undoable step, and
the bank bytes as a project asset when they fit the asset limit; a bigger bank (a real SDXL bank is
GBs) stays in the bank folder only and is rebuilt from the recorded request when missing.

Panel jobs name their characters' banks by hash (``pipeline.build_request`` → ``banks``);
``pipeline.hydrate_request`` adds this machine's folder and writes the banks the project carries into
it, so a single panel regenerated next week reads the very tokens the whole-story run read.

A stored request replayed later ("regenerate same seed") may name a bank that is in neither place:
:func:`replay_banks` tells a current anchor's bank (rebuild it first) from an older anchor's (gone:
the author is told to render the panel again).

Shared by the CLI (``comic-studio anchor``), ``pipeline.render_panel`` and the app's RenderService.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from comic_studio import pipeline
from comic_studio.core.assets import AssetStore
from comic_studio.core.commands import SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lookup import find_character
from comic_studio.core.model import Character, CharacterAnchor, Project
from comic_studio.core.settings import bank_dir
from comic_studio.generation.request import GenerationRequest, GenerationResult, RequestCharacter, StepCallback

log = logging.getLogger(__name__)

CAPABILITY = "consistent_characters"
DEFAULT_BACKEND = "consistent"
"""The backend of anchor jobs when no panel of the project uses a consistent-character backend yet."""
BANKS_SETTING = "banks"
BANK_FOLDER_SETTING = "bank_folder"
PANEL_ONLY_SETTINGS = frozenset({"mode", "strength", "init_image", "mask_image", "mask_region", "max_side", "banks",
                                 "bank_folder", "anchor_for", "anchor_image", "auto_anchors"})
"""Settings of a panel job that mean nothing for its characters' anchor jobs."""


def uses_identity_banks(backend: str) -> bool:
    """Whether the installed backend ``backend`` reads identity banks (False if unknown)."""
    from comic_studio.generation.registry import has_capability

    return has_capability(backend, CAPABILITY)


def _bank_tools() -> Any:
    """The consistent backend's bank helpers (importing them loads no torch)."""
    from comic_studio.backends.consistent import backend, bank

    return backend.parse_banks, bank.write_bank_file, bank.read_bank_file, bank.BankError


def _character(project: Project, character_id: str) -> Character:
    character = project.character(character_id)
    if character is None:
        raise ComicStudioError(f"character {character_id!r} does not exist")
    return character


def character_named(project: Project, name: str) -> Character:
    """The project's character called ``name`` (its id, name or an alias; case-insensitive)."""
    names = ", ".join(c.name for c in project.characters) or "none"
    return find_character(project.characters, name, f"this project (its characters: {names})")


def _bank_file(folder: Path, digest: str) -> Path:
    from comic_studio.backends.consistent.bank import bank_file  # lazily, like _bank_tools

    return bank_file(folder, digest)


# --------------------------------------------------------------------------- panel requests


def with_anchor_banks(settings: dict[str, Any], project: Project, character_ids: Iterable[str]) -> dict[str, Any]:
    """``settings`` with ``banks`` naming the anchor bank of every listed character that has one
    (entries the settings already hold for other characters are kept)."""
    parse_banks = _bank_tools()[0]
    anchored = {}
    for character_id in character_ids:
        character = project.character(character_id)
        if character is not None and character.anchor is not None:
            anchored[character.id] = character.anchor.bank
    if not anchored:
        return settings
    banks = {**parse_banks(str(settings.get(BANKS_SETTING) or "")), **anchored}
    return {**settings, BANKS_SETTING: ",".join(f"{cid}={digest}" for cid, digest in banks.items())}


def materialise_banks(settings: dict[str, Any], assets: AssetStore, folder: str | Path | None = None) -> Path:
    """Write every bank ``settings["banks"]`` names that the project carries and ``folder`` (default:
    the app's bank folder) lacks; return the folder. Banks in neither place are left for the job to
    report (or for :func:`rebuild_missing_banks` to rebuild)."""
    parse_banks, write_bank_file = _bank_tools()[:2]
    target = Path(folder) if folder else bank_dir()
    for digest in parse_banks(str(settings.get(BANKS_SETTING) or "")).values():
        if digest in assets and not _bank_file(target, digest).is_file():
            try:
                write_bank_file(assets.get(digest), target)
            except OSError as exc:
                raise ComicStudioError(f"cannot write identity bank {digest[:12]}… to {target} ({exc.strerror or exc})") from exc
    return target


def ensure_banks(project: Project, assets: AssetStore, folder: str | Path, character_ids: Iterable[str]) -> list[str]:
    """Put the bank of every listed character that has an anchor into ``folder`` (from the project's
    assets); return the ids of those whose bank is in neither place and must be rebuilt."""
    folder = Path(folder)
    rebuild = []
    for character_id in character_ids:
        character = project.character(character_id)
        if character is None or character.anchor is None or _bank_file(folder, character.anchor.bank).is_file():
            continue
        if character.anchor.bank in assets:
            materialise_banks({BANKS_SETTING: f"{character.id}={character.anchor.bank}"}, assets, folder)
        else:
            rebuild.append(character.id)
    return rebuild


# --------------------------------------------------------------------------- anchor jobs


def anchor_settings(project: Project) -> tuple[str, dict[str, Any]]:
    """Backend and settings for anchor jobs: those of the project's panels that use a
    consistent-character backend (the most common combination of the settings that shape a bank,
    so the banks match most panels' steps and sampler), else that backend's defaults."""
    from comic_studio.backends.consistent.anchors import BANK_RELEVANT

    counts: Counter[str] = Counter()
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    for page in project.pages:
        for panel in page.panels:
            name = panel.backend or project.default_backend
            if not uses_identity_banks(name):
                continue
            settings = panel.backend_settings if panel.backend else {}
            key = json.dumps([name, {k: settings.get(k) for k in BANK_RELEVANT}], sort_keys=True, default=str)
            counts[key] += 1
            first.setdefault(key, (name, settings))
    if not counts:
        return DEFAULT_BACKEND, {}
    name, settings = first[counts.most_common(1)[0][0]]
    return name, {k: v for k, v in settings.items() if k not in PANEL_ONLY_SETTINGS}


def anchor_request(project: Project, character_id: str, assets: AssetStore, picture: str | None = None,
                   settings: dict[str, Any] | None = None, *, folder: str | Path | None = None) -> GenerationRequest:
    """The job that makes ``character_id``'s anchor, ready to run: rendered from the character's solo
    prompt, or (``picture``: an asset hash, e.g. a panel result) banked from that picture.
    ``settings`` override :func:`anchor_settings` (e.g. ``anchor_seed`` for a new variation)."""
    from comic_studio.backends.consistent.anchors import anchor_prompt
    from comic_studio.generation.registry import get_backend_class

    character = _character(project, character_id)
    if picture is not None and picture not in assets:
        raise ComicStudioError(f"the picture {picture[:12]}… for {character.name}'s anchor is not in this project's assets")
    backend, base = anchor_settings(project)
    base = {**base, **(settings or {}), "anchor_for": character.id,
            "anchor_image": pipeline.ASSET_PREFIX + picture if picture else ""}
    cls = get_backend_class(backend)
    checked = cls.validate_settings(cls.__new__(cls), base)  # names and ranges, defaults filled
    side = max(16, checked["anchor_size"] // 8 * 8)
    who = RequestCharacter(id=character.id, name=character.name, colour=character.colour, description=character.description)
    request = GenerationRequest(backend=backend, backend_settings=base, width=side, height=side, seed=checked["anchor_seed"],
                                prompt=anchor_prompt(who), characters=[who])  # fmt: skip
    request = pipeline.hydrate_request(request, assets)
    return _in_folder(request, folder) if folder is not None else request


def _in_folder(request: GenerationRequest, folder: str | Path) -> GenerationRequest:
    return request.model_copy(update={"backend_settings": {**request.backend_settings, BANK_FOLDER_SETTING: str(folder)}})


def _job_bank(result: GenerationResult, character: Character) -> str:
    parse_banks = _bank_tools()[0]
    digest = parse_banks(str(result.settings.get(BANKS_SETTING) or "")).get(character.id)
    if not digest:
        raise ComicStudioError(f"the anchor job for {character.name} returned no identity bank")
    return digest


def _read_bank(folder: str | Path, digest: str, character: Character) -> bytes:
    read_bank_file, bank_error = _bank_tools()[2:]
    try:
        return read_bank_file(folder, digest)
    except bank_error as exc:
        raise ComicStudioError(f"{character.name}'s identity bank: {exc}") from exc


def record_anchor(doc: Document, character_id: str, request: GenerationRequest, result: GenerationResult,
                  bank_folder: str | Path, png: bytes | None = None) -> CharacterAnchor:
    """Store a finished anchor job on the character (one undoable "Set anchor" step): the anchor
    picture, the bank's hash and size, and the job's effective request (hashes only, no machine
    paths); the bank bytes become a project asset when they fit the asset limit."""
    character = _character(doc.project, character_id)
    digest = _job_bank(result, character)
    data = _read_bank(bank_folder, digest, character)
    effective = {k: v for k, v in (result.settings or request.backend_settings).items() if k != BANKS_SETTING}
    stored = pipeline.dehydrate_request(request.model_copy(update={"backend_settings": effective}), doc.assets)
    chosen = str(stored.backend_settings.get("anchor_image") or "").removeprefix(pipeline.ASSET_PREFIX)
    if chosen in doc.assets:  # banked from an existing picture: that picture is the anchor shown
        image, source = chosen, "picture"
    else:
        image = doc.assets.add(png, validate_image=False) if png else doc.assets.add_image(result.image)
        source = "rendered"
    anchor = CharacterAnchor(image=image, bank=digest, bank_bytes=len(data), source=source, request=stored.to_dict(),
                             created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    if anchor.stored_in_project:
        doc.assets.add(data, validate_image=False, where=f"identity bank of {character.name}")
    doc.execute(SetFields(("character", character.id), "Set anchor", anchor=anchor))
    return anchor


def clear_anchor(doc: Document, character_id: str) -> None:
    """Remove the character's anchor (one undoable "Clear anchor" step); its panels then build the
    identity in the job again, from the character's description."""
    character = _character(doc.project, character_id)
    if character.anchor is None:
        raise ComicStudioError(f"{character.name} has no anchor to clear")
    doc.execute(SetFields(("character", character.id), "Clear anchor", anchor=None))


def generate_anchor(doc: Document, character_id: str, picture: str | None = None, settings: dict[str, Any] | None = None,
                    *, folder: str | Path | None = None, on_step: StepCallback | None = None) -> CharacterAnchor:
    """Headless: run the anchor job here, synchronously, and record it (what the CLI does; the app
    submits the same request to its engine and records on the GUI thread)."""
    from comic_studio.generation.registry import get_backend

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
        raise ComicStudioError(f"{character.name}'s identity bank is missing and its anchor has no recorded job; "
                               "regenerate the anchor")
    return _in_folder(pipeline.hydrate_request(GenerationRequest.from_dict(character.anchor.request), assets), folder)


def record_rebuild(doc: Document, character_id: str, result: GenerationResult, folder: str | Path, expected_bank: str) -> str | None:
    """After a rebuild job: ``None`` when the bank came out identical (the usual case on the same
    kind of device). Otherwise the new bank is recorded on the character (one undoable step) and a
    notice for the user is returned. Nothing happens if the anchor was replaced meanwhile."""
    character = _character(doc.project, character_id)
    anchor = character.anchor
    digest = _job_bank(result, character)
    if anchor is None or anchor.bank != expected_bank or digest == anchor.bank:
        return None
    data = _read_bank(folder, digest, character)
    rebuilt = anchor.model_copy(update={"bank": digest, "bank_bytes": len(data)})
    if rebuilt.stored_in_project:
        doc.assets.add(data, validate_image=False, where=f"identity bank of {character.name}")
    doc.execute(SetFields(("character", character.id), "Rebuild anchor bank", anchor=rebuilt))
    return (f"{character.name}'s identity bank was rebuilt here and differs from the recorded one (another device "
            "or library version): new panels use the rebuilt bank; earlier panels may not regenerate exactly")


def rebuild_missing_banks(doc: Document, character_ids: Iterable[str], *, folder: str | Path | None = None,
                          on_step: StepCallback | None = None) -> list[str]:
    """Headless: make sure the listed characters' banks are in ``folder``, rebuilding those the
    project does not carry. Returns the notices of banks that came out different (also logged)."""
    from comic_studio.generation.registry import get_backend

    folder = Path(folder) if folder else bank_dir()
    notices = []
    for character_id in ensure_banks(doc.project, doc.assets, folder, list(character_ids)):
        expected = _character(doc.project, character_id).anchor.bank  # type: ignore[union-attr]
        request = rebuild_request(doc.project, doc.assets, character_id, folder)
        backend = get_backend(request.backend)
        request = request.model_copy(update={"backend_settings": backend.validate_settings(request.backend_settings)})
        notice = record_rebuild(doc, character_id, backend.generate(request, on_step), folder, expected)
        if notice:
            log.warning(notice)
            notices.append(notice)
    return notices


# --------------------------------------------------------------------------- replaying a stored request


def replay_banks(project: Project, request: GenerationRequest,
                 rebuilt: Mapping[str, str] | None = None) -> tuple[GenerationRequest, list[str]]:  # fmt: skip
    """Check the identity banks that a stored request, already hydrated (so the banks the project
    carries are in its bank folder), names before it is replayed ("regenerate same seed").

    Returns the request and the ids of the characters whose missing bank is their *current*
    anchor's: rebuild those first, then the replay is exact. ``rebuilt`` maps a bank hash to the bank
    its rebuild here produced when that came out different (another device or library version): the
    request then names the rebuilt bank, as new panels do. A bank that is gone for good (an older
    anchor's, a cleared anchor's) raises :class:`ComicStudioError` saying what to do, so no job is
    queued only to fail with "cannot read bank"."""
    parse_banks = _bank_tools()[0]
    settings = request.backend_settings
    named = parse_banks(str(settings.get(BANKS_SETTING) or ""))
    folder = Path(str(settings.get(BANK_FOLDER_SETTING) or "") or bank_dir())
    banks, rebuild, gone = dict(named), [], []
    for character_id, digest in named.items():
        if _bank_file(folder, digest).is_file():
            continue
        character = project.character(character_id)
        current = character.anchor.bank if character is not None and character.anchor is not None else None
        if digest == current:
            rebuild.append(character_id)
        elif current is not None and (rebuilt or {}).get(digest) == current and _bank_file(folder, current).is_file():
            banks[character_id] = current
        else:
            gone.append(_gone_reason(request, character_id, character))
    if gone:
        several = len(gone) > 1
        raise ComicStudioError(f"the identity bank{'s' if several else ''} this image was made with "
                               f"{'are' if several else 'is'} no longer available ({'; '.join(gone)}); render the "
                               f"panel again to use the current anchor{'s' if several else ''}")  # fmt: skip
    if banks != named:
        text = ",".join(f"{cid}={digest}" for cid, digest in banks.items())
        request = request.model_copy(update={"backend_settings": {**settings, BANKS_SETTING: text}})
    return request, rebuild


def _gone_reason(request: GenerationRequest, character_id: str, character: Character | None) -> str:
    if character is None:
        stored = request.character(character_id)
        return f"{stored.name if stored else character_id} is no longer in the project"
    if character.anchor is None:
        return f"{character.name}'s anchor was cleared since"
    return f"{character.name}'s anchor was regenerated since"


__all__ = [
    "anchor_request", "anchor_settings", "character_named", "clear_anchor", "ensure_banks", "generate_anchor", "materialise_banks",
    "rebuild_missing_banks", "rebuild_request", "record_anchor", "record_rebuild", "replay_banks", "uses_identity_banks",
    "with_anchor_banks",
]  # fmt: skip
