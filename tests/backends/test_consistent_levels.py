"""Identity banks indexed by noise level (issue 15, item 10), through the real consistent backend on
the tiny kit: second-order samplers (Heun, DPM++ SDE: 2N−1 UNet calls for N steps) bank and read
over the whole denoising, img2img reads the tokens of its own mid-schedule levels, saved banks are
checked against the job's noise levels, version-1 banks (keyed by loop index) still load, and
``bank_from_image`` runs on the execution device under sequential offload (item 1)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("torchsde")

from comic_studio.backends._diffusers.inputs import image_to_data_uri  # noqa: E402
from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.backends.consistent.anchors import bank_from_image  # noqa: E402
from comic_studio.backends.consistent.bank import IdentityBank, write_bank_file  # noqa: E402
from comic_studio.backends.consistent.processors import (  # noqa: E402
    canonical_level,
    installed,
    schedule_levels,
    unet_timesteps,
)
from comic_studio.backends.consistent.schedule import ConsistencySchedule, step_of, unmatched_levels  # noqa: E402
from comic_studio.generation.request import GenerationError, GenerationRequest, RequestCharacter  # noqa: E402

ANA = RequestCharacter(id="ana", name="Ana", description="green raincoat")
STEPS = 6


class RecordingBackend(ConsistentBackend):
    """The real backend, keeping each run's attention state for the test to inspect."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list = []

    def _run(self, pipe, call, state, settings, reporter, plan_seed):
        self.states.append(state)
        return super()._run(pipe, call, state, settings, reporter, plan_seed)


def request(tiny_kit, seed=7, **settings) -> GenerationRequest:
    base = {"model": str(tiny_kit.sdxl), "steps": STEPS, "anchor_size": 64, "start_step": 1,
            "prob_early": 1.0, "prob_late": 1.0, **settings}  # fmt: skip
    return GenerationRequest(backend="consistent", width=64, height=64, seed=seed, prompt="on a pier at dusk",
                             characters=[ANA], backend_settings=base)  # fmt: skip


def calls_of(backend, tiny_kit, sampler: str) -> list[float]:
    settings = backend.job_settings(request(tiny_kit, scheduler=sampler))
    return [canonical_level(t) for t in unet_timesteps(backend.job_scheduler(settings, 7), STEPS)]


def pixels(result) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"))


def saved_bank(backend, tiny_kit, folder, **settings) -> str:
    result = backend.generate(request(tiny_kit, anchor_for="ana", bank_folder=str(folder), **settings))
    return result.settings["banks"]


# ------------------------------------------------------------------------------ second-order samplers


@pytest.mark.parametrize("sampler", ["DPM++ SDE", "DPM++ SDE Karras", "Heun"])
def test_second_order_samplers_bank_and_read_every_level_of_the_whole_denoising(tiny_kit, sampler):
    backend = RecordingBackend()
    seen = []
    result = backend.generate(request(tiny_kit, scheduler=sampler), lambda s, t, p=None: seen.append((s, t)) or True)
    anchor, panel = backend.states
    calls = calls_of(backend, tiny_kit, sampler)
    assert len(calls) == 2 * STEPS - 1  # the sampler really calls the UNet 2N−1 times
    levels = list(panel.levels)
    assert len(levels) == STEPS and levels == levels[:1] + [lv for lv in levels[1:] if lv in calls]
    # The bank holds every distinct level of the banked steps (1… as start_step=1): for DPM++ SDE
    # both a step's level and its corrector's midpoint, for Heun each repeated level once.
    wanted = sorted({lv for lv in calls if step_of(levels, lv) >= 1}, reverse=True)
    bank = backend._banks[next(iter(backend._banks))]
    assert bank.levels("ana") == wanted
    assert all(
        bank.get("ana", lv, layer).shape[1] == anchor.bank.get("ana", lv, layer).shape[1]
        for _, lv, layer in bank.keys()
    )  # fmt: skip  (a repeated level is not appended twice)
    # The panel reads at every UNet call of the banked steps, each from its own level: the late,
    # detail-forming half of denoising included (the loop index stopped at N before).
    assert set(panel.lookups) == set(wanted)
    assert all(found == {"ana": level} for level, found in panel.lookups.items())
    assert min(panel.lookups) == min(calls) and min(calls) < levels[STEPS // 2]
    reading_calls = [lv for lv in calls if step_of(levels, lv) >= 1]
    assert panel.calls["read"] == 4 * len(reading_calls)  # 4 patched layers, once per call (CFG batched)
    # The progress bar counts UNet calls, anchor run then panel run, and ends full.
    assert seen[-1] == (2 * len(calls), 2 * len(calls)) and {t for _, t in seen} == {2 * len(calls)}
    assert result.settings["scheduler"] == sampler


def test_repeated_heun_levels_read_identical_tokens(tiny_kit):
    """Heun visits each inner level twice (corrector, then the next step): both visits must read the
    very same banked tokens, so the two passes see one identity."""
    backend = RecordingBackend()
    backend.generate(request(tiny_kit, scheduler="Heun"))
    _anchor, panel = backend.states
    calls = calls_of(backend, tiny_kit, "Heun")
    repeated = [lv for lv in set(calls) if calls.count(lv) == 2 and step_of(panel.levels, lv) >= 1]
    assert repeated
    got = {}
    layer = panel.bank.keys()[0][2]
    for level in repeated:
        first = panel.bank.read_levels(panel.lookups[level], layer, "cpu", torch.float32)
        second = panel.bank.read_levels(panel.lookups[level], layer, "cpu", torch.float32)
        got[level] = torch.equal(first, second)
    assert all(got.values())


def test_saved_dpmpp_sde_bank_regenerates_the_batch_panel_exactly(tiny_kit, tmp_path):
    batch = ConsistentBackend()
    panel = batch.generate(request(tiny_kit, seed=3, scheduler="DPM++ SDE"))
    banks = saved_bank(ConsistentBackend(), tiny_kit, tmp_path, scheduler="DPM++ SDE")
    alone = ConsistentBackend().generate(
        request(tiny_kit, seed=3, scheduler="DPM++ SDE", banks=banks, bank_folder=str(tmp_path), auto_anchors=False)
    )
    assert np.array_equal(pixels(alone), pixels(panel))


# ------------------------------------------------------------------------------ img2img


def test_img2img_at_half_strength_reads_the_mid_schedule_tokens(tiny_kit):
    backend = RecordingBackend()
    backend.generate(request(tiny_kit))  # warms the bank (txt2img panel)
    init = backend.generate(request(tiny_kit, seed=11)).image
    backend.states.clear()
    seen = []
    backend.generate(
        request(tiny_kit, mode="img2img", init_image=image_to_data_uri(init), strength=0.5),
        lambda s, t, p=None: seen.append((s, t)) or True,
    )
    (panel,) = backend.states  # the bank was cached: only the panel ran
    levels = list(panel.levels)
    # diffusers keeps int(6 × 0.5) = 3 steps: the run starts at step 3's level, and reads exactly the
    # tokens recorded there and below, never the step-0/1 tokens of the highest noise.
    assert sorted(panel.lookups, reverse=True) == levels[3:]
    assert all(found == {"ana": level} for level, found in panel.lookups.items())
    assert seen[-1] == (3, 3)  # progress counts the three calls the img2img run makes


# ------------------------------------------------------------------------------ checking saved banks


def test_saved_banks_are_checked_against_the_jobs_noise_levels(tiny_kit, tmp_path):
    backend = ConsistentBackend()
    banks = saved_bank(backend, tiny_kit, tmp_path)  # Euler, 6 steps
    saved = {"banks": banks, "bank_folder": str(tmp_path), "auto_anchors": False}
    # Samplers on the same noise schedule read the bank as it is.
    for same_levels in ("Euler a", "DDIM"):
        backend.generate(request(tiny_kit, scheduler=same_levels, **saved))
    # Others are refused, naming what the bank was made with and what to do.
    for other in ("DPM++ SDE Karras", "DPM++ 2M Karras"):
        with pytest.raises(GenerationError, match=r"made with the sampler 'Euler' and this job uses") as exc:
            backend.generate(request(tiny_kit, scheduler=other, **saved))
        assert other in str(exc.value) and "regenerate the anchor with this job's sampler" in str(exc.value)
    with pytest.raises(GenerationError, match="made with 6 steps"):
        backend.generate(request(tiny_kit, steps=4, **saved))


def test_unmatched_levels_rule():
    levels = [800.0, 600.0, 400.0, 200.0]
    calls = [800.0, 700.0, 600.0, 500.0, 400.0, 300.0, 200.0]
    assert unmatched_levels(levels, calls, levels, [1, 2, 3]) == [500.0, 300.0]  # correctors not banked
    assert unmatched_levels(levels, levels, levels, [1, 2, 3]) == []
    assert unmatched_levels([810.0, 640.0, 390.0, 205.0], levels, levels, [0, 1, 2, 3]) == []  # within ¼ step
    assert unmatched_levels([800.0, 520.0, 400.0, 200.0], levels, levels, [0, 1, 2, 3]) == [600.0]
    assert unmatched_levels(levels, [999.0], levels, [1]) == []  # a level before step 1 never reads
    assert step_of(levels, 700.0) == 0 and step_of(levels, 600.0) == 1 and step_of(levels, 5.0) == 3
    assert ConsistencySchedule(start_step=1).banked_steps(4) == [1, 2, 3]


def test_version_1_banks_keyed_by_loop_index_still_load(tiny_kit, tmp_path):
    backend = ConsistentBackend()
    banks = saved_bank(backend, tiny_kit, tmp_path / "v2", scheduler="Heun")
    digest = banks.split("=")[1]
    bank = IdentityBank.from_bytes((tmp_path / "v2" / f"{digest}.safetensors").read_bytes())
    # Rebuild it as version 1 wrote it: the key was the loop index of the call that recorded it.
    calls = calls_of(backend, tiny_kit, "Heun")
    old = IdentityBank(bank.precision, meta=dict(bank.meta), indexed_by="step")
    for character, level, layer in bank.keys():
        old._tokens[(character, float(calls.index(level)), layer)] = bank.get(character, level, layer)
    data = old.to_bytes().replace(b"comic-studio-identity-bank/2", b"comic-studio-identity-bank/1")
    legacy = write_bank_file(data, tmp_path / "v1")
    assert IdentityBank.from_bytes(data).indexed_by == "step"
    job = {"scheduler": "Heun", "auto_anchors": False}
    new = ConsistentBackend().generate(request(tiny_kit, banks=banks, bank_folder=str(tmp_path / "v2"), **job))
    converted = ConsistentBackend().generate(
        request(tiny_kit, banks=f"ana={legacy}", bank_folder=str(tmp_path / "v1"), **job)
    )
    assert np.array_equal(pixels(converted), pixels(new))


# ------------------------------------------------------------------------------ execution device (item 1)


def test_bank_from_image_runs_on_the_execution_device_under_sequential_offload(tiny_kit):
    """Under accelerate's sequential offload the UNet's parameters sit on the meta device between
    calls and only the hooks know where they run (``pipe._execution_device``): ``pipe.unet.device``
    sent the latents and prompt embeddings to "meta". The offloaded pipeline must bank exactly what
    the plain one banks. Needs a GPU: accelerate's offload hooks cannot use the CPU as their
    execution device (its post-forward re-wrap of the weights fails with a TypeError there)."""
    import diffusers

    if not torch.cuda.is_available():
        pytest.skip("sequential offload needs a CUDA execution device (accelerate fails with the CPU)")
    backend = ConsistentBackend()
    settings = backend.job_settings(request(tiny_kit))
    picture = backend.generate(request(tiny_kit, seed=5).model_copy(update={"characters": []})).image
    strengths = {"32": 0.5, "16": 0.5}
    schedule = ConsistencySchedule(start_step=1)

    def banked(pipe):
        pipe.set_progress_bar_config(disable=True)
        return bank_from_image(pipe, picture, ANA, settings, schedule,
                               lambda state: installed(pipe.unet, state, strengths), 42)  # fmt: skip

    plain = banked(diffusers.StableDiffusionXLPipeline.from_pretrained(tiny_kit.sdxl).to("cuda"))
    offloaded = diffusers.StableDiffusionXLPipeline.from_pretrained(tiny_kit.sdxl)  # own copy: offload moves it
    offloaded.enable_sequential_cpu_offload(device="cuda")
    assert offloaded.unet.device.type == "meta" and offloaded._execution_device.type == "cuda"
    bank = banked(offloaded)
    assert bank.keys() == plain.keys() and bank.levels("ana") == list(schedule_levels(offloaded.scheduler, STEPS)[1:])
    assert all(torch.allclose(bank.get(*k).float(), plain.get(*k).float(), atol=1e-3) for k in bank.keys())
