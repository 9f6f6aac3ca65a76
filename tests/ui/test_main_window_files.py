"""Autosave and crash recovery, preferences, and the export dialogs with their worker thread."""

import io
import os
import shutil
import signal
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from comic_fixtures import build_sample_project
from killed_saves import kill_inside_a_write
from pypdf import PdfReader
from PySide6.QtWidgets import QDialog, QLabel, QPushButton

from comic_studio.core import autosave as core_autosave, editing
from comic_studio.core.document import Document
from comic_studio.core.model import ReadingDirection
from comic_studio.core.projectfile import load_project, save_project
from comic_studio.core.settings import AppSettings, load_settings
from comic_studio.ui.dialogs.export_dialog import ExportDialog, ExportOptions, default_options, run_export
from comic_studio.ui.dialogs.preferences import PreferencesDialog
from comic_studio.ui.dialogs.recovery import DISCARD, LATER, RESTORE, RecoveryDialog
from comic_studio.ui.main_window import MainWindow


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_STUDIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    made = []

    def make(settings=None, recovery_answer=LATER):
        win = MainWindow(settings=settings or AppSettings(projects_folder=str(tmp_path)))
        win.informed = []
        win.recovery_questions = []
        monkeypatch.setattr(win, "ask", lambda *a, **k: "Discard")
        monkeypatch.setattr(win, "inform", lambda title, text, error=True: win.informed.append((title, text)))

        def ask_recovery(recovery):
            win.recovery_questions.append(recovery)
            return recovery_answer

        monkeypatch.setattr(win, "ask_recovery", ask_recovery)
        qtbot.addWidget(win)
        made.append(win)
        return win

    return make


def recovery_files(tmp_path) -> list[Path]:
    return sorted((tmp_path / "state" / "recovery").glob("*.recovery.comic"))


def crash(win) -> None:
    """What the operating system does for a killed app: its autosave owner lock goes away (the
    window itself is never closed, so nothing is discarded)."""
    win.autosave.wait()
    win.autosave.owner.close()


# ------------------------------------------------------------------ autosave and recovery


def test_autosave_writes_only_unsaved_work_and_save_discards_it(make_window, qtbot, tmp_path):
    win = make_window()
    assert win.autosave.active and win.autosave.timer.interval() == 5 * 60_000
    assert win.autosave.write_now() is None  # nothing unsaved yet
    win.action_map["add_page"].trigger()
    win.autosave.timer.timeout.emit()  # the periodic tick: snapshot now, write on the worker
    win.action_map["add_page"].trigger()  # edits after the snapshot are not in this copy
    win.autosave.wait()
    [recovery] = recovery_files(tmp_path)
    assert len(Document.open(recovery).project.pages) == 2
    qtbot.waitUntil(lambda: "Autosaved" in win.statusBar().currentMessage(), timeout=5000)
    win._save_to(tmp_path / "saved.comic")
    assert recovery_files(tmp_path) == []


def test_risky_operations_write_a_recovery_first(make_window, tmp_path):
    win = make_window()
    win.action_map["add_page"].trigger()
    win.action_map["duplicate_page"].trigger()
    win.action_map["delete_page"].trigger()
    win.autosave.wait()
    [recovery] = recovery_files(tmp_path)
    assert len(Document.open(recovery).project.pages) == 3  # written before the delete
    assert len(win.ctx.document.project.pages) == 2


def test_startup_offers_newer_recovery_and_restores_it(make_window, tmp_path):
    # A session edits a saved file, autosaves, and "crashes" (the window is never closed cleanly).
    source = tmp_path / "book.comic"
    first = make_window()
    first._save_to(source)
    first.action_map["add_page"].trigger()
    first.action_map["add_page"].trigger()
    assert first.autosave.write_now(wait=True) is not None
    project_id = first.ctx.document.project.id
    assert make_window().offer_recoveries() == 0  # a running window's autosave is not a crash
    crash(first)

    restart = make_window(recovery_answer=RESTORE)
    assert restart.offer_recoveries() == 1
    [asked] = restart.recovery_questions
    assert asked.project_id == project_id and asked.source_path == source
    doc = restart.ctx.document
    assert len(doc.project.pages) == 3
    assert doc.path == source  # Save goes to the user's file, not the recovery folder
    assert restart.isWindowModified()
    restart.action_map["save"].trigger()
    assert len(Document.open(source).project.pages) == 3
    assert not restart.isWindowModified()
    assert recovery_files(tmp_path) == []


def test_discard_and_later_answers(make_window, tmp_path):
    first = make_window()
    first.action_map["add_page"].trigger()
    first.autosave.write_now(wait=True)
    crash(first)
    assert make_window(recovery_answer=LATER).offer_recoveries() == 1
    assert len(recovery_files(tmp_path)) == 1  # kept for the next start
    assert make_window(recovery_answer=DISCARD).offer_recoveries() == 1
    assert recovery_files(tmp_path) == []
    assert make_window().offer_recoveries() == 0


def test_stale_recovery_is_not_offered(make_window, tmp_path):
    win = make_window()
    source = tmp_path / "later.comic"
    win._save_to(source)
    win.action_map["add_page"].trigger()
    win.autosave.write_now(wait=True)
    Document.open(recovery_files(tmp_path)[0])  # readable
    # The user saved the file after the autosave (without the app discarding it, e.g. a crash
    # between the two): the recovery holds nothing newer and is removed quietly.
    win.ctx.document.save(source)
    win.autosave.note_saved(source)
    crash(win)
    stale = core_autosave.pending_recoveries()[0]
    assert core_autosave.find_recovery(source, stale.project_id) is None
    other = make_window()
    assert other.offer_recoveries() == 0 and other.recovery_questions == []
    assert recovery_files(tmp_path) == []


def test_opening_a_file_offers_its_recovery(make_window, tmp_path):
    source = tmp_path / "mine.comic"
    doc = Document.new(title="Mine")
    editing.add_page(doc)
    doc.save(source)
    editing.add_page(doc)
    core_autosave.write_recovery(doc.project, doc.assets, source)
    win = make_window(recovery_answer=RESTORE)
    assert win.open_project(source)
    assert len(win.recovery_questions) == 1
    assert len(win.ctx.document.project.pages) == 2 and win.isWindowModified()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_open_and_open_recent_refuse_a_fifo_with_a_message(make_window, tmp_path):
    # Reading it would wait for a writer forever and freeze the window (pytest's timeout bounds it).
    fifo = tmp_path / "pipe.comic"
    os.mkfifo(fifo)
    win = make_window()
    win.settings.add_recent(fifo)
    assert not win.open_project(fifo)
    [(title, text)] = win.informed
    assert title == "Cannot Open Project" and str(fifo) in text and "not a regular file" in text
    assert win.ctx.document.path is None


# ------------------------------------------------------------------ files that move or meet their copies


def _sample_file(path: Path) -> dict[str, bytes]:
    """The sample project (images of every kind) saved at ``path``; its assets' bytes by hash."""
    project, store, hashes = build_sample_project()
    save_project(path, project, store)
    return {digest: store.get(digest) for digest in hashes.values()}


def _assert_complete(path: Path, pages: int, assets: dict[str, bytes]) -> None:
    project, store = load_project(path)
    assert len(project.pages) == pages
    assert {digest: store.get(digest) for digest in assets} == assets


def test_save_save_as_and_autosave_after_the_open_file_moves_or_changes(make_window, qtbot, tmp_path, monkeypatch):
    source = tmp_path / "book.comic"
    assets = _sample_file(source)
    win = make_window()
    messages = []
    win.ctx.message.connect(messages.append)
    assert win.open_project(source)
    pages = len(win.ctx.document.project.pages)

    win.action_map["add_page"].trigger()
    source.rename(tmp_path / "moved away.comic")
    win.action_map["save"].trigger()
    assert win.informed == [] and not win.isWindowModified()
    _assert_complete(source, pages + 1, assets)  # written where the title says, images and all

    win.action_map["add_page"].trigger()
    source.unlink()
    recovery = win.autosave.write_now(wait=True)
    qtbot.waitUntil(lambda: win.autosave.last_path == recovery)  # the worker's report reached the window
    assert [m for m in messages if "Autosave failed" in m] == []
    _assert_complete(recovery, pages + 2, assets)

    save_as = tmp_path / "second.comic"
    monkeypatch.setattr(win, "choose_save_path", lambda: str(save_as))
    win.action_map["save_as"].trigger()
    assert win.informed == [] and win.ctx.document.path == save_as
    assert not recovery.exists()  # the work is saved: its recovery (under the old name) went
    save_as.write_bytes(b"overwritten in place by something else")
    win.action_map["add_page"].trigger()
    win.action_map["save"].trigger()
    assert win.informed == []
    _assert_complete(save_as, pages + 3, assets)
    assert (tmp_path / "second.comic.bak").read_bytes() == b"overwritten in place by something else"


def test_a_copy_never_offers_nor_deletes_the_originals_recovery(make_window, tmp_path):
    original = tmp_path / "book.comic"
    _sample_file(original)
    first = make_window()
    assert first.open_project(original)
    pages = len(first.ctx.document.project.pages)
    first.action_map["add_page"].trigger()
    first.action_map["add_page"].trigger()
    crashed = first.autosave.write_now(wait=True)
    crash(first)
    copy = tmp_path / "copy of book.comic"
    shutil.copyfile(original, copy)  # the same project id, another file

    second = make_window(recovery_answer=RESTORE)
    assert second.open_project(copy)
    assert second.recovery_questions == []  # the original's unsaved work is not the copy's
    second.action_map["add_page"].trigger()
    second.autosave.write_now(wait=True)
    second.action_map["save"].trigger()
    assert recovery_files(tmp_path) == [crashed]  # the copy's save removed its own, not the original's

    third = make_window(recovery_answer=RESTORE)
    assert third.open_project(original)
    [offered] = third.recovery_questions
    assert offered.path == crashed and offered.source_path == original
    assert len(third.ctx.document.project.pages) == pages + 2  # the crashed session's work is back


def test_a_file_moved_after_a_crash_gets_its_unsaved_work_back(make_window, tmp_path):
    original = tmp_path / "book.comic"
    assets = _sample_file(original)
    first = make_window()
    assert first.open_project(original)
    pages = len(first.ctx.document.project.pages)
    first.action_map["add_page"].trigger()
    crashed = first.autosave.write_now(wait=True)
    crash(first)
    moved = tmp_path / "renamed" / "Book, final.comic"
    moved.parent.mkdir()
    original.rename(moved)  # the user tidies up before starting the app again

    second = make_window(recovery_answer=RESTORE)
    assert second.open_project(moved)
    [offered] = second.recovery_questions
    assert offered.path == crashed and offered.source_path == original
    doc = second.ctx.document
    assert doc.path == moved and len(doc.project.pages) == pages + 1  # saves where the file is now
    second.action_map["save"].trigger()
    assert second.informed == [] and not original.exists()
    _assert_complete(moved, pages + 1, assets)
    assert recovery_files(tmp_path) == []  # the restored recovery is gone with the save
    assert make_window().offer_recoveries() == 0


_OTHER_COPY_OF_THE_APP = """
import sys
from comic_studio.core import autosave, editing
from comic_studio.core.document import Document
doc = Document.open(sys.argv[1])
editing.add_page(doc)
owner = autosave.RecoveryOwner()
print(autosave.write_recovery(doc.project, doc.assets, doc.path, owner=owner), flush=True)
sys.stdin.read()  # runs until the test kills it
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_two_copies_of_the_app_on_one_file_keep_their_recoveries_apart(make_window, tmp_path):
    import os
    import subprocess
    import sys

    source = tmp_path / "shared.comic"
    _sample_file(source)
    env = {**os.environ, "COMIC_STUDIO_STATE_DIR": str(tmp_path / "state")}
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_COPY_OF_THE_APP, str(source)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        others = Path(other.stdout.readline().strip())
        assert others.exists()
        win = make_window(recovery_answer=RESTORE)
        assert win.offer_recoveries() == 0  # the other copy is running: its autosave is no crash
        assert win.open_project(source) and win.recovery_questions == []
        win.action_map["add_page"].trigger()
        mine = win.autosave.write_now(wait=True)
        assert mine != others and sorted(recovery_files(tmp_path)) == sorted([mine, others])
        win.action_map["save"].trigger()
        assert recovery_files(tmp_path) == [others]  # this copy's save leaves the other's work alone
    finally:
        other.kill()
        other.wait(30)
    assert others.exists()
    later = make_window(recovery_answer=LATER)
    assert later.offer_recoveries() == 1  # killed: now it is a crash, offered at the next start
    assert later.recovery_questions[0].path == others


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_killed_saves_leave_nothing_once_the_file_is_opened_or_the_app_starts(make_window, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    target = work / "big.comic"
    assert kill_inside_a_write(target, work)  # a real child process, killed inside its save
    # The window opens the small sample in its place (leftovers belong to the name, not to the
    # content): a window torn down while it still paints many page thumbnails crashes in Qt tests,
    # a separate bug (reported).
    _sample_file(tmp_path / "small.comic")
    shutil.copyfile(tmp_path / "small.comic", target)
    win = make_window()
    assert win.open_project(target)
    assert [p.name for p in work.iterdir()] == ["big.comic"]

    recovery_folder = tmp_path / "state" / "recovery"
    assert kill_inside_a_write(target, recovery_folder, "recovery")  # … inside an autosave
    restart = make_window()
    assert restart.offer_recoveries() == 1  # the complete one written before is still offered
    assert [p.name for p in recovery_folder.iterdir()] == [p.name for p in recovery_files(tmp_path)]


def test_recovery_dialog_buttons(qtbot):
    recovery = core_autosave.Recovery(Path("/x.recovery.comic"), "p1", "My book", None, datetime.now().astimezone())
    for label, expected in (("Restore", RESTORE), ("Discard", DISCARD), ("Later", LATER)):
        dialog = RecoveryDialog(recovery)
        qtbot.addWidget(dialog)
        [button] = [b for b in dialog.findChildren(QPushButton) if b.text() == label]
        button.click()
        assert dialog.choice == expected
        assert "My book" in dialog.findChildren(QLabel)[0].text()


# ------------------------------------------------------------------ preferences


def test_preferences_persist_and_apply(make_window, tmp_path, monkeypatch):
    win = make_window()

    def fill_and_accept(dialog):
        dialog.projects_folder.edit.setText(str(tmp_path / "projects"))
        dialog.external_models_folder.edit.setText(str(tmp_path / "ComfyUI" / "models"))
        dialog.page_preset.setCurrentIndex(dialog.page_preset.findData("manga-b5"))
        dialog.reading_direction.setCurrentIndex(dialog.reading_direction.findData(ReadingDirection.RTL))
        dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
        dialog.autosave.setValue(2)
        dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
        dialog.pose_clip_model.setText(" openclip-vit-bigg-14 ")
        dialog.dtype.setCurrentIndex(dialog.dtype.findData("bfloat16"))
        dialog.memory_mode.setCurrentIndex(dialog.memory_mode.findData("model-offload"))
        assert not dialog.allow_pickled_weights.isChecked()  # off until the user turns it on
        dialog.allow_pickled_weights.setChecked(True)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(PreferencesDialog, "exec", fill_and_accept)
    win.action_map["preferences"].trigger()
    saved, problem = load_settings()
    assert problem == ""
    assert saved.projects_folder == str(tmp_path / "projects")
    assert saved.external_models_folder == str(tmp_path / "ComfyUI" / "models")
    assert (saved.default_page_preset, saved.reading_direction, saved.theme, saved.autosave_minutes, saved.device) == (
        "manga-b5",
        ReadingDirection.RTL,
        "dark",
        2,
        "cpu",
    )
    assert saved.pose_clip_model == "openclip-vit-bigg-14"
    assert (saved.dtype, saved.memory_mode) == ("bfloat16", "model-offload")
    from comic_studio.generation.models.pickle_policy import pickles_allowed

    assert saved.allow_pickled_weights and pickles_allowed()  # the next job reads the user's choice
    # The generation engine starts with them (and a running one takes them before its next job).
    engine = win.render_service.engine
    assert (engine.settings.device, engine.settings.dtype, engine.settings.memory_mode) == (
        "cpu",
        "bfloat16",
        "model-offload",
    )
    assert win.autosave.timer.interval() == 2 * 60_000
    assert win.action_map["theme_dark"].isChecked()
    # New projects follow the new defaults.
    win.action_map["new"].trigger()
    project = win.ctx.document.project
    assert project.page_format.preset == "manga-b5" and project.reading_direction is ReadingDirection.RTL
    win.set_theme("light")


def test_preferences_cancel_changes_nothing(make_window, monkeypatch):
    win = make_window()
    before = win.settings.model_copy(deep=True)

    def edit_and_cancel(dialog):
        dialog.autosave.setValue(0)
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(PreferencesDialog, "exec", edit_and_cancel)
    win.action_map["preferences"].trigger()
    assert win.settings == before


# ------------------------------------------------------------------ export


def two_page_window(make_window):
    win = make_window()
    win.action_map["add_page"].trigger()
    return win


def test_export_pdf_from_the_menu_on_a_worker(make_window, qtbot, tmp_path, monkeypatch):
    win = two_page_window(make_window)
    target = tmp_path / "out" / "book.pdf"
    asked = []

    def choose(kind):
        asked.append(kind)
        return ExportOptions("pdf", target, dpi=100, bleed=True, trim_marks=True)

    monkeypatch.setattr(win, "choose_export_options", choose)
    progress = []
    with qtbot.waitSignal(win.action_map["export_pdf"].triggered, timeout=1000):
        win.action_map["export_pdf"].trigger()
    thread = win._exports[0]
    thread.progressed.connect(lambda d, t: progress.append((d, t)))
    qtbot.waitUntil(lambda: bool(thread.result or thread.error), timeout=30_000)
    assert asked == ["pdf"] and thread.error == ""
    reader = PdfReader(target)
    assert len(reader.pages) == 2
    page = reader.pages[0]
    assert float(page.trimbox.width) == pytest.approx(win.ctx.document.project.page_format.width)
    assert float(page.mediabox.width) > float(page.bleedbox.width)  # slug for the crop marks
    qtbot.waitUntil(lambda: "Exported" in win.statusBar().currentMessage(), timeout=5000)


def test_export_png_and_cbz(make_window, qtbot, tmp_path):
    win = two_page_window(make_window)
    png = win.start_export(ExportOptions("png", tmp_path / "pages", dpi=50, bleed=False))
    qtbot.waitUntil(lambda: bool(png.result or png.error), timeout=30_000)
    assert sorted(p.name for p in (tmp_path / "pages").glob("*.png")) == ["page-001.png", "page-002.png"]
    cbz = win.start_export(ExportOptions("cbz", tmp_path / "book.cbz", dpi=50, bleed=False, image_format="jpeg"))
    qtbot.waitUntil(lambda: bool(cbz.result or cbz.error), timeout=30_000)
    names = zipfile.ZipFile(tmp_path / "book.cbz").namelist()
    assert "ComicInfo.xml" in names and "page-001.jpg" in names


def test_cancelled_export_writes_nothing(make_window, qtbot, tmp_path):
    win = two_page_window(make_window)
    target = tmp_path / "cancelled.pdf"
    thread = win.start_export(ExportOptions("pdf", target, dpi=72))
    thread.cancel()  # before the first page: the writer checks between pages
    qtbot.waitUntil(lambda: bool(thread.error), timeout=30_000)
    assert "cancelled" in thread.error
    assert not target.exists()
    assert "cancelled" in win.statusBar().currentMessage()


def test_export_error_is_shown_as_a_message(make_window, qtbot, tmp_path):
    win = two_page_window(make_window)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    thread = win.start_export(ExportOptions("pdf", blocker / "book.pdf", dpi=72))
    qtbot.waitUntil(lambda: bool(win.informed), timeout=30_000)
    title, text = win.informed[0]
    assert title == "Export Failed" and "Traceback" not in text and text == thread.error


def test_export_dialog_reads_its_form(qtbot, tmp_path):
    doc = Document.new()
    defaults = default_options(doc.project, "cbz", tmp_path / "book.comic")
    assert defaults.path == tmp_path / "book.cbz" and defaults.dpi == 150 and not defaults.bleed
    dialog = ExportDialog(doc.project, default_options(doc.project, "pdf", tmp_path / "book.comic"))
    qtbot.addWidget(dialog)
    dialog.path.setText(str(tmp_path / "print"))
    dialog.dpi.setValue(600)
    dialog.trim_marks.setChecked(True)
    dialog.bleed.setChecked(False)
    options = dialog.options()
    assert options == ExportOptions("pdf", tmp_path / "print.pdf", dpi=600, bleed=False, trim_marks=True)
    assert default_options(doc.project, "png", tmp_path / "book.comic").path == tmp_path / "book-pages"


def test_run_export_without_qt_matches_the_pipeline(tmp_path):
    doc = Document.new()
    editing.add_page(doc)
    out = run_export(doc.project, doc.assets, ExportOptions("pdf", tmp_path / "a.pdf", dpi=72))
    assert len(PdfReader(io.BytesIO(out.read_bytes())).pages) == 1


def test_export_names_the_balloons_whose_text_is_cut(make_window, qtbot, tmp_path):
    from comic_studio.core.model import Balloon, Box

    win = two_page_window(make_window)
    page = win.ctx.document.project.pages[1]
    panel = page.panels_in_order()[0]
    panel.balloons.append(Balloon(text=" ".join(["far too much to say here"] * 12), box=Box(x=20, y=20, w=50, h=30)))
    thread = win.start_export(ExportOptions("png", tmp_path / "pages", dpi=40, bleed=False))
    qtbot.waitUntil(lambda: bool(win.informed), timeout=30_000)
    assert thread.error == ""
    title, text = win.informed[0]
    assert "Overset" in title
    assert "1 balloon has more text than fits: page 2 panel 1." in text
