"""Prior preservation: the class pictures are the tiny base model's own, made once into the cache
folder and reused (a second run draws none), an interrupted run keeps what it made and finishes
with the same pictures, and a prior weight of 0 trains exactly the instance-only LoRA."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import numpy as np  # noqa: E402

from comic_studio.core.settings import BANK_DIR_ENV, class_images_dir  # noqa: E402
from comic_studio.generation.models.loading import load_sdxl_components, sdxl_source  # noqa: E402
from comic_studio.testing.tiny import character_picture, tiny_sdxl_components  # noqa: E402
from comic_studio.training.data import TrainingPicture  # noqa: E402
from comic_studio.training.lora import LoraRecipe, LoraTrainer, TrainingError  # noqa: E402
from comic_studio.workflows.class_images import (  # noqa: E402
    ClassImagesCancelled,
    ClassImageSpec,
    base_model_hash,
    class_prompt,
    make_class_pictures,
)

PICTURES = [TrainingPicture(character_picture(1), "a photo of sks woman"),
            TrainingPicture(character_picture(2), "a photo of sks woman")]  # fmt: skip


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(BANK_DIR_ENV, str(tmp_path / "cache" / "banks"))
    return class_images_dir()


def spec_for(kit, count: int = 3) -> ClassImageSpec:
    return ClassImageSpec(base_model_hash(kit.sdxl), class_prompt("woman"), 64, 42, 2, 5.0, count)


def test_prior_weight_zero_trains_exactly_the_instance_only_lora(tmp_path):
    recipe = LoraRecipe(resolution=64, steps=3, gradient_accumulation=2, learning_rate=1e-2, checkpoint_every=1000)
    classes = [TrainingPicture(character_picture(9), "a photo of a woman")]
    alone = LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe)
    zero = LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe.model_copy(update={"prior_loss_weight": 0.0}),
                       class_pictures=classes)  # fmt: skip
    one = LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe, class_pictures=classes)
    for run in (alone, zero, one):
        run.train(tmp_path / "ck.safetensors")
    a, z, o = alone.lora_state(), zero.lora_state(), one.lora_state()
    assert zero.losses == alone.losses  # the class half draws from its own generators
    assert all(torch.equal(a[k], z[k]) for k in a)  # bitwise: weight 0 adds exactly nothing
    assert any(not torch.equal(a[k], o[k]) for k in a)  # weight 1 trains something else
    assert one.losses[0] > alone.losses[0]  # the same instance term plus a positive prior term
    with pytest.raises(TrainingError, match="no class pictures"):
        LoraTrainer(tiny_sdxl_components(0), PICTURES, recipe.model_copy(update={"prior_preservation": True}))


def test_class_pictures_are_made_once_by_the_base_model_and_reused(tiny_kit, cache):
    spec = spec_for(tiny_kit)
    parts = load_sdxl_components(sdxl_source(tiny_kit.sdxl))
    done: list[tuple[int, int]] = []
    made = make_class_pictures(parts, spec, on_picture=lambda *d: done.append(d))
    assert done == [(1, 3), (2, 3), (3, 3)] and all(p.caption == "a photo of a woman" for p in made)
    files = sorted(spec.folder().glob("*.png"))
    assert [f.name for f in files] == ["0000.png", "0001.png", "0002.png"] and spec.folder().parent == cache
    stamps = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    # The base model's own picture: the stock pipeline at the spec's seed draws the same one.
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**parts, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe("a photo of a woman", num_inference_steps=2, guidance_scale=5.0, height=64, width=64,
                  generator=torch.Generator().manual_seed(43)).images[0]  # fmt: skip
    assert np.array_equal(np.asarray(direct), np.asarray(made[1].image))

    again = make_class_pictures({}, spec)  # no model at all: every picture must come from the cache
    assert [np.asarray(p.image).tolist() for p in again] == [np.asarray(p.image).tolist() for p in made]
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files} == stamps
    more = ClassImageSpec(**{**spec.__dict__, "count": 4})  # a bigger set extends the same folder
    assert more.folder() == spec.folder()
    other = ClassImageSpec(**{**spec.__dict__, "prompt": "a photo of a man"})
    assert other.folder() != spec.folder()


def test_an_interrupted_generation_keeps_what_it_made(tiny_kit, cache, tmp_path, monkeypatch):
    spec = spec_for(tiny_kit, count=4)
    parts = load_sdxl_components(sdxl_source(tiny_kit.sdxl))
    done: list[int] = []
    with pytest.raises(ClassImagesCancelled, match=r"2 of 4 made, kept in .*start the training again") as stop:
        make_class_pictures(parts, spec, cancel=lambda: len(done) >= 2, on_picture=lambda n, _t: done.append(n))
    assert stop.value.made == 2 and sorted(p.name for p in spec.folder().glob("*.png")) == ["0000.png", "0001.png"]
    assert not list(spec.folder().glob("*.tmp*")) and not list(spec.folder().glob(".*"))  # nothing half-written
    kept = spec.picture_path(0).stat().st_mtime_ns
    steps: list[int] = []
    with pytest.raises(ClassImagesCancelled):  # inside a picture's sampling: that picture is not written
        make_class_pictures(parts, spec, cancel=lambda: steps.append(1) or len(steps) > 2)
    assert len(list(spec.folder().glob("*.png"))) == 2
    resumed = make_class_pictures(parts, spec)
    assert spec.picture_path(0).stat().st_mtime_ns == kept  # not drawn again

    monkeypatch.setenv(BANK_DIR_ENV, str(tmp_path / "other" / "banks"))  # an uninterrupted run elsewhere
    straight = make_class_pictures(parts, spec)
    assert [np.asarray(p.image).tolist() for p in resumed] == [np.asarray(p.image).tolist() for p in straight]


def test_the_base_model_hash_follows_the_weights_not_the_place(tiny_kit, cache, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere" / "tiny-sdxl"
    shutil.copytree(tiny_kit.sdxl, copy)
    assert base_model_hash(copy) == base_model_hash(tiny_kit.sdxl)  # a moved model keeps its pictures
    (copy / ".cache").mkdir()
    (copy / ".cache" / "download.metadata").write_text("etag 1")  # a downloader's bookkeeping
    assert base_model_hash(copy) == base_model_hash(tiny_kit.sdxl)
    weights = next(copy.glob("unet/*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert base_model_hash(copy) != base_model_hash(tiny_kit.sdxl)
