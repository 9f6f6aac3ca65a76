"""StoryBooth's DreamBooth-LoRA on the tiny SDXL: it learns, its files reload (diffusers and kohya
layouts, through the app's own LoRA loader), and a cancelled run resumed in new objects ends
bitwise equal to an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


from comic_studio.testing.tiny import character_picture, tiny_sdxl_components  # noqa: E402
from comic_studio.training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from comic_studio.training.data import TrainingPicture, bucket_size  # noqa: E402
from comic_studio.training.export import save_lora  # noqa: E402
from comic_studio.training.lora import (  # noqa: E402
    STORYBOOTH_TARGETS,
    LoraRecipe,
    LoraTrainer,
    TrainingCancelled,
    TrainingError,
)

# The tiny UNet's attention layers are too narrow to move its loss much in a few steps, so the
# learning test also trains the resnet convolutions and feed-forward layers (what LoRA recipes
# for small models do); the default attention-only targets are checked on their own below.
WIDE_TARGETS = (*STORYBOOTH_TARGETS, "conv1", "conv2", "proj_in", "proj_out", "ff.net.2")


def picture(seed: int, caption: str = "a photo of sks woman") -> TrainingPicture:
    return TrainingPicture(character_picture(seed), caption)


PICTURES = [picture(1), picture(2, "a photo of sks woman smiling")]


def trainer(recipe: LoraRecipe, **kwargs) -> LoraTrainer:
    return LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe, **kwargs)


def small(**extra) -> LoraRecipe:
    return LoraRecipe(**{"resolution": 64, "checkpoint_every": 1000, **extra})


def test_the_defaults_are_storybooths_recipe():
    recipe = LoraRecipe()
    assert (recipe.rank, recipe.alpha, recipe.learning_rate, recipe.weight_decay) == (4, 4.0, 1e-4, 1e-2)
    assert (recipe.gradient_accumulation, recipe.resolution, recipe.steps, recipe.checkpoint_every) == (
        4,
        1024,
        1450,
        50,
    )
    assert recipe.timestep_law == "logit_normal" and recipe.seed == 42 and recipe.snr_gamma is None
    assert set(recipe.target_modules) == {"to_q", "to_k", "to_v", "to_out.0"}


def test_the_default_targets_are_every_attention_projection(tmp_path):
    run = trainer(small(steps=1, gradient_accumulation=1))
    layers = {name.rsplit(".lora_", 1)[0] for name in run.lora_params}
    attentions = {n for n, _m in run.unet.named_modules() if n.endswith((".attn1", ".attn2"))}
    assert attentions and any(a.endswith("attn2") for a in attentions)  # cross-attention too (the seed's code)
    expected = {f"{a}.{proj}" for a in attentions for proj in ("to_q", "to_k", "to_v", "to_out.0")}
    assert layers == expected
    before = {n: p.detach().clone() for n, p in run.lora_params.items()}
    frozen = {n: p.detach().clone() for n, p in run.unet.named_parameters() if not p.requires_grad}
    run.train(tmp_path / "ck.safetensors")
    assert any(not torch.equal(before[n], p) for n, p in run.lora_params.items())
    assert all(torch.equal(frozen[n], p) for n, p in run.unet.named_parameters() if n in frozen)  # the base stays


def test_the_loss_on_a_fixed_evaluation_batch_drops(tmp_path):
    run = trainer(small(steps=30, gradient_accumulation=1, learning_rate=5e-3, target_modules=WIDE_TARGETS))
    before = run.evaluation_loss()
    assert run.evaluation_loss() == before  # fixed noise and timesteps: comparable between steps
    progress = []
    run.train(tmp_path / "ck.safetensors", on_progress=progress.append)
    after = run.evaluation_loss()
    assert after <= 0.9 * before, (before, after)
    assert [p.step for p in progress] == list(range(1, 31)) and progress[-1].eta_seconds == 0
    assert all(np.isfinite(p.loss) and p.learning_rate == 5e-3 for p in progress)


def _render(pipe, seed: int = 5):
    return pipe("a photo of sks woman", num_inference_steps=2, height=64, width=64, guidance_scale=1.0,
                generator=torch.Generator().manual_seed(seed), output_type="np").images[0]  # fmt: skip


def test_saved_files_reload_into_a_fresh_pipeline_and_equal_the_trained_model(tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from comic_studio.generation.models.loading import apply_loras, remove_loras

    run = trainer(small(steps=8, gradient_accumulation=1, learning_rate=5e-2))
    run.train(tmp_path / "ck.safetensors")
    files = save_lora(tmp_path / "lora", "mara", run.lora_state(), {"base_model": "tiny", "trigger": "sks woman"})
    card = json.loads(files.card.read_text(encoding="utf-8"))
    assert card["trigger"] == "sks woman" and len(card["files"]["kohya"]["sha256"]) == 64

    trained_pipe = StableDiffusionXLPipeline(**run.components)
    trained_pipe.set_progress_bar_config(disable=True)
    trained = _render(trained_pipe)

    fresh = StableDiffusionXLPipeline(**tiny_sdxl_components(0))
    fresh.set_progress_bar_config(disable=True)
    base = _render(fresh)
    assert np.abs(trained - base).max() > 1e-3  # the LoRA changes the picture
    for path in (files.diffusers, files.kohya):
        names = apply_loras(fresh, [(path, 1.0)])  # the app's own LoRA loader
        np.testing.assert_allclose(_render(fresh), trained, atol=1e-5)
        remove_loras(fresh, names)
    np.testing.assert_allclose(_render(fresh), base, atol=1e-6)  # removed again


@pytest.mark.parametrize("cancel_at", [3, 4], ids=["inside-an-accumulation", "at-a-step-boundary"])
def test_cancel_then_resume_in_new_objects_is_bitwise_an_uninterrupted_run(tmp_path, cancel_at):
    recipe = small(steps=4, gradient_accumulation=2, learning_rate=1e-2, checkpoint_every=2)
    straight = trainer(recipe)
    straight.train(tmp_path / "straight.safetensors")
    expected = straight.lora_state()

    asked = []

    def cancel() -> bool:  # asked before every micro-step; cancel_at micro-steps run first
        asked.append(True)
        return len(asked) > cancel_at

    first = trainer(recipe)
    with pytest.raises(TrainingCancelled) as stopped:
        first.train(tmp_path / "run.safetensors", cancel=cancel)
    assert stopped.value.step == cancel_at // 2
    state = load_checkpoint(stopped.value.checkpoint)
    assert (state["step"], state["micro"]) == (cancel_at // 2, cancel_at % 2)
    assert bool(state["grads"]) == bool(cancel_at % 2)  # half an accumulation keeps its gradients
    # The keys every LoRA checkpoint has had (older files resume): the layout is a file format.
    assert set(state) == {"step", "micro", "running", "losses", "recipe", "manifest", "class_manifest", "lora",
                          "grads", "optimizer", "lr_scheduler", "noise_generator", "timestep_generator",
                          "prior_noise_generator", "prior_timestep_generator", "order", "global_rngs"}  # fmt: skip

    torch.manual_seed(999)  # another process would start with other global RNG states
    resumed = trainer(recipe)
    resumed.resume(stopped.value.checkpoint)
    resumed.train(tmp_path / "run.safetensors")
    got = resumed.lora_state()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert resumed.losses == straight.losses


def test_a_checkpoint_of_other_settings_or_pictures_is_refused(tmp_path):
    run = trainer(small(steps=1, gradient_accumulation=1))
    path = run.save(tmp_path / "ck.safetensors")
    with pytest.raises(TrainingError, match="other settings"):
        trainer(small(steps=2, gradient_accumulation=1)).resume(path)
    with pytest.raises(TrainingError, match="other pictures"):
        LoraTrainer(tiny_sdxl_components(0), PICTURES[:1], small(steps=1, gradient_accumulation=1)).resume(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        run.resume(tmp_path / "junk.safetensors")


def test_prior_preservation_with_weight_zero_is_the_instance_loss():
    recipe = small(steps=1, gradient_accumulation=1, prior_loss_weight=0.0)
    alone = trainer(recipe)
    with_prior = trainer(recipe, class_pictures=[picture(9, "a photo of a woman")])
    assert float(with_prior._micro_step_loss()) == float(alone._micro_step_loss())
    weighted = trainer(small(steps=1, gradient_accumulation=1), class_pictures=[picture(9, "a photo of a woman")])
    assert float(weighted._micro_step_loss()) > float(trainer(recipe)._micro_step_loss())


def test_bad_input_is_refused_clearly():
    with pytest.raises(TrainingError, match="at least one picture"):
        LoraTrainer(tiny_sdxl_components(0), [], small())
    parts = tiny_sdxl_components(0)
    parts["unet"].register_to_config(addition_embed_type=None)  # an SD 1.5-style UNet
    with pytest.raises(TrainingError, match="SDXL base model"):
        LoraTrainer(parts, PICTURES, small())


def test_buckets_keep_the_aspect_and_sdxl_sizes():
    assert bucket_size(1024, 1024, 1024) == (1024, 1024)
    w, h = bucket_size(1600, 900, 1024)
    assert w % 64 == 0 and h % 64 == 0 and w > h and abs(w * h - 1024**2) / 1024**2 < 0.1
    assert bucket_size(64, 32, 64)[0] > bucket_size(64, 32, 64)[1]
