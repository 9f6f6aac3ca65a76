"""racig samples as RaCig does (issue 15, item 12): DPM++ SDE on Karras σ over the model's whole σ
range — ZulutionAI/RaCig racig/pipeline.py installs its DPMSolverPlusSDEScheduler (Karras σ by
default) — and the Karras entries of the sampler table give exactly that σ schedule."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("torchsde")

from comic_studio.backends._diffusers.schedulers import RACIG_SCHEDULER, SCHEDULERS, make_scheduler  # noqa: E402
from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.core.resources import resource  # noqa: E402

SDXL_SCHEDULER = resource("sdxl", "base-1.0", "scheduler", "scheduler_config.json")


def full_range_karras(config: dict, steps: int, rho: float = 7.0) -> torch.Tensor:
    """Karras et al.'s σ schedule between the smallest and largest σ of the training table, as RaCig's
    scheduler (and k-diffusion) builds it — written out here from the paper's formula."""
    betas = torch.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    sigmas = ((1 - alphas) / alphas) ** 0.5
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigmas.min() ** (1 / rho), sigmas.max() ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def test_racig_defaults_to_racigs_sampler():
    defaults = RacigBackend.default_settings()
    assert defaults["scheduler"] == RACIG_SCHEDULER == "DPM++ SDE Karras"
    assert (defaults["steps"], defaults["guidance"]) == (17, 2.5)
    assert SCHEDULERS[RACIG_SCHEDULER][0] == "DPMSolverSDEScheduler"


@pytest.mark.parametrize("steps", [17, 30])
def test_karras_sigmas_span_the_whole_range_like_racig(steps):
    config = json.loads(SDXL_SCHEDULER.read_text())
    assert config["timestep_spacing"] == "leading"  # SDXL's own spacing, which diffusers' Karras would truncate
    scheduler = make_scheduler(RACIG_SCHEDULER, config, seed=1)
    scheduler.set_timesteps(steps)
    first_order = scheduler.sigmas[:-1:2].double()  # σ of each step (second-order samplers repeat them)
    assert first_order.shape[0] == steps
    assert torch.allclose(first_order, full_range_karras(config, steps), rtol=1e-4)
    assert float(first_order[0]) == pytest.approx(14.6146, abs=1e-3)
    for name in ("DPM++ 2M Karras", "DPM++ 2M SDE Karras"):
        other = make_scheduler(name, config)
        other.set_timesteps(steps)
        assert torch.allclose(other.sigmas[:-1].double(), full_range_karras(config, steps), rtol=1e-4), name


def test_a_racig_job_builds_that_sampler(tiny_kit):
    backend = RacigBackend()
    settings = backend.validate_settings({"model": str(tiny_kit.sdxl)})
    scheduler = backend.sdxl_components(settings, seed=3)["scheduler"]
    assert type(scheduler).__name__ == "DPMSolverSDEScheduler" and scheduler.config.use_karras_sigmas
    assert scheduler.config.noise_sampler_seed == 3  # a seed means one image
    scheduler.set_timesteps(17)
    assert torch.allclose(scheduler.sigmas[:-1:2].double(), full_range_karras(dict(scheduler.config), 17), rtol=1e-4)
