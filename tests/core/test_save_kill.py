"""Crash safety of save_project: a child process saving a big project is SIGKILLed at different
moments inside a save; the target file must always load afterwards (the complete old or the
complete new version), and so must the backup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comic_studio.core.projectfile import load_project, save_project
from comic_studio.core.sample_projects import make_big_project

CHILD = Path(__file__).with_name("save_kill_child.py")
REPO = Path(__file__).resolve().parents[2]
SIZE = (120, 600, 200)  # pages, panels, assets: big enough that writing the archive takes a while

# Kill moments: ("save", f) = f × the child's first save duration after a save starts (this lands
# anywhere: serialising, validating, writing, renaming); ("write", s) = s seconds after the
# temporary file appears (this lands inside the archive write / backup / rename).
KILL_POINTS = [("save", 0.3), ("save", 0.7), ("save", 0.95), ("write", 0.0), ("write", 0.01), ("write", 0.03)]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _read_line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise AssertionError(f"child exited early (rc={proc.returncode}): {proc.stderr.read()}")
    return line.strip()


def _temporaries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}


def _wait_for_new_temporary(folder: Path, known: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (_temporaries(folder) - known):
        if time.monotonic() > deadline:
            raise AssertionError("the child never started writing its temporary file")
        time.sleep(0.0005)


def _kill_mid_save(target: Path, mode: str, amount: float) -> set[str]:
    """Start a saving child; kill it during its second save, at the moment ``mode``/``amount``
    says; return the temporary files it left."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, str(CHILD), str(target), *map(str, SIZE)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert _read_line(proc) == "ready"
        assert _read_line(proc) == "saving 0"
        match = re.fullmatch(r"saved 0 ([\d.]+)", _read_line(proc))
        assert match, "unexpected child output"
        known = _temporaries(target.parent)
        assert _read_line(proc) == "saving 1"
        if mode == "save":
            time.sleep(amount * float(match.group(1)))
        else:
            _wait_for_new_temporary(target.parent, known)
            time.sleep(amount)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return _temporaries(target.parent) - known


def test_target_always_loads_after_kill_mid_save(tmp_path: Path) -> None:
    target = tmp_path / "big.comic"
    project, store = make_big_project(*SIZE)
    project.title = "initial"
    save_project(target, project, store)

    leftovers: set[str] = set()
    for mode, amount in KILL_POINTS:
        leftovers |= _kill_mid_save(target, mode, amount)  # the next child's first save removes them
        loaded, loaded_store = load_project(target)  # never a half-written file
        assert re.fullmatch(r"save \d+", loaded.title), loaded.title
        some_asset = next(iter(loaded.asset_refs()))
        assert loaded_store.get(some_asset)
        backup = target.with_name("big.comic.bak")
        assert re.fullmatch(r"initial|save \d+", load_project(backup)[0].title)

    # Kills inside the write leave the child's temporary file behind: proof that kills really
    # landed mid-write (and that such leftovers do not disturb loading, checked above).
    assert leftovers, "no kill landed inside a write; the test did not exercise anything"
    assert all(name.startswith((".big.comic.", ".big.comic.bak.")) for name in leftovers)
