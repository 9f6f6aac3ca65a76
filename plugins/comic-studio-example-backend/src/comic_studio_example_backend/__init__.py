"""The example Comic Studio backend plugin: ``halftone``.

It renders the panel with the built-in ``storyboard`` backend (found through the same registry any
plugin uses) and prints the result through a halftone screen. It shows everything a backend does:
declare settings, validate them, report steps and stop when asked, stay deterministic for a seed,
and return complete metadata (effective settings, character head placements, the pose it used).
"""

from __future__ import annotations

from typing import Any

from comic_studio.backends import (
    Cancelled,
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    StepCallback,
    get_backend,
)
from comic_studio_example_backend.screen import halftone

__version__ = "0.1.0"


class HalftoneBackend(GenerationBackend):
    name = "halftone"
    display_name = "Halftone storyboard (example plugin)"
    capabilities = frozenset({"txt2img", "storyboard", "pose"})

    def __init__(self) -> None:
        # Created once by the engine, on its worker thread; keep the storyboard backend it wraps.
        self._storyboard: GenerationBackend | None = None

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return {
            "cell": {"type": "int", "default": 6, "min": 3, "max": 48, "label": "Dot spacing (px)",
                     "help": "Size of one halftone cell; larger cells give a coarser, pulpier print."},
            "angle": {"type": "float", "default": 45.0, "min": -90.0, "max": 90.0, "label": "Screen angle (°)"},
            "colour": {"type": "bool", "default": True, "label": "Colour (CMY dots)",
                       "help": "Off: one black ink on newsprint."},
            "pose_matching": {"type": "choice", "default": "auto", "choices": ["auto", "minilm", "overlap"],
                              "label": "Pose matching", "help": "Passed to the storyboard backend."},
        }  # fmt: skip

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.validate_settings(request.backend_settings)
        if self._storyboard is None:
            self._storyboard = get_backend("storyboard")
        base_request = request.model_copy(
            update={
                "backend": "storyboard",
                # No antialiasing: the screen replaces edges with dots anyway, and it halves the time.
                "backend_settings": self._storyboard.validate_settings(
                    {"pose_matching": settings["pose_matching"], "supersample": 1}
                ),
            }
        )
        # The storyboard's steps, plus one for the screen. Wrapping on_step keeps cancel working:
        # the storyboard raises Cancelled as soon as our callback says stop.
        extra = 1
        last_total = [1]

        def forward(step: int, total: int, preview=None) -> bool:
            last_total[0] = total
            return True if on_step is None else on_step(step, total + extra, preview)

        base = self._storyboard.generate(base_request, forward if on_step is not None else None)
        total = last_total[0] + extra
        if on_step is not None and on_step(total - extra, total, None) is False:
            raise Cancelled(f"halftone render of panel {request.panel_id or '(unsaved)'} cancelled before screening")
        image = halftone(base.image, settings["cell"], settings["angle"], settings["colour"])
        if on_step is not None:
            on_step(total, total, None)  # the end; a False here has nothing left to stop
        return GenerationResult(
            images=[image], seed=request.seed, backend=self.name, settings=settings,
            heads=base.heads, pose_id=base.pose_id,
        )  # fmt: skip


__all__ = ["HalftoneBackend", "halftone"]
