"""The identity bank and the stochastic schedule, without a diffusion model."""

from __future__ import annotations

import hashlib
import os

import pytest
from hang_guard import outcome_of

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from comic_studio.backends.consistent.bank import (  # noqa: E402
    BankError,
    IdentityBank,
    bank_bytes_formula,
    read_bank_file,
    sdxl_1024_layers,
    write_bank_file,
)
from comic_studio.backends.consistent.schedule import ConsistencySchedule  # noqa: E402
from comic_studio.core.assets import AssetStore  # noqa: E402


def filled_bank(precision: str = "fp16") -> IdentityBank:
    gen = torch.Generator().manual_seed(0)
    bank = IdentityBank(precision, meta={"steps": 4})
    for step in (1, 2, 3):
        bank.put("ana", step, "up.0", torch.randn(2, 5, 8, generator=gen))
        bank.put("ben", step, "up.0", torch.randn(2, 3, 8, generator=gen))
    return bank


def test_schedule_defaults_and_determinism():
    schedule = ConsistencySchedule()
    assert (schedule.start_step, schedule.prob_early, schedule.prob_late, schedule.switch_step) == (5, 0.7, 0.9, 20)
    plan = schedule.plan(1000, seed=3)
    assert plan == schedule.plan(1000, seed=3) and plan != schedule.plan(1000, seed=4)
    assert not any(plan[:5])
    assert 0.6 < sum(plan[5:20]) / 15 <= 1.0 or sum(plan[5:20]) >= 8  # 15 coins at 0.7
    assert 0.85 < sum(plan[20:]) / 980 < 0.95
    assert schedule.banked_steps(8) == [5, 6, 7]
    assert ConsistencySchedule(0, 1.0, 1.0).plan(6, 1) == [True] * 6
    with pytest.raises(ValueError):
        ConsistencySchedule(prob_late=1.5)


def test_every_plan_reads_the_bank_at_least_once_when_any_step_may():
    """A plan whose coins all came up tails would ignore the characters' anchors (the cause of a
    regenerated anchor leaving a 3-step panel unchanged for 9% of panel seeds): the first eligible
    step then reads. Plans with any read step are exactly the coins as drawn."""
    import random

    draft = ConsistencySchedule(start_step=1)
    forced = 0
    for seed in range(400):
        plan = draft.plan(3, seed)
        assert not plan[0] and any(plan)
        rng = random.Random((seed ^ 0x5D1A_C0DE) & 0xFFFF_FFFF_FFFF_FFFF)
        coins = [rng.random() < draft.probability(step) for step in range(3)]
        if any(coins):
            assert plan == coins
        else:
            forced += 1
            assert plan == [False, True, False]
    assert 15 < forced < 60  # 0.3 * 0.3 of 400 seeds = 36 expected
    # No step may read (start_step past the end, or zero probabilities): nothing is forced.
    assert ConsistencySchedule(start_step=5).plan(3, 1) == [False] * 3
    assert ConsistencySchedule(0, 0.0, 0.0).plan(4, 1) == [False] * 4


def test_put_appends_anchors_and_read_concatenates_characters():
    bank = IdentityBank()
    bank.put("ana", 0, "l", torch.ones(2, 4, 8))
    bank.put("ana", 0, "l", torch.zeros(2, 2, 8))  # a second anchor
    assert bank.get("ana", 0, "l").shape == (2, 6, 8) and bank.get("ana", 0, "l").dtype == torch.float16
    bank.put("ben", 0, "l", torch.ones(2, 3, 8))
    both = bank.read(["ana", "ben"], 0, "l", "cpu", torch.float32)
    assert both.shape == (2, 9, 8) and both.dtype == torch.float32
    assert bank.read(["cid"], 0, "l", "cpu", torch.float32) is None
    assert bank.characters == ["ana", "ben"]
    assert bank.nbytes("ana") == 2 * 6 * 8 * 2 and bank.nbytes() == bank.nbytes("ana") + 2 * 3 * 8 * 2


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_bytes_round_trip_is_exact_and_deterministic(precision):
    bank = filled_bank(precision)
    data = bank.to_bytes()
    assert data == filled_bank(precision).to_bytes()  # same bank, same asset hash
    back = IdentityBank.from_bytes(data)
    assert back.keys() == bank.keys() and back.meta == {"steps": 4} and back.precision == precision
    for key in bank.keys():
        assert torch.equal(back.get(*key), bank.get(*key))


def test_asset_store_and_bank_folder_use_the_same_hash(tmp_path):
    data = filled_bank().to_bytes()
    store = AssetStore()
    digest = store.add(data, validate_image=False)
    assert write_bank_file(store.get(digest), tmp_path) == digest == hashlib.sha256(data).hexdigest()
    assert read_bank_file(tmp_path, digest) == data
    (tmp_path / f"{digest}.safetensors").write_bytes(data[:-3] + b"xyz")
    with pytest.raises(BankError, match="does not match its hash"):
        read_bank_file(tmp_path, digest)
    with pytest.raises(BankError, match="cannot read"):
        read_bank_file(tmp_path, "0" * 64)
    with pytest.raises(BankError, match="not a sha256"):
        read_bank_file(tmp_path, "../etc/passwd")
    if hasattr(os, "mkfifo"):  # a FIFO named like a bank is refused at once, not waited on
        os.mkfifo(tmp_path / f"{'1' * 64}.safetensors")
        outcome = outcome_of(read_bank_file, tmp_path, "1" * 64)
        assert isinstance(outcome.get("error"), BankError) and "not a regular file" in str(outcome["error"])


def test_damaged_or_foreign_bytes_are_refused():
    with pytest.raises(BankError, match="damaged|too short"):
        IdentityBank.from_bytes(b"\x00\x01")
    from safetensors.torch import save

    with pytest.raises(BankError, match="not an identity bank"):
        IdentityBank.from_bytes(save({"w": torch.zeros(2)}))


def test_merge_and_only():
    bank = filled_bank()
    ana, ben = bank.only("ana"), bank.only("ben")
    ana.merge(ben)
    assert ana.keys() == bank.keys()
    with pytest.raises(BankError, match="both banks hold"):
        ana.merge(bank.only("ben"))


def test_memory_formula_real_sdxl_shapes():
    layers = sdxl_1024_layers(1.0, 1.0)
    assert len(layers) == 36
    # every token of one step, one anchor, one batch element in fp16: the issue's ≈110 MB
    full = bank_bytes_formula(layers, steps=1, batch=1)
    assert full == (30 * 1024 * 1280 + 6 * 4096 * 640) * 2 == 110_100_480
    half = bank_bytes_formula(sdxl_1024_layers(0.5, 0.5), steps=1, batch=1)
    assert half == full // 2
