"""Which noise levels a training step sees: StoryBooth's timestep law, or uniform.

StoryBooth (seed 001, §3.2.2) draws ``x ~ LogNormal(μ=−0.3, σ=1.6)`` and trains at
``t = floor(x / (1 + x) · (T − 1))``. Since ``x / (1 + x) = sigmoid(ln x)`` and ``ln x ~ N(μ, σ)``,
this is the logit-normal law of diffusers' ``compute_density_for_timestep_sampling("logit_normal")``
followed by ``floor(u · 999)`` — what the seed's code (``train_text_to_image_lora_sdxl_log_normal.py``)
runs. Its median is ``999 · sigmoid(−0.3) ≈ 425`` and 57.5 % of the draws fall below t = 500: by its
numbers it leans slightly toward *low* noise and under-samples both ends, although the paper's text
says it favours mid-to-high noise. We implement the numbers (README: the histogram against uniform).

Draws come from a dedicated ``torch.Generator`` the trainer checkpoints, so a resumed run sees the
very same timesteps as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any, Literal

TimestepLaw = Literal["logit_normal", "uniform"]

STORYBOOTH_MEAN = -0.3
"""μ of StoryBooth's LogNormal (seed 001 §3.2.2; its training script's ``--logit_mean``)."""
STORYBOOTH_STD = 1.6
"""σ of StoryBooth's LogNormal (seed 001 §3.2.2)."""


def sample_timesteps(
    count: int,
    generator: Any,
    *,
    law: TimestepLaw = "logit_normal",
    num_train_timesteps: int = 1000,
    mean: float = STORYBOOTH_MEAN,
    std: float = STORYBOOTH_STD,
) -> Any:
    """``count`` training timesteps (int64, CPU) drawn from ``generator``."""
    import torch

    last = num_train_timesteps - 1
    if law == "uniform":
        return torch.randint(0, num_train_timesteps, (count,), generator=generator, dtype=torch.long)
    if law != "logit_normal":
        raise ValueError(f"unknown timestep law {law!r}: use 'logit_normal' or 'uniform'")
    u = torch.sigmoid(torch.normal(mean, std, size=(count,), generator=generator))
    # floor(u · 999) as the seed's code does; float32 sigmoid rounds to exactly 1.0 beyond x ≈ 17,
    # which the code would turn into t = 999 (never reached in exact arithmetic): keep it below.
    return (u * last).long().clamp_(max=last - 1)


def logit_normal_mass(lo: int, hi: int, *, num_train_timesteps: int = 1000,
                      mean: float = STORYBOOTH_MEAN, std: float = STORYBOOTH_STD) -> float:  # fmt: skip
    """The exact probability that the logit-normal law draws ``lo <= t < hi`` (for the README's
    table and the sampler's test)."""
    last = num_train_timesteps - 1

    def cdf(t: int) -> float:  # P(floor(u · last) < t) = P(u < t / last)
        if t <= 0:
            return 0.0
        if t >= last:
            return 1.0
        p = t / last
        z = (math.log(p / (1 - p)) - mean) / std
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    return cdf(hi) - cdf(lo)


def diffusion_loss(pred: Any, target: Any, scheduler: Any, timesteps: Any, snr_gamma: float | None) -> Any:
    """The MSE of ``pred`` against ``target``; with ``snr_gamma``, min-SNR-γ weighted per sample
    (Hang et al. 2023; divided by SNR + 1 for v-prediction, by SNR for ε)."""
    import torch.nn.functional as F  # noqa: N812

    if snr_gamma is None:
        return F.mse_loss(pred, target, reduction="mean")
    import torch
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps).to(pred.device)
    weights = torch.clamp(snr, max=snr_gamma)
    weights = weights / (snr + 1) if scheduler.config.prediction_type == "v_prediction" else weights / snr
    per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=list(range(1, pred.ndim)))
    return (per_sample * weights).mean()
