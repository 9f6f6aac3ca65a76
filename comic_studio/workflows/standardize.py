"""Standardize a character's reference (SerialGen's stage 1), then personalize from the sheet.

SerialGen (seed 004) keeps whole-body consistency by first turning a reference into a *standard
sheet* — the same character in a standard pose (front A-pose), on a plain background, with a neutral
expression and the face at a fixed scale — and generating panels from that sheet (AP-CLIP-I 83.2 vs
77.7 one-stage, §4.3). Comic authors know this as "make a character sheet first".

Standardizers (``STANDARDIZERS``):

- ``kit`` (default; no weights beyond RaCig's): the reference's person cut out onto white (the
  offline person segmenter; the picture as it is where it finds nobody), the standard A-pose of
  :mod:`comic_studio.poses.standard` through the OpenPose ControlNet, the white-backed body through
  IP-Adapter Plus and the face reference through Plus-Face — i.e. one ``racig`` job with the
  standard pose and the prompt "full body, front view, standing, neutral expression, plain white
  background".
- ``serialgen``: the paper's own stage 1 (ReferenceNet + PoseGuider + CLIP image context + FBDM/RPIM,
  :mod:`comic_studio.generation.models.serialgen_stage1`) on Moore-AnimateAnyone's public stage-1
  weights over SD 1.5, at the paper's 512 × 768 (§4.1), run by the ``serialgen`` backend's
  ``stage = "standardize"``. FBDM/RPIM are zero (the paper's baseline) until a user trains them
  (``comic-studio train serialgen``). The reference is used as it is (not cut out: FBDM reads its
  background mask); a missing model, nobody in the picture, several people or a person covering the
  whole picture are refused here, before the job is queued.

The sheet is recorded on the character (one undoable step: ``standard_sheet`` and first of
``body_refs``, so racig, consistent and the adapters use it as the outfit reference); regenerate =
run again with another seed (the previous sheet is replaced, in the same undo history); discard =
:func:`discard_standard_sheet`. The ``serialgen`` backend (racig over the sheets) makes the
two-stage method selectable per panel and comparable with the others.
"""

from __future__ import annotations

import io
import random

from comic_studio.core.assets import AssetStore
from comic_studio.core.commands import SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Character, Project, ShotType
from comic_studio.core.safe_read import decode_image
from comic_studio.generation.registry import get_backend
from comic_studio.generation.request import (
    GenerationRequest,
    GenerationResult,
    RequestCharacter,
    StepCallback,
    result_png,
)
from comic_studio.workflows.requests import hydrate_request

STANDARD_PROMPT = "full body, front view, standing, neutral expression, plain white background"
"""SerialGen's standard: whole figure, facing the viewer, nothing behind it (the issue's wording)."""
STANDARD_NEGATIVE = "scenery, busy background, props, dramatic pose, cropped, cut off, several people"
STANDARDIZERS = ("kit", "serialgen")
DEFAULT_STANDARDIZER = "kit"
KIT_BACKEND = "racig"
SERIALGEN_BACKEND = "serialgen"
STANDARD_LONG_SIDE = 1216
"""Sheet height in pixels: SDXL's 832 × 1216 bucket (the backend's own size limit still applies)."""


class StandardizeError(ComicStudioError):
    """A character cannot be standardized (no reference, unknown standardizer); says what to do."""


def _character(project: Project, character_id: str) -> Character:
    character = project.character(character_id)
    if character is None:
        raise StandardizeError(f"character {character_id!r} does not exist")
    return character


def source_reference(character: Character) -> str:
    """The picture a sheet is made from: the first body reference that is not an earlier sheet
    (regenerating starts from the author's picture again, not from a sheet of a sheet), else the
    first face reference."""
    for digest in character.body_refs:
        if digest != character.standard_sheet:
            return digest
    if character.face_refs:
        return character.face_refs[0]
    raise StandardizeError(
        f"{character.name} has no reference picture to standardize: add a face or body reference first"
    )


def person_on_white(data: bytes, where: str) -> bytes:
    """The picture with everything but the person replaced by white (PNG), where the offline person
    segmenter finds one; otherwise the picture unchanged (:func:`comic_studio.vision.detect.person_on_white`)."""
    from comic_studio.vision.detect import person_on_white as cut_out

    out = io.BytesIO()
    cut_out(decode_image(data, where=where)).save(out, format="PNG")
    return out.getvalue()


def standardize_request(
    project: Project,
    character_id: str,
    assets: AssetStore,
    *,
    seed: int,
    standardizer: str = DEFAULT_STANDARDIZER,
    settings: dict | None = None,
) -> GenerationRequest:
    """The job that draws ``character_id``'s standard sheet, ready to run (references inline)."""
    if standardizer not in STANDARDIZERS:
        raise StandardizeError(f"unknown standardizer {standardizer!r}; choose one of {', '.join(STANDARDIZERS)}")
    # Here, not at import: the pose package is heavy, and the window imports this module at start.
    from comic_studio.poses.standard import standard_pose, standard_size

    character = _character(project, character_id)
    source = source_reference(character)
    if source not in assets:
        raise StandardizeError(f"{character.name}'s reference picture {source[:12]}… is missing from the project")
    if standardizer == "serialgen":
        return _serialgen_request(character, source, assets, seed=seed, settings=settings)
    white = assets.add(person_on_white(assets.get(source), f"{character.name}'s reference"), validate_image=False)
    width, height = standard_size(STANDARD_LONG_SIDE)
    who = RequestCharacter(
        id=character.id,
        name=character.name,
        colour=character.colour,
        description=character.description,
        face_refs=character.face_refs[:1],
        body_refs=[white],
        figure=0,
        face_scale=character.face_scale,
        body_scale=character.body_scale,
    )
    prompt = ", ".join(p for p in (character.description.strip(), STANDARD_PROMPT) if p)
    request = GenerationRequest(
        backend=KIT_BACKEND,
        backend_settings={**(settings or {}), "pose_choice": "panel"},
        width=width,
        height=height,
        seed=seed,
        prompt=prompt,
        negative_prompt=STANDARD_NEGATIVE,
        shot=ShotType.WIDE,  # whole figure (the pose is framed already: the shot only names it)
        action="standing, front view",
        characters=[who],
        figures_override=standard_pose(),
    )
    return hydrate_request(request, assets, where=f"{character.name}'s standard sheet")


def _serialgen_request(character: Character, source: str, assets: AssetStore, *, seed: int,
                       settings: dict | None) -> GenerationRequest:  # fmt: skip
    """The paper's stage 1 as a ``serialgen`` job, checked first: the models installed, one person
    in the reference with some background around them (:class:`StandardizeError` otherwise)."""
    from comic_studio.generation.models.loading import ModelLoadError
    from comic_studio.generation.models.serialgen_stage1 import encoder_folder, stage1_folder
    from comic_studio.generation.registry import get_backend_class
    from comic_studio.poses.standard import STANDARD_CANVAS
    from comic_studio.poses.standard_inputs import ReferenceInputError, standard_inputs

    effective = {**get_backend_class(SERIALGEN_BACKEND).default_settings(), **(settings or {})}
    try:
        stage1_folder(effective.get("standardizer_weights", ""))
        encoder_folder(effective.get("standardizer_image_encoder", ""))
    except ModelLoadError as exc:
        raise StandardizeError(str(exc)) from exc
    where = f"{character.name}'s reference picture"
    try:
        standard_inputs(decode_image(assets.get(source), where=where), where)
    except ReferenceInputError as exc:
        raise StandardizeError(str(exc)) from exc
    width, height = STANDARD_CANVAS  # §4.1: 512 × 768
    who = RequestCharacter(id=character.id, name=character.name, colour=character.colour,
                           description=character.description, body_refs=[source], figure=0)  # fmt: skip
    request = GenerationRequest(
        backend=SERIALGEN_BACKEND, backend_settings={**(settings or {}), "stage": "standardize"}, width=width,
        height=height, seed=seed, prompt=STANDARD_PROMPT, shot=ShotType.WIDE, action="standing, front view",
        characters=[who],
    )  # fmt: skip
    return hydrate_request(request, assets, where=f"{character.name}'s standard sheet")


def record_standard_sheet(doc: Document, character_id: str, png: bytes) -> str:
    """Store a finished sheet on the character (one undoable "Set standard sheet" step): it becomes
    ``standard_sheet`` and the first body reference, replacing an earlier sheet."""
    character = _character(doc.project, character_id)
    digest = doc.assets.add(png, where=f"{character.name}'s standard sheet")
    others = [d for d in character.body_refs if d not in (character.standard_sheet, digest)]
    doc.execute(SetFields(("character", character.id), "Set standard sheet", standard_sheet=digest,
                          body_refs=[digest, *others]))  # fmt: skip
    return digest


def discard_standard_sheet(doc: Document, character_id: str) -> None:
    """Remove the character's sheet (one undoable "Discard standard sheet" step): its body
    references are the author's own again."""
    character = _character(doc.project, character_id)
    if character.standard_sheet is None:
        raise StandardizeError(f"{character.name} has no standard sheet to discard")
    others = [d for d in character.body_refs if d != character.standard_sheet]
    doc.execute(SetFields(("character", character.id), "Discard standard sheet", standard_sheet=None,
                          body_refs=others))  # fmt: skip


def standardize_character(
    doc: Document,
    character_id: str,
    *,
    seed: int | None = None,
    standardizer: str = DEFAULT_STANDARDIZER,
    settings: dict | None = None,
    on_step: StepCallback | None = None,
) -> tuple[str, GenerationResult]:
    """Headless: draw the sheet here, synchronously, and record it. Returns (sheet hash, result).
    ``seed`` None: a new random seed (regenerate = run again)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    request = standardize_request(doc.project, character_id, doc.assets, seed=seed, standardizer=standardizer,
                                  settings=settings)  # fmt: skip
    backend = get_backend(request.backend)
    request = request.model_copy(update={"backend_settings": backend.validate_settings(request.backend_settings)})
    result = backend.generate(request, on_step)
    character = _character(doc.project, character_id)
    png = result_png(result, backend=request.backend, panel=f"{character.name}'s standard sheet")
    return record_standard_sheet(doc, character_id, png), result
