"""The optional text-encoder LoRA (off by default): off trains exactly what it trained before; on,
both SDXL text encoders' attention projections train, the saved files (diffusers and kohya layouts)
reload through the app's LoRA loader equal to the in-memory model, and a resumed run is bitwise an
uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from comic_studio.testing.tiny import character_picture, tiny_sdxl_components  # noqa: E402
from comic_studio.training.data import TrainingPicture  # noqa: E402
from comic_studio.training.export import save_lora  # noqa: E402
from comic_studio.training.lora import LoraRecipe, LoraTrainer, TrainingCancelled  # noqa: E402

PICTURES = [
    TrainingPicture(character_picture(1), "a photo of sks woman"),
    TrainingPicture(character_picture(2), "a photo of sks woman smiling"),
]


def trainer(recipe: LoraRecipe) -> LoraTrainer:
    return LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe)


def small(**extra) -> LoraRecipe:
    return LoraRecipe(**{"resolution": 64, "checkpoint_every": 1000, "gradient_accumulation": 1, **extra})


def test_off_by_default_and_off_trains_only_the_unet_as_before(tmp_path):
    assert LoraRecipe().train_text_encoder is False
    run = trainer(small(steps=2, learning_rate=1e-2))
    assert not run.text_lora_params
    assert all(k.startswith("unet.") for k in run.lora_state())
    text_before = {n: p.detach().clone() for n, p in run.components["text_encoder"].named_parameters()}
    run.train(tmp_path / "ck.safetensors")
    assert all(torch.equal(text_before[n], p) for n, p in run.components["text_encoder"].named_parameters())
    # An explicit "off" is the same run as the default (bit for bit).
    again = trainer(small(steps=2, learning_rate=1e-2, train_text_encoder=False))
    again.train(tmp_path / "ck2.safetensors")
    assert all(torch.equal(again.lora_state()[k], v) for k, v in run.lora_state().items())


def test_on_trains_both_text_encoders_attention(tmp_path):
    run = trainer(small(steps=3, learning_rate=1e-2, train_text_encoder=True, text_encoder_learning_rate=1e-2))
    layers = {n.rsplit(".lora_", 1)[0] for n in run.text_lora_params}
    for prefix in ("text_encoder", "text_encoder_2"):
        attentions = {n for n, _m in run.components[prefix].named_modules() if n.endswith("self_attn")}
        expected = {f"{prefix}.{a}.{proj}" for a in attentions for proj in ("q_proj", "k_proj", "v_proj", "out_proj")}
        assert attentions and expected <= layers
    assert len(layers) == sum(
        4 * sum(1 for n, _m in run.components[p].named_modules() if n.endswith("self_attn"))
        for p in ("text_encoder", "text_encoder_2")
    )
    before = {n: p.detach().clone() for n, p in run.text_lora_params.items()}
    frozen = {n: p.detach().clone() for n, p in run.components["text_encoder_2"].named_parameters()
              if not p.requires_grad}  # fmt: skip
    run.train(tmp_path / "ck.safetensors")
    assert any(not torch.equal(before[n], p) for n, p in run.text_lora_params.items())
    assert all(torch.equal(frozen[n], p) for n, p in run.components["text_encoder_2"].named_parameters()
               if n in frozen)  # fmt: skip
    state = run.lora_state()
    assert any(k.startswith("text_encoder.") for k in state) and any(k.startswith("text_encoder_2.") for k in state)
    groups = run.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-2, 1e-2] and groups[1]["weight_decay"] == 1e-3
    run.close()
    assert not any(p.requires_grad for p in run.components["text_encoder"].parameters())
    assert "trained_lora" not in getattr(run.components["text_encoder"], "peft_config", {})


def _render(pipe, seed: int = 5):
    return pipe("a photo of sks woman", num_inference_steps=2, height=64, width=64, guidance_scale=1.0,
                generator=torch.Generator().manual_seed(seed), output_type="np").images[0]  # fmt: skip


def test_saved_text_encoder_lora_reloads_and_kohya_equals_diffusers(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    from comic_studio.generation.models.loading import apply_loras, remove_loras

    recipe = small(steps=6, learning_rate=5e-2, train_text_encoder=True, text_encoder_learning_rate=5e-2)
    run = trainer(recipe)
    run.train(tmp_path / "ck.safetensors")
    files = save_lora(tmp_path / "lora", "mara", run.lora_state(), {"trigger": "sks woman"})
    kohya_keys = load_file(files.kohya).keys()
    assert any(k.startswith("lora_te1_") for k in kohya_keys) and any(k.startswith("lora_te2_") for k in kohya_keys)

    trained_pipe = StableDiffusionXLPipeline(**run.components)
    trained_pipe.set_progress_bar_config(disable=True)
    trained = _render(trained_pipe)
    # The text LoRA alone moves the picture: drop the UNet's adapter and render again.
    run.unet.disable_adapters()
    text_only = _render(trained_pipe)
    run.unet.enable_adapters()

    fresh = StableDiffusionXLPipeline(**tiny_sdxl_components(0))
    fresh.set_progress_bar_config(disable=True)
    base = _render(fresh)
    assert np.abs(text_only - base).max() > 1e-3
    for path in (files.diffusers, files.kohya):
        names = apply_loras(fresh, [(path, 1.0)])  # the app's own LoRA loader
        assert names[0] in getattr(fresh.text_encoder, "peft_config", {})
        assert names[0] in getattr(fresh.text_encoder_2, "peft_config", {})
        np.testing.assert_allclose(_render(fresh), trained, atol=1e-5)
        remove_loras(fresh, names)
    np.testing.assert_allclose(_render(fresh), base, atol=1e-6)


def test_cancel_then_resume_with_text_encoders_is_bitwise(tmp_path):
    recipe = small(steps=3, gradient_accumulation=2, learning_rate=1e-2, checkpoint_every=2,
                   train_text_encoder=True)  # fmt: skip
    straight = trainer(recipe)
    straight.train(tmp_path / "straight.safetensors")
    expected = straight.lora_state()

    asked: list[bool] = []

    def cancel() -> bool:  # stops inside the second step's accumulation
        asked.append(True)
        return len(asked) > 3

    first = trainer(recipe)
    with pytest.raises(TrainingCancelled) as stopped:
        first.train(tmp_path / "run.safetensors", cancel=cancel)
    torch.manual_seed(999)
    resumed = trainer(recipe)
    resumed.resume(stopped.value.checkpoint)
    resumed.train(tmp_path / "run.safetensors")
    got = resumed.lora_state()
    assert got.keys() == expected.keys() and any(k.startswith("text_encoder_2.") for k in got)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert resumed.losses == straight.losses
