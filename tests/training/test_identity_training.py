"""StableIdentity on the tiny SDXL with a tiny ViT face encoder and a real face photo: only the MLPs
learn, the injected rows are the AdaIN of the celebrity statistics, the loss is masked and
two-phase as the paper says, the result reloads as a standard SDXL textual inversion, and a
cancelled run resumes bitwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from comic_studio.generation.identity import (  # noqa: E402
    celebrity_names,
    celebrity_stats,
    identity_phrase,
    identity_tokens,
)
from comic_studio.testing.tiny import tiny_sdxl_components  # noqa: E402
from comic_studio.testing.tiny_identity import write_tiny_face_encoder  # noqa: E402
from comic_studio.training.checkpoint import load_checkpoint  # noqa: E402
from comic_studio.training.identity import (  # noqa: E402
    IdentityRecipe,
    IdentityTrainer,
    load_face_encoder,
    load_identity,
    save_identity,
    two_phase_loss,
)
from comic_studio.training.lora import TrainingCancelled, TrainingError  # noqa: E402
from comic_studio.vision.detect import available_detectors  # noqa: E402
from comic_studio.vision.faces import FacePhotoError, align_face  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "vision" / "fixtures"
pytestmark = pytest.mark.skipif("mediapipe-face" not in available_detectors(), reason="mediapipe is not installed")


def photo(name: str = "emma_1female") -> Image.Image:
    return Image.open(FIXTURES / f"{name}.png").convert("RGB")


@pytest.fixture(scope="module")
def face():
    return align_face(photo(), 64)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, tiny_kit):
    # tiny_kit: the session's kit fixture also sets torch to one thread — many threads fighting the
    # other processes of a small CI box make these tiny steps take seconds.
    return load_face_encoder(str(write_tiny_face_encoder(tmp_path_factory.mktemp("vit"))))


def small(**extra) -> IdentityRecipe:
    return IdentityRecipe(**{"resolution": 64, "checkpoint_every": 1000, "learning_rate": 0.05, **extra})


def make(face, encoder, recipe: IdentityRecipe | None = None) -> IdentityTrainer:
    return IdentityTrainer(tiny_sdxl_components(0), [face], encoder, recipe or small())


def test_the_defaults_are_the_seeds_recipe():
    recipe = IdentityRecipe()
    assert (recipe.steps, recipe.learning_rate, recipe.alpha, recipe.hair_weight) == (500, 1e-5, 0.5, 0.1)
    assert (recipe.resolution, recipe.mlp_depth, recipe.lr_multiplier) == (512, 2, 0.1)
    assert len(celebrity_names()) >= 200


def test_the_aligned_face_has_a_face_and_hair_mask(face):
    assert face.image.size == (64, 64)
    assert 0.1 < face.face_mask.mean() < 0.6 and face.hair_mask.mean() > 0.05
    assert not np.any((face.face_mask > 0) & (face.hair_mask > 0))  # disjoint
    top, bottom = face.face_mask[:20].mean(), face.face_mask[44:].mean()
    assert face.hair_mask[:16].mean() > face.hair_mask[48:].mean()  # hair above, not the shoulders
    assert top < 0.5 and bottom < 0.5


def test_only_the_mlps_get_gradients(face, encoder):
    trainer = make(face, encoder)
    trainer.batch_loss(timesteps=(300, 700)).backward()
    grads = [p.grad for p in trainer.mlps.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert all(p.grad is None and not p.requires_grad for p in trainer.components[name].parameters()), name
    assert all(p.grad is None for p in encoder.parameters())
    trainer.close()


def test_the_injected_rows_are_the_celebrity_mean_plus_r_times_std(face, encoder):
    parts = tiny_sdxl_components(0)
    tables = [parts[e].get_input_embeddings().weight.detach().clone() for e in ("text_encoder", "text_encoder_2")]
    trainer = IdentityTrainer(parts, [face], encoder, small())
    for which, (key, tok_key, table) in enumerate(
        (("clip_l", "tokenizer", tables[0]), ("clip_g", "tokenizer_2", tables[1]))
    ):
        # The statistics by hand: the first two tokens of every name with two or more.
        ids = [t[:2] for t in (parts[tok_key](n, add_special_tokens=False).input_ids for n in celebrity_names())
               if len(t) >= 2]  # fmt: skip
        rows = table[torch.tensor(ids)]
        mean, std = trainer.stats[which]
        assert torch.equal(mean, rows.mean(dim=0)) and torch.equal(std, rows.std(dim=0))
        assert mean.shape == (2, table.shape[1])
        r = trainer.mlps[key](trainer.cls)
        assert torch.allclose(r.mean(dim=-1), torch.zeros(2), atol=1e-5)  # normalised per vector
        injected = trainer.rows()[which]
        assert torch.equal(injected, mean + r * std)
        # …and these rows are what the encoder's token embedding hands on at the placeholders.
        tokenizer, text_encoder = trainer.encoders[which]
        ids = torch.tensor([tokenizer(trainer.prompt()).input_ids])
        with torch.no_grad(), trainer.injecting(trainer.rows()):
            out = text_encoder.get_input_embeddings()(ids)
        for k, token_id in enumerate(trainer.token_ids[which]):
            (position,) = (ids[0] == token_id).nonzero()[0]
            assert torch.equal(out[0, position], injected[k].detach())
    trainer.close()


def test_the_statistics_are_cached_per_table(face, encoder):
    parts = tiny_sdxl_components(0)
    first = celebrity_stats(parts["tokenizer"], parts["text_encoder"].get_input_embeddings().weight)
    again = celebrity_stats(parts["tokenizer"], parts["text_encoder"].get_input_embeddings().weight)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = celebrity_stats(parts["tokenizer"], parts["text_encoder"].get_input_embeddings().weight * 2)
    assert torch.equal(other[0], first[0] * 2)  # another table: other statistics, not the cached ones


def _loss_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (1, 4, 8, 8)
    eps_pred, noise, latents, noisy = (torch.randn(shape, generator=g) for _ in range(4))
    face = torch.zeros(1, 1, 8, 8)
    face[..., 2:5, 2:6] = 1
    hair = torch.zeros(1, 1, 8, 8)
    hair[..., 0:2, 1:7] = 1
    return eps_pred, noise, latents, noisy, face, hair


KW = {"alpha": 0.5, "hair_weight": 0.1, "num_train_timesteps": 1000, "scaling_factor": 0.13025}
ALPHAS = torch.linspace(0.99, 0.01, 1000)


@pytest.mark.parametrize("timestep", [200, 800])
def test_the_loss_ignores_everything_outside_face_and_hair(timestep):
    eps_pred, noise, latents, noisy, face, hair = _loss_inputs()
    base = two_phase_loss(eps_pred, noise, latents, noisy, timestep, ALPHAS, face, hair, **KW)
    outside = (face + hair) == 0
    bump = torch.randn(noise.shape, generator=torch.Generator().manual_seed(9)) * outside
    for target in ("noise", "latents", "eps_pred"):
        args = {"eps_pred": eps_pred, "noise": noise, "latents": latents}
        changed = dict(args, **{target: args[target] + bump})
        moved = two_phase_loss(changed["eps_pred"], changed["noise"], changed["latents"], noisy, timestep, ALPHAS,
                               face, hair, **KW)  # fmt: skip
        assert torch.equal(moved, base), target
    inside = dict(noise=noise + (1 - outside.float()), latents=latents + (1 - outside.float()))
    assert not torch.equal(two_phase_loss(eps_pred, inside["noise"], inside["latents"], noisy, timestep, ALPHAS,
                                          face, hair, **KW), base)  # fmt: skip


def test_the_phase_split_picks_the_noise_or_the_x0_loss():
    eps_pred, noise, latents, noisy, face, hair = _loss_inputs(1)

    def mse(a, b):
        return float(((a - b) ** 2).mean())

    def by_hand_eps():
        return mse(eps_pred * face, noise * face) + 0.1 * mse(eps_pred * hair, noise * hair)

    def by_hand_x0(t):
        a = ALPHAS[t]
        x0 = (noisy - (1 - a).sqrt() * eps_pred) / a.sqrt() / 0.13025
        target = latents / 0.13025
        return mse(x0 * face, target * face) + 0.1 * mse(x0 * hair, target * hair)

    high = float(two_phase_loss(eps_pred, noise, latents, noisy, 501, ALPHAS, face, hair, **KW))
    low = float(two_phase_loss(eps_pred, noise, latents, noisy, 500, ALPHAS, face, hair, **KW))
    assert high == pytest.approx(by_hand_eps(), rel=1e-6) and high != pytest.approx(by_hand_x0(501), rel=1e-3)
    assert low == pytest.approx(by_hand_x0(500), rel=1e-6) and low != pytest.approx(by_hand_eps(), rel=1e-3)
    six = dict(KW, alpha=0.6)  # the original's α: t = 550 is now in the x₀ phase
    assert float(two_phase_loss(eps_pred, noise, latents, noisy, 550, ALPHAS, face, hair, **six)) == pytest.approx(
        by_hand_x0(550), rel=1e-6
    )


def test_the_loss_drops_on_a_fixed_batch(face, encoder):
    trainer = make(face, encoder)
    losses = []
    for _ in range(4):
        loss = trainer.batch_loss(timesteps=(300, 700))
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    losses.append(trainer.evaluation_loss(timesteps=(300, 700)))
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    trainer.close()


def test_the_tokens_reload_as_a_textual_inversion_with_the_same_embeddings(face, encoder, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    trainer = make(face, encoder, small(steps=1))
    trainer.train(tmp_path / "ck.safetensors")
    prompt = trainer.prompt()
    with torch.no_grad():
        trained_embeds, trained_pooled = trainer.encode_prompt(prompt, trainer.rows())
    file = save_identity(tmp_path / "id.safetensors", trainer.embeddings(), {"method": "test"})
    trainer.close()
    state = load_identity(file.read_bytes(), "id")
    assert state["clip_l"].shape == (2, 32) and state["clip_g"].shape == (2, 48)  # the tiny widths

    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0), add_watermarker=False)
    tokens = list(identity_tokens(0))
    pipe.load_textual_inversion(state["clip_l"], token=tokens, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(state["clip_g"], token=tokens, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)  # fmt: skip
    with torch.no_grad():
        embeds, _n, pooled, _np = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
    assert torch.equal(embeds, trained_embeds) and torch.equal(pooled, trained_pooled)

    def render(text: str) -> np.ndarray:
        out = pipe(text, num_inference_steps=2, height=64, width=64, output_type="np",
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
        return out.images[0]

    assert np.abs(render(prompt) - render("a photo of person")).mean() > 1e-3


def test_a_cancelled_run_resumes_bitwise(face, encoder, tmp_path):
    recipe = small(steps=3)
    straight = make(face, encoder, recipe)
    straight.train(tmp_path / "a.safetensors")
    expected = straight.mlp_state()
    straight.close()

    first = make(face, encoder, recipe)
    calls = {"n": 0}

    def cancel_after_one() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(TrainingCancelled) as info:
        first.train(tmp_path / "b.safetensors", cancel=cancel_after_one)
    assert info.value.step == 1
    # The keys every identity checkpoint has had (older files resume): the layout is a file format.
    assert set(load_checkpoint(tmp_path / "b.safetensors")) == {
        "step", "losses", "recipe", "manifest", "mlps", "optimizer", "noise_generator", "timestep_generator",
        "augment_generator", "order", "global_rngs"}  # fmt: skip
    first.close()
    torch.manual_seed(12345)  # disturb the global generator: the checkpoint restores it
    resumed = make(face, encoder, recipe)
    resumed.resume(tmp_path / "b.safetensors")
    resumed.train(tmp_path / "b.safetensors")
    got = resumed.mlp_state()
    assert resumed.losses == straight.losses
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    resumed.close()
    with pytest.raises(TrainingError, match="other settings"):
        make(face, encoder, small(steps=4)).resume(tmp_path / "b.safetensors")


def test_close_takes_the_tokens_and_hooks_off(face, encoder):
    parts = tiny_sdxl_components(0)
    sizes = [len(parts["tokenizer"]), len(parts["tokenizer_2"])]
    trainer = IdentityTrainer(parts, [face], encoder, small())
    assert identity_tokens(0)[0] in parts["tokenizer"].get_vocab()
    trainer.close()
    assert [len(parts["tokenizer"]), len(parts["tokenizer_2"])] == sizes
    assert identity_tokens(0)[0] not in parts["tokenizer_2"].get_vocab()
    assert parts["text_encoder"].get_input_embeddings().weight.shape[0] == sizes[0]
    assert identity_phrase(0) == "<identity-0-a> <identity-0-b>"


def _two_faces() -> Image.Image:
    a, b = photo("emma_1female"), photo("brandt_1male")
    both = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    return both


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (lambda: Image.new("RGB", (256, 256), "white"), "no face found in"),
        (_two_faces, "2 faces found in"),
        (lambda: photo().resize((48, 56)), "too small to find a face"),
        (lambda: Image.new("RGB", (8200, 64), "white"), "too large"),
        (lambda: photo().resize((72, 86)), "pixels wide: use a closer or larger photo"),
    ],
    ids=["no-face", "two-faces", "tiny-photo", "huge-photo", "tiny-face"],
)
def test_bad_photos_are_refused_clearly(image, message):
    with pytest.raises(FacePhotoError, match=message):
        align_face(image(), 64, where="Emma's photo")


def test_a_base_that_is_not_sdxl_is_refused(face, encoder):
    parts = tiny_sdxl_components(0)
    parts["text_encoder_2"] = None
    with pytest.raises(TrainingError, match="needs an SDXL base model"):
        IdentityTrainer(parts, [face], encoder, small())


def test_a_missing_face_encoder_says_where_to_put_one(tmp_path, monkeypatch):
    monkeypatch.delenv("COMIC_STUDIO_FACE_ENCODER", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(TrainingError, match="no face encoder"):
        load_face_encoder(str(tmp_path / "nothing"))


def test_every_shipped_name_has_two_tokens_in_sdxls_own_tokenizers():
    """The editability prior needs the first *two* tokens of each name: with SDXL's real BPE
    tokenizers (bundled configs) no shipped name is lost to a one-token spelling."""
    from comic_studio.generation.models.loading import load_tokenizers_and_scheduler
    from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs

    parts = load_tokenizers_and_scheduler(bundled_sdxl_configs()[0])
    names = celebrity_names()
    assert len(set(names)) == len(names)
    for tokenizer in (parts["tokenizer"], parts["tokenizer_2"]):
        assert all(len(tokenizer(n, add_special_tokens=False).input_ids) >= 2 for n in names)
    pair = [parts["tokenizer"].convert_ids_to_tokens(i) for i in parts["tokenizer"]("Tom Hanks").input_ids[1:3]]
    assert pair == ["tom</w>", "hanks</w>"]


def test_the_catalogue_face_encoders_are_found_where_installed(tmp_path, monkeypatch):
    """Both face encoders are catalogue entries (kind ``face_encoder``); one installed in the models
    folder (as ``comic-studio models download`` puts it) is found and loaded before the plain cache
    lookup; a folder with only pickled weights is refused unless pickles are allowed."""
    from comic_studio.core.settings import AppSettings, save_settings
    from comic_studio.training.identity import FACE_ENCODER_IDS, FACE_ENCODERS, face_encoder_candidates
    from comic_studio.weights.catalogue import load_catalogue

    catalogue = load_catalogue()
    entries = [catalogue.get(i) for i in FACE_ENCODER_IDS]
    assert [e.kind for e in entries] == ["face_encoder", "face_encoder"]
    assert [e.repo for e in entries] == list(FACE_ENCODERS)  # the same two models, by repo
    monkeypatch.delenv("COMIC_STUDIO_FACE_ENCODER", raising=False)
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    save_settings(AppSettings(models_folder=str(tmp_path / "models")))
    assert face_encoder_candidates() == list(FACE_ENCODERS)  # nothing installed
    installed = write_tiny_face_encoder(tmp_path / "models" / "vit-base-in21k")  # config.json + model.safetensors
    assert face_encoder_candidates() == [str(installed), *FACE_ENCODERS]
    assert load_face_encoder().config.hidden_size == 32  # the installed one
    assert face_encoder_candidates("/a/folder") == ["/a/folder"]  # the setting wins

    pickled = tmp_path / "pickled"
    write_tiny_face_encoder(tmp_path / "tmp-vit").joinpath("config.json").rename(
        pickled.mkdir() or pickled / "config.json"
    )
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TrainingError, match="no face encoder") as refused:
        load_face_encoder(str(pickled))
    assert "pickle" in str(refused.value).lower()
