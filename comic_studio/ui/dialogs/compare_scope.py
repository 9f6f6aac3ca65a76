""" "Compare on this page / character…": the "Compare methods…" grid over several panels.

The scope is a page (its panels in reading order) or a character (every panel it appears in). The
checked backends render every panel at that panel's own seed, queued at once as one group
(:meth:`RenderService.compare_panels`); each cell is scored like a single comparison's
(:func:`~comic_studio.ui.dialogs.compare_methods.score_render`), and the consistency table shows, for
each character of the scope, AP-CLIP-I per method (SerialGen §4.3: mean pairwise CLIP-I of the
character's cut-out figures across the panels; undefined below two panels) and its mean masked
CLIP-I. The author picks a method per panel (or "Use … for all") and "Keep picks" records every
picked panel's renders and shows the picks, as ONE undo step.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comic_studio.ui.background import BackgroundJobs
from comic_studio.ui.dialogs.compare_methods import (
    backend_list,
    checked_backends,
    metrics_text,
    score_render,
    set_checked_backends,
)
from comic_studio.ui.render_service import MAX_COMPARED, ComparisonSet

ZOOM_RANGE = (96, 480)


def character_scope(name: str) -> str:
    """The scope title of a character's panels ("Panels with Mara"): what :func:`scopes` offers and
    what the character library's "Compare methods on NAME's panels…" presets."""
    return f"Panels with {name}"


def scopes(project: Any) -> list[tuple[str, list[str]]]:
    """Every scope offered: (title, panel ids) per page with panels, then per character that appears
    in at least one panel (its panels in reading order)."""
    out: list[tuple[str, list[str]]] = []
    ordered = [(n, p) for n, page in enumerate(project.pages, 1) for p in page.panels_in_order()]
    for n, page in enumerate(project.pages, 1):
        ids = [p.id for p in page.panels_in_order()]
        if ids:
            out.append((f"Page {n}", ids))
    for character in project.characters:
        ids = [p.id for _n, p in ordered if any(c.character_id == character.id for c in p.characters)]
        if ids:
            out.append((character_scope(character.name), ids))
    return out


class CompareScopeDialog(QDialog):
    """Pick a scope and backends, compare them on every panel of the scope, keep picks."""

    def __init__(self, ctx: Any, service: Any, scope: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx, self.service = ctx, service
        self.cset: ComparisonSet | None = None
        self.scores: dict[tuple[str, str], Any] = {}
        """(panel id, backend) → its PanelScore, or the exception that stopped scoring."""
        self._jobs = BackgroundJobs(self, "compare-scope-metrics")
        self.setWindowTitle("Compare methods on a page or character")
        self.scope = QComboBox(self)
        for title, ids in scopes(ctx.document.project):
            self.scope.addItem(f"{title} ({len(ids)} panel{'s' if len(ids) != 1 else ''})", (title, ids))
        if scope is not None:
            self.set_scope(scope)
        chosen = self.scope.currentData()
        self.backends = backend_list(self, {p.backend for p in self._panels(chosen[1])} if chosen else set())
        self.backends.itemChanged.connect(self._update_buttons)
        self.start_button = QPushButton("Compare", self)
        self.start_button.clicked.connect(self.start)
        self.keep_button = QPushButton("Keep picks", self)
        self.keep_button.setToolTip("Add every picked panel's renders to its history and show the pick (one undo step)")
        self.keep_button.clicked.connect(self.keep)
        self.zoom = QSlider(Qt.Orientation.Horizontal, self)
        self.zoom.setRange(*ZOOM_RANGE)
        self.zoom.setValue(160)
        self.zoom.valueChanged.connect(self._refresh)
        self.status = QLabel(f"Pick a page or character and 2 to {MAX_COMPARED} methods.", self)
        self.consistency = QTableWidget(0, 0, self)
        self.consistency.setMaximumHeight(150)
        self.consistency.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.grid_host = QWidget(self)
        self.grid = QGridLayout(self.grid_host)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        self.images: dict[tuple[str, str], QLabel] = {}
        self.captions: dict[tuple[str, str], QLabel] = {}
        self.pick_buttons: dict[tuple[str, str], QRadioButton] = {}
        self.use_for_all: dict[str, QPushButton] = {}
        self._pick_groups: list[QButtonGroup] = []
        side = QVBoxLayout()
        side.addWidget(QLabel("Panels", self))
        side.addWidget(self.scope)
        side.addWidget(self.start_button)
        side.addWidget(QLabel("Zoom", self))
        side.addWidget(self.zoom)
        side.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.backends, 1)
        top.addLayout(side)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.keep_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Consistency per character (AP-CLIP-I across its panels; mean CLIP-I)", self))
        layout.addWidget(self.consistency)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        service.comparison_changed.connect(self._changed)
        self._update_buttons()
        self.resize(1100, 820)

    # ------------------------------------------------------------------ choosing
    def _panels(self, ids: list[str]) -> list[Any]:
        project = self.ctx.document.project
        return [found[1] for found in (project.find_panel(i) for i in ids) if found is not None]

    def set_scope(self, title: str) -> None:
        """Select the scope whose title is ``title`` ("Page 2", "Panels with Mara")."""
        for i in range(self.scope.count()):
            if self.scope.itemData(i)[0] == title:
                self.scope.setCurrentIndex(i)
                return
        raise ValueError(f"no scope {title!r}")

    def checked(self) -> list[str]:
        return checked_backends(self.backends)

    def set_checked(self, names: list[str]) -> None:
        set_checked_backends(self.backends, names)

    def _update_buttons(self, *_: Any) -> None:
        self.start_button.setEnabled(2 <= len(self.checked()) <= MAX_COMPARED and self.scope.count() > 0)
        picks = self.picks()
        self.keep_button.setEnabled(
            self.cset is not None and self.cset.kept is None and bool(picks)
            and all(self._finished(p, b) for p, b in picks.items())
        )  # fmt: skip

    def _finished(self, panel_id: str, backend: str) -> bool:
        group = self.cset.panel(panel_id) if self.cset else None
        return group is not None and group.cells[backend].result is not None

    # ------------------------------------------------------------------ running
    def start(self) -> ComparisonSet | None:
        """Queue every panel of the scope with the checked methods and lay out the grid."""
        title, ids = self.scope.currentData()
        cset = self.service.compare_panels(ids, self.checked(), title)
        if cset is None:
            return None
        self.cset, self.scores = cset, {}
        self._clear_grid()
        backends = list(cset.comparisons[0].cells)
        for col, name in enumerate(backends, 1):
            self.grid.addWidget(QLabel(f"<b>{name}</b>", self.grid_host), 0, col)
            use = QPushButton(f"Use {name} for all", self.grid_host)
            use.clicked.connect(lambda _=False, n=name: self.use_everywhere(n))
            self.grid.addWidget(use, 1, col)
            self.use_for_all[name] = use
        for row, group in enumerate(cset.comparisons):
            picks = QButtonGroup(self.grid_host)
            picks.setExclusive(True)
            self._pick_groups.append(picks)
            base = 2 + 3 * row
            self.grid.addWidget(QLabel(self.service.panel_label(group.panel_id), self.grid_host), base, 0)
            for col, name in enumerate(backends, 1):
                key = (group.panel_id, name)
                image = QLabel("rendering…", self.grid_host)
                image.setAlignment(Qt.AlignmentFlag.AlignCenter)
                caption = QLabel(name, self.grid_host)
                caption.setWordWrap(True)
                pick = QRadioButton(f"Pick {name}", self.grid_host)
                pick.setEnabled(False)
                pick.toggled.connect(self._update_buttons)
                picks.addButton(pick)
                self.grid.addWidget(image, base, col)
                self.grid.addWidget(caption, base + 1, col)
                self.grid.addWidget(pick, base + 2, col)
                self.images[key], self.captions[key], self.pick_buttons[key] = image, caption, pick
        self._fill_consistency()
        self.status.setText(f"{title}: {len(cset.comparisons)} panels × {len(backends)} methods queued")
        self._update_buttons()
        return cset

    def _clear_grid(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for mapping in (self.images, self.captions, self.pick_buttons, self.use_for_all):
            mapping.clear()
        self._pick_groups.clear()

    def _changed(self, group_id: str) -> None:
        if self.cset is None:
            return
        group = next((g for g in self.cset.comparisons if g.group_id == group_id), None)
        if group is None:
            return
        for name, cell in group.cells.items():
            key = (group.panel_id, name)
            if cell.result is not None and key not in self.scores:
                self.scores[key] = None  # scoring
                self._jobs.submit(score_render, self.ctx.document, cell.request, cell.result, cell.png,
                                  on_result=partial(self._scored, key), on_error=partial(self._scored, key))  # fmt: skip
        self._refresh()

    def _scored(self, key: tuple[str, str], score: Any) -> None:
        self.scores[key] = score
        self._fill_consistency()
        self._refresh()

    def metrics_done(self) -> bool:
        """Every render is finished or failed and every finished one has its metrics (or the reason)."""
        if self.cset is None or not self.cset.done:
            return False
        finished = [(g.panel_id, n) for g in self.cset.comparisons for n, c in g.cells.items() if c.result is not None]
        return all(self.scores.get(k) is not None for k in finished)

    # ------------------------------------------------------------------ showing
    def consistency_rows(self) -> list[Any]:
        """Per character of the scope: a CharacterEntry (per backend: panels, mean CLIP-I, AP-CLIP-I
        with why it is undefined), from the renders scored so far."""
        from comic_studio.workflows.evaluation import Collected, character_entries

        if self.cset is None:
            return []
        collected = Collected()
        backends = list(self.cset.comparisons[0].cells)
        for group in self.cset.comparisons:
            for name in backends:
                score = self.scores.get((group.panel_id, name))
                if score is not None and not isinstance(score, BaseException):
                    collected.add(name, score)
        return character_entries(self.ctx.document.project, backends, collected)

    def _fill_consistency(self) -> None:
        if self.cset is None:
            return
        backends = list(self.cset.comparisons[0].cells)
        rows = self.consistency_rows()
        self.consistency.clear()
        self.consistency.setColumnCount(len(backends))
        self.consistency.setHorizontalHeaderLabels(backends)
        self.consistency.setRowCount(len(rows))
        self.consistency.setVerticalHeaderLabels([r.name for r in rows])
        for r, entry in enumerate(rows):
            by_backend = {b.backend: b for b in entry.backends}
            for c, name in enumerate(backends):
                row = by_backend.get(name)
                if row is None:
                    text = "not scored yet"
                else:
                    ap = "—" if row.ap_clip_i is None else f"{row.ap_clip_i:.3f}"
                    mean = "—" if row.mean_clip_i is None else f"{row.mean_clip_i:.3f}"
                    text = f"AP-CLIP-I {ap} · CLIP-I {mean} ({row.panels} panel{'s' if row.panels != 1 else ''})"
                item = QTableWidgetItem(text)
                if row is not None and row.ap_clip_i_note:
                    item.setToolTip(row.ap_clip_i_note)
                self.consistency.setItem(r, c, item)
        self.consistency.resizeColumnsToContents()

    def _refresh(self, *_: Any) -> None:
        if self.cset is None:
            return
        side = self.zoom.value()
        done = total = 0
        for group in self.cset.comparisons:
            names = {c.id: c.name for c in next(iter(group.cells.values())).request.characters}
            for name, cell in group.cells.items():
                key = (group.panel_id, name)
                total += 1
                done += bool(cell.result is not None or cell.error)
                image, caption = self.images[key], self.captions[key]
                if cell.error:
                    image.setText(f"failed: {cell.error}")
                elif cell.png is not None:
                    pixmap = QPixmap()
                    pixmap.loadFromData(cell.png)
                    image.setPixmap(pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation))  # fmt: skip
                text = f"{name} · {cell.seconds:.1f} s" if (cell.png or cell.error) else name
                if key in self.scores:
                    score = self.scores[key]
                    text += "\nmetrics: scoring…" if score is None else "\n" + metrics_text(score, names)
                caption.setText(text)
                self.pick_buttons[key].setEnabled(cell.result is not None and self.cset.kept is None)
        for button in self.use_for_all.values():
            button.setEnabled(self.cset.kept is None)
        if self.cset.kept is None:
            self.status.setText(f"{self.cset.title}: {done}/{total} rendered")
        self._update_buttons()

    # ------------------------------------------------------------------ keeping
    def pick(self, panel_id: str, backend: str) -> None:
        self.pick_buttons[(panel_id, backend)].setChecked(True)

    def use_everywhere(self, backend: str) -> None:
        """Pick ``backend`` on every panel where its render finished."""
        if self.cset is None:
            return
        for group in self.cset.comparisons:
            if self._finished(group.panel_id, backend):
                self.pick(group.panel_id, backend)

    def picks(self) -> dict[str, str]:
        """Panel id → the picked backend, for the panels with a pick."""
        return {panel_id: name for (panel_id, name), button in self.pick_buttons.items() if button.isChecked()}

    def keep(self) -> bool:
        if self.cset is None or not self.service.keep_comparisons(self.cset.set_id, self.picks()):
            return False
        kept = self.cset.kept or {}
        self.status.setText(f"Kept picks on {len(kept)} panel(s) (one undo step); their renders are in the history")
        self._refresh()
        return True

    def done(self, code: int) -> None:  # noqa: D401 - QDialog.done
        self._jobs.shutdown()
        super().done(code)
