"""SerialGen's stage 1 with the kit standardizer (RaCig's models, tiny here): the standard pose is
data drawn deterministically, the sheet job uses it, the sheet becomes the character's first outfit
reference in one undoable step, regenerate replaces it, discard removes it; the ``serialgen``
backend draws characters from their sheets and refuses those without one; the CLI does all of it."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid, make_document  # noqa: E402

from comic_studio.cli import main  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.model import Character  # noqa: E402
from comic_studio.generation.registry import get_backend, register_backend, unregister_backend  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.poses.library import KEYPOINT_NAMES  # noqa: E402
from comic_studio.poses.staging.openpose import render_openpose  # noqa: E402
from comic_studio.poses.standard import STANDARD_CANVAS, standard_pose, standard_size  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.workflows.requests import build_request  # noqa: E402
from comic_studio.workflows.standardize import (  # noqa: E402
    STANDARD_PROMPT,
    StandardizeError,
    discard_standard_sheet,
    person_on_white,
    source_reference,
    standardize_character,
    standardize_request,
)


@pytest.fixture(autouse=True)
def serialgen_backend():
    """The backend as pyproject declares it (registered here too, so the tests run before a reinstall
    picks the new entry point up)."""
    declared = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    target = declared["project"]["entry-points"]["comic_studio.backends"]["serialgen"]
    assert target == "comic_studio.backends.racig:SerialgenBackend"
    register_backend("serialgen", target)
    yield
    unregister_backend("serialgen")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _with_references(doc: Document) -> Document:
    for seed, character in enumerate(doc.project.characters):
        character.body_refs = [doc.assets.add(_png(character_picture(10 + seed, 48, 64)))]
        character.face_refs = [doc.assets.add(_png(character_picture(20 + seed)))]
    return doc


def test_the_standard_pose_is_a_symmetric_a_pose_drawn_deterministically():
    pose = standard_pose()
    assert pose.framed and pose.aspect == pytest.approx(2 / 3)
    (figure,) = pose.figures
    points = dict(zip(KEYPOINT_NAMES, figure.keypoints))
    for right, left in (("r_shoulder", "l_shoulder"), ("r_wrist", "l_wrist"), ("r_ankle", "l_ankle")):
        assert points[right][0] + points[left][0] == pytest.approx(1.0)  # mirrored about the middle
        assert points[right][1] == points[left][1]
    # An A-pose: the arms spread outward and down from the shoulders, the wrists by the hips.
    assert points["r_wrist"][0] < points["r_elbow"][0] < points["r_shoulder"][0]
    assert points["r_shoulder"][1] < points["r_elbow"][1] < points["r_wrist"][1] < points["r_knee"][1]
    assert all(0 < x < 1 and 0 < y < 1 for x, y, _ in figure.keypoints)
    width, height = STANDARD_CANVAS
    pixels = [[(x * width, y * height, v) for x, y, v in figure.keypoints]]
    first, second = render_openpose(pixels, width, height), render_openpose(pixels, width, height)
    assert first.tobytes() == second.tobytes()
    assert standard_size(1216) == (808, 1216) or standard_size(1216)[1] == 1216
    assert all(side % 8 == 0 for side in standard_size(1216))


def test_person_on_white_whitens_only_outside_the_person():
    photo = Image.open("tests/vision/fixtures/emma_1female.png").convert("RGB")
    whitened = np.asarray(Image.open(io.BytesIO(person_on_white(_png(photo), "Emma"))).convert("RGB"))
    original = np.asarray(photo)
    changed = (whitened != original).any(axis=2)
    assert changed.any(), "the segmenter found a person, so some background turned white"
    assert (whitened[changed] == 255).all()  # only ever to white
    assert not changed[original.shape[0] // 2, original.shape[1] // 2]  # the person (centre) untouched
    plain = _png(character_picture(3))  # a drawing the photo segmenter does not see: unchanged
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(person_on_white(plain, "x")))),
                          np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")))  # fmt: skip


def test_sheet_job_recorded_regenerated_undone_and_discarded(tiny_models):
    doc = _with_references(make_document(tiny_models))
    ana = cid(doc, "Ana")
    author_picture = doc.project.character(ana).body_refs[0]

    request = standardize_request(doc.project, ana, doc.assets, seed=5)
    assert request.backend == "racig" and request.figures_override == standard_pose()
    assert STANDARD_PROMPT in request.prompt and "green raincoat" in request.prompt
    assert request.characters[0].face_refs == doc.project.character(ana).face_refs[:1]

    undo_before = len(doc.undo_stack)
    sheet, result = standardize_character(doc, ana, seed=5)
    character = doc.project.character(ana)
    assert character.standard_sheet == sheet and character.body_refs == [sheet, author_picture]
    assert len(doc.undo_stack) == undo_before + 1  # one step
    assert doc.assets.open_image(sheet).size[0] < doc.assets.open_image(sheet).size[1]  # portrait
    again, _ = standardize_character(doc, ana, seed=5)
    assert again == sheet  # same seed, same sheet

    other, _ = standardize_character(doc, ana, seed=6)  # regenerate: replaces, from the author's picture
    character = doc.project.character(ana)
    assert other != sheet and character.body_refs == [other, author_picture]
    assert source_reference(character) == author_picture

    doc.undo()
    assert doc.project.character(ana).standard_sheet == sheet
    discard_standard_sheet(doc, ana)
    assert doc.project.character(ana).standard_sheet is None
    assert doc.project.character(ana).body_refs == [author_picture]
    with pytest.raises(StandardizeError, match="no standard sheet"):
        discard_standard_sheet(doc, ana)


def test_no_reference_and_the_serialgen_standardizer_without_weights_are_refused(tiny_models):
    doc = make_document(tiny_models)
    with pytest.raises(StandardizeError, match="Ana has no reference picture"):
        standardize_request(doc.project, cid(doc, "Ana"), doc.assets, seed=1)
    _with_references(doc)
    with pytest.raises(
        StandardizeError, match="denoising_unet.pth, reference_unet.pth, pose_guider.pth.*not installed"
    ):
        standardize_request(doc.project, cid(doc, "Ana"), doc.assets, seed=1, standardizer="serialgen")


def test_serialgen_draws_from_the_sheet_and_refuses_without_one(tiny_models):
    doc = _with_references(make_document(tiny_models))
    panel = next(p for page in doc.project.pages for p in page.panels if len(p.characters) == 2)
    backend = get_backend("serialgen")
    request = build_request(doc.project, panel, "serialgen", doc.assets)
    with pytest.raises(GenerationError, match="(Ana, Ben|Ben, Ana) have none"):
        backend.generate(request.model_copy(update={"backend_settings": backend.validate_settings({})}))
    for name in ("Ana", "Ben"):
        standardize_character(doc, cid(doc, name), seed=3)
    request = build_request(doc.project, panel, "serialgen", doc.assets)
    settings = backend.validate_settings(request.backend_settings)
    drawn = backend.generate(request.model_copy(update={"backend_settings": settings}))
    # = racig with each character's sheet as its only outfit reference.
    racig = get_backend("racig")
    only_sheets = request.model_copy(update={
        "backend": "racig",
        "characters": [c.model_copy(update={"body_refs": [c.standard_sheet]}) for c in request.characters],
        "backend_settings": racig.validate_settings(request.backend_settings),
    })  # fmt: skip
    expected = racig.generate(only_sheets)
    assert np.array_equal(np.asarray(drawn.images[0]), np.asarray(expected.images[0]))


def test_cli_standardize_discard_and_render_with_serialgen(tiny_kit, restore_default_settings, tmp_path, monkeypatch,
                                                           capsys):  # fmt: skip
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    doc = _with_references(make_document(tiny_kit))
    doc.project.characters.append(Character(id="cara", name="Cara"))  # no references, in no panel
    path = doc.save(tmp_path / "story.comic")
    assert main(["standardize", str(path), "--character", "Ana", "--models", "tiny", "--seed", "4", "--quiet"]) == 0
    assert "Ana has a standard sheet" in capsys.readouterr().out
    assert main(["standardize", str(path), "--character", "Cara", "--models", "tiny", "--quiet"]) == 1
    assert "Cara has no reference picture" in capsys.readouterr().err
    assert main(["render", str(path), "--backend", "serialgen", "--models", "tiny", "--all",
                 "--out", str(tmp_path / "pages"), "--quiet"]) == 1  # fmt: skip
    assert "Ben has none" in capsys.readouterr().err
    assert main(["standardize", str(path), "--character", "Ben", "--models", "tiny", "--quiet"]) == 0
    assert main(["render", str(path), "--backend", "serialgen", "--models", "tiny", "--all",
                 "--out", str(tmp_path / "book.pdf"), "--save", str(tmp_path / "done.comic"), "--quiet"]) == 0  # fmt: skip
    done = Document.open(tmp_path / "done.comic")
    assert all(p.result().request["backend"] == "serialgen" for page in done.project.pages for p in page.panels)
    assert main(["standardize", str(path), "--character", "Ana", "--discard"]) == 0
    assert Document.open(path).project.character(cid(done, "Ana")).standard_sheet is None
