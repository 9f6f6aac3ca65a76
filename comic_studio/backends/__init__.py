"""The plugin API for backend authors, and the built-in backends (one subpackage each).

A third-party backend imports everything it needs from here, and nothing else from comic_studio::

    from comic_studio.backends import GenerationBackend, GenerationRequest, GenerationResult

The definitions live next to the engine that drives them (:mod:`comic_studio.generation.backend_api`,
:mod:`comic_studio.generation.registry`, :mod:`comic_studio.generation.request`) and the model
catalogue's :class:`ModelNeed` (:mod:`comic_studio.weights.needs`); this package re-exports them so
those internal paths can move without breaking a plugin. Importing it is cheap: no backend loads
until the registry is asked for one.
"""

from comic_studio.generation.backend_api import (
    CONSISTENT_CHARACTERS,
    BackendSettingsError,
    GenerationBackend,
    reset_default_settings,
    set_default_settings,
    with_default_overrides,
)
from comic_studio.generation.registry import (
    ENTRY_POINT_GROUP,
    BackendNotFoundError,
    available_backends,
    backend_origins,
    backends_with,
    get_backend,
    get_backend_class,
    has_capability,
    plugin_errors,
    register_backend,
    unregister_backend,
)
from comic_studio.generation.request import (
    Cancelled,
    GenerationError,
    GenerationRequest,
    GenerationResult,
    PoseSpec,
    RequestCharacter,
    RequestFigure,
    StepCallback,
)
from comic_studio.weights.needs import ModelNeed

__all__ = [
    "ENTRY_POINT_GROUP",
    "CONSISTENT_CHARACTERS",
    "BackendNotFoundError",
    "BackendSettingsError",
    "Cancelled",
    "GenerationBackend",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "ModelNeed",
    "PoseSpec",
    "RequestCharacter",
    "RequestFigure",
    "StepCallback",
    "available_backends",
    "backend_origins",
    "backends_with",
    "get_backend",
    "get_backend_class",
    "has_capability",
    "plugin_errors",
    "register_backend",
    "reset_default_settings",
    "set_default_settings",
    "unregister_backend",
    "with_default_overrides",
]
