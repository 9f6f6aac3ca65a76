"""The stochastic schedule of consistent self-attention (StoryDiffusion; StoryBooth seed §3.2).

Early denoising steps decide the layout, so they use plain self-attention (letting each panel keep
its own composition); after ``start_step`` each step uses the identity bank with probability
``prob_early`` until ``switch_step`` and ``prob_late`` after it. The coin flips are drawn once per
job from the request's seed, so a regenerate at the same seed takes exactly the same decisions.

Granularity of the coin (setting ``coin``): StoryBooth §3.2.4 gives the probability per diffusion
step t without saying what one draw covers; StoryDiffusion's code, which StoryBooth builds on, draws
``random.random()`` inside every consistent-attention processor call, i.e. one coin per layer per
step (at a given step about 70 or 90 % of the 36 decoder layers use the bank). Following the code,
``"layer"`` is the default (:meth:`ConsistencySchedule.layer_plan`); ``"step"`` keeps one coin for
all layers of a step (:meth:`ConsistencySchedule.plan`), same expectation, all-or-nothing variance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

_SALT = 0x5D1A_C0DE
"""Keeps the schedule's random stream apart from anything else seeded with the request seed."""


COINS = ("layer", "step")
"""What one schedule coin decides: one layer call (StoryDiffusion's code, the default) or a whole step."""


@dataclass(frozen=True)
class ConsistencySchedule:
    start_step: int = 5
    prob_early: float = 0.7
    prob_late: float = 0.9
    switch_step: int = 20

    def __post_init__(self) -> None:
        if self.start_step < 0 or self.switch_step < 0:
            raise ValueError("schedule steps must be >= 0")
        for p in (self.prob_early, self.prob_late):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"schedule probability {p} is outside 0..1")

    def probability(self, step: int) -> float:
        """Chance that ``step`` (0-based) attends to the bank."""
        if step < self.start_step:
            return 0.0
        return self.prob_early if step < self.switch_step else self.prob_late

    def plan(self, steps: int, seed: int) -> list[bool]:
        """One decision per step: True = consistent attention at that step."""
        rng = random.Random((seed ^ _SALT) & 0xFFFF_FFFF_FFFF_FFFF)
        # Draw for every step (even certain ones) so step k's coin never depends on earlier settings.
        decisions = [rng.random() < self.probability(step) for step in range(steps)]
        if not any(decisions):
            # Every coin came up tails: the job would never attend to the identity bank, so its
            # characters would ignore their anchors (a new anchor would not change the panel at all).
            # StoryDiffusion's independent coins make that negligible at its 50 steps (0.3**45), but
            # not at draft step counts: 9% of seeds at 3 steps with start_step 1. The first step that
            # may read the bank then reads it; plans with any read step are left exactly as drawn.
            eligible = self.banked_steps(steps)
            if eligible:
                decisions[eligible[0]] = True
        return decisions

    def layer_plan(self, steps: int, seed: int, layers: int, coin: str = "layer") -> tuple[tuple[bool, ...], ...]:
        """Decisions ``[step][layer]`` for ``layers`` patched layers (in the UNet's processor order).

        ``coin="step"``: every layer of a step shares :meth:`plan`'s decision. ``coin="layer"``: an
        independent coin per (step, layer), drawn step-major from the seed so that a regenerate takes
        the same decisions; as in :meth:`plan`, a plan without a single head reads the bank with every
        layer at the first step that may."""
        if coin not in COINS:
            raise ValueError(f"unknown coin {coin!r} (one of {list(COINS)})")
        if coin == "step":
            return tuple((decision,) * layers for decision in self.plan(steps, seed))
        rng = random.Random((seed ^ _SALT) & 0xFFFF_FFFF_FFFF_FFFF)
        decisions = [[rng.random() < self.probability(step) for _ in range(layers)] for step in range(steps)]
        if layers and not any(any(row) for row in decisions):
            eligible = self.banked_steps(steps)
            if eligible:
                decisions[eligible[0]] = [True] * layers
        return tuple(tuple(row) for row in decisions)

    def banked_steps(self, steps: int) -> list[int]:
        """Steps whose tokens a write phase must keep (any step that may read the bank)."""
        return [step for step in range(steps) if self.probability(step) > 0.0]


def step_of(levels: Sequence[float], level: float) -> int:
    """Which step of the schedule ``levels`` (highest first) a call at ``level`` belongs to: the last
    step starting at or above it. A second-order corrector call between two levels (DPM++ SDE's
    midpoints) belongs to the step it corrects; a level above the first step is step 0."""
    step = 0
    for index, start in enumerate(levels):
        if start >= level - 1e-3:
            step = index
        else:
            break
    return step


MATCH_TOLERANCE = 0.25
"""A recorded level serves a UNet call when it lies within this fraction of a step's width of it."""


def unmatched_levels(
    recorded: Sequence[float], calls: Sequence[float], levels: Sequence[float], banked_steps: Sequence[int]
) -> list[float]:
    """The levels among ``calls`` (every UNet timestep of the job's full run) that may read the bank
    (their step is in ``banked_steps``; ``levels`` are the steps' own timesteps, highest first) but
    have no ``recorded`` level near enough: the bank was made on another noise schedule (sampler,
    step count or spacing), so its nearest tokens would come from a different noise level.

    Samplers that share a schedule (Euler and Euler a, say) match exactly; a bank banked from a
    picture at first-order levels serves a second-order sampler's corrector calls only if they lie
    close to one of them."""
    if not recorded:
        return []
    banked = set(banked_steps)
    missing = []
    for level in calls:
        step = step_of(levels, level)
        if step not in banked:
            continue
        if len(levels) > 1:
            width = levels[step] - levels[step + 1] if step + 1 < len(levels) else levels[step - 1] - levels[step]
        else:
            width = levels[0]
        near = min(abs(r - level) for r in recorded)
        if near > MATCH_TOLERANCE * abs(width) + 1e-3:
            missing.append(level)
    return missing
