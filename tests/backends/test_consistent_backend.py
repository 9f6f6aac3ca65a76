"""The consistent backend on the tiny kit: write/read phases, exact equality with plain SDXL when no
character is banked, processors restored after success/error/cancel, bank persistence and exact
single-panel regenerate, memory formula, LoRA and attn2 composition, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.backends.consistent.bank import IdentityBank, bank_bytes_formula, write_bank_file  # noqa: E402
from comic_studio.backends.consistent.processors import (  # noqa: E402
    BankReadProcessor,
    RunState,
    decoder_self_attention_layers,
    installed,
    schedule_levels,
)
from comic_studio.backends.consistent.schedule import ConsistencySchedule  # noqa: E402
from comic_studio.backends.sdxl import SdxlBackend  # noqa: E402
from comic_studio.core.assets import AssetStore  # noqa: E402
from comic_studio.generation.request import Cancelled, GenerationError, GenerationRequest, RequestCharacter  # noqa: E402

ANA = RequestCharacter(id="ana", name="Ana", description="green raincoat")
BEN = RequestCharacter(id="ben", name="Ben", description="grey sweater")
STEPS = 6


def request(tiny_kit, characters=(ANA,), seed=7, **settings) -> GenerationRequest:
    base = {"model": str(tiny_kit.sdxl), "steps": STEPS, "anchor_size": 64, "start_step": 1, **settings}
    return GenerationRequest(
        backend="consistent",
        width=64,
        height=64,
        seed=seed,
        prompt="on a pier at dusk",
        characters=list(characters),
        backend_settings=base,
    )


def pixels(result) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"))


def unet_of(backend, tiny_kit):
    return backend.resources.models.peek(f"sdxl:{tiny_kit.sdxl.resolve()}", "unet", "float32", "cpu")


def plain_sdxl(tiny_kit, req: GenerationRequest):
    settings = {"model": str(tiny_kit.sdxl), "steps": STEPS}
    return SdxlBackend().generate(req.model_copy(update={"backend": "sdxl", "backend_settings": settings}))


# ------------------------------------------------------------------------------ phases


def test_write_then_read_phase_change_the_panel(tiny_kit):
    backend = ConsistentBackend()
    req = request(tiny_kit)
    consistent = backend.generate(req)
    assert not np.array_equal(pixels(consistent), pixels(plain_sdxl(tiny_kit, req)))
    (bank,) = backend._banks.values()
    layers = decoder_self_attention_layers(unet_of(backend, tiny_kit))
    assert len(layers) == 4 and set(layers.values()) == {"32"}  # the tiny UNet: one decoder attention block
    pipe, _call = backend.prepare_call(req, backend.job_settings(req))
    # Keyed by the UNet's timesteps, from start_step on (Euler: one level per step)
    assert bank.levels("ana") == list(schedule_levels(pipe.scheduler, STEPS)[1:])
    assert {k[2] + ".processor" for k in bank.keys()} == set(layers)


def test_read_processor_attends_to_banked_tokens(tiny_kit):
    """Drive the processors by hand: the read state counts bank reads only on planned steps."""
    backend = ConsistentBackend()
    req = request(tiny_kit)
    backend.generate(req)
    (bank,) = backend._banks.values()
    settings = backend.validate_settings(req.backend_settings)
    pipe, call = backend.prepare_call(req, settings)
    plan = (False, True, False, True, True, False)
    state = RunState("read", bank, ("ana",), plan=plan, levels=schedule_levels(pipe.scheduler, STEPS))

    with installed(pipe.unet, state, {"32": 0.5, "16": 0.5}) as patched:
        assert all(isinstance(p, BankReadProcessor) for p in patched.values())
        pipe(**call)
    # 4 patched layers, run once per step (CFG is batched): reads on the 3 planned steps
    assert state.calls["read"] == 4 * sum(plan)


def test_panels_without_banked_characters_equal_plain_sdxl(tiny_kit):
    backend = ConsistentBackend()
    for req in (
        request(tiny_kit, characters=()),
        request(tiny_kit, auto_anchors=False),
        request(tiny_kit, strength_32=0.0),
        request(tiny_kit, prob_early=0.0, prob_late=0.0),
    ):
        assert np.array_equal(pixels(backend.generate(req)), pixels(plain_sdxl(tiny_kit, req))), req.backend_settings


# ------------------------------------------------------------------------------ restoring processors


def snapshot(backend, tiny_kit):
    return dict(unet_of(backend, tiny_kit).attn_processors)


def test_processors_restored_after_success_error_and_cancel(tiny_kit):
    backend = ConsistentBackend()
    backend.generate(request(tiny_kit, characters=()))  # loads the UNet into the cache
    before = snapshot(backend, tiny_kit)

    def same():
        after = snapshot(backend, tiny_kit)
        return after.keys() == before.keys() and all(after[k] is before[k] for k in before)

    backend.generate(request(tiny_kit))
    assert same()

    def boom(step, total, preview=None):
        if step == 3:
            raise RuntimeError("driver fell over")
        return True

    with pytest.raises(RuntimeError, match="driver"):
        backend.generate(request(tiny_kit, characters=(ANA, BEN), anchor_seed=5), boom)
    assert same()
    for stop_at in (2, STEPS + 2):  # inside an anchor run, then inside the panel run
        with pytest.raises(Cancelled):
            backend.generate(request(tiny_kit, anchor_seed=9 + stop_at), lambda s, t, p=None: s < stop_at)  # noqa: B023 (called in this iteration)
        assert same()


# ------------------------------------------------------------------------------ persistence


def test_single_panel_regenerate_from_saved_banks_equals_the_batch_run(tiny_kit, tmp_path):
    batch = ConsistentBackend()
    panels = [request(tiny_kit, characters=(ANA,), seed=1), request(tiny_kit, characters=(ANA, BEN), seed=2)]
    batch_images = [pixels(batch.generate(p)) for p in panels]

    # The app's side: an anchor job per character, bank bytes stored as project assets.
    store, hashes = AssetStore(), {}
    for character in (ANA, BEN):
        job = request(tiny_kit, characters=(character,), anchor_for=character.id, bank_folder=str(tmp_path / "jobs"))
        result = ConsistentBackend().generate(job)
        assert result.image.size == (64, 64)
        cid, digest = result.settings["banks"].split("=")
        data = (tmp_path / "jobs" / f"{digest}.safetensors").read_bytes()
        hashes[cid] = store.add(data, validate_image=False)
        assert hashes[cid] == digest

    # Next week: a fresh process materialises the assets and regenerates panel 2 alone.
    folder = tmp_path / "materialised"
    for digest in hashes.values():
        write_bank_file(store.get(digest), folder)
    banks = ",".join(f"{c}={d}" for c, d in hashes.items())
    alone = ConsistentBackend().generate(
        request(tiny_kit, characters=(ANA, BEN), seed=2, banks=banks, bank_folder=str(folder), auto_anchors=False)
    )
    assert np.array_equal(pixels(alone), batch_images[1])
    assert not np.array_equal(pixels(alone), pixels(plain_sdxl(tiny_kit, panels[1])))


def test_bank_memory_matches_the_formula(tiny_kit):
    backend = ConsistentBackend()
    rate = 0.4
    backend.generate(request(tiny_kit, strength_32=rate, anchors=2, start_step=2))
    (bank,) = backend._banks.values()
    # anchor 64² → latent 8² → the decoder attention block runs at 4×4 = 16 tokens of 64 channels
    tokens, channels = 16, 64
    for key in bank.keys():
        assert bank.get(*key).shape == (2, 2 * round(tokens * rate), channels)  # CFG batch, two anchors
    expected = bank_bytes_formula([(tokens, channels, rate)] * 4, steps=STEPS - 2, batch=2, anchors=2)
    assert bank.nbytes() == expected
    assert len(bank.to_bytes()) < expected + 4096  # the file is the tokens plus a small header


def test_bank_precision_and_location(tiny_kit):
    backend = ConsistentBackend()
    backend.generate(request(tiny_kit, bank_precision="bf16"))
    (bank,) = backend._banks.values()
    assert bank.precision == "bf16" and all(bank.get(*k).dtype == torch.bfloat16 for k in bank.keys())
    assert all(bank.get(*k).device.type == "cpu" for k in bank.keys())


# ------------------------------------------------------------------------------ composition


def test_lora_projections_work_inside_the_processors(tiny_kit, tmp_path):
    from safetensors.torch import save_file

    backend = ConsistentBackend()
    plain = backend.generate(request(tiny_kit))
    unet = unet_of(backend, tiny_kit)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for name, module in unet.named_modules():  # LoRA on the patched self-attention's key/value only
        if name.startswith("up_blocks") and name.endswith(("attn1.to_k", "attn1.to_v")):
            key = "lora_unet_" + name.replace(".", "_")
            state[key + ".lora_down.weight"] = torch.randn(4, module.in_features, generator=gen)
            state[key + ".lora_up.weight"] = torch.randn(module.out_features, 4, generator=gen)
            state[key + ".alpha"] = torch.tensor(4.0)
    path = tmp_path / "kv.safetensors"
    save_file(state, str(path))
    # Saved banks fix the anchors, so only the panel's processors see the LoRA'd to_k/to_v.
    folder = tmp_path / "banks"
    (bank,) = backend._banks.values()
    digest = write_bank_file(bank.to_bytes(), folder)
    saved = {"banks": f"ana={digest}", "bank_folder": str(folder)}
    without = backend.generate(request(tiny_kit, **saved))
    assert np.array_equal(pixels(without), pixels(plain))
    styled = backend.generate(request(tiny_kit, loras=f"{path}:1.0", **saved))
    assert not np.array_equal(pixels(styled), pixels(plain))
    assert np.array_equal(pixels(backend.generate(request(tiny_kit, **saved))), pixels(plain))  # LoRA removed after


def test_cross_attention_processors_are_left_intact(tiny_kit):
    """IP-Adapter installs attn2 processors; the job must neither replace nor drop them."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    class MarkedCrossAttention(AttnProcessor2_0):
        pass

    backend = ConsistentBackend()
    backend.generate(request(tiny_kit, characters=()))
    unet = unet_of(backend, tiny_kit)
    original = dict(unet.attn_processors)
    marked = {n: (MarkedCrossAttention() if n.endswith("attn2.processor") else p) for n, p in original.items()}
    unet.set_attn_processor(dict(marked))
    try:
        seen = {}
        state = RunState("read", IdentityBank(), ())
        with installed(unet, state, {"32": 0.5, "16": 0.5}):
            seen = dict(unet.attn_processors)
        for name, proc in marked.items():
            if name.endswith("attn2.processor") or not name.startswith("up_blocks"):
                assert seen[name] is proc, name
        assert all(unet.attn_processors[n] is p for n, p in marked.items())
        backend.generate(request(tiny_kit))  # a full job with the marked processors installed
        assert all(unet.attn_processors[n] is p for n, p in marked.items())
    finally:
        unet.set_attn_processor(dict(original))


# ------------------------------------------------------------------------------ errors and settings


def test_clear_errors(tiny_kit, tmp_path):
    backend = ConsistentBackend()
    with pytest.raises(GenerationError, match="anchor_for 'zed'"):
        backend.generate(request(tiny_kit, anchor_for="zed", bank_folder=str(tmp_path)))
    with pytest.raises(GenerationError, match="needs 'bank_folder'"):
        backend.generate(request(tiny_kit, anchor_for="ana"))
    with pytest.raises(GenerationError, match="cannot read"):
        backend.generate(request(tiny_kit, banks="ana=" + "0" * 64, bank_folder=str(tmp_path)))
    with pytest.raises(GenerationError, match="not 'character-id=sha256'"):
        backend.generate(request(tiny_kit, banks="ana"))
    result = backend.generate(request(tiny_kit, anchor_for="ana", bank_folder=str(tmp_path)))
    digest = result.settings["banks"].split("=")[1]
    with pytest.raises(GenerationError, match="made with 6 steps"):
        backend.generate(request(tiny_kit, banks=f"ana={digest}", bank_folder=str(tmp_path), steps=4))


def test_defaults_follow_the_paper():
    defaults = ConsistentBackend.default_settings()
    schedule = ConsistencySchedule()
    assert (defaults["start_step"], defaults["prob_early"], defaults["prob_late"], defaults["switch_step"]) == (
        schedule.start_step,
        schedule.prob_early,
        schedule.prob_late,
        schedule.switch_step,
    )
    assert defaults["bank_precision"] == "fp16" and defaults["bank_location"] == "cpu"
    assert 1 <= defaults["anchors"] <= 4


def test_anchor_from_an_existing_picture_by_re_noising(tiny_kit, tmp_path):
    from comic_studio.backends._diffusers.inputs import image_to_data_uri

    backend = ConsistentBackend()
    rendered = backend.generate(request(tiny_kit, anchor_for="ana", bank_folder=str(tmp_path / "a")))
    picture = rendered.image
    job = request(tiny_kit, anchor_for="ana", bank_folder=str(tmp_path / "b"), anchor_image=image_to_data_uri(picture))
    first, second = backend.generate(job), ConsistentBackend().generate(job)
    assert first.settings["banks"] == second.settings["banks"]  # deterministic bytes
    assert np.array_equal(pixels(first), np.asarray(picture.convert("RGB")))  # the picture is the anchor shown
    digest = first.settings["banks"].split("=")[1]
    bank = IdentityBank.from_bytes((tmp_path / "b" / f"{digest}.safetensors").read_bytes())
    reference = IdentityBank.from_bytes(next((tmp_path / "a").glob("*.safetensors")).read_bytes())
    assert bank.keys() == reference.keys() and bank.meta["source"] == "image"
    assert all(bank.get(*k).shape == reference.get(*k).shape for k in bank.keys())
    panel = backend.generate(request(tiny_kit, banks=f"ana={digest}", bank_folder=str(tmp_path / "b")))
    assert not np.array_equal(pixels(panel), pixels(plain_sdxl(tiny_kit, request(tiny_kit))))
