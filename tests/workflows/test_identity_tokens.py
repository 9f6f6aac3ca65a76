"""Learned identity tokens in panels (the ``identity`` backend): each character with an identity gets
its own token pair where the prompt names it, the pair is the one the file was trained for, the
tokens live only for the job, a character without one is refused by name, and the stored request
names the identity by hash and replays exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anchor_helpers import cid, make_document, two_shot  # noqa: E402

from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.errors import ComicStudioError  # noqa: E402
from comic_studio.generation.identity import identity_phrase, identity_tokens  # noqa: E402
from comic_studio.generation.registry import get_backend, register_backend, unregister_backend  # noqa: E402
from comic_studio.generation.request import GenerationError, GenerationRequest  # noqa: E402
from comic_studio.testing.tiny import tiny_sdxl_components  # noqa: E402
from comic_studio.training.identity import TEMPLATES, save_identity  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402
from comic_studio.workflows.identity import clear_identity  # noqa: E402
from comic_studio.workflows.requests import CHARACTER_IDENTITIES_SETTING, hydrate_request  # noqa: E402

BACKEND = "comic_studio.backends.identity:IdentityBackend"


@pytest.fixture
def identity_backend():
    """The backend as the pyproject entry point declares it (registered in-process: the test venv's
    installed metadata may predate the entry point)."""
    register_backend("identity", BACKEND)
    yield
    unregister_backend("identity")


def test_the_entry_point_is_declared():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["entry-points"]["comic_studio.backends"]["identity"] == BACKEND


def identity_file(path, seed: int) -> bytes:
    g = torch.Generator().manual_seed(seed)
    rows = {"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 48, generator=g)}
    return save_identity(path, rows, {"method": "test", "seed": seed}).read_bytes()


def test_two_identities_get_four_distinct_tokens_where_they_are_named(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    from comic_studio.backends.identity.backend import JobIdentities, identity_prompt

    prompt = identity_prompt("Ana waves at Ben, Ben laughs", ["Ana", "Ben"])
    assert prompt == f"{identity_phrase(0)} waves at {identity_phrase(1)}, {identity_phrase(1)} laughs"
    assert identity_prompt("a quiet harbour", ["Ana"]) == f"{identity_phrase(0)} person, a quiet harbour"
    assert identity_prompt("Anabel meets ANA", ["Ana"]) == f"Anabel meets {identity_phrase(0)}"  # whole words

    files = [identity_file(tmp_path / f"{n}.safetensors", n) and str(tmp_path / f"{n}.safetensors") for n in (1, 2)]
    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0), add_watermarker=False)
    sizes = (len(pipe.tokenizer), len(pipe.tokenizer_2))
    job = JobIdentities(files)
    job.apply(pipe)
    try:
        for key, tokenizer, encoder in (("clip_l", pipe.tokenizer, pipe.text_encoder),
                                        ("clip_g", pipe.tokenizer_2, pipe.text_encoder_2)):  # fmt: skip
            ids = tokenizer(prompt).input_ids
            wanted = [tokenizer.convert_tokens_to_ids(t) for k in (0, 1) for t in identity_tokens(k)]
            assert len(set(wanted)) == 4
            first = ids.index(wanted[0])
            assert ids[first : first + 2] == wanted[:2] and first == 1  # right after the start token
            second = ids.index(wanted[2])
            assert ids[second : second + 2] == wanted[2:] and ids.count(wanted[2]) == 2  # Ben twice
            table = encoder.get_input_embeddings().weight
            for k, file in enumerate(files):
                rows = load_file(file)[key]
                for j in (0, 1):
                    assert torch.equal(table[wanted[2 * k + j]], rows[j])  # the file's rows, in order
    finally:
        job.remove()
    assert (len(pipe.tokenizer), len(pipe.tokenizer_2)) == sizes  # only for the job
    assert identity_tokens(0)[0] not in pipe.tokenizer.get_vocab()


def test_the_trained_token_is_the_substituted_token():
    """The public SDXL port trained ``v1*`` and prompted ``*v1``: here both sides take the tokens
    from one function, and the training prompt carries exactly the pair the backend substitutes."""
    from comic_studio.backends.identity.backend import identity_prompt

    substituted = identity_prompt("Ana", ["Ana"])
    assert substituted == identity_phrase(0) == " ".join(identity_tokens(0))
    training_prompt = TEMPLATES[0].format(f"{identity_phrase(0)} person")
    assert substituted in training_prompt
    pipe_tok = tiny_sdxl_components(0)["tokenizer"]
    pipe_tok.add_tokens(list(identity_tokens(0)))
    assert [pipe_tok.convert_ids_to_tokens(i) for i in pipe_tok(substituted).input_ids[1:-1]] == list(
        identity_tokens(0)
    )


def _pixels(doc, result) -> np.ndarray:
    return np.asarray(doc.assets.open_image(result.asset).convert("RGB"), dtype=np.int16)


def _identity_settings(kit) -> dict:
    return {"model": str(kit.sdxl), "steps": 3, "max_side": 64, "preview_every": 0}


def test_panels_render_with_each_characters_identity_and_replay_exactly(
    tiny_kit, tiny_models, identity_backend, tmp_path, monkeypatch
):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    panel = two_shot(doc)
    panel.backend, panel.backend_settings = "identity", _identity_settings(tiny_kit)
    with pytest.raises(ComicStudioError, match=r"Ben, Ana have none yet — train them"):
        render_panel(doc, panel.id)
    ana_id = doc.assets.add(identity_file(tmp_path / "ana.safetensors", 1), validate_image=False)
    ben_id = doc.assets.add(identity_file(tmp_path / "ben.safetensors", 2), validate_image=False)
    character_edits.update_character(doc, cid(doc, "Ana"), identity_asset=ana_id)
    with pytest.raises(ComicStudioError, match=r"Ben has none yet"):
        render_panel(doc, panel.id)
    character_edits.update_character(doc, cid(doc, "Ben"), identity_asset=ben_id)
    result = render_panel(doc, panel.id)
    both = _pixels(doc, result)

    stored = result.request
    assert [c["identity"] for c in stored["characters"]] == [ben_id, ana_id]  # Ben waves at Ana
    assert CHARACTER_IDENTITIES_SETTING not in stored["backend_settings"]  # no path of this machine
    replay = hydrate_request(GenerationRequest.from_dict(stored), doc.assets)
    assert ana_id in replay.backend_settings[CHARACTER_IDENTITIES_SETTING]
    engine = get_backend("identity")
    again = engine.generate(
        replay.model_copy(update={"backend_settings": engine.validate_settings(replay.backend_settings)})
    )
    assert np.array_equal(np.asarray(again.image.convert("RGB"), dtype=np.int16), both)

    # Another identity for Ben changes the panel; the tokens left with each job.
    other = doc.assets.add(identity_file(tmp_path / "other.safetensors", 3), validate_image=False)
    character_edits.update_character(doc, cid(doc, "Ben"), identity_asset=other)
    assert np.abs(_pixels(doc, render_panel(doc, panel.id)) - both).mean() > 0.5
    character_edits.update_character(doc, cid(doc, "Ben"), identity_asset=ben_id)
    assert np.array_equal(_pixels(doc, render_panel(doc, panel.id)), both)


def test_a_disabled_or_cleared_identity_is_not_sent_and_undo_restores_it(tiny_kit, identity_backend, tmp_path):
    from comic_studio.workflows.requests import build_request

    doc = make_document(tiny_kit)
    panel = next(p for page in doc.project.pages for p in page.panels if len(p.characters) == 1)
    panel.backend = "identity"
    asset = doc.assets.add(identity_file(tmp_path / "ana.safetensors", 1), validate_image=False)
    ana = cid(doc, "Ana")
    character_edits.update_character(doc, ana, identity_asset=asset)
    assert build_request(doc.project, panel).characters[0].identity == asset
    character_edits.update_character(doc, ana, identity_enabled=False)
    assert build_request(doc.project, panel).characters[0].identity is None
    character_edits.update_character(doc, ana, identity_enabled=True)
    clear_identity(doc, ana)
    assert doc.project.character(ana).identity_asset is None
    doc.undo()
    assert doc.project.character(ana).identity_asset == asset
    assert asset in doc.project.asset_refs()


def test_the_backend_refuses_a_request_without_identities(identity_backend):
    from comic_studio.backends.identity.backend import identity_characters
    from comic_studio.generation.request import RequestCharacter

    request = GenerationRequest(backend="identity", width=64, height=64,
                                characters=[RequestCharacter(id="a", name="Ana")])  # fmt: skip
    with pytest.raises(GenerationError, match="Ana has none yet"):
        identity_characters(request)


def test_the_pooled_embedding_is_taken_at_the_end_token_with_identity_tokens(tmp_path):
    """SDXL's encoder configs say ``eos_token_id = 2`` (legacy), with which transformers pools at the
    largest token id — an added identity token. For the job the encoders pool at the end token,
    as in training, and go back afterwards."""
    from diffusers import StableDiffusionXLPipeline

    from comic_studio.backends.identity.backend import JobIdentities

    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0), add_watermarker=False)
    pipe.text_encoder_2.text_model.eos_token_id = 2  # as the real SDXL config (the tiny one says 1)
    identity_file(tmp_path / "a.safetensors", 1)
    job = JobIdentities([str(tmp_path / "a.safetensors")])
    job.apply(pipe)
    try:
        prompt = f"a photo of {identity_phrase(0)} person"
        with torch.no_grad():
            _e, _n, pooled, _np = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
            ids = torch.tensor([pipe.tokenizer_2(prompt, padding="max_length", max_length=77).input_ids])
            out = pipe.text_encoder_2(ids, output_hidden_states=True)
            end = int((ids[0] == pipe.tokenizer_2.eos_token_id).nonzero()[0])
            at_end = pipe.text_encoder_2.text_projection(out.last_hidden_state[:, end])
        assert torch.allclose(pooled, at_end, atol=1e-6)
        assert int(ids[0].argmax()) != end  # the legacy rule would have pooled at an identity token
    finally:
        job.remove()
    assert pipe.text_encoder_2.text_model.eos_token_id == 2
