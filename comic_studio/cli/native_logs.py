"""Native libraries' log lines off the terminal: MediaPipe, TensorFlow Lite and absl write straight
to file descriptor 2 from C++ ("INFO: Created TensorFlow Lite XNNPACK delegate", "W0000 ...
inference_feedback_manager.cc ... Disabling support for feedback tensors"), and no environment
variable of theirs turns that off (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL were tried: both
ignored). A command's stderr is for its progress and its one-line errors, so while a command runs,
descriptor 2 goes to the null device and Python's ``sys.stderr`` writes to a copy of the real one
(progress, errors, warnings and tracebacks still show). ``COMIC_STUDIO_NATIVE_LOGS=1`` keeps the
native lines (for a bug report).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

NATIVE_LOGS_ENV = "COMIC_STUDIO_NATIVE_LOGS"


def _real_stderr() -> bool:
    """Only the process' own stderr is rerouted (not a test's capture, not a replaced stream)."""
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def native_logs_off() -> Iterator[None]:
    if os.environ.get(NATIVE_LOGS_ENV) or not _real_stderr():
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    sys.stderr = open(  # noqa: SIM115 (closed in finally)
        saved, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace", closefd=False
    )
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    os.close(sink)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = python_stderr


__all__ = ["NATIVE_LOGS_ENV", "native_logs_off"]
