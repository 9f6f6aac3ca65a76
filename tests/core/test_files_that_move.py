"""Files that move or meet their copies: an open document survives its .comic file being moved,
renamed, deleted, replaced or overwritten (Save, Save As and autosave all still write a complete
file); recovery files of a copy never touch the original's; killed saves leave nothing behind once
the file is saved or opened again. Real files and real child processes throughout."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project, encoded_image
from killed_saves import kill_inside_a_write

from comic_studio.core import autosave, ownership
from comic_studio.core.assets import AssetStore
from comic_studio.core.document import Document
from comic_studio.core.errors import ProjectFileError
from comic_studio.core.model import PanelResult, Project
from comic_studio.core.projectfile import load_project, save_project, write_archive
from comic_studio.core.sample_projects import tiny_png
from comic_studio.core.session_cache import LOCK_FILE, SESSIONS_FOLDER, SessionCache, remove_abandoned_sessions
from comic_studio.core.settings import STATE_DIR_ENV

SESSION_CHILD = Path(__file__).with_name("session_child.py")
REPO = Path(__file__).resolve().parents[2]
POSIX_KILL = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_ENV, str(folder))
    return folder


def _saved_sample(path: Path) -> dict[str, bytes]:
    """Save the sample project to ``path``; return every asset's bytes by hash."""
    project, store, hashes = build_sample_project()
    expected = {digest: store.get(digest) for digest in hashes.values()}
    save_project(path, project, store)
    return expected


def _other_project_file(path: Path) -> bytes:
    """Another project (other id, other image) saved at ``path``; returns its bytes."""
    store = AssetStore()
    digest = store.add(encoded_image("PNG", (1, 2, 3)))
    project = Project.model_validate(
        {
            "title": "Someone else's",
            "page_format": {"width": 100, "height": 100},
            "characters": [{"id": "zed", "name": "Zed", "face_refs": [digest]}],
        }
    )
    save_project(path, project, store)
    return path.read_bytes()


def _add_render(doc: Document, seed: int) -> str:
    """A new image made during the session (in memory until saved), used by a panel."""
    digest = doc.assets.add(tiny_png(10_000 + seed))
    panel = doc.project.pages[0].panels[0]
    panel.results.append(
        PanelResult(
            id=f"new{seed}", asset=digest, backend="storyboard", seed=seed, created_at="2026-12-06T10:00:00+00:00"
        )
    )
    return digest


def _assert_complete(path: Path, doc: Document, expected: dict[str, bytes]) -> None:
    loaded, store = load_project(path)
    assert loaded.model_dump() == doc.project.model_dump()
    assert {digest: store.get(digest) for digest in expected} == expected


def _move(src: Path, tmp: Path) -> None:
    (tmp / "elsewhere").mkdir()
    src.rename(tmp / "elsewhere" / src.name)


def _replace(src: Path, tmp: Path) -> None:
    _other_project_file(tmp / "other.comic")
    os.replace(tmp / "other.comic", src)  # another program saved over it (a new file, renamed)


def _overwrite(src: Path, tmp: Path) -> None:
    data = _other_project_file(tmp / "other.comic")
    with open(src, "r+b") as fh:  # `cp other.comic book.comic`: the same file, new bytes
        fh.truncate(0)
        fh.write(data)


FATES: dict[str, Callable[[Path, Path], None]] = {
    "moved": _move,
    "renamed": lambda src, tmp: src.rename(src.with_name("renamed.comic")),
    "deleted": lambda src, tmp: src.unlink(),
    "replaced": _replace,
    "overwritten": _overwrite,
}


@pytest.mark.parametrize("fate", FATES)
@pytest.mark.parametrize("operation", ["save", "save_as", "autosave"])
def test_an_open_document_survives_its_file(fate: str, operation: str, tmp_path: Path, state: Path) -> None:
    source = tmp_path / "book.comic"
    expected = _saved_sample(source)
    doc = Document.open(source)
    new = _add_render(doc, 1)
    expected[new] = doc.assets.get(new)
    before = source.read_bytes()

    FATES[fate](source, tmp_path)

    if operation == "save":
        written = doc.save()
        assert written == source  # Save goes where the title says, whatever happened there
        if fate in ("replaced", "overwritten"):
            # What stood there is kept as the backup: nothing anyone wrote is lost.
            assert load_project(tmp_path / "book.comic.bak")[0].title == "Someone else's"
    elif operation == "save_as":
        written = doc.save(tmp_path / "copy.comic")
    else:
        written = autosave.write_recovery(doc.project, doc.assets, doc.path)
        assert written.parent == state / "recovery"
    _assert_complete(written, doc, expected)
    moved_to = {"moved": tmp_path / "elsewhere" / "book.comic", "renamed": tmp_path / "renamed.comic"}
    if fate in moved_to:
        assert moved_to[fate].read_bytes() == before  # the file where it went was not touched


def test_saving_never_ties_the_document_to_the_file_it_saved(tmp_path: Path, state: Path) -> None:
    """Save As, then that file vanishes or changes, and so on: every later write still works, and
    images made during the session leave memory at each save (bounded memory)."""
    source = tmp_path / "a.comic"
    expected = _saved_sample(source)
    doc = Document.open(source)
    for step, fate in enumerate(["deleted", "overwritten", "moved"]):
        new = _add_render(doc, step)
        expected[new] = doc.assets.get(new)
        target = tmp_path / f"saved-as-{step}.comic"
        doc.save(target)
        kept = doc.assets.cache.folder / "assets" / new
        assert kept.read_bytes() == expected[new]  # moved from memory to the session cache
        assert doc.assets.source_of(new) is None
        if fate == "deleted":
            target.unlink()
        elif fate == "overwritten":
            target.write_bytes(b"not a project any more")
        else:
            target.rename(tmp_path / f"moved-{step}.comic")
        _assert_complete(autosave.write_recovery(doc.project, doc.assets, doc.path), doc, expected)
        _assert_complete(doc.save(), doc, expected)


def test_the_session_cache_goes_with_its_document(tmp_path: Path, state: Path) -> None:
    source = tmp_path / "a.comic"
    _saved_sample(source)
    doc = Document.open(source)
    folder = doc.assets.cache.folder
    assert folder.parent == state / SESSIONS_FOLDER
    [staged] = folder.glob("opened-*.comic")
    assert staged.read_bytes() == source.read_bytes()  # the loader read this copy
    del doc, staged
    gc.collect()
    assert not folder.exists()
    assert list((state / SESSIONS_FOLDER).iterdir()) == []


def test_a_new_document_costs_no_folder_until_it_is_saved(tmp_path: Path, state: Path) -> None:
    doc = Document.new()
    assert not (state / SESSIONS_FOLDER).exists()
    doc.save(tmp_path / "first.comic")  # nothing in memory to keep: still no folder
    assert not (state / SESSIONS_FOLDER).exists()


@POSIX_KILL
def test_a_killed_sessions_cache_is_removed_by_the_next_session(tmp_path: Path, state: Path) -> None:
    source = tmp_path / "a.comic"
    _saved_sample(source)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

    def open_in_child() -> tuple[subprocess.Popen, Path]:
        child = subprocess.Popen(
            [sys.executable, str(SESSION_CHILD), str(source)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = child.stdout.readline().strip()
        assert line, f"the child exited early (rc={child.wait(timeout=10)})"
        return child, Path(line)

    killed, killed_folder = open_in_child()
    live, live_folder = open_in_child()
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert killed_folder.exists()  # a killed process cleans nothing up

        doc = Document.open(source)  # a new session starts its cache: the dead one's goes
        assert doc.assets.cache.folder.exists()
        assert not killed_folder.exists()
        assert live_folder.exists()  # a running process keeps its cache
        remove_abandoned_sessions()
        assert live_folder.exists() and doc.assets.cache.folder.exists()

        live.stdin.write("done\n")
        live.stdin.flush()
        assert live.wait(timeout=30) == 0
        assert not live_folder.exists()  # an orderly exit removes its own
    finally:
        for child in (killed, live):
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)


@pytest.mark.skipif(not ownership.LOCKS_HELD_WHILE_RENAMING, reason="POSIX: a cleaner deletes while holding the lock")
def test_a_cleaner_racing_a_new_session_makes_it_start_another(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_lock, raced = ownership.lock, []

    def lock_after_a_cleaner(fd: int) -> None:
        if not raced:  # another process cleans up between our lock file's creation and our lock
            remove_abandoned_sessions()
            raced.append(True)
        real_lock(fd)

    monkeypatch.setattr(ownership, "lock", lock_after_a_cleaner)
    cache = SessionCache()
    folder = cache.folder
    assert raced and (folder / LOCK_FILE).exists()
    assert list((state / SESSIONS_FOLDER).iterdir()) == [folder]  # the first folder went, this one is ours
    remove_abandoned_sessions()
    assert folder.exists()


def test_only_regular_files_are_opened(tmp_path: Path, state: Path) -> None:
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.comic"
        os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
        with pytest.raises(ProjectFileError, match="is not a regular file"):
            Document.open(fifo)
    with pytest.raises(ProjectFileError, match="is a folder"):
        Document.open(tmp_path)
    with pytest.raises(ProjectFileError, match="does not exist"):
        Document.open(tmp_path / "missing.comic")


def test_without_a_usable_state_folder_the_file_is_read_in_place(tmp_path, monkeypatch, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    monkeypatch.setenv(STATE_DIR_ENV, str(blocker))
    source = tmp_path / "a.comic"
    expected = _saved_sample(source)
    doc = Document.open(source)  # opening must not fail because of the cache
    assert "reading" in caplog.text and str(source) in caplog.text
    new = _add_render(doc, 1)
    expected[new] = doc.assets.get(new)
    _assert_complete(doc.save(tmp_path / "b.comic"), doc, expected)
    assert doc.assets.get(new) == expected[new]  # the cache refused it: kept in memory


# =========================================================================== recovery keys


def _recovery_newer_than(recovery: Path, source: Path) -> None:
    """Make the order of the two writes explicit (file systems with coarse clocks tie)."""
    at = source.stat().st_mtime_ns
    os.utime(recovery, ns=(at + 10**9, at + 10**9))


def test_a_copy_never_offers_nor_deletes_the_originals_recovery(tmp_path: Path, state: Path) -> None:
    original = tmp_path / "book.comic"
    _saved_sample(original)
    first = Document.open(original)
    first.project.title = "Unsaved work"
    crashed = autosave.write_recovery(first.project, first.assets, first.path)  # … then the app was killed
    _recovery_newer_than(crashed, original)
    copy = tmp_path / "copy of book.comic"
    shutil.copyfile(original, copy)  # same project id, another file

    second = Document.open(copy)
    assert second.project.id == first.project.id
    assert autosave.find_recovery(copy, second.project.id) is None  # not offered for the copy
    second.project.title = "The copy's own edits"
    own = autosave.write_recovery(second.project, second.assets, second.path)
    assert own != crashed and crashed.exists()  # its autosave does not overwrite the original's
    second.save()
    autosave.discard_recovery(second.project.id, second.path)  # what a save does
    assert not own.exists() and crashed.exists()

    assert autosave.find_recovery(original, first.project.id) == crashed  # reopening the original offers it
    assert load_project(crashed)[0].title == "Unsaved work"
    assert autosave.recovery_path(first.project.id, original) == crashed
    assert autosave.find_recovery(tmp_path / "sub" / ".." / "book.comic", first.project.id) == crashed


def test_moving_the_open_file_keeps_its_recovery_key(tmp_path: Path, state: Path) -> None:
    source = tmp_path / "book.comic"
    _saved_sample(source)
    doc = Document.open(source)
    key = autosave.recovery_path(doc.project.id, doc.path)
    source.rename(tmp_path / "moved.comic")
    assert autosave.write_recovery(doc.project, doc.assets, doc.path) == key
    assert autosave.find_recovery(doc.path, doc.project.id) == key  # the file is gone: worth offering


def test_recovery_files_of_older_versions_are_still_offered_and_removed(tmp_path: Path, state: Path) -> None:
    original, copy = tmp_path / "book.comic", tmp_path / "copy.comic"
    _saved_sample(original)
    shutil.copyfile(original, copy)
    project, store = load_project(original)
    # Older versions named the recovery file by the project id alone.
    legacy = state / "recovery" / f"{project.id}{autosave.RECOVERY_SUFFIX}"
    legacy.parent.mkdir(parents=True)
    meta = f'{{"project_id": "{project.id}", "title": "old", "source_path": "{original}", "saved_at": "2026-01-01T00:00:00"}}'
    write_archive(legacy, project, store, keep_backup=False, extra_members={autosave.RECOVERY_MEMBER: meta.encode()})
    _recovery_newer_than(legacy, original)

    assert [r.path for r in autosave.pending_recoveries()] == [legacy]  # offered at start-up
    assert autosave.find_recovery(original, project.id) == legacy  # and when its file is opened
    assert autosave.find_recovery(copy, project.id) is None
    autosave.discard_recovery(project.id, copy)
    assert legacy.exists()  # a copy's save leaves it
    autosave.discard_recovery(project.id, original)
    assert not legacy.exists()  # its own file's save removes it


# =========================================================================== killed saves


@POSIX_KILL
def test_a_killed_saves_leftover_goes_when_the_file_is_opened_or_saved(tmp_path: Path, state: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = work / "big.comic"
    left = kill_inside_a_write(target, work)
    assert left and all(name.startswith(".big.comic.") for name in left)  # a hidden, partial archive

    doc = Document.open(target)  # opening it cleans up at once (no waiting for the file to age)
    assert [p.name for p in work.iterdir()] == ["big.comic"]

    assert kill_inside_a_write(target, work)
    doc.project.title = "saved again"
    doc.save()  # so does the next save
    assert sorted(p.name for p in work.iterdir()) == ["big.comic", "big.comic.bak"]


@POSIX_KILL
def test_a_killed_autosaves_leftover_goes_at_the_next_start(tmp_path: Path, state: Path) -> None:
    source = tmp_path / "big.comic"
    recovery_folder = state / "recovery"
    left = kill_inside_a_write(source, recovery_folder, "recovery")
    assert left
    [complete] = autosave.pending_recoveries()  # the first write finished: it is still offered
    assert load_project(complete.path)[0].title == "Generated comic"  # not "never finished"

    autosave.clean_recovery_folder()  # at start-up
    assert [p.name for p in recovery_folder.iterdir()] == [complete.path.name]
