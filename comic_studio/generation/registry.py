"""Finds generation backends: the ``comic_studio.backends`` entry-point group, the user plugins
folder, and in-process registrations (later ones override earlier ones of the same name).

Built-ins register through the same entry points a third-party plugin uses. Plugins are loaded
lazily on the first look-up; one that fails to import (or is not a backend class) is recorded in
:func:`plugin_errors` and logged once, and is skipped: a broken plugin never blocks start-up.

The user plugins folder (:func:`user_plugins_dir`) holds plugins that are not pip-installed: a
``name.py`` file, a folder with a ``comic_studio_plugin.py`` (its helper modules beside it import
relatively: ``from . import helper``), or a package folder with ``__init__.py``. Each is imported
under a private name (``comic_studio_user_plugins.<name>``), never through ``sys.path``, so a
plugin's helpers shadow nothing. A plugin module lists its backend classes in ``BACKENDS = [...]``;
without that, the backend classes it defines are used.

User plugins and third-party entry points are first imported in a child process with a time limit
(:mod:`comic_studio.generation.plugin_loading`): one that exits, raises or hangs at import is
reported and skipped without ever running in the app's process.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import traceback
import types
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from comic_studio.generation.backend_api import GenerationBackend
from comic_studio.generation.plugin_loading import (
    PLUGIN_MODULE,
    PluginProbeError,
    ProbeCache,
    ProbeTarget,
    Verdict,
    describe,
    distribution_fingerprint,
    import_user_plugin,
    private_module_name,
    resolve_import_string,
    user_plugin_fingerprint,
)
from comic_studio.generation.request import GenerationError

ENTRY_POINT_GROUP = "comic_studio.backends"
PLUGINS_DIR_ENV = "COMIC_STUDIO_PLUGINS_DIR"
"""Overrides the user plugins folder; set to an empty string to load no user plugins."""
OWN_DISTRIBUTION = "comic-studio"
"""The app's own entry points (the built-in backends) are imported without a probe."""

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
_user_modules: dict[Path, tuple[str, types.ModuleType]] = {}
"""User plugin modules imported in this process, with the fingerprint they were imported at."""
_probes = ProbeCache()


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
        targets.update(_entry_point_targets())
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
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C (a plugin raising it at import is caught by its probe)
        except BaseException as exc:  # anything a plugin import can throw, SystemExit included
            _errors[name] = f"{origin}: {_reason(exc)}"
            log.warning("backend plugin %r failed to load (%s)\n%s", name, origin, _detail(exc))
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
        return resolve_import_string(target)
    return target()


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PluginProbeError) else describe(exc)


def _detail(exc: BaseException) -> str:
    """The traceback for the log: the child's for a failed probe, ours otherwise."""
    if isinstance(exc, PluginProbeError):
        return exc.detail or str(exc)
    return "".join(traceback.format_exception(exc))


def _entry_point_targets() -> dict[str, tuple[str, BackendTarget]]:
    """Every installed entry point; a third-party one loads only if its probe succeeded."""
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    probed: list[ProbeTarget] = []
    for ep in eps:
        dist = ep.dist
        if dist is not None and _normalized(dist.name) == OWN_DISTRIBUTION:
            continue
        dist_name, version = (dist.name, dist.version) if dist is not None else ("?", "?")
        probed.append(ProbeTarget(key=f"entry point {ep.name}={ep.value}",
                                  fingerprint=distribution_fingerprint(dist_name, version, ep.value),
                                  import_string=ep.value))  # fmt: skip
    verdicts = _probes.verdicts(probed) if probed else {}
    targets: dict[str, tuple[str, BackendTarget]] = {}
    for ep in eps:
        verdict = verdicts.get(f"entry point {ep.name}={ep.value}")
        targets[ep.name] = (f"entry point {ep.value!r}", _probed_loader(ep, verdict))
    return targets


def _probed_loader(ep: EntryPoint, verdict: Verdict | None) -> Callable[[], type[GenerationBackend]]:
    def load() -> type[GenerationBackend]:
        if verdict is not None and not verdict.ok:
            raise _probe_failure(verdict)
        return ep.load()

    return load


def _probe_failure(verdict: Verdict) -> PluginProbeError:
    return PluginProbeError(f"{verdict.error} (in a test import; it was not loaded)", verdict.detail)


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# ---------------------------------------------------------------------------------- user plugins


def _user_plugin_targets() -> dict[str, tuple[str, BackendTarget]]:
    """Probe, then import, every plugin in the user folder; failures go to ``_errors`` under
    ``plugin <name>``."""
    try:
        folder = user_plugins_dir()
        listed = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
        entries = [e for e in listed if not e.name.startswith((".", "_")) and (e.is_dir() or e.suffix == ".py")]
    except Exception as exc:  # an unreadable folder is reported, never fatal
        _errors["<user plugins>"] = f"cannot read the plugins folder: {type(exc).__name__}: {exc}"
        return {}
    names: dict[Path, str] = {}
    probed: list[ProbeTarget] = []
    for entry in entries:
        names[entry] = private_module_name(entry, names.values())
        try:
            fingerprint = user_plugin_fingerprint(entry)
        except OSError as exc:
            fingerprint = f"unreadable: {exc}"
        probed.append(ProbeTarget(key=f"user plugin {entry}", fingerprint=fingerprint, path=entry,
                                  module_name=names[entry]))  # fmt: skip
    verdicts = _probes.verdicts(probed) if probed else {}
    targets: dict[str, tuple[str, BackendTarget]] = {}
    for probe, entry in zip(probed, entries, strict=True):
        try:
            verdict = verdicts[probe.key]
            if not verdict.ok:
                raise _probe_failure(verdict)
            module = _import_user_plugin(entry, names[entry], probe.fingerprint)
            backends = _backends_in(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit and friends included: a plugin never ends the app
            _errors[f"plugin {entry.name}"] = f"user plugin {str(entry)!r}: {_reason(exc)}"
            log.warning("user plugin %s failed to load\n%s", entry, _detail(exc))
            continue
        for cls in backends:
            targets[cls.name] = (f"user plugin {str(entry)!r}", cls)
    return targets


def _import_user_plugin(entry: Path, name: str, fingerprint: str) -> types.ModuleType:
    cached = _user_modules.get(entry)
    if cached is not None and cached[0] == fingerprint and cached[1].__name__ in (name, f"{name}.{PLUGIN_MODULE}"):
        return cached[1]  # a refresh() must not re-run an unchanged plugin's import side effects
    module = import_user_plugin(entry, name)
    _user_modules[entry] = (fingerprint, module)
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
