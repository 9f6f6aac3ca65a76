"""Generation backends, found through the ``comic_studio.backends`` entry-point group.

Importing this package is cheap: backends load lazily through :mod:`registry`.
"""

from comic_studio.backends.base import CONSISTENT_CHARACTERS, BackendSettingsError, GenerationBackend
from comic_studio.backends.registry import (
    BackendNotFoundError,
    available_backends,
    get_backend,
    get_backend_class,
    plugin_errors,
    register_backend,
    unregister_backend,
)

__all__ = [
    "CONSISTENT_CHARACTERS",
    "BackendNotFoundError",
    "BackendSettingsError",
    "GenerationBackend",
    "available_backends",
    "get_backend",
    "get_backend_class",
    "plugin_errors",
    "register_backend",
    "unregister_backend",
]
