"""Killing a real saving process inside a write (shared by the core and UI tests): the child
(stalled_save_child.py) saves once completely, then is SIGKILLed inside its second save, with its
temporary file half written, exactly as a crash or a kill -9 leaves it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("stalled_save_child.py")
REPO = Path(__file__).resolve().parents[2]


def temporaries(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}
    except FileNotFoundError:
        return set()


def kill_inside_a_write(target: Path, watched: Path, *extra: str) -> set[str]:
    """Let the child save ``target`` once, then SIGKILL it inside its second save; return the
    temporary files it left in ``watched`` (where that save writes)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(target), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for expected in ("saved", "inside"):
            line = proc.stdout.readline().strip()
            if line != expected:
                proc.kill()
                raise AssertionError(f"child said {line!r}, not {expected!r}: {proc.communicate(timeout=10)[1]}")
        before = temporaries(watched)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert proc.returncode == -signal.SIGKILL
    return before
