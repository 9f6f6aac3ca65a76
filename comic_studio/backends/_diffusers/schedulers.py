"""Sampler names as users know them (A1111 / ComfyUI) → a fresh diffusers scheduler.

A scheduler is stateful (``set_timesteps`` fills it for one run), so every job gets a new one built
from the model's scheduler config; two jobs never share one. The names match the A1111 sampler list
so a recipe from elsewhere ("DPM++ SDE Karras, 17 steps, CFG 2.5") can be typed in directly.
"""

from __future__ import annotations

from typing import Any

# Karras σ schedules span the model's whole σ range, as k-diffusion (so A1111/ComfyUI) and RaCig
# (ZulutionAI/RaCig racig/scheduler.py, DPMSolverPlusSDEScheduler.set_timesteps: sigma_min/max of the
# full training table) build them: 14.61 … 0.029 for SDXL. diffusers takes the σ of the first and
# last *spaced* timestep instead, and SDXL's "leading" spacing starts at σ 9.75 for 17 steps (less
# noise than the model was sampled from); "linspace" spacing runs from timestep 999 to 0 and gives
# exactly the full-range σ (tests/backends/test_racig_sampler.py compares them).
_KARRAS = {"use_karras_sigmas": True, "timestep_spacing": "linspace"}

# name → (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", _KARRAS),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", **_KARRAS}),
    # DPMSolverSDEScheduler draws its noise through torchsde's Brownian tree. With Karras σ it is
    # RaCig's sampler (racig/pipeline.py: pipe.scheduler = DPMSolverPlusSDEScheduler(), whose
    # use_karras_sigmas defaults to True), the racig backend's default.
    "DPM++ SDE": ("DPMSolverSDEScheduler", {}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", _KARRAS),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
}  # fmt: skip

DEFAULT_SCHEDULER = "Euler"
"""SDXL base's own scheduler: with it the backend matches a stock pipeline exactly."""
RACIG_SCHEDULER = "DPM++ SDE Karras"
"""RaCig's sampler (see the table): the racig backend's default."""

# Keys one scheduler class writes into its config that would confuse another; dropped on a switch.
_FOREIGN_KEYS = ("use_karras_sigmas", "algorithm_type", "solver_order", "use_exponential_sigmas", "use_beta_sigmas")


class UnknownScheduler(ValueError):
    pass


def scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def make_scheduler(name: str, base_config: Any, seed: int | None = None) -> Any:
    """A new scheduler called ``name`` configured from the model's ``base_config`` (its betas, steps
    offset, prediction type and timestep spacing).

    ``seed`` seeds samplers that draw noise outside the pipeline's generator: DPM++ SDE's Brownian
    tree otherwise takes a random seed from torch's global RNG and a seed would not mean one image."""
    if name not in SCHEDULERS:
        raise UnknownScheduler(f"unknown scheduler {name!r} (known: {', '.join(SCHEDULERS)})")
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    if class_name == "DPMSolverSDEScheduler":
        _require_torchsde(name)
    cls = getattr(diffusers, class_name)
    config = {k: v for k, v in dict(base_config).items() if k not in _FOREIGN_KEYS}
    config.update(overrides)
    if class_name == "DPMSolverSDEScheduler" and seed is not None:
        config["noise_sampler_seed"] = int(seed) % 2**63  # torchsde takes a signed 64-bit seed
    return cls.from_config(config)


def _require_torchsde(name: str) -> None:
    try:
        import torchsde  # noqa: F401
    except ImportError as exc:
        raise UnknownScheduler(f"scheduler {name!r} needs the 'torchsde' package (pip install torchsde)") from exc
