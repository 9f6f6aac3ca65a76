"""A panel → the :class:`GenerationRequest` a backend runs, and back for storing.

A backend never reads the document: :func:`build_request` snapshots everything it needs.
Images it needs travel inside the request (see :func:`hydrate_request`); a stored request names
them in the asset store instead (:func:`dehydrate_request`), which keeps projects small.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from comic_studio.core import safe_read
from comic_studio.core.assets import MAX_ASSET_BYTES, AssetStore
from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import AssetError, ComicStudioError
from comic_studio.core.layout import bbox
from comic_studio.core.lora_library import MissingLoraError, library_lora_path, missing_lora_message
from comic_studio.core.model import ASSET_SETTING, ASSET_SETTING_PREFIX, Beat, Panel, Project
from comic_studio.core.settings import character_lora_dir
from comic_studio.generation.backend_api import (
    NEEDS_CHARACTER_IDENTITIES,
    NEEDS_CHARACTER_LORAS,
    MissingCharacterIdentities,
    MissingCharacterLoras,
    characters_without_identity,
    characters_without_lora,
    image_settings,
    image_value_problem,
)
from comic_studio.generation.request import GenerationRequest, RequestCharacter, data_uri_bytes, png_data_uri
from comic_studio.workflows import banks

MAX_RENDER_SIDE = 1536
"""Longest side, in pixels, of a panel render: enough for print at the page DPI after the
exporter's resampling, small enough that the storyboard stays interactive."""


def panel_pixel_size(project: Project, panel: Panel) -> tuple[int, int]:
    box = bbox(panel.shape)
    scale = project.page_format.dpi / 72
    w, h = box.w * scale, box.h * scale
    shrink = min(1.0, MAX_RENDER_SIDE / max(w, h, 1))
    return max(16, round(w * shrink)), max(16, round(h * shrink))


def panel_seed(panel: Panel) -> int:
    """The panel's seed: its own when set, else derived from its id (stable across runs)."""
    if panel.seed is not None:
        return panel.seed
    return int.from_bytes(hashlib.sha256(panel.id.encode()).digest()[:4], "big")


def build_prompt(project: Project, panel: Panel, beat: Beat | None) -> str:
    if panel.prompt:
        return panel.prompt
    # Sentence punctuation would read as "…of tea., Theo Okafor: …" once the parts are joined.
    parts = [beat.action.rstrip(" .!?;:,") if beat else ""]
    for placement in panel.characters:
        character = project.character(placement.character_id)
        if character and character.description:
            parts.append(f"{character.name}: {character.description}")
    if panel.setting:
        parts.append(panel.setting)
    style = project.active_style()
    if style and style.prompt_suffix:
        parts.append(style.prompt_suffix)
    return ", ".join(p for p in parts if p)


def build_request(
    project: Project, panel: Panel, backend: str | None = None, assets: AssetStore | None = None
) -> GenerationRequest:
    """Snapshot everything a backend needs for ``panel`` (the backend never reads the document).

    With ``assets``, a backend that declares ``needs_reference_images`` also gets the characters'
    reference images inline (:func:`hydrate_request`); without, the request only names them."""
    beat = project.story.beat(panel.beat_id) if panel.beat_id else None
    width, height = panel_pixel_size(project, panel)
    characters = []
    for placement in panel.characters:
        character = project.character(placement.character_id)
        if character is None:
            continue
        characters.append(
            RequestCharacter(
                id=character.id,
                name=character.name,
                colour=character.colour,
                description=character.description,
                face_refs=character.face_refs,
                body_refs=character.body_refs,
                # Once a render (or the author) has placed the character, the figure assignment
                # is pinned so regenerating keeps who-is-who; before that the backend assigns.
                figure=placement.figure if placement.head is not None else None,
                face_scale=character.face_scale,
                body_scale=character.body_scale,
                # A disabled LoRA stays on the character but is not sent: the render is then the
                # same as for a character that never had one.
                lora=character.lora_asset if character.lora_enabled else None,
                lora_scale=character.lora_scale,
                identity=character.identity_asset if character.identity_enabled else None,
                identity_scale=character.identity_scale,
                standard_sheet=character.standard_sheet,
            )
        )
    style = project.active_style()
    name = backend or panel.backend or project.default_backend
    settings = panel.backend_settings if name == panel.backend else {}
    if banks.uses_identity_banks(name):
        # Characters with an anchor: name their banks (hashes only; hydrate_request adds the folder).
        settings = banks.with_anchor_banks(name, settings, project, [c.id for c in characters])
    request = GenerationRequest(
        backend=name,
        backend_settings=settings,
        width=width,
        height=height,
        seed=panel_seed(panel),
        prompt=build_prompt(project, panel, beat),
        negative_prompt=panel.negative_prompt or (style.negative if style else ""),
        shot=panel.shot,
        setting=panel.setting or (beat.setting if beat else ""),
        time_of_day=beat.time_of_day if beat else "",
        action=beat.action if beat else "",
        characters=characters,
        actor_id=beat.actor_id if beat else None,
        target_id=beat.target_id if beat else None,
        pose_id=panel.pose_id,
        figures_override=panel.pose,
        panel_id=panel.id,
    )
    return hydrate_request(request, assets, where=panel_label(project, panel)) if assets is not None else request


def panel_label(project: Project, panel: Panel) -> str:
    """``page 2, panel 3`` (reading order) for messages about a panel."""
    for number, page in enumerate(project.pages, 1):
        order = [p.id for p in page.panels_in_order()]
        if panel.id in order:
            return f"page {number}, panel {order.index(panel.id) + 1}"
    return f"panel {panel.id}"


# --------------------------------------------------------------------------- inline images in requests
# Images a backend needs travel inside the request: reference images in the ``reference_images``
# setting, an init image as a data URI. Stored requests
# (``PanelResult.request``) must stay small, so before storing, those images are replaced by what
# names them in the asset store (the reference hashes are already in the request's characters; an
# inline image becomes ``asset:<hash>``), and :func:`hydrate_request` puts them back for a replay.

REFERENCE_SETTING = "reference_images"
CHARACTER_LORAS_SETTING = "character_loras"
CHARACTER_IDENTITIES_SETTING = "character_identities"
ASSET_PREFIX = ASSET_SETTING_PREFIX
_ASSET_VALUE = ASSET_SETTING
_INLINE_MIN = 1024
"""Data URIs shorter than this stay in a stored request (not worth an asset)."""


def backend_needs_references(name: str) -> bool:
    """Whether the installed backend ``name`` wants reference images inline (False if unknown)."""
    from comic_studio.generation.registry import get_backend_class

    try:
        return bool(get_backend_class(name).needs_reference_images)
    except (ComicStudioError, KeyError):
        return False


def reference_hashes(request: GenerationRequest) -> list[str]:
    """Every face/body reference of the request's characters, in order, without repeats."""
    return list(dict.fromkeys(h for c in request.characters for h in (*c.face_refs, *c.body_refs)))


def _asset_bytes(assets: AssetStore, digest: str, what: str) -> bytes:
    if digest not in assets:
        raise ComicStudioError(f"{what} {digest[:12]}… is not in this project's assets (was its image removed?)")
    return assets.get(digest)


def _image_setting_names(backend: str) -> tuple[str, ...]:
    from comic_studio.generation.registry import get_backend_class

    try:
        return image_settings(get_backend_class(backend))
    except (ComicStudioError, KeyError):
        return ()  # not installed: the job fails on that, naming the backend


def check_image_settings(request: GenerationRequest, where: str | None = None) -> None:
    """Refuse a request whose image settings (init image, mask, …) hold a file path rather than an
    asset or image data: a project must not make the renderer read local files. The message names
    ``where`` (the panel) and the setting."""
    for key in _image_setting_names(request.backend):
        value = request.backend_settings.get(key)
        problem = image_value_problem(value) if isinstance(value, str) else None
        if problem:
            place = where or (f"panel {request.panel_id}" if request.panel_id else "this job")
            raise ComicStudioError(f"{place}: setting {key!r}: {problem}")


def check_character_training(requests: list[GenerationRequest]) -> None:
    """Refuse requests to a backend that draws every character with its trained LoRA (StoryBooth)
    or its learned identity tokens (StableIdentity) where some character has none, before anything
    is queued: one :class:`~comic_studio.generation.backend_api.MissingCharacterLoras` (or, when no
    LoRA is missing, :class:`~comic_studio.generation.backend_api.MissingCharacterIdentities`)
    naming them all."""
    from comic_studio.generation.registry import has_capability

    for capability, lacking_in, error in (
        (NEEDS_CHARACTER_LORAS, characters_without_lora, MissingCharacterLoras),
        (NEEDS_CHARACTER_IDENTITIES, characters_without_identity, MissingCharacterIdentities),
    ):
        missing: list[tuple[str, str]] = []
        backend = ""
        for request in requests:
            if has_capability(request.backend, capability):
                lacking = lacking_in(request)
                missing += [(c.id, c.name) for c in lacking]
                backend = backend or (request.backend if lacking else "")
        if missing:
            raise error(backend, missing)


def import_image_settings(backend: str, settings: dict[str, Any], assets: AssetStore) -> dict[str, Any]:
    """``settings`` with each image setting that names a file (one the user typed or picked) read
    safely and replaced by ``asset:<hash>`` of the file added to ``assets``: how a file enters a
    project. Raises :class:`ComicStudioError` naming the setting and the file."""
    out = dict(settings)
    for key in _image_setting_names(backend):
        value = out.get(key)
        if not isinstance(value, str) or image_value_problem(value) is None:
            continue
        path = Path(value.strip()).expanduser()
        try:
            data = safe_read.read_bytes(path, limit=MAX_ASSET_BYTES, what="image")
            out[key] = ASSET_PREFIX + assets.add(data, where=str(path))
        except safe_read.UnsafeInputError as exc:
            raise ComicStudioError(f"setting {key!r}: {exc}") from exc
        except AssetError as exc:
            raise ComicStudioError(f"setting {key!r}: {exc}") from exc
    return out


def hydrate_request(request: GenerationRequest, assets: AssetStore, *, where: str | None = None) -> GenerationRequest:
    """``request`` ready to run: ``asset:<hash>`` settings become data URIs, and a backend that
    ``needs_reference_images`` gets every character reference in its ``reference_images``
    setting (replacing whatever was there), and a consistent-character backend gets this machine's
    bank folder with the identity banks the project carries written into it. Raises
    :class:`ComicStudioError` naming a missing asset, or an image setting holding a file path
    (naming ``where``, the panel)."""
    check_image_settings(request, where)
    check_character_training([request])
    settings = dict(request.backend_settings)
    for key, value in settings.items():
        match = _ASSET_VALUE.match(value) if isinstance(value, str) else None
        if match:
            settings[key] = png_data_uri(_asset_bytes(assets, match.group(1), f"setting {key!r}: image"))
    if backend_needs_references(request.backend):
        refs = {h: png_data_uri(_asset_bytes(assets, h, "reference image")) for h in reference_hashes(request)}
        if refs:
            settings[REFERENCE_SETTING] = json.dumps(refs)
        else:
            settings.pop(REFERENCE_SETTING, None)
    if banks.uses_identity_banks(request.backend):
        # This machine's bank folder, with the banks the project carries written out into it.
        settings[banks.BANK_FOLDER_SETTING] = str(banks.materialise_banks(request.backend, settings, assets))
    for key, value in ((CHARACTER_LORAS_SETTING, _character_loras(request, assets)),
                       (CHARACTER_IDENTITIES_SETTING, _character_identities(request, assets))):  # fmt: skip
        if value:
            settings[key] = value
        else:
            settings.pop(key, None)
    return request.model_copy(update={"backend_settings": settings})


def _character_loras(request: GenerationRequest, assets: AssetStore) -> str:
    """The ``character_loras`` setting of a job: the trained LoRAs of the panel's characters, written
    to this machine's cache folder, as JSON ``[[path, scale], …]`` (empty when the backend applies no
    LoRAs or nobody has one)."""
    from comic_studio.generation.registry import has_capability

    wanted = {c.lora: (c.name, c.lora_scale) for c in request.characters if c.lora}
    if not wanted or not has_capability(request.backend, "lora"):
        return ""
    entries = [[str(_character_lora_file(assets, digest, name)), scale] for digest, (name, scale) in wanted.items()]
    return json.dumps(entries)


def _character_lora_file(assets: AssetStore, digest: str, name: str) -> Path:
    """The LoRA file a job loads: the project's asset (written to the cache folder), or the file in
    the user's LoRA library for one too big for a project; :class:`MissingLoraError` naming the
    character and the hash when it is in neither."""
    if digest in assets:
        return _cached_asset_file(assets, digest, "LoRA")
    path = library_lora_path(digest)
    if not path.is_file():
        raise MissingLoraError(missing_lora_message(name, digest))
    return path


def _character_identities(request: GenerationRequest, assets: AssetStore) -> str:
    """The ``character_identities`` setting of a job: ``{character id: identity file}`` (JSON) for
    the panel's characters with learned identity tokens, written to this machine's cache folder
    (empty when the backend places no identity tokens or nobody has them)."""
    from comic_studio.generation.registry import has_capability

    wanted = {c.id: c.identity for c in request.characters if c.identity}
    if not wanted or not has_capability(request.backend, "identity"):
        return ""
    return json.dumps({cid: str(_cached_asset_file(assets, d, "identity")) for cid, d in wanted.items()})


def _cached_asset_file(assets: AssetStore, digest: str, what: str) -> Path:
    """The asset ``digest`` (a character's LoRA or identity file) as ``<digest>.safetensors`` in this
    machine's cache folder, written there once."""
    folder = character_lora_dir()
    path = folder / f"{digest}.safetensors"
    if not path.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, _asset_bytes(assets, digest, f"character {what}"), f"a character's {what}")
        except OSError as exc:
            raise ComicStudioError(f"cannot write a character's {what} to {folder} ({exc.strerror or exc})") from exc
    return path


def dehydrate_request(request: GenerationRequest, assets: AssetStore) -> GenerationRequest:
    """The inverse of :func:`hydrate_request`, for storing: no ``reference_images`` payload, no bank
    folder, and inline image data URIs replaced by ``asset:<hash>`` (added to ``assets`` if not
    there yet)."""
    settings = dict(request.backend_settings)
    settings.pop(REFERENCE_SETTING, None)
    settings.pop(CHARACTER_LORAS_SETTING, None)  # paths of this machine; the characters name the LoRAs
    settings.pop(CHARACTER_IDENTITIES_SETTING, None)  # likewise for their identity tokens
    if banks.uses_identity_banks(request.backend):
        settings.pop(banks.BANK_FOLDER_SETTING, None)  # a path of this machine; hydrate sets it
    for key, value in settings.items():
        if (
            isinstance(value, str)
            and len(value) >= _INLINE_MIN
            and value.startswith("data:")
            and ";base64," in value[:100]
        ):
            try:
                data = data_uri_bytes(value)
            except ValueError:
                continue  # not ours to interpret: the backend validated it; keep it as it was
            settings[key] = ASSET_PREFIX + assets.add(data, validate_image=False)
    return request.model_copy(update={"backend_settings": settings})
