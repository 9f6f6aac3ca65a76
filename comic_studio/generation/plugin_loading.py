"""Imports plugin code so that it cannot take the app down: a test import in a child process with a
time limit first (the *probe*), then the real import under a private package name.

Why a child process: a plugin's import runs arbitrary code. ``sys.exit()``, ``os._exit()``, an
endless loop or a hang on a lock at import would end or freeze the CLI, the window and the engine if
it ran in-process first. The child imports the plugin exactly as the app would and writes a verdict
to a file; only a plugin whose probe succeeded is imported in-process. Verdicts are cached on disk
per plugin fingerprint (the files' size and mtime for user plugins, the distribution version for
installed ones), so a normal start-up runs no child at all and a plugin that loops forever costs
the time limit once, not at every start.

Why private package names: a user plugin folder used to go on ``sys.path``, so its helper
``requests.py`` replaced the real ``requests`` for the whole app and two plugins' ``utils.py``
clobbered each other. Each user plugin is now the module or package
``comic_studio_user_plugins.<name>``; helpers next to a ``comic_studio_plugin.py`` import relatively
(``from . import helper``) and nothing is added to ``sys.path``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from comic_studio.generation.request import GenerationError

USER_PACKAGE = "comic_studio_user_plugins"
PLUGIN_MODULE = "comic_studio_plugin"
PROBE_TIMEOUT_ENV = "COMIC_STUDIO_PLUGIN_PROBE_TIMEOUT"
"""Seconds a plugin may take to import in the probe (default 30); ``0`` turns probing off."""
PROBE_CACHE_ENV = "COMIC_STUDIO_PLUGIN_PROBE_CACHE"
"""The probe verdict cache file (default ``<user cache dir>/comic-studio/plugin-probes.json``);
an empty string keeps verdicts in memory only."""
DEFAULT_PROBE_TIMEOUT = 30.0
_CACHE_LIMIT = 4 * 1024 * 1024
_CACHE_ENTRIES = 500
"""Verdicts kept (the most recent): plugins come and go, the cache must not grow without end."""
_FINGERPRINT_FILES = 2000
"""A plugin folder with more Python files than this is fingerprinted by its first files only."""

log = logging.getLogger(__name__)


class PluginProbeError(GenerationError):
    """The plugin's test import failed, ended its process or ran out of time; it was not imported."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class ProbeTarget:
    """One plugin to probe: a user plugin path (imported as ``module_name``) or an import string."""

    key: str
    fingerprint: str
    path: Path | None = None
    module_name: str = ""
    import_string: str = ""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    error: str = ""
    detail: str = ""
    timeout: float = 0.0
    """The time limit a timed-out probe had (0 otherwise): a larger limit probes again."""
    transient: bool = False
    """Says nothing about the plugin (the child could not start): not cached."""


# ---------------------------------------------------------------------------------- private names


def private_module_name(entry: Path, taken: Iterable[str] = ()) -> str:
    """``comic_studio_user_plugins.<entry stem as an identifier>``, unique among ``taken``."""
    safe = re.sub(r"\W", "_", entry.stem) or "plugin"
    if safe[0].isdigit():
        safe = "_" + safe
    name, used, n = f"{USER_PACKAGE}.{safe}", set(taken), 2
    while name in used:
        name, n = f"{USER_PACKAGE}.{safe}_{n}", n + 1
    return name


def import_user_plugin(entry: Path, name: str) -> types.ModuleType:
    """Import the user plugin ``entry`` (``x.py``, a folder with ``comic_studio_plugin.py``, or a
    package folder) as ``name``, replacing any earlier import of it; ``sys.path`` is not touched."""
    import importlib.machinery
    import importlib.util

    _ensure_user_package()
    for stale in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[stale]  # a changed plugin re-imports its helpers too
    if entry.is_dir():
        if (entry / f"{PLUGIN_MODULE}.py").is_file():
            # The folder becomes a package without an __init__; comic_studio_plugin.py is a submodule
            # of it, so ``from . import helper`` finds the helpers beside it and only there.
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(entry)]
            sys.modules[name] = importlib.util.module_from_spec(spec)
            return _exec_file(f"{name}.{PLUGIN_MODULE}", entry / f"{PLUGIN_MODULE}.py", None, owner=name)
        if (entry / "__init__.py").is_file():
            return _exec_file(name, entry / "__init__.py", entry, owner=name)
        raise ImportError(f"the folder has neither {PLUGIN_MODULE}.py nor __init__.py")
    return _exec_file(name, entry, None, owner=name)


def _exec_file(name: str, source: Path, package_dir: Path | None, owner: str) -> types.ModuleType:
    import importlib.util

    locations = [str(package_dir)] if package_dir is not None else None
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        for stale in [m for m in sys.modules if m == owner or m.startswith(owner + ".")]:
            del sys.modules[stale]
        if isinstance(exc, ModuleNotFoundError) and exc.name and _is_helper(source.parent, exc.name):
            raise ModuleNotFoundError(
                f"{exc}: plugin helpers are imported relatively (`from . import {exc.name}`), never by plain "
                "name, so they cannot shadow other modules",
                name=exc.name,
            ) from exc
        raise
    return module


def _is_helper(folder: Path, module: str) -> bool:
    top = module.partition(".")[0]
    return (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file()


def _ensure_user_package() -> None:
    if USER_PACKAGE not in sys.modules:
        parent = types.ModuleType(USER_PACKAGE)
        parent.__path__ = []  # a namespace for plugin modules; nothing is ever found by path under it
        sys.modules[USER_PACKAGE] = parent


def resolve_import_string(target: str) -> object:
    """``"package.module:Attr.sub"`` → the object (imports the module)."""
    import importlib

    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------------------------- fingerprints


def user_plugin_fingerprint(entry: Path) -> str:
    """Size and mtime of every Python file of the plugin, plus the app and Python versions (an
    upgrade may mend or break a plugin)."""
    files = [entry] if entry.is_file() else sorted(entry.rglob("*.py"))[:_FINGERPRINT_FILES]
    parts = [_runtime_tag()]
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        parts.append(f"{path.relative_to(entry.parent)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def distribution_fingerprint(dist_name: str, version: str, value: str) -> str:
    return f"{_runtime_tag()}|{dist_name}=={version}|{value}"


def _runtime_tag() -> str:
    from comic_studio import __version__

    return f"comic-studio {__version__}; python {sys.version_info[0]}.{sys.version_info[1]}"


# ---------------------------------------------------------------------------------- the probe


def probe_timeout() -> float:
    """The probe time limit in seconds (``$COMIC_STUDIO_PLUGIN_PROBE_TIMEOUT``); 0 when probing is
    off (explicitly, or in a frozen app where no child ``python -c`` can run)."""
    if getattr(sys, "frozen", False):
        return 0.0
    raw = os.environ.get(PROBE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_PROBE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %s", PROBE_TIMEOUT_ENV, raw, DEFAULT_PROBE_TIMEOUT)
        return DEFAULT_PROBE_TIMEOUT
    return max(0.0, value)


class ProbeCache:
    """Verdicts by target key, read from and written back to the cache file (atomically)."""

    def __init__(self) -> None:
        self._memory: dict[str, dict[str, object]] = {}

    def verdicts(self, targets: list[ProbeTarget]) -> dict[str, Verdict]:
        """A verdict for every target: the cached one where the fingerprint matches, else a fresh
        probe (each target in its own child, a few at a time). All OK when probing is off."""
        timeout = probe_timeout()
        if timeout <= 0:
            return {t.key: Verdict(ok=True) for t in targets}
        stored = self._load()
        known: dict[str, Verdict] = {}
        to_probe: list[ProbeTarget] = []
        for target in targets:
            entry = stored.get(target.key)
            verdict = _verdict_from(entry, target.fingerprint)
            if verdict is None or (verdict.timeout and verdict.timeout < timeout):
                to_probe.append(target)
            else:
                known[target.key] = verdict
        if to_probe:
            started = time.monotonic()
            try:
                known.update(_probe_all(to_probe, timeout))
            except Exception as exc:  # no temporary folder, no processes left...: skip these plugins, this time
                log.warning("cannot run plugin test imports: %s", exc)
                failed = Verdict(ok=False, error=f"cannot run its test import: {exc}", transient=True)
                known.update({t.key: failed for t in to_probe if t.key not in known})
            log.info("probed %d plugin(s) in %.2f s", len(to_probe), time.monotonic() - started)
            entries = dict(stored)
            for target in to_probe:
                v = known[target.key]
                if v.transient:
                    continue
                entries.pop(target.key, None)  # re-inserted last: the oldest entries go first
                entries[target.key] = {"fingerprint": target.fingerprint, "ok": v.ok, "error": v.error,
                                       "detail": v.detail[-8000:], "timeout": v.timeout}  # fmt: skip
            self._store(dict(list(entries.items())[-_CACHE_ENTRIES:]))
        return known

    def _load(self) -> dict[str, dict[str, object]]:
        path = _cache_path()
        if path is None:
            return self._memory
        try:
            if path.stat().st_size > _CACHE_LIMIT or not path.is_file():
                return {}
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data.get("entries") if isinstance(data, dict) and data.get("version") == 1 else None
            return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}
        except (OSError, ValueError, AttributeError):
            return {}  # no cache, or a damaged one: probe again

    def _store(self, entries: dict[str, dict[str, object]]) -> None:
        path = _cache_path()
        if path is None:
            self._memory = entries
            return
        from comic_studio.core.atomic import atomic_write_text

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({"version": 1, "entries": entries}), "the plugin probe cache")
        except Exception as exc:  # a read-only cache folder costs a probe at the next start, nothing more
            log.warning("cannot write the plugin probe cache %s: %s", path, exc)


def _cache_path() -> Path | None:
    override = os.environ.get(PROBE_CACHE_ENV)
    if override is not None:
        return Path(override).expanduser() if override.strip() else None
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("comic-studio", appauthor=False)) / "plugin-probes.json"


def _verdict_from(entry: dict[str, object] | None, fingerprint: str) -> Verdict | None:
    if entry is None or entry.get("fingerprint") != fingerprint or not isinstance(entry.get("ok"), bool):
        return None
    timeout = entry.get("timeout")
    return Verdict(ok=bool(entry["ok"]), error=str(entry.get("error", "")), detail=str(entry.get("detail", "")),
                   timeout=float(timeout) if isinstance(timeout, (int, float)) else 0.0)  # fmt: skip


_CHILD_CODE = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from comic_studio.generation.plugin_loading import _probe_child; _probe_child(*sys.argv[2:])"
)


def _probe_all(targets: list[ProbeTarget], timeout: float) -> dict[str, Verdict]:
    """One child per target, a few at a time (a folder of fifty plugins must not start fifty
    interpreters at once), each with ``timeout`` seconds from its own start."""
    verdicts: dict[str, Verdict] = {}
    batch = max(2, os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="comic-studio-probe-") as tmp:
        path_json = json.dumps(sys.path)
        for first in range(0, len(targets), batch):
            children: list[tuple[ProbeTarget, Path, subprocess.Popen[bytes], float]] = []
            for i, target in enumerate(targets[first : first + batch], start=first):
                result = Path(tmp) / f"{i}.json"
                args = [sys.executable, "-c", _CHILD_CODE, path_json, str(result)]
                if target.path is not None:
                    args += ["file", str(target.path), target.module_name]
                else:
                    args += ["import", target.import_string]
                try:
                    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
                except OSError as exc:
                    verdicts[target.key] = Verdict(
                        ok=False, error=f"cannot start the test import: {exc}", transient=True
                    )
                    continue
                children.append((target, result, child, time.monotonic() + timeout))
            for target, result, child, deadline in children:
                verdicts[target.key] = _wait_for(child, result, deadline, timeout)
    return verdicts


def _wait_for(child: subprocess.Popen[bytes], result: Path, deadline: float, timeout: float) -> Verdict:
    try:
        code = child.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return Verdict(
            ok=False,
            error=f"did not finish importing within {timeout:g} s (an endless loop or a hang at import? "
            f"{PROBE_TIMEOUT_ENV} sets the limit)",
            timeout=timeout,
        )
    return _read_result(result, code)


def _read_result(result: Path, code: int) -> Verdict:
    try:
        outcome = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Verdict(ok=False, error=f"importing it ended the process (exit status {code}) before it finished")
    if outcome.get("ok") is True:
        return Verdict(ok=True)
    return Verdict(ok=False, error=str(outcome.get("error", "failed")), detail=str(outcome.get("detail", "")))


def _probe_child(result_path: str, kind: str, target: str, module_name: str = "") -> None:
    """In the child: import the plugin as the app would, write the verdict, and leave at once
    (``os._exit``: threads or atexit handlers the plugin started must not hold the child open)."""
    try:
        if kind == "file":
            import_user_plugin(Path(target), module_name)
        else:
            resolve_import_string(target)
        outcome: dict[str, object] = {"ok": True}
    except BaseException as exc:  # SystemExit, KeyboardInterrupt raised by the plugin: all are its failure
        outcome = {"ok": False, "error": describe(exc), "detail": traceback.format_exc()}
    try:
        Path(result_path).write_text(json.dumps(outcome), encoding="utf-8")
    finally:
        os._exit(0)


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (``SystemExit: 3`` for ``sys.exit(3)``)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
