"""Training AnimeAdapter on the tiny SD 1.5 kit (K = 3): the manifest reader, the loss drops on a
fixed batch, resume equals uninterrupted bit for bit (with ControlNet), and the CLI writes weights
the anime backend loads (with the T2I-Adapter)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402

from comic_studio.generation.models.anime_adapter import load_adapter  # noqa: E402
from comic_studio.generation.models.sd15 import load_sd15_components, resolve_sd15  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.testing.tiny_sd15 import TINY_K  # noqa: E402
from comic_studio.training.anime_adapter import (  # noqa: E402
    AnimeAdapterRecipe,
    AnimeAdapterTrainer,
    read_dataset,
    write_manifest,
)
from comic_studio.training.checkpoint import load_checkpoint  # noqa: E402
from comic_studio.training.lora import TrainingCancelled, TrainingError  # noqa: E402


def _models(sd15_kit, controller: str):
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModel

    parts = load_sd15_components(resolve_sd15(str(sd15_kit.sd15)))
    encoder = CLIPVisionModel.from_pretrained(sd15_kit.clip_vision).eval()
    processor = CLIPImageProcessor.from_pretrained(sd15_kit.clip_vision)
    if controller == "controlnet":
        net = diffusers.ControlNetModel.from_pretrained(sd15_kit.controlnet).eval()
    elif controller == "t2i-adapter":
        net = diffusers.T2IAdapter.from_pretrained(sd15_kit.t2i_adapter).eval()
    else:
        net = None
    return parts, encoder, processor, net


def _trainer(sd15_kit, dataset, controller="controlnet", **recipe):
    parts, encoder, processor, net = _models(sd15_kit, controller)
    values = dict(k_layers=TINY_K, resolution=64, gradient_accumulation=2, steps=3, controller=controller)
    values.update(recipe)
    return AnimeAdapterTrainer(parts, encoder, processor, read_dataset(dataset), AnimeAdapterRecipe(**values),
                               controller=net)  # fmt: skip


def test_manifest_rows_are_read_and_bad_rows_named(dataset, tmp_path):
    samples = read_dataset(dataset)
    assert [s.name for s in samples] == ["c0.png", "c1.png"]
    assert samples[0].mask is not None and samples[0].mask[20, 20] and not samples[0].mask[0, 0]
    write_manifest(tmp_path, [{"image": "../outside.png"}])
    with pytest.raises(TrainingError, match="line 1"):
        read_dataset(tmp_path)


def test_loss_drops_on_a_fixed_batch(sd15_kit, dataset):
    trainer = _trainer(sd15_kit, dataset, "none", learning_rate=3e-3, gradient_accumulation=1, steps=12, drop_text=0.0,
                       drop_image=0.0, drop_both=0.0)  # fmt: skip
    before = trainer.evaluation_loss()
    trainer.train(sd15_kit.root / "loss-drop.safetensors")
    assert trainer.evaluation_loss() < before
    assert all(p.grad is None for p in trainer.unet.parameters())  # the UNet stayed frozen


def test_resume_equals_uninterrupted(sd15_kit, dataset, tmp_path):
    whole = _trainer(sd15_kit, dataset)
    whole.train(tmp_path / "whole.safetensors")
    first = _trainer(sd15_kit, dataset)
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] == 4  # inside the second step's accumulation

    checkpoint = tmp_path / "part.safetensors"
    with pytest.raises(TrainingCancelled):
        first.train(checkpoint, cancel=cancel)
    # The keys every adapter checkpoint has had (older files resume): the layout is a file format.
    assert set(load_checkpoint(checkpoint)) == {"step", "micro", "running", "losses", "recipe", "manifest", "adapter",
                                                "grads", "optimizer", "noise_generator", "timestep_generator",
                                                "drop_generator", "order", "global_rngs"}  # fmt: skip
    second = _trainer(sd15_kit, dataset)
    second.resume(checkpoint)
    second.train(checkpoint)
    for (name, a), b in zip(whole.adapter.state_dict().items(), second.adapter.state_dict().values()):
        assert torch.equal(a, b), name
    assert whole.losses == second.losses


def test_cli_trains_weights_the_anime_backend_loads(dataset, tmp_path, tiny_cache, capsys):
    from comic_studio.cli import main

    out = tmp_path / "weights"
    args = ["train", "anime-adapter", "--data", str(dataset), "--out", str(out), "--models", "tiny", "--steps", "2",
            "--accumulation", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(args) == 0
    adapter = load_adapter(out)
    assert adapter.config.k_layers == TINY_K and adapter.config.family == "sd15"
    assert "2 steps" in capsys.readouterr().out


def test_images_folder_becomes_a_dataset_and_unusable_pictures_are_reported(tmp_path, tiny_cache, capsys):
    from comic_studio.cli import main

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    pose = Image.new("RGB", (64, 64))
    ImageDraw.Draw(pose).line([(32, 10), (32, 50)], fill=(0, 0, 255), width=3)
    character_picture(20, 64, 64).save(pictures / "plain.png")  # plain background: the rule finds the box
    pose.save(pictures / "plain.pose.png")
    (pictures / "plain.txt").write_text("1girl, green dress", encoding="utf-8")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(pictures / "busy.png")
    drawn = np.zeros((64, 64), np.uint8)
    drawn[8:56, 20:44] = 255
    Image.fromarray(drawn).save(pictures / "busy.mask.png")  # a hand-drawn mask
    pose.save(pictures / "busy.pose.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(pictures / "noise.png")
    out = tmp_path / "weights"
    args = ["train", "anime-adapter", "--images", str(pictures), "--out", str(out), "--models", "tiny",
            "--steps", "1", "--accumulation", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "noise.png not used" in err and ("noise.mask.png" in err or "noise.pose.png" in err)
    samples = read_dataset(out / "dataset")
    assert len(samples) == 2
    by_prompt = {s.prompt: s for s in samples}
    assert set(by_prompt) == {"1girl, green dress", ""}
    assert np.array_equal(by_prompt[""].mask, drawn > 127)
    assert by_prompt["1girl, green dress"].mask[32, 32] and not by_prompt["1girl, green dress"].mask[2, 2]
    assert load_adapter(out).config.k_layers == TINY_K


# ---------------------------------------------------------------- as a job of the engine (the app's runs)


def _job(sd15_kit, out, *, steps=2, resume=False, **source):
    from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest

    recipe = AnimeAdapterRecipe(k_layers=TINY_K, resolution=64, gradient_accumulation=2, steps=steps)
    return AnimeTrainingRequest(out=str(out), base=str(sd15_kit.sd15), encoder=str(sd15_kit.clip_vision),
                                controller_model=str(sd15_kit.t2i_adapter), recipe=recipe, resume=resume,
                                device="cpu", **source)  # fmt: skip


def _finals(engine):
    """Every message of ``engine``, in order (appended on the worker)."""
    messages: list = []
    engine.subscribe(messages.append)
    return messages


def test_the_engine_trains_cancels_and_resumes_to_the_uninterrupted_weights(sd15_kit, dataset, tmp_path):
    import json

    from safetensors.torch import load_file

    from comic_studio.generation.engine import Engine
    from comic_studio.generation.messages import JobEvent
    from comic_studio.workflows.anime_training_jobs import (
        AnimeTrainingOutcome,
        AnimeTrainingRequest,
        submit_anime_training,
    )

    with pytest.raises(ValueError, match="either a dataset folder"):
        AnimeTrainingRequest(out=str(tmp_path), data="a", images="b")
    straight_out, part_out = tmp_path / "straight", tmp_path / "part"
    request = _job(sd15_kit, straight_out, steps=3, data=str(dataset))
    assert AnimeTrainingRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    with Engine() as engine:
        messages = _finals(engine)
        straight = submit_anime_training(engine, request)
        assert engine.wait_idle(240)
        final = [m for m in messages if m.job_id == straight and m.event.is_final][0]
        assert final.event is JobEvent.FINISHED and final.kind == "train-anime-adapter", final.error
        assert isinstance(final.outcome, AnimeTrainingOutcome) and final.outcome.steps == 3
        progress = [m for m in messages if m.job_id == straight and m.event is JobEvent.PROGRESS]
        assert [m.step for m in progress] == [1, 2, 3] and {"loss", "lr", "steps_per_second"} <= set(progress[0].info)

        def cancel_after_first_step(msg) -> None:
            if msg.event is JobEvent.PROGRESS and msg.step == 1 and msg.kind == "train-anime-adapter":
                engine.cancel(msg.job_id)  # on the worker, inside step 1's report: deterministic

        stop_cancelling = engine.subscribe(cancel_after_first_step)
        interrupted = submit_anime_training(engine, _job(sd15_kit, part_out, steps=3, data=str(dataset)))
        assert engine.wait_idle(240)
        stop_cancelling()
        final = [m for m in messages if m.job_id == interrupted and m.event.is_final][0]
        assert final.event is JobEvent.CANCELLED and "cancelled at step 1" in final.error and "Resume" in final.error
        resumed = submit_anime_training(engine, _job(sd15_kit, part_out, steps=3, resume=True, data=str(dataset)))
        assert engine.wait_idle(240)
        final = [m for m in messages if m.job_id == resumed and m.event.is_final][0]
        assert final.event is JobEvent.FINISHED, final.error
        assert [m.step for m in messages if m.job_id == resumed and m.event is JobEvent.PROGRESS][0] == 2
    a, b = load_file(straight_out / "anime_adapter.safetensors"), load_file(part_out / "anime_adapter.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_engine_builds_the_dataset_from_pictures_first(sd15_kit, tmp_path):
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.messages import JobEvent
    from comic_studio.workflows.anime_training_jobs import submit_anime_training

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    pose = Image.new("RGB", (64, 64))
    ImageDraw.Draw(pose).line([(32, 10), (32, 50)], fill=(0, 0, 255), width=3)
    for i in range(2):
        character_picture(30 + i, 64, 64).save(pictures / f"p{i}.png")
        pose.save(pictures / f"p{i}.pose.png")
    with Engine() as engine:
        messages = _finals(engine)
        job = submit_anime_training(engine, _job(sd15_kit, tmp_path / "out", steps=1, images=str(pictures)))
        assert engine.wait_idle(240)
    final = [m for m in messages if m.job_id == job and m.event.is_final][0]
    assert final.event is JobEvent.FINISHED, final.error
    dataset_steps = [m.step for m in messages if m.job_id == job and m.info.get("dataset_pictures")]
    assert dataset_steps == [1, 2]
    assert len(read_dataset(tmp_path / "out" / "dataset")) == 2 and final.outcome.unused == {}
