"""A character's identity strength at inference: the rows a job loads are
``mean + s · (trained − mean)`` about the celebrity-name mean of each encoder (the AdaIN target the
rows were trained on) — bit for bit the file at 1, the mean at 0, halfway at 0.5 — and a panel
rendered at another strength is another picture, while going back to 1 gives the first one again."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anchor_helpers import cid, make_document  # noqa: E402

from comic_studio.core import character_edits  # noqa: E402
from comic_studio.generation.identity import celebrity_stats, identity_tokens, scaled_identity_rows  # noqa: E402
from comic_studio.generation.registry import register_backend, unregister_backend  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402
from comic_studio.testing.tiny import tiny_sdxl_components  # noqa: E402
from comic_studio.training.identity import save_identity  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402
from comic_studio.workflows.requests import build_request  # noqa: E402


@pytest.fixture
def identity_backend():
    register_backend("identity", "comic_studio.backends.identity:IdentityBackend")
    yield
    unregister_backend("identity")


def _identity_file(path, seed: int) -> bytes:
    g = torch.Generator().manual_seed(seed)
    rows = {"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 48, generator=g)}
    return save_identity(path, rows, {"method": "test", "seed": seed}).read_bytes()


def test_the_rows_are_the_file_at_one_the_celebrity_mean_at_zero_and_halfway_at_a_half(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    from comic_studio.backends._diffusers.identities import JobIdentities

    files = []
    for seed in (1, 2, 3):
        _identity_file(tmp_path / f"{seed}.safetensors", seed)
        files.append(str(tmp_path / f"{seed}.safetensors"))
    pipe = StableDiffusionXLPipeline(**tiny_sdxl_components(0), add_watermarker=False)
    pairs = {"clip_l": (pipe.tokenizer, pipe.text_encoder), "clip_g": (pipe.tokenizer_2, pipe.text_encoder_2)}
    means = {key: celebrity_stats(tok, enc.get_input_embeddings().weight)[0] for key, (tok, enc) in pairs.items()}
    job = JobIdentities(files, [1.0, 0.0, 0.5])  # one job: the 1 is exact even beside other strengths
    job.apply(pipe)
    try:
        for key, (tokenizer, encoder) in pairs.items():
            table = encoder.get_input_embeddings().weight.detach()
            loaded = [table[[tokenizer.convert_tokens_to_ids(t) for t in identity_tokens(k)]] for k in range(3)]
            trained = [load_file(f)[key] for f in files]
            assert torch.equal(loaded[0], trained[0])
            assert torch.equal(loaded[1], means[key])
            assert torch.allclose(loaded[2], (trained[2] + means[key]) / 2, atol=1e-6)
            assert not torch.allclose(loaded[2], trained[2]) and not torch.allclose(loaded[2], means[key])
    finally:
        job.remove()
    assert identity_tokens(0)[0] not in pipe.tokenizer.get_vocab()


def test_the_strength_scales_the_learned_deviation_in_the_rows_dtype():
    mean = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    rows = torch.tensor([[2.0, 0.0], [3.0, 6.0]], dtype=torch.float16)
    assert scaled_identity_rows(rows, mean, 1.0) is rows  # 1: the file's tensor itself
    doubled = scaled_identity_rows(rows, mean, 2.0)  # above 1 exaggerates what was learned
    assert doubled.dtype == torch.float16 and doubled.tolist() == [[3.0, -2.0], [3.0, 8.0]]


def test_a_panel_at_half_strength_is_another_picture_and_the_request_carries_it(
    tiny_kit, tiny_models, identity_backend, tmp_path, monkeypatch
):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    doc = make_document(tiny_kit)
    panel = next(p for page in doc.project.pages for p in page.panels if len(p.characters) == 1)
    panel.backend = "identity"
    panel.backend_settings = {"model": str(tiny_kit.sdxl), "steps": 3, "max_side": 64, "preview_every": 0}
    ana = cid(doc, "Ana")
    asset = doc.assets.add(_identity_file(tmp_path / "ana.safetensors", 1), validate_image=False)
    character_edits.update_character(doc, ana, identity_asset=asset)

    def pixels() -> np.ndarray:
        result = render_panel(doc, panel.id)
        return np.asarray(doc.assets.open_image(result.asset).convert("RGB"), dtype=np.int16)

    full = pixels()
    character_edits.update_character(doc, ana, identity_scale=0.5)
    assert build_request(doc.project, panel).characters[0].identity_scale == 0.5
    half = pixels()
    # Measured on the tiny kit (mean |Δ| per channel from the s = 1 picture): 0 → 2.73, 0.25 → 0.46,
    # 0.5 → 0.31, 0.75 → 0.19, 2 → 1.28; the CPU render is deterministic.
    assert np.abs(half - full).mean() > 0.1
    character_edits.update_character(doc, ana, identity_scale=0.0)  # the generic face: further still
    assert np.abs(pixels() - full).mean() > np.abs(half - full).mean()
    character_edits.update_character(doc, ana, identity_scale=1.0)
    assert np.array_equal(pixels(), full)


def test_regional_identities_take_each_characters_strength():
    """RaCig's optional identities: the strengths follow the characters that have tokens."""
    import json

    from comic_studio.backends._diffusers.identities import optional_identities

    request = GenerationRequest(
        backend="racig", width=64, height=64,
        characters=[RequestCharacter(id="a", name="Ana", identity_scale=0.25), RequestCharacter(id="n", name="Ned"),
                    RequestCharacter(id="b", name="Ben", identity_scale=1.75)],
    )  # fmt: skip
    identities, phrases = optional_identities(request, json.dumps({"a": "a.safetensors", "b": "b.safetensors"}))
    assert (identities.files, identities.scales, list(phrases)) == (
        ["a.safetensors", "b.safetensors"],
        [0.25, 1.75],
        ["a", "b"],
    )
