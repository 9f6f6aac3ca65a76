"""Finds generation backends: the ``comic_studio.backends`` entry-point group, the user plugins
folder, and in-process registrations (later ones override earlier ones of the same name).

Built-ins register through the same entry points a third-party plugin uses. Plugins are loaded
lazily on the first look-up; one that fails to import (or is not a backend class) is recorded in
:func:`plugin_errors` and logged once, and is skipped: a broken plugin never blocks start-up.

The user plugins folder (:func:`user_plugins_dir`) holds plugins that are not pip-installed: a
``name.py`` file, a folder with a ``comic_studio_plugin.py`` (the folder goes on ``sys.path`` so its
helper modules import), or a package folder with ``__init__.py``. A plugin module lists its backend
classes in ``BACKENDS = [...]``; without that, the backend classes it defines are used.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
import threading
import traceback
import types
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.request import GenerationError

ENTRY_POINT_GROUP = "comic_studio.backends"
PLUGINS_DIR_ENV = "COMIC_STUDIO_PLUGINS_DIR"
"""Overrides the user plugins folder; set to an empty string to load no user plugins."""
PLUGIN_MODULE = "comic_studio_plugin"
_USER_PACKAGE = "comic_studio_user_plugins"

log = logging.getLogger(__name__)

BackendTarget = type[GenerationBackend] | str | Callable[[], type[GenerationBackend]]
"""A backend class, an import string ``"package.module:Class"``, or a loader returning the class."""


class BackendNotFoundError(GenerationError):
    """No backend of that name is installed (or its plugin failed to load)."""


_lock = threading.RLock()
_manual: dict[str, BackendTarget] = {}
_loaded: dict[str, type[GenerationBackend]] | None = None
_errors: dict[str, str] = {}
_origins: dict[str, str] = {}
_user_modules: dict[Path, tuple[float, types.ModuleType]] = {}


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


def backend_origins() -> dict[str, str]:
    """Where each loaded backend came from (entry point, user plugin path, in-process): the
    Plugins dialog shows it next to the name."""
    with _lock:
        loaded = _ensure_loaded()
        return {name: _origins[name] for name in loaded}


def user_plugins_dir() -> Path | None:
    """The user plugins folder: ``$COMIC_STUDIO_PLUGINS_DIR`` if set (empty: none), else
    ``<user data dir>/comic-studio/plugins`` (platformdirs). It may not exist."""
    override = os.environ.get(PLUGINS_DIR_ENV)
    if override is not None:
        return Path(override).expanduser() if override.strip() else None
    from platformdirs import user_data_dir

    return Path(user_data_dir("comic-studio", appauthor=False)) / "plugins"


def get_backend_class(name: str) -> type[GenerationBackend]:
    """The installed backend class ``name``, not instantiated: callers read its declarations
    (``capabilities``, ``settings_schema``, ``required_models``) and call its classmethods without
    importing a concrete backend module. Raises :class:`BackendNotFoundError`."""
    with _lock:
        loaded = _ensure_loaded()
        if name in loaded:
            return loaded[name]
        if name in _errors:
            raise BackendNotFoundError(f"backend {name!r} failed to load: {_errors[name]}")
        known = ", ".join(loaded) or "none"
        raise BackendNotFoundError(f"no backend named {name!r} is installed (available: {known})")


def has_capability(name: str, capability: str) -> bool:
    """Whether the installed backend ``name`` declares ``capability`` (False for an unknown or
    broken backend: the UI then simply offers nothing backend-specific)."""
    try:
        return capability in get_backend_class(name).capabilities
    except BackendNotFoundError:
        return False


def backends_with(capability: str) -> dict[str, type[GenerationBackend]]:
    """The loaded backends that declare ``capability``, by name (sorted), e.g. every backend that
    draws poses or builds identity banks."""
    return {name: cls for name, cls in available_backends().items() if capability in cls.capabilities}


def get_backend(name: str) -> GenerationBackend:
    """A fresh instance of the named backend (the engine decides what to cache)."""
    return get_backend_class(name)()


# ---------------------------------------------------------------------------------- internals


def _invalidate() -> None:
    global _loaded
    _loaded = None
    _errors.clear()
    _origins.clear()


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
    for name, (origin, target) in _user_plugin_targets().items():
        if name in targets:
            log.warning("user plugin backend %r overrides the installed one (%s)", name, targets[name][0])
        targets[name] = (origin, target)
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
        _origins[name] = origin
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


# ---------------------------------------------------------------------------------- user plugins


def _user_plugin_targets() -> dict[str, tuple[str, BackendTarget]]:
    """Import every plugin in the user folder; failures go to ``_errors`` under ``plugin <name>``."""
    try:
        folder = user_plugins_dir()
        entries = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    except Exception as exc:  # an unreadable folder is reported, never fatal
        _errors["<user plugins>"] = f"cannot read the plugins folder: {type(exc).__name__}: {exc}"
        return {}
    targets: dict[str, tuple[str, BackendTarget]] = {}
    for entry in entries:
        if entry.name.startswith((".", "_")) or (entry.is_file() and entry.suffix != ".py"):
            continue
        try:
            module = _import_user_plugin(entry)
            backends = _backends_in(module)
        except Exception as exc:
            _errors[f"plugin {entry.name}"] = f"user plugin {str(entry)!r}: {type(exc).__name__}: {exc}"
            log.warning("user plugin %s failed to load\n%s", entry, traceback.format_exc())
            continue
        for cls in backends:
            targets[cls.name] = (f"user plugin {str(entry)!r}", cls)
    return targets


def _import_user_plugin(entry: Path) -> types.ModuleType:
    if entry.is_dir():
        if (entry / f"{PLUGIN_MODULE}.py").is_file():
            source, package_dir = entry / f"{PLUGIN_MODULE}.py", None
            # Helper modules next to comic_studio_plugin.py import by their plain names.
            if str(entry) not in sys.path:
                sys.path.insert(0, str(entry))
        elif (entry / "__init__.py").is_file():
            source, package_dir = entry / "__init__.py", entry
        else:
            raise ImportError(f"the folder has neither {PLUGIN_MODULE}.py nor __init__.py")
    else:
        source, package_dir = entry, None
    mtime = source.stat().st_mtime
    cached = _user_modules.get(source)
    if cached is not None and cached[0] == mtime:
        return cached[1]  # a refresh() must not re-run an unchanged plugin's import side effects
    if _USER_PACKAGE not in sys.modules:
        parent = types.ModuleType(_USER_PACKAGE)
        parent.__path__ = []  # a namespace for plugin modules, so relative imports resolve
        sys.modules[_USER_PACKAGE] = parent
    name = _USER_PACKAGE + "." + re.sub(r"\W", "_", entry.stem)
    locations = [str(package_dir)] if package_dir is not None else None
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _user_modules[source] = (mtime, module)
    return module


def _backends_in(module: types.ModuleType) -> list[type[GenerationBackend]]:
    """``BACKENDS`` (a list, or a dict of name → class) if the module declares it, else the concrete
    backend classes the module itself defines."""
    declared = getattr(module, "BACKENDS", None)
    if declared is not None:
        classes = list(declared.values()) if isinstance(declared, dict) else list(declared)
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, GenerationBackend)):
                raise TypeError(f"BACKENDS lists {cls!r}, which is not a GenerationBackend subclass")
    else:
        classes = [
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, GenerationBackend) and obj.__module__ == module.__name__
            and not inspect.isabstract(obj)
        ]  # fmt: skip
    for cls in classes:
        if not cls.name:
            raise TypeError(f"backend class {cls.__name__} has no `name`")
    if not classes:
        raise ImportError("the plugin defines no backend (subclass GenerationBackend, or list them in BACKENDS)")
    return classes
