"""``comic-studio train identity`` on a saved project with the tiny models and a real face photo: the
identity tokens land on the character as a standard SDXL textual inversion with its card, an
interrupted run resumes bit for bit, bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from comic_studio.cli import main  # noqa: E402
from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.testing.tiny_identity import use_tiny_face_encoder  # noqa: E402
from comic_studio.training.identity import FACE_ENCODER_ENV, IdentityRecipe, load_identity  # noqa: E402
from comic_studio.training.lora import TrainingCancelled  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402
from comic_studio.workflows.identity import (  # noqa: E402
    identity_card,
    identity_checkpoint_path,
    train_character_identity,
)

FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"
pytestmark = pytest.mark.skipif("mediapipe-face" not in available_detectors(), reason="mediapipe is not installed")


@pytest.fixture
def project(tiny_kit, restore_default_settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv(FACE_ENCODER_ENV, "")  # the CLI's --models tiny sets it; monkeypatch restores it
    doc = Document.new(title="Identity")
    emma = character_edits.add_character(doc, name="Emma")
    character_edits.add_reference(doc, emma.id, "face", Image.open(FIXTURES / "emma_1female.png").convert("RGB"))
    blank = character_edits.add_character(doc, name="Blank")
    character_edits.add_reference(doc, blank.id, "face", Image.new("RGB", (128, 128), "white"))
    character_edits.add_character(doc, name="Nobody")
    return doc.save(tmp_path / "story.comic")


def test_train_identity_stores_a_textual_inversion_on_the_character(project, capsys):
    args = ["train", "identity", str(project), "--character", "emma", "--steps", "2", "--models", "tiny", "--quiet"]
    assert main(args) == 0
    assert "Emma has learned identity tokens (2 steps" in capsys.readouterr().out
    doc = Document.open(project)
    emma = next(c for c in doc.project.characters if c.name == "Emma")
    assert emma.identity_enabled
    data = doc.assets.get(emma.identity_asset)
    rows = load_identity(data, "the asset")
    assert rows["clip_l"].shape == (2, 32) and rows["clip_g"].shape == (2, 48)  # the tiny widths
    card = identity_card(data)
    assert card["method"] == "stableidentity-sdxl" and card["steps"] == 2 and card["recipe"]["alpha"] == 0.5
    assert card["recipe"]["resolution"] == 64 and len(card["photos"]) == 1
    assert identity_checkpoint_path(doc.project.id, emma.id).is_file()  # kept: the MLP checkpoint


def test_an_interrupted_run_resumes_from_the_cli_bit_for_bit(project, tiny_models, tmp_path):
    use_tiny_face_encoder(tmp_path / "cache" / "comic-studio" / "tiny-models" / "face-encoder")
    recipe = IdentityRecipe(steps=2, resolution=64)  # what the CLI runs with --steps 2 --models tiny
    straight = Document.open(project)
    emma = next(c for c in straight.project.characters if c.name == "Emma")
    expected = load_identity(straight.assets.get(train_character_identity(straight, emma.id, recipe).asset), "a")
    straight.undo_stack.undo()  # storing it was one undoable step
    assert straight.project.character(emma.id).identity_asset is None

    interrupted = Document.open(project)
    asked: list[int] = []
    with pytest.raises(TrainingCancelled):  # cancelled before the second step
        train_character_identity(interrupted, emma.id, recipe, cancel=lambda: asked.append(1) or len(asked) > 1)
    assert interrupted.project.character(emma.id).identity_asset is None

    args = ["train", "identity", str(project), "--character", "Emma", "--models", "tiny", "--quiet", "--resume"]
    assert main([*args, "--steps", "3"]) == 1  # other settings than the checkpoint's: refused, kept
    assert main([*args, "--steps", "2"]) == 0
    resumed = Document.open(project)
    got = load_identity(resumed.assets.get(resumed.project.character(emma.id).identity_asset), "b")
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_bad_input_is_one_clear_line(project, capsys):
    base = ["train", "identity", str(project), "--models", "tiny", "--quiet", "--steps", "1"]
    assert main([*base, "--character", "Nobody"]) == 1
    assert "has no face reference" in capsys.readouterr().err
    assert main([*base, "--character", "Blank"]) == 1
    assert "no face found in Blank's face reference" in capsys.readouterr().err
    assert main([*base, "--character", "Emma", "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert main([*base, "--character", "Emma", "--alpha", "1.5"]) == 1
    assert "training setting alpha" in capsys.readouterr().err
