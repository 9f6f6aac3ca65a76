"""``comic-studio train serialgen`` on tiny stage-1 weights: pairs read and refused by line, the
loss on a fixed evaluation batch drops, a resumed run equals an uninterrupted one bit for bit, the
trained modules load into the standardizer, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.cli import main  # noqa: E402
from comic_studio.generation.models.serialgen_stage1 import MODULES_FILE, load_modules  # noqa: E402
from comic_studio.testing.tiny_serialgen import build_tiny_serialgen  # noqa: E402
from comic_studio.training.checkpoint import load_checkpoint  # noqa: E402
from comic_studio.training.lora import TrainingCancelled, TrainingError  # noqa: E402
from comic_studio.training.serialgen import SerialgenRecipe, read_pairs  # noqa: E402
from comic_studio.workflows.serialgen_training import CHECKPOINT, train_serialgen  # noqa: E402

W, H = 64, 96


@pytest.fixture(scope="module")
def kit(tiny_kit):
    return build_tiny_serialgen(tiny_kit.root / "serialgen", sd15_kit=tiny_kit.root / "sd15")


def _pairs(folder: Path, count: int = 2, *, mask_all: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        names = {f: f"{i}_{f}.png" for f in ("ref_image", "ref_mask", "ref_pose", "std_image", "std_pose")}
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / names["ref_image"])
        mask = np.full((H, W), 255 if mask_all else 0, dtype=np.uint8)
        mask[20:80, 16 + i : 48] = 255
        Image.fromarray(mask, "L").save(folder / names["ref_mask"])
        pose = Image.new("RGB", (W, H))
        pose.paste((255, 0, 0), (28, 20 + i, 36, 80))
        pose.save(folder / names["ref_pose"])
        std = np.full((H, W, 3), 255, dtype=np.uint8)
        std[10:90, 20:44] = rng.integers(0, 255, 3)
        Image.fromarray(std).save(folder / names["std_image"])
        target = Image.new("RGB", (W, H))
        target.paste((0, 255, 0), (20, 10, 44, 90))
        target.save(folder / names["std_pose"])
        rows.append(names)
    manifest = folder / "pairs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def _recipe(**kw):
    return SerialgenRecipe(width=W, height=H, gradient_accumulation=1, learning_rate=3e-2, uncond_ratio=0.0,
                           checkpoint_every=1, **kw)  # fmt: skip


def _models(kit):
    return {"weights": str(kit.moore), "base": str(kit.sd15), "encoder": str(kit.image_encoder)}


def test_the_evaluation_loss_drops(kit, tmp_path):
    trained = train_serialgen(_pairs(tmp_path / "data"), tmp_path / "out", _recipe(steps=8), **_models(kit))
    assert trained.steps == 8
    assert trained.evaluation_loss < trained.first_evaluation_loss
    assert (tmp_path / "out" / MODULES_FILE).is_file()


def test_resume_equals_uninterrupted(kit, tmp_path):
    data = _pairs(tmp_path / "data")
    straight = train_serialgen(data, tmp_path / "straight", _recipe(steps=4), **_models(kit))
    asked = {"n": 0}

    def cancel_after_two_steps() -> bool:
        asked["n"] += 1
        return asked["n"] > 2  # one micro-step a step: stop before the third

    with pytest.raises(TrainingCancelled):
        train_serialgen(data, tmp_path / "resumed", _recipe(steps=4), **_models(kit), cancel=cancel_after_two_steps)
    # The keys every checkpoint has had (older files resume): the layout is a file format.
    assert set(load_checkpoint(tmp_path / "resumed" / CHECKPOINT)) == {
        "step", "micro", "running", "losses", "recipe", "manifest", "weights", "grads", "optimizer",
        "noise_generator", "timestep_generator", "drop_generator", "order", "global_rngs"}  # fmt: skip
    resumed = train_serialgen(data, tmp_path / "resumed", _recipe(steps=4), **_models(kit), resume=True)
    assert resumed.steps == straight.steps == 4
    assert resumed.final_loss == straight.final_loss and resumed.evaluation_loss == straight.evaluation_loss
    a = (tmp_path / "straight" / MODULES_FILE).read_bytes()
    assert a == (tmp_path / "resumed" / MODULES_FILE).read_bytes()


def test_trained_modules_load_for_the_standardizer(kit, tmp_path):
    from diffusers import UNet2DConditionModel

    train_serialgen(_pairs(tmp_path / "data"), tmp_path / "out", _recipe(steps=1), **_models(kit))
    unet = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    modules = load_modules(tmp_path / "out", unet)
    assert any(p.abs().sum() > 0 for p in modules.background)  # FBDM moved off zero


def test_unets_train_too_when_asked(kit, tmp_path):
    trained = train_serialgen(_pairs(tmp_path / "data", 1), tmp_path / "out", _recipe(steps=1, train_unets=True),
                              **_models(kit))  # fmt: skip
    assert trained.unets
    for name in ("reference_unet", "denoising_unet", "pose_guider"):
        assert (tmp_path / "out" / f"{name}.safetensors").is_file()


def test_steps_without_the_image_condition_run_and_leave_the_modules(kit, tmp_path):
    """Moore's unconditional forward (probability 0.1) has no reference pass: FBDM/RPIM get no
    gradient from it, and the step still runs."""
    from diffusers import UNet2DConditionModel

    recipe = SerialgenRecipe(width=W, height=H, gradient_accumulation=2, steps=1, uncond_ratio=1.0)
    trained = train_serialgen(_pairs(tmp_path / "data", 1), tmp_path / "out", recipe, **_models(kit))
    assert trained.steps == 1 and trained.final_loss > 0
    unet = UNet2DConditionModel.from_pretrained(str(kit.sd15), subfolder="unet")
    modules = load_modules(tmp_path / "out", unet)
    assert not any(p.abs().sum() for p in [*modules.background, *modules.foreground])


def test_bad_rows_are_named(tmp_path):
    manifest = _pairs(tmp_path / "all", 1, mask_all=True)
    with pytest.raises(TrainingError, match=r"pairs.jsonl, line 1: ref_mask: the character's mask covers the whole"):
        read_pairs(manifest, W / H)
    empty = _pairs(tmp_path / "none", 1)
    Image.new("L", (W, H), 0).save(empty.parent / "0_ref_mask.png")
    with pytest.raises(TrainingError, match="line 1: ref_mask: no person found"):
        read_pairs(empty, W / H)
    (tmp_path / "bad.jsonl").write_text('{"ref_image": "x.png"}\n', encoding="utf-8")
    with pytest.raises(TrainingError, match="line 1: needs an object with the file names ref_image, ref_mask"):
        read_pairs(tmp_path / "bad.jsonl", W / H)


def test_cli_train_serialgen_tiny(tiny_kit, kit, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    data = _pairs(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["train", "serialgen", "--data", str(data), "--out", str(out), "--models", "tiny", "--steps", "2",
                 "--accumulation", "1", "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    assert "SerialGen standardizer (2 steps" in capsys.readouterr().out
    assert (out / MODULES_FILE).is_file()
