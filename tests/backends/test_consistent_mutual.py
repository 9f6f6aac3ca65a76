"""Issue 15 item 11 on the tiny kit: a character's anchors render as one batch in which they attend
to each other (StoryBooth §3.2.3, StoryDiffusion's identity batch), so each anchor's banked tokens
depend on the other anchors' pictures, while a lone anchor is exactly the plain render it always
was; and the schedule's coin is drawn per layer call (StoryDiffusion's code) or per step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.backends.consistent.anchors import anchor_prompt, anchor_seed  # noqa: E402
from comic_studio.backends.consistent.bank import IdentityBank, sampled_tokens  # noqa: E402
from comic_studio.backends.consistent.processors import (  # noqa: E402
    RunState,
    decoder_self_attention_layers,
    installed,
    schedule_levels,
)
from comic_studio.backends.consistent.schedule import ConsistencySchedule  # noqa: E402
from comic_studio.backends.sdxl import SdxlBackend  # noqa: E402
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402

ANA = RequestCharacter(id="ana", name="Ana", description="green raincoat")
STEPS = 4
STRENGTHS = {"32": 0.5, "16": 0.5}


def request(tiny_kit, seed=7, **settings) -> GenerationRequest:
    base = {"model": str(tiny_kit.sdxl), "steps": STEPS, "anchor_size": 64, "start_step": 1,
            "prob_early": 1.0, "prob_late": 1.0, **settings}  # fmt: skip
    return GenerationRequest(backend="consistent", width=64, height=64, seed=seed, prompt="on a pier at dusk",
                             characters=[ANA], backend_settings=base)  # fmt: skip


def write_batch(backend, tiny_kit, seeds, *, mutual=True):
    """Bank ANA from one batched render of ``seeds`` with the real write processors; returns the bank
    and the pictures. ``mutual=False``: a layer plan of all tails (anchors never look at each other)."""
    req = request(tiny_kit, seed=seeds[0])
    settings = backend.job_settings(req)
    pipe, call = backend.prepare_call(req, settings)
    call.update(num_images_per_prompt=len(seeds), generator=[torch.Generator("cpu").manual_seed(s) for s in seeds])
    layers = len(decoder_self_attention_layers(pipe.unet))
    bank = IdentityBank()
    state = RunState(
        "write",
        bank,
        ("ana",),
        generators=tuple(torch.Generator("cpu").manual_seed(s) for s in seeds),
        banked_steps=frozenset(range(1, STEPS)),
        levels=schedule_levels(pipe.scheduler, STEPS),
        layer_plan=tuple((mutual,) * layers for _ in range(STEPS)),
    )
    with installed(pipe.unet, state, STRENGTHS):
        images = pipe(**call).images
    return bank, images, state


def anchor_part(bank: IdentityBank, key, anchor: int, anchors: int):
    tokens = bank.get(*key)
    count = tokens.shape[1] // anchors
    return tokens[:, anchor * count : (anchor + 1) * count]


def test_each_anchors_tokens_depend_on_the_other_anchors_picture(tiny_kit):
    backend = ConsistentBackend()
    first, _, state = write_batch(backend, tiny_kit, [11, 22])
    changed, _, _ = write_batch(backend, tiny_kit, [11, 33])  # only anchor 1's picture differs
    assert state.calls["mutual"] > 0
    last_level = first.levels("ana")[-1]
    keys = [k for k in first.keys() if k[1] == last_level]
    assert keys and first.keys() == changed.keys()
    # Anchor 0 (same seed both times) banks other tokens because anchor 1 changed: one look, not two.
    assert any(not torch.equal(anchor_part(first, k, 0, 2), anchor_part(changed, k, 0, 2)) for k in keys)
    # Without the mutual look, anchor 0's tokens do not depend on anchor 1 at all.
    alone_a, _, state_a = write_batch(backend, tiny_kit, [11, 22], mutual=False)
    alone_b, _, _ = write_batch(backend, tiny_kit, [11, 33], mutual=False)
    assert state_a.calls["mutual"] == 0
    assert all(torch.equal(anchor_part(alone_a, k, 0, 2), anchor_part(alone_b, k, 0, 2)) for k in alone_a.keys())


def test_a_two_anchor_bank_through_the_backend_is_one_batched_run(tiny_kit):
    """anchors=2: one pipeline run for the character (progress counts one run of anchors, then the
    panel), the bank holds both anchors' samples, its metadata the schedule that shaped them."""
    backend = ConsistentBackend()
    steps_seen: list[tuple[int, int]] = []
    backend.generate(request(tiny_kit, anchors=2), lambda step, total, preview=None: steps_seen.append((step, total)))
    assert steps_seen[-1] == (2 * STEPS, 2 * STEPS)
    (bank,) = backend._banks.values()
    settings = backend.job_settings(request(tiny_kit, anchors=2))
    assert bank.meta["seeds"] == [anchor_seed(settings["anchor_seed"], "ana", k) for k in range(2)]
    key = bank.keys()[-1]
    assert bank.get(*key).shape[1] == 2 * sampled_tokens(16, 0.5)  # 64² anchors: 4×4 tokens at the tiny decoder block
    assert bank.meta["coin"] == "layer" and bank.meta["prob_early"] == 1.0


def test_a_lone_anchor_is_the_plain_render(tiny_kit, tmp_path):
    """One anchor: nothing to attend to but itself, so the anchor picture is plain SDXL's picture of
    the anchor prompt at the anchor seed, bit for bit (the write phase only records)."""
    result = ConsistentBackend().generate(request(tiny_kit, anchor_for="ana", bank_folder=str(tmp_path)))
    settings = ConsistentBackend().job_settings(request(tiny_kit))
    seed = anchor_seed(settings["anchor_seed"], "ana", 0)
    plain = SdxlBackend().generate(
        GenerationRequest(
            backend="sdxl",
            width=64,
            height=64,
            seed=seed,
            prompt=anchor_prompt(ANA),
            backend_settings={"model": str(tiny_kit.sdxl), "steps": STEPS},
        )  # fmt: skip
    )
    assert np.array_equal(np.asarray(result.image), np.asarray(plain.image))


def test_layer_coins_are_per_layer_and_step_coins_per_step():
    schedule = ConsistencySchedule(start_step=2, prob_early=0.7, prob_late=0.9, switch_step=20)
    layered = schedule.layer_plan(30, 5, 36)
    assert layered == schedule.layer_plan(30, 5, 36) and layered != schedule.layer_plan(30, 6, 36)
    assert not any(any(row) for row in layered[:2])
    assert any(0 < sum(row) < 36 for row in layered[2:])  # layers of one step decide apart
    share = sum(sum(row) for row in layered[2:20]) / (18 * 36)
    assert 0.6 < share < 0.8  # about prob_early
    assert schedule.layer_plan(30, 5, 36, "step") == tuple((d,) * 36 for d in schedule.plan(30, 5))
    # a draft plan without a head reads the bank with every layer at its first eligible step
    assert ConsistencySchedule(1, 1e-12, 1e-12).layer_plan(3, 1, 2) == ((False, False), (True, True), (False, False))
    with pytest.raises(ValueError, match="unknown coin"):
        schedule.layer_plan(3, 1, 2, "panel")


def test_read_processors_follow_their_own_layers_coins(tiny_kit):
    backend = ConsistentBackend()
    backend.generate(request(tiny_kit))
    (bank,) = backend._banks.values()
    req = request(tiny_kit)
    pipe, call = backend.prepare_call(req, backend.job_settings(req))
    layers = len(decoder_self_attention_layers(pipe.unet))
    plan = tuple(tuple((step + layer) % 2 == 1 for layer in range(layers)) for step in range(STEPS))
    state = RunState("read", bank, ("ana",), levels=schedule_levels(pipe.scheduler, STEPS), layer_plan=plan)
    with installed(pipe.unet, state, STRENGTHS):
        pipe(**call)
    assert state.calls["read"] == sum(sum(row) for row in plan)  # Euler: one UNet call per step
    wrong = RunState("read", bank, (), layer_plan=((True,),))
    with pytest.raises(ValueError, match="no column"), installed(pipe.unet, wrong, STRENGTHS):
        pass
