"""The stochastic schedule of consistent self-attention (StoryDiffusion; StoryBooth seed §3.2).

Early denoising steps decide the layout, so they use plain self-attention (letting each panel keep
its own composition); after ``start_step`` each step uses the identity bank with probability
``prob_early`` until ``switch_step`` and ``prob_late`` after it. The coin flips are drawn once per
job from the request's seed, so a regenerate at the same seed takes exactly the same decisions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_SALT = 0x5D1A_C0DE
"""Keeps the schedule's random stream apart from anything else seeded with the request seed."""


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

    def banked_steps(self, steps: int) -> list[int]:
        """Steps whose tokens a write phase must keep (any step that may read the bank)."""
        return [step for step in range(steps) if self.probability(step) > 0.0]
