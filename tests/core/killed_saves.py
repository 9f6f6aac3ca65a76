"""Killing a real saving process inside a write (shared by the core and UI tests): the child is
save_kill_child.py, SIGKILLed as soon as its second save has created its temporary file, so the
temporary is left behind exactly as a crash or a kill -9 leaves it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = Path(__file__).with_name("save_kill_child.py")
REPO = Path(__file__).resolve().parents[2]
SIZE = (120, 600, 200)  # pages, panels, assets: big enough that writing the archive takes a while


def temporaries(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}
    except FileNotFoundError:
        return set()


def read_line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise AssertionError(f"child exited early (rc={proc.returncode}): {proc.stderr.read()}")
    return line.strip()


def start_child(target: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(CHILD), str(target), *map(str, SIZE), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


def kill_inside_a_write(target: Path, watched: Path, *extra: str, env: dict[str, str] | None = None) -> set[str]:
    """Let the child save ``target`` once completely, then SIGKILL it the moment its second save's
    temporary file appears in ``watched``; return the temporaries it left there."""
    proc = start_child(target, *extra, env=env)
    try:
        assert read_line(proc) == "ready"
        assert read_line(proc) == "saving 0"
        assert read_line(proc).startswith("saved 0 ")
        known = temporaries(watched)
        assert read_line(proc) == "saving 1"
        deadline = time.monotonic() + 60  # only stops a hung test
        while not (temporaries(watched) - known):
            assert time.monotonic() < deadline, "the child never started writing its temporary file"
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert proc.returncode == -signal.SIGKILL
    return temporaries(watched) - known
