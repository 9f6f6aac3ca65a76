"""Map a package's big native libraries into the process without holding the interpreter lock.

Why: ``import torch`` spends most of its first second inside ``dlopen`` of ``libtorch_cpu.so``
(hundreds of MB of relocations). CPython's extension-module import — and ``ctypes.CDLL`` — call
``dlopen`` while holding the interpreter lock, so every other thread, the GUI thread included,
stops for that whole time (measured: 1.1–1.3 s with the heartbeat of ``bench/gui_heartbeat.py``
not ticking once). Calling the C library's ``dlopen`` as an ordinary foreign function instead goes
through ctypes' call path, which *releases* the lock for the duration of the call. Once the
extension module and its dependencies are mapped, the later ``import`` finds them loaded (the
loader matches the same file) and only runs the module's init function.

The same flags as Python's own import (``sys.getdlopenflags()``) are used, so symbol visibility
is exactly what a normal import gives. Best effort: on Windows, when the package is absent, or
when ``dlopen`` refuses (a missing dependency), nothing happens and the normal import reports the
problem as it always would. No package is imported here (core imports no torch).

Beyond torch, the pose matcher's stack (sentence-transformers → transformers → SciPy,
scikit-learn) loads extension modules whose cost is mostly their *vendored* shared libraries
(auditwheel's ``<distribution>.libs`` folders: OpenBLAS, gfortran, libgomp), 5–40 ms of ``dlopen``
each under the lock, measured here one by one. :func:`preload_torch_stack` maps torch's extension
modules and those folders; the extension modules that import them later find them loaded by
soname. The extension modules themselves are left to the import (a few ms each, and mapping every
one of SciPy's ~150 on speculation would run constructors of modules nobody imports).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path

_lock = threading.Lock()
_done: dict[str, list[str]] = {}


def _dlopen_function():
    """libc's ``dlopen`` as a ctypes foreign function (CDLL: the call releases the lock)."""
    libc = ctypes.CDLL(None)
    dlopen = libc.dlopen
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return dlopen


def extension_modules(package: str) -> list[Path]:
    """The compiled extension modules directly inside ``package``'s folder (e.g. torch's ``_C``),
    found without importing the package; empty when it is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffixes) and p.is_file())


def preload_extension_modules(package: str) -> list[str]:
    """Map ``package``'s extension modules (and, through them, their shared libraries) with the
    interpreter lock released. Returns the files mapped now or earlier; idempotent and thread-safe."""
    if sys.platform == "win32" or package in sys.modules:
        return []  # Windows has no dlopen; an imported package has nothing left to map
    with _lock:
        if package in _done:
            return _done[package]
        mapped: list[str] = []
        try:
            dlopen = _dlopen_function()
            flags = sys.getdlopenflags()
            for path in extension_modules(package):
                if dlopen(str(path).encode(), flags):
                    mapped.append(str(path))
        except (OSError, AttributeError):
            pass  # no usable libc dlopen: the normal import does the work
        _done[package] = mapped
        return mapped


_STACK_VENDORED = (("scipy", "scipy.libs"), ("sklearn", "scikit_learn.libs"), ("numpy", "numpy.libs"))
"""(package, its wheel's vendored-library folder) of what the torch stack imports next to torch
(sentence-transformers and transformers import SciPy and scikit-learn; numpy is usually in already)."""


def vendored_libraries(folder: str) -> list[Path]:
    """The shared libraries in the site-packages folder ``folder`` (e.g. ``scipy.libs``), found on
    ``sys.path``; empty when it does not exist."""
    for entry in sys.path:
        found = Path(entry or ".") / folder
        if found.is_dir():
            return sorted(p for p in found.iterdir() if ".so" in p.name and p.is_file())
    return []


def preload_vendored_libraries(package: str, folder: str) -> list[str]:
    """Map the libraries of ``folder`` (``package``'s vendored ones) with the lock released, unless
    ``package`` is imported already (then they are loaded). Idempotent and thread-safe; best effort:
    a library whose own dependencies are missing is skipped, its package's import reports it."""
    if sys.platform == "win32" or package in sys.modules:
        return []
    key = f"{package}:{folder}"
    with _lock:
        if key in _done:
            return _done[key]
        mapped: list[str] = []
        loaded = _mapped_file_names()
        try:
            dlopen = _dlopen_function()
            flags = sys.getdlopenflags()  # as the extension module that needs them would load them
            for path in vendored_libraries(folder):
                if path.name in loaded:
                    # Another wheel's copy with this very name (numpy.libs and scipy.libs share
                    # libgfortran's): the loader would reuse that one by soname, so must we.
                    continue
                if dlopen(str(path).encode(), flags):
                    mapped.append(str(path))
        except (OSError, AttributeError):
            pass
        _done[key] = mapped
        return mapped


def _mapped_file_names() -> set[str]:
    """File names of the shared objects mapped in this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return {line.rsplit("/", 1)[-1].strip() for line in maps if "/" in line}
    except OSError:
        return set()


def preload_torch_stack() -> list[str]:
    """What to call before importing torch (or a library built on it) on a worker thread: torch's
    extension modules, then the vendored libraries of the numeric packages that come with it."""
    mapped = list(preload_extension_modules("torch"))
    for package, folder in _STACK_VENDORED:
        mapped += preload_vendored_libraries(package, folder)
    return mapped
