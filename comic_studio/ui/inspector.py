"""The panel inspector dock: everything about the selected panel that is not geometry.

Beat summary, prompt (generated from beat + characters + style, editable), negative prompt,
characters and their pose figures (swap), shot, backend and its settings form, seed (lock,
randomise), result history (accept / discard / compare) and the render buttons.

Every change goes through ``ctx.edit(editing.set_panel_fields, ...)`` and so is one undo step
(typing in the prompt merges into one step until the field loses focus). The inspector repaints
from ``ctx.document_changed`` only when the report touches the inspected panel, its beat, its
results or the characters, so a running "Render all" does not make it rebuild for every panel.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comic_studio.core import editing
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import Panel, ShotType
from comic_studio.generation.backend_api import BackendSettingsError, GenerationBackend
from comic_studio.generation.registry import available_backends, get_backend_class
from comic_studio.ui.context import StudioContext
from comic_studio.ui.focus_out import FocusOut
from comic_studio.ui.inspector_balloon import BalloonInspector
from comic_studio.ui.inspector_racig import RacigTools
from comic_studio.ui.inspector_results import ResultHistory
from comic_studio.ui.settings_form import SettingsForm
from comic_studio.workflows.readiness import Readiness, backend_readiness
from comic_studio.workflows.requests import build_prompt, import_image_settings, panel_seed

SEED_MAX = 2**53 - 1
"""Largest seed the spin box edits exactly (a double holds integers up to 2**53)."""

READINESS_TTL_S = 3.0
"""How long the backend chooser trusts what it found about installed models."""

INTERACTIVE_PRIORITY = 10
"""Priority of a render the user asked for on one panel: ahead of a running "Render all"."""

_WATCHED = (
    ChangeKind.PANELS
    | ChangeKind.RESULTS
    | ChangeKind.STORY
    | ChangeKind.CHARACTERS
    | ChangeKind.STYLES
    | ChangeKind.PAGES
)


class PanelInspector(QScrollArea):
    """Inspector for ``ctx.selected_panel_ids[0]``. ``render_service`` may be ``None`` (render
    buttons disabled). ``beat_requested(beat_id)`` asks the outliner to show a beat."""

    beat_requested = Signal(str)

    def __init__(self, ctx: StudioContext, render_service: Any = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.render_service = render_service
        self.panel_id: str | None = None
        self._updating = False
        self._backend_instances: dict[str, GenerationBackend] = {}
        self._form_backend: tuple[str, Any] | None = None
        self._readiness_cache: dict[tuple[str, str], tuple[float, Readiness]] = {}
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setObjectName("panelInspector")
        self._build()
        ctx.document_changed.connect(self._on_document_changed)
        ctx.document_replaced.connect(lambda _doc: self._follow_selection(force=True))
        ctx.selection_changed.connect(self._follow_selection)
        self._follow_selection(force=True)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        body = QWidget(self)
        self.setWidget(body)
        layout = QVBoxLayout(body)

        self.title = QLabel(body)
        self.title.setObjectName("inspectorTitle")
        self.title.setStyleSheet("font-weight: bold; font-size: 13px;")
        self.empty = QLabel("Select a panel on the page to inspect it.", body)
        self.empty.setWordWrap(True)
        layout.addWidget(self.title)
        # The selected balloon's properties first: while lettering, they are what is being edited.
        self.balloon = BalloonInspector(self.ctx, body)
        layout.addWidget(self.balloon)
        layout.addWidget(self.empty)

        self.details = QWidget(body)
        details = QVBoxLayout(self.details)
        details.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.details)
        layout.addStretch(1)

        # Beat
        beat_box = QGroupBox("Beat", self.details)
        beat_layout = QHBoxLayout(beat_box)
        self.beat_label = QLabel(beat_box)
        self.beat_label.setWordWrap(True)
        self.beat_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.goto_beat = QPushButton("Go to beat", beat_box)
        self.goto_beat.clicked.connect(self._go_to_beat)
        beat_layout.addWidget(self.beat_label, 1)
        beat_layout.addWidget(self.goto_beat, 0, Qt.AlignmentFlag.AlignTop)
        details.addWidget(beat_box)

        # Prompt
        prompt_box = QGroupBox("Prompt", self.details)
        prompt_form = QFormLayout(prompt_box)
        self.prompt = QPlainTextEdit(prompt_box)
        self.prompt.setObjectName("prompt")
        self.prompt.setFixedHeight(84)
        self.prompt.setToolTip("Leave empty to use the prompt generated from the beat, the characters and the style")
        self.prompt.textChanged.connect(self._prompt_edited)
        self.prompt.installEventFilter(FocusOut(self._end_typing, self))
        self.negative = QLineEdit(prompt_box)
        self.negative.setObjectName("negativePrompt")
        self.negative.textEdited.connect(self._negative_edited)
        self.negative.editingFinished.connect(self._end_typing)
        prompt_form.addRow(self.prompt)
        prompt_form.addRow("Negative", self.negative)
        details.addWidget(prompt_box)

        # Characters
        cast_box = QGroupBox("Characters", self.details)
        cast_layout = QVBoxLayout(cast_box)
        self.cast = QTableWidget(0, 2, cast_box)
        self.cast.setObjectName("castTable")
        self.cast.setHorizontalHeaderLabels(["Character", "Figure"])
        self.cast.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.cast.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.cast.verticalHeader().hide()
        self.cast.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cast.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.cast.itemSelectionChanged.connect(self._update_swap_button)
        self.swap = QPushButton("Swap figures", cast_box)
        self.swap.setToolTip("Give two characters each other's figure in the pose (select two rows)")
        self.swap.clicked.connect(self.swap_figures)
        cast_layout.addWidget(self.cast)
        cast_layout.addWidget(self.swap, 0, Qt.AlignmentFlag.AlignRight)

        # Generation
        gen_box = QGroupBox("Generation", self.details)
        gen_form = QFormLayout(gen_box)
        gen_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.shot = QComboBox(gen_box)
        self.shot.setObjectName("shot")
        for shot in ShotType:
            # Qt stores a str-enum as a plain str: keep the value and convert back on edit.
            self.shot.addItem(shot.value.replace("-", " ").capitalize(), shot.value)
        self.shot.activated.connect(self._shot_chosen)
        self.backend = QComboBox(gen_box)
        self.backend.setObjectName("backend")
        self.backend.activated.connect(self._backend_chosen)
        self.settings = SettingsForm(gen_box)
        self.settings.values_edited.connect(self.apply_settings)
        seed_row = QHBoxLayout()
        self.seed = QDoubleSpinBox(gen_box)
        self.seed.setObjectName("seed")
        self.seed.setDecimals(0)
        self.seed.setRange(0, SEED_MAX)
        self.seed.setKeyboardTracking(False)
        self.seed.valueChanged.connect(self._seed_edited)
        self.seed_lock = QCheckBox("Lock", gen_box)
        self.seed_lock.setToolTip(
            "Locked: every render of this panel uses this seed. Unlocked: a new render gets a new seed."
        )
        self.seed_lock.toggled.connect(self._lock_toggled)
        self.randomise = QPushButton("Randomise", gen_box)
        self.randomise.clicked.connect(self.randomise_seed)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_lock)
        seed_row.addWidget(self.randomise)
        gen_form.addRow("Shot", self.shot)
        gen_form.addRow("Backend", self.backend)
        gen_form.addRow(self.settings)
        gen_form.addRow("Seed", seed_row)

        # Results
        results_box = QGroupBox("Results", self.details)
        results_layout = QVBoxLayout(results_box)
        self.history = ResultHistory(results_box)
        self.history.accept_requested.connect(self._accept_result)
        self.history.discard_requested.connect(self._discard_result)
        self.history.selection_changed.connect(self._update_render_buttons)
        self.history.enable_anchor_actions(self.ctx, self.render_service)
        results_layout.addWidget(self.history)
        render_row = QHBoxLayout()
        self.render_button = QPushButton("Render panel", results_box)
        self.render_button.setObjectName("renderPanel")
        self.render_button.clicked.connect(self.render_panel)
        self.regenerate_button = QPushButton("Regenerate same seed", results_box)
        self.regenerate_button.setToolTip("Replay the selected (or current) result's request exactly")
        self.regenerate_button.clicked.connect(self.regenerate_same_seed)
        self.compare_button = QPushButton("Compare methods…", results_box)
        self.compare_button.setToolTip("Render this panel with 2–6 backends at its seed, side by side, and keep one")
        self.compare_button.clicked.connect(self.compare_methods)
        render_row.addWidget(self.render_button)
        render_row.addWidget(self.regenerate_button)
        render_row.addWidget(self.compare_button)
        self.compare_scope_button = QPushButton("Compare on page/character…", results_box)
        self.compare_scope_button.setToolTip(
            "Render every panel of this page (or every panel a character is in) with 2–6 backends at the "
            "panels' seeds; AP-CLIP-I per method for each character; keep picks as one undo step"
        )
        self.compare_scope_button.clicked.connect(self.compare_on_scope)
        render_row.addWidget(self.compare_scope_button)
        results_layout.addLayout(render_row)

        # Results and the render buttons right under the prompt: write, render, compare is the
        # loop; the cast and the backend settings are visited less often.
        # RaCig's masks and try-on: shown only for racig panels, right under the cast they are about.
        self.racig = RacigTools(self.ctx, self.render_service, self.details)
        for box in (results_box, cast_box, self.racig, gen_box):
            details.addWidget(box)

    # ------------------------------------------------------------------ following the document
    def panel(self) -> Panel | None:
        found = self.ctx.document.project.find_panel(self.panel_id) if self.panel_id else None
        return found[1] if found else None

    def _follow_selection(self, force: bool = False) -> None:
        ids = self.ctx.selected_panel_ids
        panel_id = ids[0] if ids else None
        if force or panel_id != self.panel_id:
            if panel_id != self.panel_id:
                # Only leaving a panel ends its typing: a refresh (any document change while no
                # panel is inspected, e.g. each mouse move of a gutter drag) must not split
                # someone else's merge into many undo steps.
                self._end_typing()
            self.panel_id = panel_id
            self.history.list.clearSelection()
            self.refresh()
        elif panel_id is None:
            self._show_heading_without_panel()  # a balloon may have been selected or left

    def _on_document_changed(self, changes: Changes) -> None:
        if not changes.touches(_WATCHED):
            return
        panel = self.panel()
        if panel is None or self.panel_id not in self.ctx.selected_panel_ids[:1]:
            self._follow_selection(force=True)
            return
        found = self.ctx.document.project.find_panel(panel.id)
        related = {panel.id, found[0].id, *(r.id for r in panel.results), *(c.character_id for c in panel.characters)}
        if panel.beat_id:
            related.add(panel.beat_id)
        if not changes.ids or changes.ids & related or changes.touches(ChangeKind.STYLES):
            self.refresh()

    def refresh(self) -> None:
        """Show the inspected panel's current state (never emits edits)."""
        panel = self.panel()
        self.details.setVisible(panel is not None)
        self.empty.setVisible(False)
        if panel is None:
            self._show_heading_without_panel()
            self.history.show_panel(None, None)
            self.racig.set_panel(None)
            return
        project = self.ctx.document.project
        page, _ = project.find_panel(panel.id)
        beat = project.story.beat(panel.beat_id) if panel.beat_id else None
        self._updating = True
        try:
            self.title.setText(f"Page {project.pages.index(page) + 1} · Panel {panel.order + 1}")
            self.beat_label.setText(_beat_summary(project, beat) if beat else "No beat assigned to this panel.")
            self.goto_beat.setEnabled(beat is not None)
            generated = build_prompt(project, panel.model_copy(update={"prompt": ""}), beat)
            self.prompt.setPlaceholderText(generated or "Describe the panel…")
            if self.prompt.toPlainText() != panel.prompt:
                self.prompt.setPlainText(panel.prompt)
            if self.negative.text() != panel.negative_prompt:
                self.negative.setText(panel.negative_prompt)
            style = project.active_style()
            self.negative.setPlaceholderText(style.negative if style and style.negative else "What to avoid…")
            self._fill_cast(panel)
            self.shot.setCurrentIndex(self.shot.findData(ShotType(panel.shot).value))
            self._fill_backends(panel)
            self.seed.setValue(float(min(panel_seed(panel), SEED_MAX)))
            self.seed_lock.setChecked(panel.seed_locked)
            self.randomise.setEnabled(not panel.seed_locked)
            self.history.show_panel(panel, self.ctx.document.assets)
            self.racig.set_panel(panel)
        finally:
            self._updating = False
        self._update_render_buttons()

    def _fill_cast(self, panel: Panel) -> None:
        project = self.ctx.document.project
        selected = {i.row() for i in self.cast.selectionModel().selectedRows()}
        self.cast.setRowCount(len(panel.characters))
        for row, placement in enumerate(panel.characters):
            character = project.character(placement.character_id)
            name = QTableWidgetItem(character.name if character else f"(missing {placement.character_id})")
            if character:
                name.setForeground(_colour(character.colour))
                name.setToolTip(character.description)
            placed = "" if placement.head is not None else " (not placed yet)"
            self.cast.setItem(row, 0, name)
            self.cast.setItem(row, 1, QTableWidgetItem(f"#{placement.figure + 1}{placed}"))
        # As tall as its rows (up to four), so a one-character panel does not show a blank box.
        rows_height = sum(self.cast.rowHeight(r) for r in range(min(4, self.cast.rowCount())))
        self.cast.setFixedHeight(
            self.cast.horizontalHeader().height() + max(rows_height, 24) + 2 * self.cast.frameWidth() + 2
        )
        self.cast.clearSelection()
        for row in selected:
            if row < self.cast.rowCount():
                self.cast.selectRow(row)
        self._update_swap_button()

    def _show_heading_without_panel(self) -> None:
        """No panel inspected: a selected balloon is what is shown (its own section, titled
        "Balloon", no panel hint); otherwise the hint to select a panel. The balloon section follows
        the selection before this runs (it connected first, while the inspector was built)."""
        balloon = self.balloon.found()
        self.title.setText("Balloon" if balloon else "Panel")
        self.empty.setVisible(balloon is None)

    def _readiness(self, name: str, settings: dict[str, Any]) -> Readiness:
        """Whether ``name`` can run here, remembered for a few seconds: the inspector refreshes on
        every change of its panel and looking for model files each time would be wasted."""
        key = (name, json.dumps(settings, sort_keys=True, default=str))
        now = time.monotonic()
        cached = self._readiness_cache.get(key)
        if cached is None or now - cached[0] > READINESS_TTL_S:
            cached = self._readiness_cache[key] = (now, backend_readiness(name, settings=settings))
        return cached[1]

    def _fill_backends(self, panel: Panel) -> None:
        backends = available_backends()
        self.backend.clear()
        for name, cls in backends.items():
            ready = self._readiness(name, panel.backend_settings if name == panel.backend else {})
            label = cls.display_name or name
            self.backend.addItem(label if ready.ready else f"{label} — needs models", name)
            self.backend.setItemData(
                self.backend.count() - 1,
                "Can run on this computer" if ready.ready else f"Cannot run here yet: {label} {ready.reason}",
                Qt.ItemDataRole.ToolTipRole,
            )
        if panel.backend not in backends:
            self.backend.addItem(f"{panel.backend} (not installed)", panel.backend)
        self.backend.setCurrentIndex(self.backend.findData(panel.backend))
        cls = backends.get(panel.backend)
        if self._form_backend != (panel.backend, cls):
            # Rebuild only when the backend changes: rebuilding would steal focus from an editor.
            self.settings.set_schema(cls.settings_schema() if cls else {})
            self._form_backend = (panel.backend, cls)
        self.settings.set_values(panel.backend_settings)
        problem = ""
        if cls is None:
            problem = f"backend {panel.backend!r} is not installed; choose another to render this panel"
        else:
            try:
                self._backend(panel.backend).validate_settings(panel.backend_settings)
            except BackendSettingsError as exc:
                problem = str(exc)
            ready = self._readiness(panel.backend, panel.backend_settings)
            if not problem and not ready.ready:
                problem = (
                    f"{ready.label} cannot run on this computer yet: it {ready.reason}. "
                    "Download them in Edit ▸ Models…, or choose Storyboard (no models needed)."
                )
        self.settings.set_error(problem)

    # ------------------------------------------------------------------ edits
    def _edit(self, label: str, merge_key: Any = None, **fields: Any) -> None:
        if self._updating or self.panel_id is None:
            return
        self.ctx.edit(editing.set_panel_fields, self.panel_id, label, merge_key=merge_key, **fields)

    def _end_typing(self) -> None:
        # Typing merges into one undo step until the field is left.
        self.ctx.document.undo_stack.break_merge()

    def _prompt_edited(self) -> None:
        if self.panel_id:
            self._edit("Edit prompt", ("prompt", self.panel_id), prompt=self.prompt.toPlainText())

    def _negative_edited(self, text: str) -> None:
        if self.panel_id:
            self._edit("Edit negative prompt", ("negative", self.panel_id), negative_prompt=text)

    def _shot_chosen(self, index: int) -> None:
        shot = ShotType(self.shot.itemData(index))
        panel = self.panel()
        if panel is not None and shot != panel.shot:
            self._edit("Shot", shot=shot)

    def _backend_chosen(self, index: int) -> None:
        name = self.backend.itemData(index)
        panel = self.panel()
        if panel is not None and name != panel.backend:
            # Settings belong to a backend: another backend starts from its own defaults.
            self._edit("Backend", backend=name, backend_settings={})

    def apply_settings(self, values: dict[str, Any]) -> bool:
        """Validate ``values`` with the panel's backend and store them; on a problem show it
        (under the form and in the status bar) and change nothing. Returns whether stored."""
        panel = self.panel()
        if panel is None:
            return False
        try:
            # A file typed or picked for an image setting enters the project as an asset here:
            # the panel stores its hash, never the path (a project must not name local files).
            values = import_image_settings(panel.backend, values, self.ctx.document.assets)
            validated = self._backend(panel.backend).validate_settings(values)
        except ComicStudioError as exc:
            self.settings.set_error(str(exc))
            self.ctx.message.emit(str(exc))
            return False
        self.settings.set_error("")
        if validated != panel.backend_settings:
            self._edit("Backend settings", backend_settings=validated)
        return True

    def _backend(self, name: str) -> GenerationBackend:
        # A bare instance only validates (validate_settings reads class data); the backend's
        # __init__ may load models and belongs on the engine's worker thread, as the engine does.
        if name not in self._backend_instances:
            cls = get_backend_class(name)
            self._backend_instances[name] = cls.__new__(cls)
        return self._backend_instances[name]

    def _seed_edited(self, value: float) -> None:
        panel = self.panel()
        if panel is not None and int(value) != panel_seed(panel):
            self._edit("Seed", seed=int(value))

    def _lock_toggled(self, locked: bool) -> None:
        panel = self.panel()
        if panel is None or self._updating or locked == panel.seed_locked:
            return
        # Locking pins the seed shown (the derived one when the panel has none yet).
        self._edit("Lock seed" if locked else "Unlock seed", seed_locked=locked, seed=panel_seed(panel))

    def randomise_seed(self) -> None:
        panel = self.panel()
        if panel is not None and not panel.seed_locked:
            self._edit("Randomise seed", seed=random.randrange(2**32))

    def _selected_cast_rows(self) -> list[int]:
        return sorted(i.row() for i in self.cast.selectionModel().selectedRows())

    def _update_swap_button(self) -> None:
        rows = self._selected_cast_rows()
        self.swap.setEnabled(len(rows) == 2 or (not rows and self.cast.rowCount() == 2))

    def swap_figures(self) -> None:
        """Swap the figures of the two selected characters (or of the only two). The head and body
        geometry belong to the figure, so they travel with it and balloon tails stay right."""
        panel = self.panel()
        rows = self._selected_cast_rows() or ([0, 1] if panel is not None and len(panel.characters) == 2 else [])
        if panel is None or len(rows) != 2:
            self.ctx.message.emit("Select two characters to swap their figures")
            return
        placements = [p.model_copy(deep=True) for p in panel.characters]
        a, b = placements[rows[0]], placements[rows[1]]
        for name in ("figure", "head", "body", "head_radius"):
            first, second = getattr(a, name), getattr(b, name)
            setattr(a, name, second)
            setattr(b, name, first)
        self._edit("Swap figures", characters=placements)

    def _accept_result(self, result_id: str) -> None:
        if self.panel_id:
            self.ctx.edit(editing.accept_result, self.panel_id, result_id)

    def _discard_result(self, result_id: str) -> None:
        if self.panel_id:
            self.ctx.edit(editing.discard_result, self.panel_id, result_id)

    def _go_to_beat(self) -> None:
        panel = self.panel()
        if panel is not None and panel.beat_id:
            self.beat_requested.emit(panel.beat_id)

    # ------------------------------------------------------------------ rendering
    def _update_render_buttons(self) -> None:
        panel = self.panel()
        has_service = self.render_service is not None
        self.render_button.setEnabled(has_service and panel is not None)
        self.regenerate_button.setEnabled(has_service and panel is not None and self._replay_result_id() is not None)
        self.compare_button.setEnabled(has_service and panel is not None)
        self.compare_scope_button.setEnabled(has_service and panel is not None)

    def _replay_result_id(self) -> str | None:
        selected = self.history.selected_ids()
        if len(selected) == 1:
            return selected[0]
        panel = self.panel()
        current = panel.result() if panel else None
        return current.id if current else None

    def render_panel(self) -> list[str]:
        """Queue the inspected panel ahead of other work; returns the job ids."""
        if self.render_service is None or self.panel_id is None:
            return []
        self._end_typing()
        return self.render_service.render_panels([self.panel_id], priority=INTERACTIVE_PRIORITY)

    def compare_methods(self) -> Any:
        """Open "Compare methods…" on the inspected panel (returns the dialog)."""
        if self.render_service is None or self.panel_id is None:
            return None
        from comic_studio.ui.dialogs.compare_methods import CompareMethodsDialog

        self._end_typing()
        dialog = CompareMethodsDialog(self.ctx, self.render_service, self.panel_id, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def compare_on_scope(self) -> Any:
        """Open "Compare on this page / character…" on the inspected panel's page (returns the dialog)."""
        if self.render_service is None or self.panel_id is None:
            return None
        from comic_studio.ui.dialogs.compare_scope import CompareScopeDialog

        self._end_typing()
        project = self.ctx.document.project
        found = project.find_panel(self.panel_id)
        page = f"Page {project.pages.index(found[0]) + 1}" if found else None
        dialog = CompareScopeDialog(self.ctx, self.render_service, page, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def regenerate_same_seed(self) -> str | None:
        result_id = self._replay_result_id()
        if self.render_service is None or self.panel_id is None or result_id is None:
            return None
        return self.render_service.regenerate(self.panel_id, result_id, priority=INTERACTIVE_PRIORITY)

    def shutdown(self) -> None:
        """Stop the helper threads (thumbnails, racig masks, pose browser). The main window calls
        this when it closes: a docked widget gets no closeEvent of its own then."""
        self.history.shutdown()
        self.racig.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)


def _beat_summary(project, beat) -> str:
    names = [c.name for cid in beat.characters if (c := project.character(cid))]
    parts = [beat.action or "(no action)"]
    where = ", ".join(p for p in (beat.setting, beat.time_of_day) if p)
    if where:
        parts.append(f"Where: {where}")
    if names:
        parts.append("Who: " + ", ".join(names))
    if beat.dialogue:
        parts.append(f"{len(beat.dialogue)} line{'s' if len(beat.dialogue) != 1 else ''} of dialogue")
    if beat.caption:
        parts.append(f"Caption: {beat.caption}")
    text = "\n".join(parts)
    return text if len(text) <= 400 else text[:399] + "…"


def _colour(hex_colour: str):
    from PySide6.QtGui import QColor

    return QColor(hex_colour)


__all__ = ["INTERACTIVE_PRIORITY", "PanelInspector"]
