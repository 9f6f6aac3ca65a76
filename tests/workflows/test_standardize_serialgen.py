"""The ``serialgen`` standardizer (the paper's stage 1 on Moore-AnimateAnyone-layout weights, tiny
here) behind the standardize job: the sheet from the author's picture, recorded like the kit's,
trained FBDM/RPIM used when named; missing weights and unusable references refused before the job,
naming the files or the picture; the CLI end to end."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid, make_document  # noqa: E402

from comic_studio.cli import main  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.generation.registry import register_backend, unregister_backend  # noqa: E402
from comic_studio.poses.standard import STANDARD_CANVAS  # noqa: E402
from comic_studio.poses.standard_inputs import ReferenceInputError, check_person_mask, standard_inputs  # noqa: E402
from comic_studio.testing.tiny_serialgen import use_tiny_serialgen  # noqa: E402
from comic_studio.workflows.standardize import (  # noqa: E402
    StandardizeError,
    standardize_character,
    standardize_request,
)

FIXTURES = Path(__file__).resolve().parents[1] / "vision" / "fixtures"


@pytest.fixture(autouse=True)
def serialgen_backend():
    register_backend("serialgen", "comic_studio.backends.racig:SerialgenBackend")  # as pyproject declares it
    yield
    unregister_backend("serialgen")


@pytest.fixture
def tiny_models_and_serialgen(tiny_models):
    """``--models tiny`` (the document's kit) with the tiny stage-1 weights as serialgen's defaults."""
    return tiny_models, use_tiny_serialgen(tiny_models.root / "serialgen", sd15_kit=tiny_models.root / "sd15")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _document(kit, picture: Image.Image) -> Document:
    doc = make_document(kit)
    ana = doc.project.character(cid(doc, "Ana"))
    ana.body_refs = [doc.assets.add(_png(picture))]
    return doc


def _brandt() -> Image.Image:
    return Image.open(FIXTURES / "brandt_1male.png").convert("RGB")


def test_the_sheet_is_drawn_by_the_papers_stage_one_and_recorded(tiny_models_and_serialgen):
    doc = _document(tiny_models_and_serialgen[0], _brandt())
    ana = cid(doc, "Ana")
    author_picture = doc.project.character(ana).body_refs[0]
    request = standardize_request(doc.project, ana, doc.assets, seed=3, standardizer="serialgen")
    assert request.backend == "serialgen" and request.backend_settings["stage"] == "standardize"
    assert (request.width, request.height) == STANDARD_CANVAS  # §4.1: 512 × 768
    assert request.characters[0].body_refs == [author_picture]  # the picture itself: FBDM reads its background

    sheet, result = standardize_character(doc, ana, seed=3, standardizer="serialgen")
    character = doc.project.character(ana)
    assert character.standard_sheet == sheet and character.body_refs == [sheet, author_picture]
    assert doc.assets.open_image(sheet).size == STANDARD_CANVAS
    assert result.settings["stage"] == "standardize"
    again, _ = standardize_character(doc, ana, seed=3, standardizer="serialgen")
    assert again == sheet  # the same seed draws the same sheet
    other, _ = standardize_character(doc, ana, seed=4, standardizer="serialgen")
    assert other != sheet


def test_trained_fbdm_and_rpim_are_used_when_named(tiny_models_and_serialgen, tmp_path):
    from diffusers import UNet2DConditionModel

    from comic_studio.generation.models.serialgen_stage1 import SerialGenModules, save_modules

    modules = SerialGenModules.for_unet(
        UNet2DConditionModel.from_pretrained(str(tiny_models_and_serialgen[1].sd15), subfolder="unet")
    )
    with torch.no_grad():
        for p in modules.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    save_modules(modules, tmp_path / "trained")
    doc = _document(tiny_models_and_serialgen[0], _brandt())
    ana = cid(doc, "Ana")
    baseline, _ = standardize_character(doc, ana, seed=3, standardizer="serialgen")
    trained, _ = standardize_character(doc, ana, seed=3, standardizer="serialgen",
                                       settings={"standardizer_modules": str(tmp_path / "trained")})  # fmt: skip
    assert trained != baseline


def test_a_picture_without_a_person_is_refused_before_the_job(tiny_models_and_serialgen):
    doc = _document(tiny_models_and_serialgen[0], Image.new("RGB", (300, 400), (200, 210, 220)))
    with pytest.raises(StandardizeError, match="Ana's reference picture: no person found"):
        standardize_request(doc.project, cid(doc, "Ana"), doc.assets, seed=1, standardizer="serialgen")


def test_a_picture_with_several_people_is_refused(tiny_models_and_serialgen):
    one = _brandt()
    two = Image.new("RGB", (one.width * 2, one.height), "white")
    two.paste(one, (0, 0))
    two.paste(one, (one.width, 0))
    doc = _document(tiny_models_and_serialgen[0], two)
    with pytest.raises(StandardizeError, match="2 people in the picture.*crop the picture"):
        standardize_request(doc.project, cid(doc, "Ana"), doc.assets, seed=1, standardizer="serialgen")


def test_the_reference_is_padded_with_its_background_mask_and_own_pose():
    brandt = _brandt()
    inputs = standard_inputs(brandt, "Brandt")
    w, h = inputs.image.size
    # 608 × 764 is wider than 2:3: padded above and below, not cropped or stretched.
    assert w / h == pytest.approx(2 / 3, abs=0.01) and w == brandt.width
    assert inputs.background.shape == (h, w) and inputs.pose.size == (w, h)
    pad = (h - brandt.height) // 2
    assert inputs.background[:pad].all() and inputs.image.getpixel((0, 0)) == (255, 255, 255)
    person = ~inputs.background[pad : pad + brandt.height]
    assert 0.2 < person.mean() < 0.9  # the segmenter's person, not all or nothing
    assert np.asarray(inputs.pose).any()  # the detected skeleton is drawn


def test_a_mask_covering_everything_is_refused():
    with pytest.raises(ReferenceInputError, match="Ana: the character's mask covers the whole picture"):
        check_person_mask(np.ones((40, 30), dtype=bool), "Ana")
    with pytest.raises(ReferenceInputError, match="Ana: no person found"):
        check_person_mask(np.zeros((40, 30), dtype=bool), "Ana")
    half = np.zeros((40, 30), dtype=bool)
    half[10:30] = True
    assert check_person_mask(half, "Ana") is half


def test_cli_serialgen_standardizer_with_tiny_weights_and_without(tiny_kit, restore_default_settings, tmp_path,
                                                                   monkeypatch, capsys):  # fmt: skip
    doc = _document(tiny_kit, _brandt())
    path = doc.save(tmp_path / "story.comic")
    assert main(["standardize", str(path), "--character", "Ana", "--standardizer", "serialgen", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "denoising_unet.pth, reference_unet.pth, pose_guider.pth" in err and "not installed" in err
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert main(["standardize", str(path), "--character", "Ana", "--standardizer", "serialgen", "--models", "tiny",
                 "--seed", "2", "--quiet"]) == 0  # fmt: skip
    assert "Ana has a standard sheet" in capsys.readouterr().out
    assert Document.open(path).project.character(cid(doc, "Ana")).standard_sheet is not None
