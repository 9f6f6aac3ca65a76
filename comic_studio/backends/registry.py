"""Finds generation backends: the ``comic_studio.backends`` entry-point group plus in-process ones.

Built-ins register through the same entry points a third-party plugin uses. Plugins are loaded
lazily on the first look-up; one that fails to import (or is not a backend class) is recorded in
:func:`plugin_errors` and logged once, and is skipped: a broken plugin never blocks start-up.
"""

from __future__ import annotations

import importlib
import logging
import threading
import traceback
from importlib.metadata import entry_points
from typing import Callable, Union

from comic_studio.backends.base import GenerationBackend
from comic_studio.core.errors import ComicStudioError

ENTRY_POINT_GROUP = "comic_studio.backends"

log = logging.getLogger(__name__)

BackendTarget = Union[type[GenerationBackend], str, Callable[[], type[GenerationBackend]]]
"""A backend class, an import string ``"package.module:Class"``, or a loader returning the class."""


class BackendNotFoundError(ComicStudioError):
    """No backend of that name is installed (or its plugin failed to load)."""


_lock = threading.RLock()
_manual: dict[str, BackendTarget] = {}
_loaded: dict[str, type[GenerationBackend]] | None = None
_errors: dict[str, str] = {}


def register_backend(name: str, target: BackendTarget) -> None:
    """Register a backend in-process (tests, plugins from a folder). Overrides an entry point of
    the same name. ``target`` is loaded on the next look-up, with the same error isolation."""
    if not name or not isinstance(name, str):
        raise ValueError("backend name must be a non-empty string")
    with _lock:
        _manual[name] = target
        _invalidate()


def unregister_backend(name: str) -> None:
    with _lock:
        _manual.pop(name, None)
        _invalidate()


def refresh() -> None:
    """Forget what was loaded (e.g. after installing a plugin); the next look-up rescans."""
    with _lock:
        _invalidate()


def available_backends() -> dict[str, type[GenerationBackend]]:
    """Every backend that loaded, by name (sorted)."""
    with _lock:
        return dict(_ensure_loaded())


def plugin_errors() -> dict[str, str]:
    """Backends that failed to load: name → one-line reason (the traceback went to the log)."""
    with _lock:
        _ensure_loaded()
        return dict(_errors)


def get_backend_class(name: str) -> type[GenerationBackend]:
    with _lock:
        loaded = _ensure_loaded()
        if name in loaded:
            return loaded[name]
        if name in _errors:
            raise BackendNotFoundError(f"backend {name!r} failed to load: {_errors[name]}")
        known = ", ".join(loaded) or "none"
        raise BackendNotFoundError(f"no backend named {name!r} is installed (available: {known})")


def get_backend(name: str) -> GenerationBackend:
    """A fresh instance of the named backend (the engine decides what to cache)."""
    return get_backend_class(name)()


# ---------------------------------------------------------------------------------- internals


def _invalidate() -> None:
    global _loaded
    _loaded = None
    _errors.clear()


def _ensure_loaded() -> dict[str, type[GenerationBackend]]:
    global _loaded
    if _loaded is not None:
        return _loaded
    targets: dict[str, tuple[str, BackendTarget]] = {}
    try:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            targets[ep.name] = (f"entry point {ep.value!r}", ep.load)
    except Exception as exc:  # a corrupt dist-info must not stop the app either
        _errors["<entry points>"] = f"cannot read installed plugins: {type(exc).__name__}: {exc}"
    for name, target in _manual.items():
        targets[name] = ("registered in-process", target)
    loaded: dict[str, type[GenerationBackend]] = {}
    for name in sorted(targets):
        origin, target = targets[name]
        try:
            cls = _resolve(target)
        except Exception as exc:  # anything a plugin import can throw
            _errors[name] = f"{origin}: {type(exc).__name__}: {exc}"
            log.warning("backend plugin %r failed to load (%s)\n%s", name, origin, traceback.format_exc())
            continue
        if not (isinstance(cls, type) and issubclass(cls, GenerationBackend)):
            _errors[name] = f"{origin}: {cls!r} is not a GenerationBackend subclass"
            log.warning("backend plugin %r is not a GenerationBackend (%s)", name, origin)
            continue
        loaded[name] = cls
    _loaded = loaded
    return loaded


def _resolve(target: BackendTarget) -> object:
    if isinstance(target, type):
        return target
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        obj: object = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        return obj
    return target()
