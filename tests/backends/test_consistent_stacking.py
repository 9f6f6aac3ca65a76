"""Consistent self-attention stacked with IP-Adapter on the tiny kit (issue 8, part 5): an IP-Adapter
(h94 layout, loaded the way racig loads it) on the pipeline the consistent backend builds, the
consistent processors installed on top. The adapter's attn2 processors stay in place and keep
acting, our decoder attn1 processors run beside them, and everything is put back afterwards."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import REFS, build_kit  # noqa: E402

from comic_studio.backends._diffusers.long_prompt import apply_long_prompt  # noqa: E402
from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.backends.consistent.bank import IdentityBank  # noqa: E402
from comic_studio.backends.consistent.processors import (  # noqa: E402
    BankReadProcessor,
    RunState,
    decoder_self_attention_layers,
    installed,
    schedule_levels,
)
from comic_studio.backends.racig import adapters as ipa  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402

ANA = RequestCharacter(id="ana", name="Ana", description="green raincoat")
STEPS = 5
STRENGTHS = {"32": 0.5, "16": 0.5}
PLAN = tuple(step >= 1 for step in range(STEPS))
"""Consistent attention on every step after the first (the bank holds steps 1… as start_step=1)."""


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())  # the tiny kit plus std-0.2 adapters (clear effects)


@pytest.fixture(scope="module")
def backend():
    return ConsistentBackend()


@pytest.fixture(scope="module")
def ana_bank(kit, backend, tmp_path_factory):
    """Ana's identity bank from a real anchor job, made before any adapter is attached."""
    tiny, _ = kit
    folder = tmp_path_factory.mktemp("stacking-banks")
    result = backend.generate(panel_request(tiny, anchor_for="ana", bank_folder=str(folder)))
    digest = result.settings["banks"].split("=")[1]
    settings = backend.job_settings(panel_request(tiny))
    return backend.load_bank(str(folder), digest, settings, scheduler=backend.job_scheduler(settings, 11))


@pytest.fixture(scope="module")
def embeds(kit):
    """IP-Adapter image embeddings of two different references, negatives first (CFG)."""
    tiny, _ = kit
    encoder = ipa.load_image_encoder(tiny.image_encoder, torch.float32, "cpu")
    negative = encoder.negative()

    def for_both_adapters(reference: bytes) -> list:
        positive = encoder.embed(reference)[None, None]
        return [torch.cat([negative[None, None], positive])] * 2  # face adapter, plus adapter

    return for_both_adapters(REFS[0]), for_both_adapters(REFS[2])


@pytest.fixture
def adapter_pipe(kit, backend):
    """The consistent backend's own pipeline (prepare_call) with Plus-Face and Plus attached; the
    shared UNet is cleaned up afterwards (it lives in the model cache other tests use)."""
    tiny, strong = kit
    pipe, _call = prepared(backend, tiny)
    states = [ipa.read_adapter_state(strong / "face.safetensors"), ipa.read_adapter_state(strong / "plus.safetensors")]
    with ipa.attached_adapters(pipe, *states):
        yield pipe


def panel_request(tiny, **settings) -> GenerationRequest:
    base = {"model": str(tiny.sdxl), "steps": STEPS, "anchor_size": 64, "start_step": 1, **settings}
    return GenerationRequest(backend="consistent", width=64, height=64, seed=11, prompt="Ana on a pier at dusk",
                             characters=[ANA], backend_settings=base)  # fmt: skip


def prepared(backend, tiny):
    """A fresh (pipe, call) exactly as the backend's panel job builds them (fresh seeded generator)."""
    req = panel_request(tiny)
    pipe, call = backend.prepare_call(req, backend.validate_settings(req.backend_settings))
    apply_long_prompt(pipe, call)
    return pipe, call


def render(backend, tiny, image_embeds, state: RunState | None = None, probe=None) -> np.ndarray:
    """One panel with IP-Adapter embeds; with ``state``, under the consistent processors."""
    pipe, call = prepared(backend, tiny)

    def on_step_end(_pipe, index, _t, tensors):
        if probe is not None:
            probe(index)
        return tensors

    def run():
        return pipe(**call, ip_adapter_image_embeds=image_embeds, callback_on_step_end=on_step_end).images[0]

    if state is None:
        image = run()
    else:
        state.levels = schedule_levels(pipe.scheduler, STEPS)
        with installed(pipe.unet, state, STRENGTHS):
            image = run()
    return np.asarray(image.convert("RGB"))


def read_state(bank: IdentityBank) -> RunState:
    return RunState("read", bank, tuple(bank.characters), plan=PLAN)


def test_ip_adapter_processors_stay_during_the_run_and_both_kinds_are_restored(
    kit, backend, adapter_pipe, embeds, ana_bank
):
    tiny, _ = kit
    unet = adapter_pipe.unet
    loaded = dict(unet.attn_processors)
    ip_layers = {n for n, p in loaded.items() if isinstance(p, ipa_processor_types())}
    decoder = set(decoder_self_attention_layers(unet))
    assert ip_layers == {n for n in loaded if n.endswith("attn2.processor")} and decoder
    seen: list[dict] = []
    state = read_state(ana_bank)
    render(backend, tiny, embeds[0], state, probe=lambda _i: seen.append(dict(unet.attn_processors)))
    assert len(seen) == STEPS and state.calls["read"] > 0
    for during in seen:
        assert all(during[n] is loaded[n] for n in ip_layers)  # the adapter's very processors
        assert all(isinstance(during[n], BankReadProcessor) and during[n].original is loaded[n] for n in decoder)
        assert all(during[n] is loaded[n] for n in loaded if n not in decoder)
    after = dict(unet.attn_processors)
    assert after.keys() == loaded.keys() and all(after[n] is loaded[n] for n in loaded)


def test_without_a_banked_character_it_equals_the_adapter_alone(kit, backend, adapter_pipe, embeds):
    tiny, _ = kit
    alone = render(backend, tiny, embeds[0])
    state = RunState("read", IdentityBank(), (), plan=PLAN)
    stacked = render(backend, tiny, embeds[0], state)
    assert np.array_equal(stacked, alone)
    assert state.calls["read"] == 0 and state.calls["plain"] > 0  # our processors ran, and fell through
    assert not np.array_equal(alone, render(backend, tiny, embeds[1]))  # the adapter is really acting


def test_with_a_bank_the_ip_adapter_still_acts(kit, backend, adapter_pipe, embeds, ana_bank):
    tiny, _ = kit
    first, second = (render(backend, tiny, e, read_state(ana_bank)) for e in embeds)
    assert not np.array_equal(first, second)  # the reference image still steers the panel
    assert not np.array_equal(first, render(backend, tiny, embeds[0]))  # and the bank does too


def test_processors_set_inside_the_block_survive_it(kit, backend, adapter_pipe):
    """Restoring puts back only our own layers: another method's attn2 processors set while the
    consistent ones are installed are kept (methods can stack in either order)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet = adapter_pipe.unet
    loaded = dict(unet.attn_processors)
    theirs = {n: AttnProcessor2_0() for n in loaded if n.endswith("attn2.processor")}
    try:
        with installed(unet, RunState("read", IdentityBank(), ()), STRENGTHS):
            unet.set_attn_processor({**unet.attn_processors, **theirs})
        after = dict(unet.attn_processors)
        assert all(after[n] is p for n, p in theirs.items())
        assert all(after[n] is loaded[n] for n in loaded if n not in theirs)
    finally:
        unet.set_attn_processor(dict(loaded))


def test_loading_an_adapter_inside_the_block_fails_clearly_and_changes_nothing(kit, backend):
    tiny, strong = kit
    pipe, _call = prepared(backend, tiny)
    before = dict(pipe.unet.attn_processors)
    state = ipa.read_adapter_state(strong / "plus.safetensors")
    with pytest.raises(TypeError, match=r"attach or remove IP-Adapters .* before entering processors\.installed"):
        with installed(pipe.unet, RunState("read", IdentityBank(), ()), STRENGTHS):
            pipe.load_ip_adapter(state, subfolder="", weight_name="plus", image_encoder_folder=None)
    after = dict(pipe.unet.attn_processors)
    assert all(after[n] is before[n] for n in before) and pipe.unet.encoder_hid_proj is None


def ipa_processor_types() -> tuple:
    from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0

    return IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0
