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
