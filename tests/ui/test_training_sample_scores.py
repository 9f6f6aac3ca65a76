"""Training samples scored as the run goes: a real two-step LoRA run on the tiny models with a sample
every step; each sample's masked CLIP-I against Mara's references (tiny OpenCLIP model from the app
settings) is shown under it in the Train dialog's strip, and equals the evaluation module's figure
for the sample pictures the run saved."""

# ruff: noqa: F811  (the fixtures imported below are parameters of the test)
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")

from test_train_lora_dialog import RUN_TIMEOUT_MS, _dialog, mara  # noqa: E402,F401  (the fixture mara)

from comic_studio.core.safe_read import decode_image  # noqa: E402
from comic_studio.evaluation.scoring import Scorer  # noqa: E402
from comic_studio.poses.openclip_embedder import load_clip_model  # noqa: E402
from comic_studio.testing.tiny_eval import tiny_clip_weights  # noqa: E402
from comic_studio.training.samples import samples_folder  # noqa: E402
from comic_studio.ui.training_metrics import caption, sample_scores  # noqa: E402
from comic_studio.workflows.training import checkpoint_path  # noqa: E402


def test_each_training_sample_shows_its_clip_i_against_the_references(
    ctx,
    mara,
    qtbot,
    tiny_kit,
    tiny_models,
    service,
    make_library,
    tmp_path,
    monkeypatch,
):
    weights = tiny_clip_weights(tmp_path / "models")
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"pose_clip_model": str(weights)}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dialog = _dialog(make_library(), mara, tiny_kit)
    dialog.samples_spin.setValue(1)
    scores = sample_scores(service)
    assert dialog.sample_scores is scores  # one per service: a reopened dialog finds the figures
    with qtbot.waitSignal(dialog.finished_training, timeout=RUN_TIMEOUT_MS) as outcome:
        dialog.train_button.click()
    assert outcome.args == ["finished"], dialog.status_label.text()
    job = dialog.job_id
    qtbot.waitUntil(lambda: set(scores.scores.get(job, {})) == {1, 2} or job in scores.errors, timeout=RUN_TIMEOUT_MS)
    assert job not in scores.errors, scores.errors.get(job)

    # The same figure from the saved sample pictures, computed apart from the app's path.
    character = ctx.document.project.character(mara)
    references = [
        decode_image(ctx.document.assets.get(h), where="ref") for h in (*character.face_refs, *character.body_refs)
    ]
    scorer = Scorer(load_clip_model(str(weights)), tmp_path / "check-cache")
    folder = samples_folder(checkpoint_path(ctx.document.project.id, mara))
    for step in (1, 2):
        picture = decode_image((folder / f"step-00000{step}-0.png").read_bytes(), where="sample")
        (expected,) = scorer.picture_clip_i([picture], references, "mara")
        (value,) = scores.scores[job][step]
        assert value is not None and -1.0 <= value <= 1.0 + 1e-9
        assert value == pytest.approx(expected, abs=1e-4)
    qtbot.waitUntil(lambda: dialog.sample_strip.item(1).text() == caption(2, scores.scores[job][2][0]))
    assert [dialog.sample_strip.item(i).text() for i in range(2)] == [
        f"step {s} · CLIP-I {scores.scores[job][s][0]:.3f}" for s in (1, 2)
    ]
    dialog.close()
