"""``comic-studio eval`` through the CLI's main(): real project files, the storyboard backend and the
halftone example plugin, the tiny OpenCLIP model; both report files written, the JSON valid."""

from __future__ import annotations

import io
import json

import jsonschema
import pytest

pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from comic_studio.cli import main  # noqa: E402
from comic_studio.core.character_file import load_characters  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.lookup import find_panel  # noqa: E402
from comic_studio.core.resources import resource  # noqa: E402
from comic_studio.evaluation.report import EvalReport, schema, schema_path  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.testing.tiny_eval import tiny_clip_weights  # noqa: E402
from comic_studio.testing.tiny_identity import write_tiny_face_encoder  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402
from comic_studio.workflows.batch import DEMO_CHARACTERS, DEMO_STORY, render_panel  # noqa: E402
from comic_studio.workflows.story import story_to_document  # noqa: E402


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    return tiny_clip_weights(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def project(tmp_path):
    """The sample story as a project, Mara with one reference picture; returns (path, panel specs
    of two panels Mara is in)."""
    doc = story_to_document(
        resource(*DEMO_STORY).read_text(encoding="utf-8"), load_characters(resource(*DEMO_CHARACTERS))
    )
    buffer = io.BytesIO()
    character_picture(3, 64, 96).save(buffer, format="PNG")
    digest = doc.assets.add(buffer.getvalue())
    doc.project.character("mara").face_refs = [digest]
    with_mara = [
        f"{n}.{i}" for n, page in enumerate(doc.project.pages, 1) for i, panel in enumerate(page.panels_in_order(), 1)
        if [p.character_id for p in panel.characters] == ["mara"]
    ]  # fmt: skip
    path = doc.save(tmp_path / "book.comic")
    return path, with_mara[:2]


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["eval", *argv, "--quiet"])
    return code, capsys.readouterr().out


def test_eval_dry_writes_both_files_validates_and_leaves_the_project_alone(project, clip_weights, tmp_path, capsys):
    path, (first, _second) = project
    before = path.read_bytes()
    out = tmp_path / "report"
    code, printed = _run(capsys, str(path), "--backends", "storyboard,halftone", "--panels", first, "--out", str(out),
                         "--dry", "--clip-model", str(clip_weights), "--pose-detector", "none",
                         "--face-encoder", "none")  # fmt: skip
    assert code == 0
    assert path.read_bytes() == before
    report = EvalReport.model_validate_json((out / "report.json").read_text(encoding="utf-8"))
    shipped = json.loads(schema_path().read_text(encoding="utf-8"))
    assert shipped == schema()  # the shipped schema is current
    # An independent validator (not pydantic) against the shipped schema, and it is not vacuous:
    # a wrong type and an unknown field are refused.
    validator = jsonschema.Draft202012Validator(shipped)
    written = json.loads((out / "report.json").read_text(encoding="utf-8"))
    validator.validate(written)
    broken = json.loads(json.dumps(written))
    broken["panels"][0]["runs"][0]["clip_t"] = "high"
    broken["backends"][0]["surprise"] = 1
    assert {e.validator for e in validator.iter_errors(broken)} >= {"anyOf", "additionalProperties"}
    assert [b.backend for b in report.backends] == ["storyboard", "halftone"] and report.settings.dry
    (panel,) = report.panels
    assert [r.backend for r in panel.runs] == ["storyboard", "halftone"]
    for run in panel.runs:
        assert run.error is None and (out / run.image).is_file() and run.clip_t is not None
        (mara,) = run.characters
        assert mara.character_id == "mara" and mara.clip_i is not None and -1 <= mara.clip_i <= 1
        assert mara.pose is None  # --pose-detector none
    (character,) = report.characters
    for row in character.backends:  # one panel: no pair, so AP-CLIP-I is undefined and says why
        assert row.panels == 1 and row.ap_clip_i is None and "at least two" in row.ap_clip_i_note
    page = (out / "report.html").read_text(encoding="utf-8")
    assert not report.settings.face_similarity and "--face-encoder none" in report.settings.face_similarity_note
    assert page.count("<svg") == 7 and "data:image/png;base64," in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "storyboard" in printed and "halftone" in printed and "AP-CLIP-I" in printed


def test_eval_keeps_renders_in_history_and_the_shown_result(project, clip_weights, tmp_path, capsys):
    path, panels = project
    doc = Document.open(path)
    shown = [find_panel(doc.project, spec) for spec in panels]
    for panel in shown:  # a result the author sees before the comparison
        render_panel(doc, panel.id, "storyboard")
    doc.save(path)
    code, _ = _run(capsys, str(path), "--backends", "storyboard,halftone", "--panels", ",".join(panels),
                   "--out", str(tmp_path / "r"), "--clip-model", str(clip_weights), "--segmentation", "none",
                   "--pose-detector", "none", "--face-encoder", str(write_tiny_face_encoder(tmp_path / "vit")))  # fmt: skip
    assert code == 0
    after = Document.open(path)
    for panel in shown:
        assert panel.current_result is not None
        saved = after.project.find_panel(panel.id)[1]
        assert [r.backend for r in saved.results] == [*(r.backend for r in panel.results), "storyboard", "halftone"]
        assert saved.current_result == panel.current_result
    report = EvalReport.model_validate_json((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    (mara,) = report.characters
    assert all(row.panels == 2 and row.ap_clip_i is not None and row.ap_clip_i_note == "" for row in mara.backends)
    assert all(b.ap_clip_i is not None and b.clip_i is not None for b in report.backends)
    # The face encoder is loaded through the real loader and named; the drawn figures show no face
    # MediaPipe finds, so face similarity is undefined (null), not 0.
    if "mediapipe-face" in available_detectors():
        assert report.settings.face_similarity and str(tmp_path / "vit") in report.settings.face_similarity_note
        assert all(b.face_similarity is None for b in report.backends)
    else:
        assert not report.settings.face_similarity and report.settings.face_similarity_note.startswith("absent: ")


def test_eval_names_an_unknown_backend_and_a_bad_panel(project, clip_weights, tmp_path, capsys):
    path, _ = project
    args = ["--out", str(tmp_path / "x"), "--clip-model", str(clip_weights)]
    assert main(["eval", str(path), "--backends", "storyboard,nope", *args]) == 1
    assert "unknown backend(s) nope" in capsys.readouterr().err
    assert main(["eval", str(path), "--backends", "storyboard", "--panels", "99", *args]) == 1
    assert "no page 99" in capsys.readouterr().err
