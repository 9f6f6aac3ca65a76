"""``comic-studio train lora`` on a saved project with the tiny models: the LoRA lands on the
character as a project asset with its card, an interrupted run resumes bit for bit, bad input is
one clear line."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


from comic_studio.cli import main  # noqa: E402
from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.model import Pronouns  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.lora import LoraRecipe, TrainingCancelled  # noqa: E402
from comic_studio.workflows.training import checkpoint_path, lora_card, train_character_lora  # noqa: E402


def reference(seed: int):
    return character_picture(seed, width=64, height=80)


@pytest.fixture
def project(tiny_kit, restore_default_settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    doc = Document.new(title="Training")
    mara = character_edits.add_character(doc, name="Mara", pronouns=Pronouns.SHE)
    character_edits.add_reference(doc, mara.id, "face", reference(1))
    character_edits.add_reference(doc, mara.id, "body", reference(2))
    character_edits.add_character(doc, name="Nobody")
    return doc.save(tmp_path / "story.comic")


def test_train_lora_stores_the_lora_on_the_character(project, capsys):
    assert (
        main(["train", "lora", str(project), "--character", "mara", "--steps", "2", "--models", "tiny", "--quiet"]) == 0
    )
    assert "Mara has a trained LoRA (2 steps" in capsys.readouterr().out
    doc = Document.open(project)
    mara = next(c for c in doc.project.characters if c.name == "Mara")
    data = doc.assets.get(mara.lora_asset)
    card = lora_card(data)
    assert card["trigger"] == "sks woman" and card["steps"] == 2 and card["recipe"]["rank"] == 4
    assert len(card["pictures"]) == 2 and card["recipe"]["resolution"] == 64
    assert not checkpoint_path(doc.project.id, mara.id).exists()  # finished: no checkpoint left


def _tensors(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


def test_an_interrupted_run_resumes_from_the_cli_bit_for_bit(project, tiny_models):
    recipe = LoraRecipe(steps=2, resolution=64)  # what the CLI runs with --steps 2 --models tiny
    straight = Document.open(project)
    mara = next(c for c in straight.project.characters if c.name == "Mara")
    expected = _tensors(straight.assets.get(train_character_lora(straight, mara.id, recipe).asset))
    straight.undo_stack.undo()  # storing it was one undoable step
    assert straight.project.character(mara.id).lora_asset is None

    interrupted = Document.open(project)
    asked: list[int] = []
    with pytest.raises(TrainingCancelled):  # cancelled inside the second step's gradient accumulation
        train_character_lora(interrupted, mara.id, recipe, cancel=lambda: asked.append(1) or len(asked) > 6)
    assert checkpoint_path(interrupted.project.id, mara.id).is_file()
    assert interrupted.project.character(mara.id).lora_asset is None  # nothing stored until it finishes

    args = ["train", "lora", str(project), "--character", "Mara", "--models", "tiny", "--quiet", "--resume"]
    assert main([*args, "--steps", "3"]) == 1  # other settings than the checkpoint's: refused, kept
    assert main([*args, "--steps", "2"]) == 0
    resumed = Document.open(project)
    got = _tensors(resumed.assets.get(resumed.project.character(mara.id).lora_asset))
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)


def test_bad_input_is_one_clear_line(project, capsys):
    base = ["train", "lora", str(project), "--models", "tiny", "--quiet", "--steps", "1"]
    assert main([*base, "--character", "Nobody"]) == 1
    assert "no face or outfit references" in capsys.readouterr().err
    assert main([*base, "--character", "Mara", "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert main([*base, "--character", "Mara", "--rank", "0"]) == 1
    assert "training setting rank" in capsys.readouterr().err
    assert main([*base, "--character", "Zed"]) == 1
    assert "Zed" in capsys.readouterr().err


def test_prior_preservation_from_the_cli_reuses_the_class_pictures(project, tmp_path, monkeypatch, capsys):
    from comic_studio.core.settings import BANK_DIR_ENV, class_images_dir

    monkeypatch.setenv(BANK_DIR_ENV, str(tmp_path / "cache" / "banks"))
    doc = Document.open(project)
    ines = character_edits.add_character(doc, name="Ines", pronouns=Pronouns.SHE)  # the same class word
    character_edits.add_reference(doc, ines.id, "face", reference(3))
    doc.save(project)
    base = ["train", "lora", str(project), "--models", "tiny", "--steps", "1", "--prior", "--class-images", "3",
            "--prior-weight", "0.5", "--min-snr", "5"]  # fmt: skip
    assert main([*base, "--character", "Mara"]) == 0
    assert "class pictures (3 of the base model): 3/3" in capsys.readouterr().err
    pictures = sorted(class_images_dir().glob("*/*.png"))
    assert len(pictures) == 3
    stamps = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in pictures]
    assert main([*base, "--character", "Ines", "--quiet"]) == 0  # another character: made none
    assert sorted(class_images_dir().glob("*/*.png")) == pictures
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in pictures] == stamps
    doc = Document.open(project)
    for name in ("Mara", "Ines"):
        card = lora_card(doc.assets.get(next(c for c in doc.project.characters if c.name == name).lora_asset))
        recipe = card["recipe"]
        assert recipe["prior_preservation"] and recipe["prior_loss_weight"] == 0.5 and recipe["snr_gamma"] == 5
        assert card["class_pictures"]["prompt"] == "a photo of a woman" and card["class_pictures"]["count"] == 3
    assert main([*base[:-2], "--min-snr", "0", "--no-prior", "--character", "Mara", "--quiet"]) == 0
    doc = Document.open(project)
    card = lora_card(doc.assets.get(next(c for c in doc.project.characters if c.name == "Mara").lora_asset))
    assert card["recipe"]["snr_gamma"] is None and not card["recipe"]["prior_preservation"]
    assert card["class_pictures"] is None


def test_samples_every_n_steps_land_where_the_studio_card_reads_them(project, capsys):
    from comic_studio.training.samples import kept_samples

    base = ["train", "lora", str(project), "--character", "Mara", "--models", "tiny", "--steps", "2"]
    prompts = ["a photo of sks woman smiling", "sks woman, comic style"]
    assert main([*base, "--samples-every", "2", "--samples-prompt", prompts[0], "--samples-prompt", prompts[1]]) == 0
    err = capsys.readouterr().err
    doc = Document.open(project)
    mara = next(c for c in doc.project.characters if c.name == "Mara")
    kept = kept_samples(checkpoint_path(doc.project.id, mara.id))
    assert [(step, len(files)) for step, files in kept] == [(2, 2)]  # every 2nd step, one file per prompt
    assert f"samples at step 2: {kept[0][1][0]}, {kept[0][1][1]}" in err and "samples at step 1" not in err

    assert main([*base, "--no-samples", "--quiet"]) == 0  # a new run: the old strip goes, none is made
    assert kept_samples(checkpoint_path(doc.project.id, mara.id)) == []
    assert main([*base, "--samples-every", "-1"]) == 1
    assert "training setting every" in capsys.readouterr().err
    assert main([*base, "--samples-prompt", " "]) == 1
    assert "--samples-prompt" in capsys.readouterr().err


def test_ctrl_c_stops_the_cli_run_at_a_step_with_a_checkpoint(project, capsys):
    """A real SIGINT (what Ctrl+C sends) to this process once the command's handler is in place →
    exit 130, the resume hint on stderr, the checkpoint saved and the project untouched."""
    import os
    import signal
    import threading

    from comic_studio.cli.train import _TrainingRun

    def ours() -> bool:
        return isinstance(getattr(signal.getsignal(signal.SIGINT), "__self__", None), _TrainingRun)

    sent = threading.Event()
    finished = threading.Event()

    def press_ctrl_c() -> None:
        # Waits for the command to install its handler (only then is SIGINT a request to stop
        # rather than a KeyboardInterrupt), sends it once, and gives up when the command is over.
        while not finished.is_set():
            if ours():
                os.kill(os.getpid(), signal.SIGINT)
                sent.set()
                return
            finished.wait(0.01)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        code = main(["train", "lora", str(project), "--character", "Mara", "--models", "tiny", "--steps", "1000",
                     "--no-samples", "--quiet"])  # fmt: skip
    finally:
        finished.set()
        presser.join()
    assert sent.is_set() and code == 130 and not ours()  # the handler before the command is back
    assert "run again with --resume to continue" in capsys.readouterr().err
    doc = Document.open(project)
    mara = next(c for c in doc.project.characters if c.name == "Mara")
    assert checkpoint_path(doc.project.id, mara.id).is_file() and mara.lora_asset is None


def test_train_text_encoder_from_the_cli_lands_in_both_file_layouts(project, tmp_path, capsys):
    from safetensors.torch import load_file

    base = ["train", "lora", str(project), "--character", "Mara", "--steps", "1", "--models", "tiny", "--quiet"]
    assert main([*base, "--train-text-encoder", "--no-samples"]) == 0
    doc = Document.open(project)
    mara = next(c for c in doc.project.characters if c.name == "Mara")
    data = doc.assets.get(mara.lora_asset)
    assert lora_card(data)["recipe"]["train_text_encoder"] is True
    assert {k.split(".", 1)[0] for k in _tensors(data)} == {"unet", "text_encoder", "text_encoder_2"}
    out = tmp_path / "export"
    assert main(["train", "export-lora", str(project), "--character", "Mara", "--out", str(out)]) == 0
    kohya = set(load_file(str(out / "Mara.kohya.safetensors")))
    assert {k.split("_", 2)[1] for k in kohya} == {"unet", "te1", "te2"}
    capsys.readouterr()
