"""Training SDXL-family AnimeAdapter weights on the tiny SDXL kit (K = 3): the base resolves as the
app resolves SDXL, the loss drops on a fixed batch, resume with the SDXL ControlNet equals the
uninterrupted run bit for bit, the CLI with ``--base`` a tiny SDXL folder writes weights that a fresh
anime backend renders with, and bases of no adapter family (SD 2.x) are refused by name."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.generation.models.anime_adapter import cross_attention_layers, load_adapter  # noqa: E402
from comic_studio.testing.tiny import character_picture  # noqa: E402
from comic_studio.testing.tiny_sd2 import write_tiny_sd2  # noqa: E402
from comic_studio.testing.tiny_sd15 import TINY_K  # noqa: E402
from comic_studio.training.anime_adapter import (  # noqa: E402
    AnimeAdapterRecipe,
    AnimeAdapterTrainer,
    base_family,
    read_dataset,
)
from comic_studio.training.lora import TrainingCancelled, TrainingError  # noqa: E402
from comic_studio.workflows.anime_training import resolve_base  # noqa: E402


@pytest.fixture
def tiny_cache(tiny_cache, tiny_kit):
    """The SD 1.5 kit's cache with the SDXL kit's models too (the SDXL kit lies in tiny-models itself)."""
    for entry in tiny_kit.root.iterdir():
        if entry.name != "sd15":
            (tiny_cache / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return tiny_cache


def _trainer(sd15_kit, tiny_kit, dataset, controller="controlnet", **recipe):
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionModel

    from comic_studio.generation.models.loading import load_sdxl_components

    family, source = resolve_base(str(tiny_kit.sdxl))
    assert family == "sdxl"
    parts = load_sdxl_components(source)
    encoder = CLIPVisionModel.from_pretrained(sd15_kit.clip_vision).eval()
    processor = CLIPImageProcessor.from_pretrained(sd15_kit.clip_vision)
    net = diffusers.ControlNetModel.from_pretrained(tiny_kit.controlnet).eval() if controller == "controlnet" else None
    values = dict(k_layers=TINY_K, resolution=64, gradient_accumulation=2, steps=3, controller=controller)
    values.update(recipe)
    return AnimeAdapterTrainer(parts, encoder, processor, read_dataset(dataset), AnimeAdapterRecipe(**values),
                               controller=net)  # fmt: skip


def test_the_sdxl_base_resolves_as_the_app_resolves_sdxl(sd15_kit, tiny_kit):
    assert resolve_base(str(tiny_kit.sdxl))[0] == "sdxl"
    assert resolve_base(str(sd15_kit.sd15))[0] == "sd15"
    # A single-file SDXL checkpoint goes to the SDXL resolver (the tiny one fits no bundled config:
    # the SDXL loader's own refusal proves the routing).
    with pytest.raises(TrainingError, match="--base: .*SDXL base-architecture"):
        resolve_base(str(tiny_kit.single_file))


def test_sdxl_loss_drops_on_a_fixed_batch_and_the_adapter_fits_the_sdxl_unet(sd15_kit, tiny_kit, dataset):
    trainer = _trainer(sd15_kit, tiny_kit, dataset, "none", learning_rate=3e-3, gradient_accumulation=1, steps=12,
                       drop_text=0.0, drop_image=0.0, drop_both=0.0)  # fmt: skip
    config = trainer.adapter.config
    assert trainer.family == config.family == "sdxl"
    # Widths from the SDXL UNet's cross-attention: both text encoders' width, every attn2 layer.
    assert config.context_dim == trainer.unet.config.cross_attention_dim == 32 + 48
    assert list(config.layer_names) == [n for n, _ in cross_attention_layers(trainer.unet)]
    before = trainer.evaluation_loss()
    trainer.train(sd15_kit.root / "xl-loss-drop.safetensors")
    after = trainer.evaluation_loss()
    assert after < before, (before, after)
    assert all(p.grad is None for p in trainer.unet.parameters())  # the UNet stayed frozen
    assert all(p.grad is None for p in trainer.components["text_encoder_2"].parameters())


def test_sdxl_resume_with_the_sdxl_controlnet_equals_uninterrupted(sd15_kit, tiny_kit, dataset, tmp_path):
    whole = _trainer(sd15_kit, tiny_kit, dataset)
    whole.train(tmp_path / "whole.safetensors")
    first = _trainer(sd15_kit, tiny_kit, dataset)
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] == 4  # inside the second step's accumulation

    checkpoint = tmp_path / "part.safetensors"
    with pytest.raises(TrainingCancelled):
        first.train(checkpoint, cancel=cancel)
    second = _trainer(sd15_kit, tiny_kit, dataset)
    second.resume(checkpoint)
    second.train(checkpoint)
    for (name, a), b in zip(whole.adapter.state_dict().items(), second.adapter.state_dict().values()):
        assert torch.equal(a, b), name
    assert whole.losses == second.losses


def _render(sd15_kit, tiny_kit, adapter, refs: bool):
    from PIL import Image

    from comic_studio.backends.anime import AnimeBackend
    from comic_studio.generation.request import GenerationRequest, RequestCharacter, png_data_uri

    buffer = io.BytesIO()
    character_picture(3, 48, 64).save(buffer, "PNG")
    ref = buffer.getvalue()
    digest = hashlib.sha256(ref).hexdigest()
    settings = dict(model=str(tiny_kit.sdxl), image_encoder=str(sd15_kit.clip_vision), adapter=str(adapter),
                    controlnet=str(tiny_kit.controlnet), steps=3, max_side=96, pose_matching="overlap",
                    preview_every=0, reference_images=json.dumps({digest: png_data_uri(ref)}))  # fmt: skip
    chars = [RequestCharacter(id="ana", name="Ana", colour="#d0563b", body_refs=[digest] if refs else [])]
    request = GenerationRequest(backend="anime", width=128, height=96, seed=4, prompt="an anime girl on a pier",
                                action="Ana waves", characters=chars, actor_id="ana", backend_settings=settings)  # fmt: skip
    image = AnimeBackend().generate(request).image  # a fresh backend: its own model cache
    assert isinstance(image, Image.Image)
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_cli_with_an_sdxl_base_trains_weights_a_fresh_backend_renders(sd15_kit, tiny_kit, dataset, tmp_path, tiny_cache,
                                                                      capsys):  # fmt: skip
    from comic_studio.cli import main

    out = tmp_path / "xl-weights"
    args = ["train", "anime-adapter", "--data", str(dataset), "--out", str(out), "--models", "tiny", "--base",
            str(tiny_kit.sdxl), "--steps", "2", "--accumulation", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "2 steps" in capsys.readouterr().out
    adapter = load_adapter(out)
    assert adapter.config.family == "sdxl" and adapter.config.k_layers == TINY_K
    assert json.loads((out / "config.json").read_text())["family"] == "sdxl"
    # The CLI chose the SDXL defaults: the SDXL ControlNet as the frozen controller.
    from comic_studio.training.checkpoint import load_checkpoint

    assert load_checkpoint(out / "training-checkpoint.safetensors")["recipe"]["controller"] == "controlnet"
    plain, with_adapter = _render(sd15_kit, tiny_kit, out, refs=False), _render(sd15_kit, tiny_kit, out, refs=True)
    assert plain.shape == with_adapter.shape and not np.array_equal(plain, with_adapter)


def test_a_base_of_no_adapter_family_is_refused_by_name(sd15_kit, dataset, tmp_path, tiny_cache, capsys):
    from comic_studio.cli import main

    sd2 = write_tiny_sd2(tmp_path / "sd2")
    with pytest.raises(TrainingError, match="SD 2.x"):
        base_family(json.loads((sd2 / "unet" / "config.json").read_text()))
    args = ["train", "anime-adapter", "--data", str(dataset), "--out", str(tmp_path / "w"), "--models", "tiny",
            "--base", str(sd2), "--steps", "1", "--accumulation", "1", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--base: " in err and "SD 2.x" in err and "SD 1.5 or SDXL" in err
    assert not (tmp_path / "w" / "anime_adapter.safetensors").exists()


def test_an_sdxl_t2i_adapter_needs_its_folder(sd15_kit, tiny_kit, dataset, tmp_path):
    from comic_studio.workflows.anime_training import train_anime_adapter

    recipe = AnimeAdapterRecipe(k_layers=TINY_K, resolution=64, gradient_accumulation=1, steps=1)
    with pytest.raises(TrainingError, match="no OpenPose t2i-adapter for sdxl: name its folder.*--controller-model"):
        train_anime_adapter(dataset, tmp_path / "w", recipe, base=str(tiny_kit.sdxl), encoder=str(sd15_kit.clip_vision))


def test_the_engine_trains_sdxl_family_weights(sd15_kit, tiny_kit, dataset, tmp_path):
    from comic_studio.generation.engine import Engine
    from comic_studio.generation.messages import JobEvent
    from comic_studio.workflows.anime_training_jobs import AnimeTrainingRequest, submit_anime_training

    recipe = AnimeAdapterRecipe(k_layers=TINY_K, resolution=64, gradient_accumulation=1, steps=1,
                                controller="controlnet")  # fmt: skip
    request = AnimeTrainingRequest(out=str(tmp_path / "out"), data=str(dataset), base=str(tiny_kit.sdxl),
                                   encoder=str(sd15_kit.clip_vision), controller_model=str(tiny_kit.controlnet),
                                   recipe=recipe, device="cpu")  # fmt: skip
    messages: list = []
    with Engine() as engine:
        engine.subscribe(messages.append)
        job = submit_anime_training(engine, request)
        assert engine.wait_idle(240)
    final = [m for m in messages if m.job_id == job and m.event.is_final][0]
    assert final.event is JobEvent.FINISHED, final.error
    assert load_adapter(tmp_path / "out").config.family == "sdxl"


def test_half_precision_frozen_models_train_a_float32_adapter(sd15_kit, tiny_kit, dataset, tmp_path):
    """On CUDA the frozen models are float16 and the adapter float32 (bfloat16 on the CPU here: the
    same mixed precision): the image branch runs in the adapter's precision, its attention in the UNet's."""
    from comic_studio.workflows.anime_training import train_anime_adapter

    recipe = AnimeAdapterRecipe(k_layers=TINY_K, resolution=64, gradient_accumulation=1, steps=2,
                                controller="controlnet")  # fmt: skip
    trained = train_anime_adapter(dataset, tmp_path / "half", recipe, base=str(tiny_kit.sdxl),
                                  encoder=str(sd15_kit.clip_vision), controller=str(tiny_kit.controlnet),
                                  dtype="bfloat16")  # fmt: skip
    assert trained.steps == 2 and np.isfinite(trained.final_loss) and np.isfinite(trained.evaluation_loss)
    adapter = load_adapter(trained.folder)
    assert adapter.config.family == "sdxl" and all(p.dtype == torch.float32 for p in adapter.parameters())


def test_a_t2i_adapter_of_another_family_is_refused_before_training(sd15_kit, tiny_kit, dataset, tmp_path):
    from comic_studio.workflows.anime_training import train_anime_adapter

    recipe = AnimeAdapterRecipe(k_layers=TINY_K, resolution=64, gradient_accumulation=1, steps=1)
    with pytest.raises(
        TrainingError, match="T2I-Adapter's features do not fit this sdxl base.*--controller controlnet"
    ):
        train_anime_adapter(dataset, tmp_path / "w", recipe, base=str(tiny_kit.sdxl), encoder=str(sd15_kit.clip_vision),
                            controller=str(sd15_kit.t2i_adapter))  # the SD 1.5 kit's  # fmt: skip
    assert not (tmp_path / "w" / "training-checkpoint.safetensors").exists()
