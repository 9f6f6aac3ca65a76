"""The storyboard backend: mannequin line-art thumbnails from pose skeletons, no ML weights.

Registered through the ``comic_studio.backends`` entry point as ``storyboard`` (the default
backend), exactly like a third-party plugin.
"""

from __future__ import annotations

from typing import Any

from comic_studio.backends.storyboard.render import render_panel
from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import GenerationRequest, GenerationResult, StepCallback


class StoryboardBackend(GenerationBackend):
    name = "storyboard"
    display_name = "Storyboard (mannequins)"
    capabilities = frozenset({"txt2img", "storyboard", "pose"})

    @classmethod
    def settings_schema(cls) -> dict[str, dict[str, Any]]:
        return {
            "line_weight": {"type": "float", "default": 1.0, "min": 0.3, "max": 3.0, "label": "Line weight"},
            "name_tags": {"type": "bool", "default": True, "label": "Name tags"},
            "label": {"type": "bool", "default": True, "label": "Place/time label"},
            "construction_lines": {"type": "bool", "default": True, "label": "Perspective lines"},
            "paper": {"type": "choice", "default": "warm", "choices": ["warm", "white"], "label": "Paper"},
            "pose_matching": {
                "type": "choice",
                "default": "auto",
                "choices": ["auto", "minilm", "overlap", "openclip"],
                "label": "Pose matching",
                "help": "auto: the MiniLM sentence model when installed, else word overlap. "
                "openclip: CLIP text against imported pose pictures (setting pose_clip_model).",
            },
            "supersample": {
                "type": "int",
                "default": 2,
                "min": 1,
                "max": 4,
                "label": "Antialiasing (supersample)",
                "help": "Draw at N× size and reduce; 1 is fastest, 2 is smooth.",
            },
        }

    def prepare(self, requests: list[GenerationRequest]) -> None:
        from comic_studio.poses.staging.figures import prepare_pose_queries

        by_matcher: dict[str, list[GenerationRequest]] = {}
        for request in requests:
            matcher = self.validate_settings(request.backend_settings)["pose_matching"]
            by_matcher.setdefault(matcher, []).append(request)
        for matcher, group in by_matcher.items():
            prepare_pose_queries(group, matcher)

    def generate(self, request: GenerationRequest, on_step: StepCallback | None = None) -> GenerationResult:
        settings = self.validate_settings(request.backend_settings)
        out = render_panel(request, settings, on_step)
        return GenerationResult(
            images=[out.image],
            seed=request.seed,
            backend=self.name,
            settings=settings,
            heads=out.heads,
            pose_id=out.pose_id,
            labels=out.labels,
        )


__all__ = ["StoryboardBackend"]
