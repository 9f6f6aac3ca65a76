"""Progress, live previews and cancel for diffusers runs, through ``callback_on_step_end``.

One :class:`StepReporter` serves one job: a plain job is one denoising run (steps and total are the
pipeline's own); a job of several runs (the consistent backend renders anchors, then the panel)
passes the job's ``total`` and the steps count on across its runs, so the progress bar fills once.
A "step" is one iteration of the pipeline's loop: second-order samplers (Heun, DPM++ SDE) make
2N−1 of them for N steps, and a job's ``total`` counts them so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from comic_studio.backends._diffusers.previews import latent_preview
from comic_studio.generation.request import Cancelled, StepCallback


class StepReporter:
    """Reports every denoising step to ``on_step``, with a latent preview every ``every`` steps and
    at the last one (``every=0``: never), and stops the job (raising :class:`Cancelled`) as soon as
    ``on_step`` returns ``False``. ``total`` is the job's step count over all its runs; ``None``
    takes the running pipeline's own (a job of one run)."""

    def __init__(self, on_step: StepCallback | None, every: int, total: int | None = None):
        self.on_step, self.every, self.total = on_step, every, total
        self.done = 0

    def callback(self) -> Callable[..., dict[str, Any]]:
        """The ``callback_on_step_end`` for one run."""

        def on_step_end(pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            self.done += 1
            if self.on_step is None:
                return tensors
            step = self.done
            total = self.total if self.total is not None else int(getattr(pipe, "num_timesteps", 0) or 0)
            preview = None
            if self.every and (step % self.every == 0 or step == total) and "latents" in tensors:
                preview = latent_preview(pipe.scheduler, tensors["latents"])
            if self.on_step(step, total, preview) is False:
                raise Cancelled(f"cancelled at step {step} of {total}")
            return tensors

        return on_step_end
