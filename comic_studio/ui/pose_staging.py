"""How the panel's backend stages its pose, asked through the registry (the UI never imports a
backend): the staging options its settings give, for the pose browser, the mask preview and the
canvas overlay to draw exactly what a render will use."""

from __future__ import annotations

from comic_studio.generation.registry import get_backend_class
from comic_studio.generation.request import GenerationRequest
from comic_studio.poses.staging.conditioning import StagingOptions


def staging_options(request: GenerationRequest) -> StagingOptions:
    """The staging options of ``request``'s backend: its declared defaults, overridden by the
    request's own values for the settings it declares."""
    backend = get_backend_class(request.backend)
    schema = backend.settings_schema()
    settings = {**backend.default_settings(), **{k: v for k, v in request.backend_settings.items() if k in schema}}
    return StagingOptions.from_settings(settings)


__all__ = ["staging_options"]
