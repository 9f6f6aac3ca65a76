"""core/atomic.py: the one way a file is replaced. A failure leaves the old file as it was and no
temporary file behind; concurrent writers never share a temporary name."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from comic_studio.core import atomic, ownership
from comic_studio.core.atomic import FileWriteError, atomic_path, atomic_write_bytes, atomic_write_text
from comic_studio.core.errors import ComicStudioError

WRITER_CHILD = Path(__file__).with_name("atomic_writer_child.py")
REPO = Path(__file__).resolve().parents[2]


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("old", encoding="utf-8")
    assert atomic_write_text(target, "new ✓", "the notes") == target
    assert target.read_text(encoding="utf-8") == "new ✓"
    atomic_write_bytes(target, b"\x00bytes", "the notes")
    assert target.read_bytes() == b"\x00bytes"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_an_error_in_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "book.pdf"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer bug"), atomic_path(target, "the PDF") as tmp:
        tmp.write_bytes(b"half a fi")
        raise RuntimeError("writer bug")  # not an OSError: propagates unchanged
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["book.pdf"]


def test_an_os_error_becomes_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_bytes(b"old")
    with pytest.raises(FileWriteError) as caught, atomic_path(target, "the settings"):
        raise OSError(28, "No space left on device")
    error = caught.value
    assert str(error) == f"{target}: cannot write the settings (No space left on device)"
    assert isinstance(error, ComicStudioError) and isinstance(error, OSError)  # caches catch OSError
    assert (error.strerror, error.errno, error.path) == ("No space left on device", 28, target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["settings.json"]


def test_a_missing_folder_is_reported_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match=r"cannot create a file in .*nowhere \(No such file or directory\)"):
        atomic_write_bytes(tmp_path / "nowhere" / "x.json", b"{}", "the file")
    assert os.listdir(tmp_path) == []


def test_a_failing_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "beats.json"
    target.write_bytes(b"old")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(FileWriteError, match=r"beats.json: cannot write the story \(Permission denied: .*beats.json\)"):
        atomic_write_text(target, "new", "the story")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["beats.json"]


def test_permissions_backup_and_symlink_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.comic"
    real.write_bytes(b"v1")
    os.chmod(real, 0o640)
    link = tmp_path / "link.comic"
    link.symlink_to(real)
    with atomic_path(link, "the project", keep_backup=True) as tmp:
        tmp.write_bytes(b"v2")
    assert link.is_symlink() and real.read_bytes() == b"v2"
    assert (real.stat().st_mode & 0o777) == 0o640
    assert (tmp_path / "real.comic.bak").read_bytes() == b"v1"


def test_concurrent_writers_use_their_own_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "bank.safetensors"
    barrier = threading.Barrier(8)
    temporaries: list[Path] = []
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with atomic_path(target, "the bank") as tmp:
                temporaries.append(tmp)
                barrier.wait(timeout=10)  # every writer holds its temporary file at the same time
                tmp.write_bytes(f"writer {n}".encode() * 100)
        except BaseException as exc:  # reported below: an exception in a thread is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(temporaries)) == 8
    assert all(t.parent == tmp_path and t.name.startswith(".bank.safetensors.") for t in temporaries)
    content = target.read_bytes()
    assert content in {f"writer {n}".encode() * 100 for n in range(8)}  # one whole file, never a mix
    assert os.listdir(tmp_path) == ["bank.safetensors"]


def _start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A real child process inside ``atomic_path(target)``; returns it and its temporary file."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(
        [sys.executable, str(WRITER_CHILD), str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = child.stdout.readline().strip()
    assert line, f"the writer child exited early (rc={child.wait(timeout=10)})"
    return child, Path(line)


@pytest.mark.skipif(not ownership.LOCKS_HELD_WHILE_RENAMING, reason="writers hold their temporaries locked on POSIX")
def test_leftovers_of_killed_writers_go_at_once_live_writers_keep_theirs(tmp_path: Path) -> None:
    target = tmp_path / "x.comic"
    killed, killed_tmp = _start_writer(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    live, live_tmp = _start_writer(target)
    try:
        backup_leftover, other = tmp_path / ".x.comic.bak.89abcdef.tmp", tmp_path / ".y.comic.0123abcd.tmp"
        for path in (backup_leftover, other):
            path.write_bytes(b"partial")  # a killed writer's, written a moment ago: young, unlocked
        assert killed_tmp.exists() and live_tmp.exists()

        atomic.remove_stale_temporaries(target)

        # The killed child's file goes however young it is; the live child's stays; another
        # file's leftovers are not this target's business.
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_tmp.name, other.name])
        live.stdin.write("finish\n")
        live.stdin.flush()
        assert live.wait(timeout=30) == 0
    finally:
        if live.poll() is None:
            live.kill()
            live.wait(timeout=10)
    assert target.read_bytes() == b"complete"  # the live writer was not disturbed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, other.name])

    atomic.remove_stale_temporaries_in(tmp_path)  # a folder only we write: every leftover goes
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.skipif(not ownership.LOCKS_HELD_WHILE_RENAMING, reason="writers hold their temporaries locked on POSIX")
def test_a_cleaner_between_create_and_lock_makes_the_writer_start_again(tmp_path, monkeypatch) -> None:
    target = tmp_path / "x.bin"
    real_lock = ownership.lock
    cleaned = []

    def lock_after_a_cleaner(fd: int) -> None:
        if not cleaned:  # the first temporary is removed by a cleaner before its writer locks it
            atomic.remove_stale_temporaries(target)
            cleaned.append(True)
        real_lock(fd)

    monkeypatch.setattr(ownership, "lock", lock_after_a_cleaner)
    with atomic_path(target, "the test file", keep_backup=True) as tmp:
        assert tmp.exists()
        tmp.write_bytes(b"one")
    assert cleaned and target.read_bytes() == b"one"
    assert os.listdir(tmp_path) == ["x.bin"]


def test_old_temporaries_count_as_stale_where_writers_hold_no_lock(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ownership, "LOCKS_HELD_WHILE_RENAMING", False)  # what Windows does
    target = tmp_path / "x.comic"
    stale, stale_backup = tmp_path / ".x.comic.0123abcd.tmp", tmp_path / ".x.comic.bak.89abcdef.tmp"
    fresh, other = tmp_path / ".x.comic.fedcba98.tmp", tmp_path / ".y.comic.0123abcd.tmp"
    for path in (stale, stale_backup, fresh, other):
        path.write_bytes(b"partial")
    old = os.stat(fresh).st_mtime - atomic.STALE_TEMP_SECONDS - 60
    for path in (stale, stale_backup, other):
        os.utime(path, (old, old))
    atomic.remove_stale_temporaries(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, other.name])
    atomic_write_bytes(target, b"new", "the test file")  # a writer without a lock still works
    assert target.read_bytes() == b"new"


def test_a_file_system_without_locks_writes_and_cleans_by_age(tmp_path, monkeypatch) -> None:
    def no_locks(fd: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(ownership, "lock", no_locks)  # some network shares
    monkeypatch.setattr(ownership, "try_lock", lambda fd: None)
    target = tmp_path / "x.comic"
    atomic_write_bytes(target, b"one", "the test file")
    with atomic_path(target, "the test file", keep_backup=True) as tmp:
        tmp.write_bytes(b"two")
    assert target.read_bytes() == b"two" and (tmp_path / "x.comic.bak").read_bytes() == b"one"
    young, old = tmp_path / ".x.comic.fedcba98.tmp", tmp_path / ".x.comic.0123abcd.tmp"
    for path in (young, old):
        path.write_bytes(b"partial")
    aged = os.stat(young).st_mtime - atomic.STALE_TEMP_SECONDS - 60
    os.utime(old, (aged, aged))
    atomic.remove_stale_temporaries(target)  # nobody can tell who holds what: age decides
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.comic", "x.comic.bak", young.name])
