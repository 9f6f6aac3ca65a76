"""Identity banks of consistent-character backends (capability ``consistent_characters``), kept
with the project so panels reproduce anywhere.

A character's anchor (see :mod:`.anchors`) records the hash of its identity bank; the bank bytes
are a project asset when they fit the asset limit, else only in this machine's bank folder
(:func:`comic_studio.core.settings.bank_dir`). Panel jobs name their characters' banks by hash
(:func:`with_anchor_banks`, from :func:`.requests.build_request`); :func:`.requests.hydrate_request`
adds this machine's folder and writes the banks the project carries into it
(:func:`materialise_banks`), so a single panel regenerated next week reads the very tokens the
whole-story run read.

A stored request replayed later ("regenerate same seed") may name a bank that is in neither place:
:func:`replay_banks` tells a current anchor's bank (rebuild it first) from an older anchor's (gone:
the author is told to render the panel again).

What a bank is and where its file lives is the backend's business: these functions reach it only
through the identity-bank hooks of :class:`~comic_studio.generation.backend_api.GenerationBackend`, on the
class the registry returns for the job's backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from comic_studio.core.assets import AssetStore
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Project
from comic_studio.core.settings import bank_dir
from comic_studio.generation.backend_api import CONSISTENT_CHARACTERS
from comic_studio.generation.registry import get_backend_class, has_capability
from comic_studio.generation.request import GenerationRequest

BANKS_SETTING = "banks"
"""The setting naming a job's banks, ``"character-id=sha256,..."`` (parsed by the backend)."""
BANK_FOLDER_SETTING = "bank_folder"
"""The setting holding the folder the job reads banks from: a path of this machine, so it is set
when a request is hydrated and dropped when it is stored."""


def uses_identity_banks(backend: str) -> bool:
    """Whether the installed backend ``backend`` reads identity banks (False if unknown)."""
    return has_capability(backend, CONSISTENT_CHARACTERS)


def with_anchor_banks(
    backend: str, settings: dict[str, Any], project: Project, character_ids: Iterable[str]
) -> dict[str, Any]:
    """``settings`` of a ``backend`` job with ``banks`` naming the anchor bank of every listed
    character that has one (entries the settings already hold for other characters are kept)."""
    anchored = {}
    for character_id in character_ids:
        character = project.character(character_id)
        if character is not None and character.anchor is not None:
            anchored[character.id] = character.anchor.bank
    if not anchored:
        return settings
    cls = get_backend_class(backend)
    banks = {**cls.parse_banks(str(settings.get(BANKS_SETTING) or "")), **anchored}
    return {**settings, BANKS_SETTING: cls.format_banks(banks)}


def materialise_banks(
    backend: str, settings: dict[str, Any], assets: AssetStore, folder: str | Path | None = None
) -> Path:
    """Write every bank ``settings["banks"]`` names that the project carries and ``folder`` (default:
    the app's bank folder) lacks; return the folder. Banks in neither place are left for the job to
    report (or for :func:`.anchors.rebuild_missing_banks` to rebuild)."""
    cls = get_backend_class(backend)
    target = Path(folder) if folder else bank_dir()
    for digest in cls.parse_banks(str(settings.get(BANKS_SETTING) or "")).values():
        if digest in assets and not cls.bank_file(target, digest).is_file():
            try:
                cls.write_bank_file(assets.get(digest), target)
            except OSError as exc:
                raise ComicStudioError(
                    f"cannot write identity bank {digest[:12]}… to {target} ({exc.strerror or exc})"
                ) from exc
    return target


def ensure_banks(
    backend: str, project: Project, assets: AssetStore, folder: str | Path, character_ids: Iterable[str]
) -> list[str]:
    """Put the bank of every listed character that has an anchor into ``folder`` (from the project's
    assets), for a ``backend`` job; return the ids of those whose bank is in neither place and must be
    rebuilt."""
    cls = get_backend_class(backend)
    folder = Path(folder)
    rebuild = []
    for character_id in character_ids:
        character = project.character(character_id)
        if character is None or character.anchor is None or cls.bank_file(folder, character.anchor.bank).is_file():
            continue
        if character.anchor.bank in assets:
            single = cls.format_banks({character.id: character.anchor.bank})
            materialise_banks(backend, {BANKS_SETTING: single}, assets, folder)
        else:
            rebuild.append(character.id)
    return rebuild


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
    cls = get_backend_class(request.backend)
    settings = request.backend_settings
    named = cls.parse_banks(str(settings.get(BANKS_SETTING) or ""))
    folder = Path(str(settings.get(BANK_FOLDER_SETTING) or "") or bank_dir())
    banks, rebuild, gone = dict(named), [], []
    for character_id, digest in named.items():
        if cls.bank_file(folder, digest).is_file():
            continue
        character = project.character(character_id)
        current = character.anchor.bank if character is not None and character.anchor is not None else None
        if digest == current:
            rebuild.append(character_id)
        elif (
            current is not None and (rebuilt or {}).get(digest) == current and cls.bank_file(folder, current).is_file()
        ):
            banks[character_id] = current
        else:
            gone.append(_gone_reason(request, character_id, character))
    if gone:
        several = len(gone) > 1
        raise ComicStudioError(f"the identity bank{'s' if several else ''} this image was made with "
                               f"{'are' if several else 'is'} no longer available ({'; '.join(gone)}); render the "
                               f"panel again to use the current anchor{'s' if several else ''}")  # fmt: skip
    if banks != named:
        request = request.model_copy(update={"backend_settings": {**settings, BANKS_SETTING: cls.format_banks(banks)}})
    return request, rebuild


def _gone_reason(request: GenerationRequest, character_id: str, character: Character | None) -> str:
    if character is None:
        stored = request.character(character_id)
        return f"{stored.name if stored else character_id} is no longer in the project"
    if character.anchor is None:
        return f"{character.name}'s anchor was cleared since"
    return f"{character.name}'s anchor was regenerated since"
