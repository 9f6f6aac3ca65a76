"""The main window: the page canvas in the middle, docks around it, menus and toolbar from the
declared actions, files (new/open/save/recent/export), autosave and crash recovery.

Every question to the user goes through :meth:`MainWindow.ask`, every error through
:meth:`MainWindow.inform`, every file pick through ``choose_*``: tests monkeypatch these few
methods instead of fighting modal dialogs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QToolBar, QWidget
from shiboken6 import isValid

from comic_studio import __version__
from comic_studio.core import autosave as core_autosave, editing
from comic_studio.core.autosave import Recovery
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import load_templates, page_format
from comic_studio.core.layout.templates import apply_template as template_panels
from comic_studio.core.model import Page, Project
from comic_studio.core.session_cache import remove_abandoned_sessions
from comic_studio.core.settings import AppSettings, SettingsError, load_settings, save_settings
from comic_studio.ui import actions as declared
from comic_studio.ui.autosave import Autosaver
from comic_studio.ui.background import wait_painting
from comic_studio.ui.canvas import PageCanvas
from comic_studio.ui.canvas.painting import shutdown_shared_image_cache
from comic_studio.ui.characters import CharacterLibrary
from comic_studio.ui.context import StudioContext
from comic_studio.ui.dialogs.export_dialog import (
    ExportDialog,
    ExportOptions,
    ExportThread,
    default_options,
    start_export,
)
from comic_studio.ui.dialogs.preferences import PreferencesDialog
from comic_studio.ui.dialogs.recovery import DISCARD, RESTORE, ask_recovery, restore_document, worth_offering
from comic_studio.ui.inspector import PanelInspector
from comic_studio.ui.outliner import StoryOutliner
from comic_studio.ui.pages_strip import PagesStrip
from comic_studio.ui.queue_panel import QueuePanel
from comic_studio.ui.render_service import RenderService
from comic_studio.ui.theme import apply_theme
from comic_studio.ui.wheel_guard import install_wheel_guard

APP_NAME = "Comic Studio"
FIRST_PAGE_TEMPLATE = "three-tier"
PROJECT_FILTER = "Comic Studio projects (*.comic)"
STATUS_TIMEOUT_MS = 6000


def new_document(settings: AppSettings) -> Document:
    """A fresh project with the preferred page preset and reading direction and one page, so the
    canvas has something to draw on. Built directly (not through an edit) so it starts clean."""
    try:
        fmt = page_format(settings.default_page_preset)
    except ComicStudioError:
        fmt = page_format("us-comic")
    direction = settings.reading_direction
    first = Page(panels=template_panels(FIRST_PAGE_TEMPLATE, fmt, direction), template_id=FIRST_PAGE_TEMPLATE)
    return Document(Project(title="Untitled comic", page_format=fmt, reading_direction=direction, pages=[first]))


class MainWindow(QMainWindow):
    def __init__(
        self,
        ctx: StudioContext | None = None,
        settings: AppSettings | None = None,
        render_service: RenderService | None = None,
    ):
        super().__init__()
        self.setObjectName("main_window")
        install_wheel_guard()  # also when embedded or tested without create_application
        if settings is None:
            settings, problem = load_settings()
        else:
            problem = ""
        self.settings = settings
        if ctx is None:
            ctx = StudioContext(new_document(settings), self)
        self.ctx = ctx
        self._restored_unsaved = False
        """True after restoring a recovery: the document differs from its file although the
        freshly cleared undo stack is clean."""
        self._restored_from: Path | None = None
        """The recovery file restored, deleted by the next save (its key may name a file that
        moved since: then the save's own discard does not find it)."""
        self._exports: list[ExportThread] = []

        self.render_service = render_service or RenderService(self.ctx, parent=self)
        self.render_service.cluster_fallback = self._render_here_instead
        self._apply_engine_settings()
        self.canvas = PageCanvas(self.ctx, self)
        self.canvas.setObjectName("page_canvas")
        self.canvas.follow_renders(self.render_service)  # renders in progress show in their panels
        self.setCentralWidget(self.canvas)
        self.docks: dict[str, QDockWidget] = {}
        self._build_docks()

        self.action_map = declared.build_actions(self, lambda name: getattr(self, name))
        self._build_menus_and_toolbar()
        self._build_status_bar()

        self.autosave = Autosaver(self.ctx, settings.autosave_minutes, self)
        self._connect_context()
        self._restore_layout()
        self.action_map[f"theme_{settings.theme}"].setChecked(True)
        self._update_title()
        self._update_page_label()
        if problem:
            QTimer.singleShot(0, self, lambda: self.ctx.message.emit(problem))

    # ================================================================== construction
    def _build_docks(self) -> None:
        left, right, bottom = (
            Qt.DockWidgetArea.LeftDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.pages_strip = PagesStrip(self.ctx, self)
        self.story_outliner = StoryOutliner(self.ctx, self.render_service, self)
        self.inspector = PanelInspector(self.ctx, self.render_service, self)
        self.character_library = CharacterLibrary(self.ctx, self, render_service=self.render_service)
        self.render_service.loras_missing.connect(self.offer_lora_training)
        self.render_service.identities_missing.connect(self.offer_identity_training)
        self.queue_panel = QueuePanel(self.ctx, self.render_service, self)
        # Pages keep the full left edge; the wide editors share the right edge as tabs; the queue
        # sits under the canvas only (the side docks own the bottom corners).
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self._add_dock("pages", "Pages", self.pages_strip, left)
        self._add_dock("inspector", "Inspector", self.inspector, right)
        self.inspector.beat_requested.connect(self._show_beat)
        self._add_dock("story", "Story", self.story_outliner, right)
        self._add_dock("characters", "Characters", self.character_library, right)
        self._add_dock("queue", "Queue", self.queue_panel, bottom)
        self.tabifyDockWidget(self.docks["inspector"], self.docks["story"])
        self.tabifyDockWidget(self.docks["story"], self.docks["characters"])
        # A first start shows the Story dock, where a book begins (a saved layout restores the tab
        # the author left raised).
        self.docks["story"].raise_()
        self.resizeDocks([self.docks["pages"], self.docks["inspector"]], [200, 460], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["queue"]], [120], Qt.Orientation.Vertical)
        if hasattr(self.canvas, "panel_activated"):
            self.canvas.panel_activated.connect(self._on_panel_activated)

    def _add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")  # saveState/restoreState identify docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock

    def _steady_twin(self, source: QAction, label: str) -> QAction:
        """A toolbar copy of ``source`` with a fixed label; the full text becomes its tooltip."""
        twin = QAction(label, source)  # owned by the source: it can never outlive it and see its signals
        twin.triggered.connect(source.trigger)

        def follow() -> None:
            if not (isValid(source) and isValid(twin)):  # QAction's destructor still emits changed()
                return
            twin.setEnabled(source.isEnabled())
            twin.setToolTip(source.text().replace("&", ""))

        source.changed.connect(follow)
        follow()
        return twin

    def _build_menus_and_toolbar(self) -> None:
        undo = self.ctx.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.setObjectName("action_undo")
        redo = self.ctx.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        redo.setObjectName("action_redo")
        self.action_map["undo"], self.action_map["redo"] = undo, redo

        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("menu_recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        theme_menu = QMenu("&Theme", self)
        theme_menu.addActions([self.action_map[f"theme_{t}"] for t in ("system", "light", "dark")])
        docks_menu = QMenu("&Docks", self)
        docks_menu.addActions([dock.toggleViewAction() for dock in self.docks.values()])
        self.templates_menu = self._templates_menu()
        slots = {
            "undo": undo,
            "redo": redo,
            "recent": self.recent_menu,
            "theme": theme_menu,
            "docks": docks_menu,
            "templates": self.templates_menu,
        }
        self.menus = declared.build_menus(self.menuBar(), self.action_map, slots)
        self.toolbar = QToolBar("Main", self)
        self.toolbar.setObjectName("toolbar_main")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # The toolbar shows a steady "Undo"/"Redo" (the menu items say "Undo Move balloon"): text that
        # changes with every edit would make every toolbar button after them jump.
        toolbar_actions = {
            **self.action_map,
            "undo": self._steady_twin(undo, "Undo"),
            "redo": self._steady_twin(redo, "Redo"),
        }
        declared.build_toolbar(self.toolbar, toolbar_actions, slots)
        self.addToolBar(self.toolbar)

    def _templates_menu(self) -> QMenu:
        menu = QMenu("Apply &Template", self)
        menu.setObjectName("menu_templates")
        by_count: dict[int, list] = {}
        for template in load_templates().values():
            by_count.setdefault(template.panel_count, []).append(template)
        for count in sorted(by_count):
            sub = menu.addMenu(f"{count} panel{'s' if count > 1 else ''}")
            for template in by_count[count]:
                action = sub.addAction(template.name)
                action.setObjectName(f"template_{template.id}")
                action.setToolTip(template.description)
                action.triggered.connect(lambda _c=False, tid=template.id: self.apply_template(tid))
        return menu

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.page_label = QLabel()
        self.page_label.setObjectName("status_page")
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("status_zoom")
        bar.addPermanentWidget(self.page_label)
        bar.addPermanentWidget(self.zoom_label)

    def _connect_context(self) -> None:
        # Bound methods, not lambdas: Qt drops a bound slot when the window is destroyed, while
        # a lambda would still run against a deleted window during teardown.
        self.ctx.message.connect(self._show_message)
        self.render_service.models_missing.connect(self.offer_models)
        self.ctx.undo_stack.cleanChanged.connect(self._update_title)
        self.ctx.document_replaced.connect(self._on_document_replaced)
        self.ctx.document_changed.connect(self._on_document_changed)
        self.ctx.selection_changed.connect(self._update_page_label)
        if hasattr(self.canvas, "zoom_changed"):
            self.canvas.zoom_changed.connect(self._update_zoom_label)
        # The canvas overlay and the View action stay in step; the inspector's racig "Show masks"
        # turns the canvas overlay on too (the masks are then seen over the panel itself).
        self.canvas.pose_overlay_toggled.connect(self.action_map["pose_overlay"].setChecked)
        racig_tools = getattr(self.inspector, "racig", None)
        if racig_tools is not None and hasattr(racig_tools, "show_masks"):
            racig_tools.show_masks.toggled.connect(self._racig_masks_toggled)
        QTimer.singleShot(0, self, self._update_zoom_label)

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, STATUS_TIMEOUT_MS)

    def _on_document_replaced(self, _doc) -> None:
        self._update_title()
        self._update_page_label()

    def _on_document_changed(self, _changes) -> None:
        self._update_page_label()
        self._update_title()

    # ================================================================== dialogs (test seams)
    def ask(self, title: str, text: str, buttons: tuple[str, ...], default: str | None = None) -> str:
        """Ask a question with the given button labels; returns the label chosen (the last
        button, conventionally "Cancel", when the box is closed)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self)
        roles = {"Cancel": QMessageBox.ButtonRole.RejectRole, "Discard": QMessageBox.ButtonRole.DestructiveRole}
        made = {label: box.addButton(label, roles.get(label, QMessageBox.ButtonRole.AcceptRole)) for label in buttons}
        if default in made:
            box.setDefaultButton(made[default])
        box.exec()
        clicked = box.clickedButton()
        return next((label for label, button in made.items() if button is clicked), buttons[-1])

    def offer_lora_training(self, characters: list[tuple[str, str]]) -> None:
        """StoryBooth refused panels whose characters have no trained LoRA: offer to train the first."""
        self._offer_training(characters, "StoryBooth draws each character with its own trained LoRA", "LoRA",
                             "render these panels with the consistent backend", self.character_library.train_lora)  # fmt: skip

    def offer_identity_training(self, characters: list[tuple[str, str]]) -> None:
        """StableIdentity refused panels whose characters have no identity tokens: offer Train identity…."""
        self._offer_training(characters, "StableIdentity draws each character with its learned identity tokens",
                             "identity", "choose another method for these panels",
                             self.character_library.train_identity)  # fmt: skip

    def _offer_training(self, characters: list[tuple[str, str]], why: str, noun: str, otherwise: str,
                        train: Callable[[str], object]) -> None:  # fmt: skip
        """Ask whether to train the first of ``characters`` now; yes: the library's dialog for it."""
        names = ", ".join(name for _id, name in characters)
        first_id, first = characters[0]
        text = (f"{why}, and {names} {'has' if len(characters) == 1 else 'have'} none (or it is switched off). "
                f"Train {first}'s {noun} now? (Or {otherwise}.)")  # fmt: skip
        if self.ask(f"Train {'a' if noun == 'LoRA' else 'an'} {noun} first", text,
                    (f"Train {first}'s {noun}…", "Cancel")) != "Cancel":  # fmt: skip
            self.docks["characters"].raise_()
            train(first_id)

    def inform(self, title: str, text: str, error: bool = True) -> None:
        """Show a message (errors: the one-line reason, never a traceback)."""
        icon = QMessageBox.Icon.Warning if error else QMessageBox.Icon.Information
        QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self).exec()

    def ask_recovery(self, recovery: Recovery) -> str:
        return ask_recovery(recovery, self)

    def choose_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Project", str(self._start_folder()), PROJECT_FILTER)
        return path or None

    def choose_save_path(self) -> str | None:
        doc = self.ctx.document
        suggestion = doc.path or self._start_folder() / f"{doc.project.title}.comic"
        path, _ = QFileDialog.getSaveFileName(self, "Save Project As", str(suggestion), PROJECT_FILTER)
        return path or None

    def choose_export_options(self, kind: str) -> ExportOptions | None:
        dialog = ExportDialog(
            self.ctx.document.project, default_options(self.ctx.document.project, kind, self._export_base()), self
        )
        return dialog.options() if dialog.exec() else None

    def edit_preferences(self) -> bool:
        """Show the preferences dialog; True when the user pressed OK (settings updated)."""
        dialog = PreferencesDialog(self.settings, self)
        if not dialog.exec():
            return False
        dialog.apply_to(self.settings)
        return True

    # ================================================================== files
    @property
    def is_modified(self) -> bool:
        return self._restored_unsaved or not self.ctx.undo_stack.isClean()

    def maybe_save(self) -> bool:
        """Before replacing or closing the document: True when it is safe to go on."""
        if not self.is_modified:
            return True
        answer = self.ask(
            "Unsaved Changes",
            f"Save the changes to “{self.ctx.document.display_name}”?",
            ("Save", "Discard", "Cancel"),
            default="Save",
        )
        if answer == "Save":
            return self.save()
        if answer == "Discard":
            self.autosave.discard()
            return True
        return False

    def new_project(self) -> bool:
        if not self.maybe_save():
            return False
        self._replace_document(new_document(self.settings))
        self.ctx.message.emit("New project")
        return True

    def open_project(self, path: str | Path | None = None) -> bool:
        """Open ``path`` (or ask for one). On any problem the current document stays open."""
        if path is None:
            if not self.maybe_save():
                return False
            chosen = self.choose_open_path()
            if not chosen:
                return False
            path = chosen
        elif not self.maybe_save():
            return False
        path = Path(path)
        try:
            # Opening copies the file into the session cache and checks every image: seconds for a
            # large book, so off the GUI thread while the window keeps painting.
            doc = wait_painting(Document.open, path)
        except (ComicStudioError, OSError) as exc:
            self.inform("Cannot Open Project", str(exc))
            if not path.exists():
                self.settings.remove_recent(path)
                self._save_settings()
            return False
        self._replace_document(doc)
        self._remember_recent(path)
        self.ctx.message.emit(f"Opened {path.name}")
        recovery = core_autosave.find_recovery(path, doc.project.id)
        if recovery is not None:
            info = next((r for r in core_autosave.pending_recoveries() if r.path == recovery), None)
            if info is not None:
                self._offer(info, opened_as=path)  # the file may have moved since the crash
        return True

    def save(self) -> bool:
        doc = self.ctx.document
        if doc.path is None:
            return self.save_as()
        return self._save_to(doc.path)

    def save_as(self) -> bool:
        chosen = self.choose_save_path()
        if not chosen:
            return False
        path = Path(chosen)
        if path.suffix.lower() != ".comic":
            path = path.with_name(path.name + ".comic")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        previous_path = self.ctx.document.path
        try:
            self.ctx.document.save(path)
        except (ComicStudioError, OSError, ValueError) as exc:
            self.inform("Cannot Save Project", str(exc))
            return False
        self.ctx.mark_saved()
        self._restored_unsaved = False
        self.autosave.note_saved(path)
        self.autosave.discard(also_for=(previous_path,))
        if self._restored_from is not None:  # a recovery restored into a file that moved after the crash
            try:
                core_autosave.delete_recovery_file(self._restored_from)
            except ComicStudioError as exc:
                self.ctx.message.emit(str(exc))
            self._restored_from = None
        self._remember_recent(path)
        self._update_title()
        self.ctx.message.emit(f"Saved {path.name}")
        return True

    def _replace_document(self, doc: Document) -> None:
        self._restored_unsaved = False
        self.ctx.set_document(doc)
        self._update_title()

    def _remember_recent(self, path: Path) -> None:
        self.settings.add_recent(path)
        self._save_settings()
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        for index, entry in enumerate(self.settings.recent_files):
            action = menu.addAction(f"&{index + 1}  {Path(entry).name}" if index < 9 else Path(entry).name)
            action.setToolTip(entry)
            action.setStatusTip(entry)
            action.triggered.connect(lambda _c=False, p=entry: self.open_project(p))
        if self.settings.recent_files:
            menu.addSeparator()
            menu.addAction("Clear Recent Files", self._clear_recent)
        menu.setEnabled(bool(self.settings.recent_files))

    def _clear_recent(self) -> None:
        self.settings.recent_files = []
        self._save_settings()
        self._fill_recent_menu()

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings)
        except SettingsError as exc:
            self.ctx.message.emit(str(exc))

    def _start_folder(self) -> Path:
        doc_path = self.ctx.document.path
        return doc_path.parent if doc_path else self.settings.effective_projects_folder()

    def _export_base(self) -> Path:
        doc = self.ctx.document
        return doc.path or self.settings.effective_projects_folder() / f"{doc.project.title}.comic"

    # ================================================================== recovery
    def report_plugin_errors(self) -> None:
        """Plugins that failed to load are logged once by the registry; say so once here too."""
        from comic_studio.generation.registry import plugin_errors

        errors = plugin_errors()
        if errors:
            names = ", ".join(sorted(errors))
            self.ctx.message.emit(f"{len(errors)} plugin(s) failed to load ({names}) — see Help → Plugins…")

    def offer_recoveries(self) -> int:
        """At start-up: offer each recovery file newer than its project file (Restore / Discard /
        Later). Stale ones (their file was saved afterwards) are removed quietly. Returns how
        many were offered."""
        # What killed processes left: autosaves' temporary files, sessions' cached copies.
        core_autosave.clean_recovery_folder()
        remove_abandoned_sessions()
        offered = 0
        for recovery in core_autosave.pending_recoveries():
            if not worth_offering(recovery):
                self._discard_recovery(recovery)
                continue
            offered += 1
            if self._offer(recovery) == RESTORE:
                break  # one document at a time; the rest are offered at the next start
        return offered

    def _offer(self, recovery: Recovery, opened_as: Path | None = None) -> str:
        """Ask about ``recovery``; restore it into a document saved to ``opened_as`` when given
        (the file the user just opened), else to the file the recovery names."""
        choice = self.ask_recovery(recovery)
        if choice == RESTORE:
            try:
                doc = restore_document(recovery, opened_as)
            except (ComicStudioError, OSError) as exc:
                self.inform("Cannot Restore", str(exc))
                return choice
            self.ctx.set_document(doc)
            self._restored_unsaved = True
            self._restored_from = recovery.path
            self._update_title()
            self.ctx.message.emit(f"Restored unsaved work of “{recovery.title}” — save to keep it")
        elif choice == DISCARD:
            self._discard_recovery(recovery)
        return choice

    def _discard_recovery(self, recovery: Recovery) -> None:
        try:
            recovery.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.ctx.message.emit(f"Cannot delete the recovery file {recovery.path}: {exc.strerror or exc}")

    # ================================================================== export
    def export_pdf(self) -> ExportThread | None:
        return self.export("pdf")

    def export_png(self) -> ExportThread | None:
        return self.export("png")

    def export_cbz(self) -> ExportThread | None:
        return self.export("cbz")

    def export(self, kind: str) -> ExportThread | None:
        if not self.ctx.document.project.pages:
            self.inform("Nothing to Export", "The project has no pages yet: add a page first.")
            return None
        options = self.choose_export_options(kind)
        if options is None:
            return None
        return self.start_export(options)

    def start_export(self, options: ExportOptions) -> ExportThread:
        doc = self.ctx.document
        thread = start_export(doc.project, doc.assets, options, self)
        self._exports.append(thread)
        thread.succeeded.connect(lambda path, t=thread: self._on_export_succeeded(path, t.warning))
        thread.cancelled.connect(self._show_message)
        thread.failed.connect(self._on_export_failed)
        thread.done.connect(self._forget_finished_exports)
        return thread

    def _on_export_succeeded(self, path: Path, warning: str = "") -> None:
        self.ctx.message.emit(f"Exported {path}")
        if warning:  # overset balloons: the file is written, the author should still know
            self.inform("Exported, With Overset Text", f"Exported {path}.\n\n{warning}")

    def _on_export_failed(self, text: str) -> None:
        self.inform("Export Failed", text)

    def _forget_finished_exports(self) -> None:
        self._exports = [t for t in self._exports if t.error == "" and t.result is None]

    # ================================================================== edit / view / page / panel
    def delete_selected(self) -> None:
        self.autosave.write_now()
        self.canvas.delete_selected()

    def show_preferences(self) -> None:
        if not self.edit_preferences():
            return
        self._save_settings()
        apply_theme(self.settings.theme)
        self.action_map[f"theme_{self.settings.theme}"].setChecked(True)
        self.autosave.set_interval(self.settings.autosave_minutes)
        self._apply_engine_settings()
        self.ctx.message.emit("Preferences saved")

    def _render_here_instead(self, message: str) -> bool:
        """The render cluster cannot be used: render on this computer instead, or not at all."""
        answer = self.ask("Render Cluster", f"{message}\n\nRender on this computer instead?",
                          ("Render Here", "Cancel"), default="Render Here")  # fmt: skip
        return answer == "Render Here"

    def _apply_engine_settings(self) -> None:
        # Importing generation.settings is cheap (no torch): the engine itself still starts lazily.
        from comic_studio.generation.settings import EngineSettings

        self.render_service.set_engine_settings(
            EngineSettings(
                device=self.settings.device, dtype=self.settings.dtype, memory_mode=self.settings.memory_mode
            )
        )
        cluster = self.settings.render_on == "cluster" and self.settings.cluster_address
        self.render_service.set_render_target(self.settings.cluster_address if cluster else "",
                                              self.settings.cluster_workers)  # fmt: skip

    def set_theme(self, theme: str) -> None:
        self.settings.theme = theme
        apply_theme(theme)
        self._save_settings()

    def zoom_in(self) -> None:
        self.canvas.zoom_in()
        self._update_zoom_label()

    def zoom_out(self) -> None:
        self.canvas.zoom_out()
        self._update_zoom_label()

    def fit_page(self) -> None:
        self.canvas.fit_page()
        self._update_zoom_label()

    def actual_size(self) -> None:
        self.canvas.actual_size()
        self._update_zoom_label()

    def set_show_reading_order(self, on: bool) -> None:
        self.canvas.set_show_reading_order(on)

    def set_show_guides(self, on: bool) -> None:
        self.canvas.set_show_guides(on)

    def set_show_pose_overlay(self, on: bool) -> None:
        self.canvas.set_show_pose_overlay(on)

    def _racig_masks_toggled(self, on: bool) -> None:
        if on:
            self.action_map["pose_overlay"].setChecked(True)

    def set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        self.action_map[f"tool_{name}"].setChecked(True)

    def add_page(self) -> None:
        pages = self.ctx.document.project.pages
        current = self.ctx.current_page
        index = pages.index(current) + 1 if current in pages else len(pages)
        page = self.ctx.edit(editing.add_page, FIRST_PAGE_TEMPLATE, index)
        if page is not None:
            self.ctx.select_page(page.id)

    def duplicate_page(self) -> None:
        page_id = self._require_page()
        if page_id:
            copy = self.ctx.edit(editing.duplicate_page, page_id)
            if copy is not None:
                self.ctx.select_page(copy.id)

    def delete_page(self) -> None:
        page_id = self._require_page()
        if page_id:
            self.autosave.write_now()
            self.ctx.edit(editing.delete_page, page_id)

    def apply_template(self, template_id: str) -> None:
        if self._require_page():
            self.autosave.write_now()
            self.canvas.apply_template(template_id)

    def split_horizontal(self) -> None:
        self.canvas.split_selected("horizontal")

    def split_vertical(self) -> None:
        self.canvas.split_selected("vertical")

    def split_diagonal(self) -> None:
        self.canvas.split_selected("diagonal")

    def merge_selected(self) -> None:
        self.autosave.write_now()
        self.canvas.merge_selected()

    def render_panel(self) -> None:
        if not self.ctx.selected_panel_ids:
            self.ctx.message.emit("Select a panel to render")
            return
        self.render_service.render_panels(list(self.ctx.selected_panel_ids))

    def render_page(self) -> None:
        page_id = self._require_page()
        if page_id:
            self.render_service.render_page(page_id)

    def render_all(self) -> None:
        self.autosave.write_now()
        self.render_service.render_all()

    def show_anime_training(self) -> None:
        """Train AnimeAdapter…: one non-modal dialog; the run lives in the render queue."""
        from comic_studio.ui.anime_training import TrainAnimeAdapterDialog

        dialog = getattr(self, "anime_training_dialog", None)
        if dialog is None:
            dialog = self.anime_training_dialog = TrainAnimeAdapterDialog(self.render_service, self)
        dialog.show()
        dialog.raise_()

    def show_models(self) -> None:
        """Non-modal, one at a time: downloads keep going while the dialog is closed; a fresh one
        (reading the current Preferences) is made when none is downloading."""
        from comic_studio.ui.dialogs.models_dialog import ModelsDialog

        dialog = getattr(self, "models_dialog", None)
        if dialog is None or not dialog.is_downloading():
            if dialog is not None:
                dialog.deleteLater()
            dialog = self.models_dialog = ModelsDialog(self.settings, self)
        dialog.show()
        dialog.raise_()

    def offer_models(self, text: str) -> None:
        """A render lacked models: say which (all of them, with the total size) and offer the
        Models dialog, where they download (never a command to type)."""
        if self.ask("Models needed", text, ("Open Models…", "Close"), default="Open Models…") == "Open Models…":
            self.show_models()

    def open_sample_project(self) -> bool:
        """The bundled sample, laid out and unsaved: a first project to try the studio on."""
        if not self.maybe_save():
            return False
        from comic_studio.workflows.batch import sample_document

        self._replace_document(sample_document())
        self.docks["story"].raise_()
        self.ctx.message.emit(
            "Opened the sample project: its story is in the Story dock; Render All (Ctrl+Shift+A) draws its panels"
        )
        return True

    def show_book(self) -> None:
        from comic_studio.ui.dialogs.book_dialog import BookDialog

        BookDialog(self.ctx, self).exec()

    def show_plugins(self) -> None:
        from comic_studio.ui.dialogs.plugins_dialog import PluginsDialog

        PluginsDialog(self).exec()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME}</b> {__version__}<br>Author comics with AI: story → pages → print.",
        )

    def _require_page(self) -> str | None:
        if self.ctx.current_page_id is None:
            self.ctx.message.emit("No page selected: add a page first")
        return self.ctx.current_page_id

    def _on_panel_activated(self, _panel_id: str) -> None:
        self.docks["inspector"].show()
        self.docks["inspector"].raise_()

    # ================================================================== status / title
    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.ctx.document.display_name}[*] — {APP_NAME}")
        self.setWindowModified(self.is_modified)

    def _update_page_label(self, *_args) -> None:
        pages = self.ctx.document.project.pages
        current = self.ctx.current_page
        if not pages:
            self.page_label.setText("No pages")
        else:
            number = pages.index(current) + 1 if current in pages else 0
            self.page_label.setText(f"Page {number}/{len(pages)}")

    def _update_zoom_label(self, *_args) -> None:
        zoom = getattr(self.canvas, "zoom", None)
        factor = zoom() if callable(zoom) else zoom if isinstance(zoom, (int, float)) else self.canvas.transform().m11()
        self.zoom_label.setText(f"{factor * 100:.0f}%")

    # ================================================================== layout / close
    def _restore_layout(self) -> None:
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.window_geometry.encode("ascii")))
        else:
            self.resize(1440, 900)
        if self.settings.window_state:
            self.restoreState(QByteArray.fromBase64(self.settings.window_state.encode("ascii")))

    def remember_layout(self) -> None:
        self.settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        self.settings.window_state = bytes(self.saveState().toBase64()).decode("ascii")

    def _show_beat(self, beat_id: str) -> None:
        """Inspector's "go to beat": raise the Story dock and select the beat there."""
        dock = self.story_outliner.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()
        self.story_outliner.select_beat(beat_id)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        if not self.maybe_save():
            event.ignore()
            return
        if not self.is_modified:
            self.autosave.discard()
        self.autosave.shutdown()
        for thread in list(self._exports):
            thread.cancel()
            thread.wait(10_000)
        self.render_service.shutdown()
        self.story_outliner.shutdown()  # stop a running parse before Qt tears the widgets down
        shutdown_shared_image_cache()  # the canvas' decode threads
        self.canvas.shutdown()  # the pose overlay's helper thread
        self.inspector.shutdown()  # its thumbnail, mask and pose-browser threads (docks get no closeEvent)
        self.remember_layout()
        self._save_settings()
        event.accept()
