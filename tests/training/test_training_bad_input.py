"""Training refuses bad input with one clear line naming what and where, and never leaves half an
asset: no pictures, a broken picture, a base model of another family (an SD 1.5-shaped checkpoint),
and a full disk when the checkpoint is written (a child process under RLIMIT_FSIZE), after which
the run resumes from the checkpoint it had."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from comic_studio.cli import main  # noqa: E402
from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.errors import ComicStudioError  # noqa: E402
from comic_studio.core.model import Pronouns  # noqa: E402
from comic_studio.testing.sparse_weights import write_sparse_safetensors  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.training.lora import LoraRecipe, TrainingCancelled  # noqa: E402
from comic_studio.workflows.training import checkpoint_path, plan_training, train_character_lora  # noqa: E402

SD15_SHAPES = {  # the tensors that tell SD 1.5 apart: one 768-wide CLIP text encoder, 768 cross-attention
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
    "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
}


@pytest.fixture
def project(tiny_kit, restore_default_settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    doc = Document.new(title="Bad input")
    mara = character_edits.add_character(doc, name="Mara", pronouns=Pronouns.SHE)
    character_edits.add_reference(doc, mara.id, "face", character_picture(1, 64, 80))
    character_edits.add_character(doc, name="Nobody")
    return doc.save(tmp_path / "story.comic")


def _mara(doc: Document) -> str:
    return next(c.id for c in doc.project.characters if c.name == "Mara")


def test_no_picture_or_a_broken_one_is_refused_naming_it(project):
    doc = Document.open(project)  # a saved project's pictures were checked on open; in memory they may not be
    nobody = next(c.id for c in doc.project.characters if c.name == "Nobody")
    with pytest.raises(ComicStudioError, match="'Nobody': the character has no face or outfit references"):
        plan_training(doc, nobody)
    junk = doc.assets.add(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, validate_image=False)  # a truncated PNG
    character_edits.update_character(doc, nobody, face_refs=[junk])
    with pytest.raises(ComicStudioError, match=rf"cannot train 'Nobody': Nobody's reference {junk[:12]}…"):
        plan_training(doc, nobody)


def test_a_base_model_of_another_family_is_one_clear_line(project, tmp_path, capsys):
    base = ["train", "lora", str(project), "--models", "tiny", "--quiet", "--steps", "1"]

    sd15 = write_sparse_safetensors(tmp_path / "models" / "dreamshaper_8.safetensors", SD15_SHAPES, "F16")
    assert main([*base, "--character", "Mara", "--model", str(sd15)]) == 1
    err = capsys.readouterr().err
    assert "cannot train 'Mara'" in err and "dreamshaper_8.safetensors" in err
    assert "Stable Diffusion 1.x/2.x checkpoint" in err and "not SDXL" in err
    doc = Document.open(project)
    assert all(c.lora_asset is None for c in doc.project.characters)  # nothing stored
    assert not checkpoint_path(doc.project.id, _mara(doc)).exists()  # nothing to resume was made


CHILD = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # a file may not grow past this: a full disk
    from comic_studio.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def test_a_full_disk_at_checkpoint_time_keeps_the_last_checkpoint_and_resumes(project, tiny_models, tmp_path):
    doc = Document.open(project)
    mara = _mara(doc)
    asked: list[int] = []
    with pytest.raises(TrainingCancelled) as stopped:  # a first checkpoint, after step 1 of 2
        train_character_lora(doc, mara, LoraRecipe(steps=2, resolution=64),
                             cancel=lambda: asked.append(1) or len(asked) > 4)  # fmt: skip
    checkpoint = stopped.value.checkpoint
    before = checkpoint.read_bytes()
    # The training folder is shared (other runs' checkpoints may be there): what matters is that the
    # failed write leaves no file behind.
    present = sorted(p.name for p in checkpoint.parent.iterdir())
    assert len(before) > 4096

    args = ["train", "lora", str(project), "--character", "Mara", "--models", "tiny", "--steps", "2", "--resume"]
    child = subprocess.run([sys.executable, "-c", CHILD, "4096", *args], capture_output=True, text=True,
                           env={**os.environ}, timeout=600)  # fmt: skip
    assert child.returncode == 1, child.stderr
    assert str(checkpoint) in child.stderr and "cannot write the training checkpoint" in child.stderr
    assert "the previous checkpoint is kept" in child.stderr
    assert checkpoint.read_bytes() == before  # the last good checkpoint, whole
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == present  # no half-written file
    assert Document.open(project).project.character(mara).lora_asset is None  # no asset stored

    assert main([*args, "--quiet"]) == 0  # space again: it resumes from that checkpoint and finishes
    assert Document.open(project).project.character(mara).lora_asset is not None
    assert not checkpoint.exists()


def test_a_lora_too_big_for_the_project_trains_into_the_library_or_is_refused_before_the_first_step(
    project, tmp_path, monkeypatch, capsys
):
    """The project's limit for one asset, lowered so that the tiny UNet's rank-8 LoRA exceeds it: the
    run trains and keeps the LoRA in the user's LoRA library by its hash (issue 16 §1); only a library
    folder that cannot be written refuses it, before any step (not hours later when storing)."""
    import hashlib

    from comic_studio.core import model as core_model

    monkeypatch.setattr(core_model, "MAX_ASSET_BYTES", 150_000)  # the tiny LoRA: about 40 kB per rank
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the library folder should be")
    monkeypatch.setenv("COMIC_STUDIO_LORA_DIR", str(blocked / "loras"))
    base = ["train", "lora", str(project), "--character", "Mara", "--models", "tiny", "--quiet", "--steps", "1",
            "--no-samples"]  # fmt: skip
    assert main([*base, "--rank", "8"]) == 1
    err = capsys.readouterr().err
    assert "over the project's 0.14 MB file limit" in err and "cannot write to the LoRA library folder" in err
    assert str(blocked / "loras") in err
    doc = Document.open(project)
    assert not checkpoint_path(doc.project.id, _mara(doc)).exists()  # refused before any step

    monkeypatch.setenv("COMIC_STUDIO_LORA_DIR", str(tmp_path / "loras"))
    assert main([*base, "--rank", "8"]) == 0
    doc = Document.open(project)
    mara = doc.project.character(_mara(doc))
    kept = tmp_path / "loras" / f"{mara.lora_asset}.safetensors"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == mara.lora_asset and mara.lora_bytes > 150_000
    assert mara.lora_asset not in doc.assets  # outside the project
