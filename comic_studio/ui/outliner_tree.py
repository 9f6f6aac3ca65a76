"""The outliner's tree: scenes → beats of the document's story, as a Qt item model.

The model reads the document directly (no copy) and refreshes from change reports: a report that
names beats repaints just those rows; any change of structure (beats added, moved, removed — seen
as a different id layout) resets the model. Reordering by drag and ``moveRows`` become undoable
:func:`~comic_studio.core.story_edits.move_beat` edits, so the model itself never mutates the story.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from comic_studio.core import story_edits
from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.model import Beat, Scene
from comic_studio.ui.context import StudioContext

BEAT_MIME = "application/x-comic-studio-beats"
ID_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Beat", "Characters", "Shot", "Lines")
_ROOT = QModelIndex()
Index = QModelIndex | QPersistentModelIndex


def _dot(colour: str, ring: str | None = None) -> QIcon:
    """A small round marker: the beat's origin at a glance (see BeatTreeModel._icons)."""
    pix = QPixmap(12, 12)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor(ring or colour))
    painter.setBrush(QColor(colour))
    painter.drawEllipse(2, 2, 8, 8)
    painter.end()
    return QIcon(pix)


class BeatTreeModel(QAbstractItemModel):
    def __init__(self, ctx: StudioContext, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self._names: dict[str, str] = {}
        self._provisional: dict[str, str] = {}
        self._where: dict[str, tuple[int, int]] = {}
        self._layout: tuple = ()
        # Blue: from the model (LLM parsers); grey: from the rule parser — the default, or the LLM
        # parser's fallback for a window the model failed; amber: edited by the author.
        self._icons = {"llm": _dot("#4a7bd0"), "rules": _dot("#9aa3ad", "#6b737c"), "user": _dot("#e0a028", "#9a6a10")}
        self._rebuild_maps()

    # ------------------------------------------------------------------ story access
    @property
    def scenes(self) -> list[Scene]:
        return self.ctx.document.project.story.scenes

    def _rebuild_maps(self) -> None:
        self._where = {b.id: (s, r) for s, scene in enumerate(self.scenes) for r, b in enumerate(scene.beats)}
        self._layout = tuple((scene.id, tuple(b.id for b in scene.beats)) for scene in self.scenes)
        self._names = {c.id: c.name for c in self.ctx.document.project.characters}

    def set_provisional_names(self, names: dict[str, str]) -> None:
        """Names for suggested characters (``new:`` ids) that are not in the library yet."""
        self._provisional = dict(names)
        self._repaint_all()

    def character_name(self, character_id: str | None) -> str:
        if character_id is None:
            return ""
        if character_id in self._names:
            return self._names[character_id]
        return self._provisional.get(character_id, character_id.removeprefix("new:")) + "?"

    def beat_at(self, index: Index) -> Beat | None:
        if not index.isValid() or index.internalId() == 0:
            return None
        scene = self.scenes[index.internalId() - 1]
        return scene.beats[index.row()] if index.row() < len(scene.beats) else None

    def scene_at(self, index: Index) -> Scene | None:
        if not index.isValid():
            return None
        row = index.row() if index.internalId() == 0 else index.internalId() - 1
        return self.scenes[row] if row < len(self.scenes) else None

    def index_of_beat(self, beat_id: str, column: int = 0) -> QModelIndex:
        where = self._where.get(beat_id)
        if where is None:
            return QModelIndex()
        return self.createIndex(where[1], column, where[0] + 1)

    def position(self, beat_id: str) -> tuple[int, int]:
        """(scene row, beat row): sorts beats in story order without walking the story."""
        return self._where.get(beat_id, (len(self._where), 0))

    def index_of_scene(self, scene_id: str) -> QModelIndex:
        row = next((i for i, s in enumerate(self.scenes) if s.id == scene_id), None)
        return QModelIndex() if row is None else self.createIndex(row, 0, 0)

    # ------------------------------------------------------------------ refresh
    def refresh(self, changes: Changes | None = None) -> None:
        """Bring the rows up to date after a document change (``None``: a new document)."""
        if changes is not None and not changes.touches(ChangeKind.STORY | ChangeKind.CHARACTERS):
            return
        layout = tuple((scene.id, tuple(b.id for b in scene.beats)) for scene in self.scenes)
        if changes is None or layout != self._layout:
            self.beginResetModel()
            self._rebuild_maps()
            self.endResetModel()
            return
        self._names = {c.id: c.name for c in self.ctx.document.project.characters}
        touched = [self._where[i] for i in changes.ids if i in self._where]
        if changes.ids and touched and not changes.touches(ChangeKind.CHARACTERS):
            for scene_row, beat_row in touched:
                self.dataChanged.emit(
                    self.createIndex(beat_row, 0, scene_row + 1),
                    self.createIndex(beat_row, len(COLUMNS) - 1, scene_row + 1),
                )
        else:
            self._repaint_all()

    def _repaint_all(self) -> None:
        # One layout signal instead of a dataChanged per scene: views re-read what they show, and
        # a 25,000-beat story does not pay per-scene column resizing.
        self.layoutAboutToBeChanged.emit()
        self.layoutChanged.emit()

    # ------------------------------------------------------------------ structure
    def index(self, row: int, column: int, parent: Index = _ROOT) -> QModelIndex:
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < len(self.scenes) else QModelIndex()
        if parent.internalId() != 0:
            return QModelIndex()
        scene_row = parent.row()
        if scene_row >= len(self.scenes) or row >= len(self.scenes[scene_row].beats):
            return QModelIndex()
        return self.createIndex(row, column, scene_row + 1)

    def parent(self, index: Index = _ROOT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: Index = _ROOT) -> int:
        if not parent.isValid():
            return len(self.scenes)
        if parent.internalId() == 0 and parent.column() == 0 and parent.row() < len(self.scenes):
            return len(self.scenes[parent.row()].beats)
        return 0

    def columnCount(self, parent: Index = _ROOT) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    # ------------------------------------------------------------------ data
    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if index.internalId() == 0:
            return self._scene_data(self.scenes[index.row()], index.row(), index.column(), role)
        beat = self.beat_at(index)
        return None if beat is None else self._beat_data(beat, index.column(), role)

    def _scene_data(self, scene: Scene, row: int, column: int, role: int):
        if role == ID_ROLE:
            return scene.id
        if role == KIND_ROLE:
            return "scene"
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                title = scene.title or scene.setting or f"Scene {row + 1}"
                return f"{title}  ·  {len(scene.beats)} beat{'s' if len(scene.beats) != 1 else ''}"
        if role == Qt.ItemDataRole.FontRole and column == 0:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def _beat_data(self, beat: Beat, column: int, role: int):
        if role == ID_ROLE:
            return beat.id
        if role == KIND_ROLE:
            return "beat"
        yours = beat.edited or beat.source == "user"
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                text = beat.action or beat.caption or (beat.dialogue[0].text if beat.dialogue else "")
                return text if len(text) <= 90 else text[:88] + "…"
            if column == 1:
                return ", ".join(self.character_name(c) for c in beat.characters)
            if column == 2:
                return beat.shot.value
            if column == 3:
                return str(len(beat.dialogue)) if beat.dialogue else ""
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self._icons["user" if yours else beat.source]
        if role == Qt.ItemDataRole.FontRole and yours:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            origin = "Edited by you (a re-parse keeps it)" if yours else f"From the {beat.source} parser"
            extra = [f"Page {beat.page}"] if beat.page else []
            extra += [f"SFX: {' / '.join(beat.sfx)}"] if beat.sfx else []
            extra += [f"Notes: {beat.notes}"] if beat.notes else []
            body = "\n".join([beat.action, *extra]).strip()
            return f"{body}\n\n{origin}" if body else origin
        return None

    # ------------------------------------------------------------------ drag and drop
    def flags(self, index: Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        if index.internalId() == 0:
            return base | Qt.ItemFlag.ItemIsDropEnabled
        return base | Qt.ItemFlag.ItemIsDragEnabled | Qt.ItemFlag.ItemIsDropEnabled

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [BEAT_MIME]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        ids = list(dict.fromkeys(b.id for b in (self.beat_at(i) for i in indexes) if b is not None))
        mime = QMimeData()
        mime.setData(BEAT_MIME, "\n".join(ids).encode())
        return mime

    def _drop_target(self, row: int, parent: Index) -> tuple[Scene, int] | None:
        """(scene, insert-before index in its current beat list) for a drop at ``row`` under ``parent``."""
        if not parent.isValid():
            if not self.scenes:
                return None
            if 0 <= row < len(self.scenes):  # between scenes: the end of the scene above
                scene = self.scenes[max(0, row - 1)]
                return scene, len(scene.beats) if row > 0 else 0
            return self.scenes[-1], len(self.scenes[-1].beats)
        if parent.internalId() == 0:
            scene = self.scenes[parent.row()]
            return scene, len(scene.beats) if row < 0 else row
        scene = self.scenes[parent.internalId() - 1]  # dropped onto a beat: before it
        return scene, parent.row()

    def canDropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        return data.hasFormat(BEAT_MIME) and action == Qt.DropAction.MoveAction

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        target = self._drop_target(row, parent)
        ids = [i for i in bytes(data.data(BEAT_MIME).data()).decode().split("\n") if i in self._where]
        if target is None or not ids:
            return False
        scene, before = target
        scene_id = scene.id
        anchor = scene.beats[before].id if before < len(scene.beats) else None
        for beat_id in ids:
            self.move_beat_before(beat_id, scene_id, anchor)
        # Returning False: the view must not remove the dragged rows itself (the edit moved them).
        return False

    def move_beat_before(self, beat_id: str, scene_id: str, anchor_id: str | None) -> None:
        """Move a beat just before ``anchor_id`` in ``scene_id`` (at its end when None)."""
        if beat_id == anchor_id:
            return
        scene = next(s for s in self.scenes if s.id == scene_id)
        others = [b.id for b in scene.beats if b.id != beat_id]
        index = others.index(anchor_id) if anchor_id in others else len(others)
        self.ctx.edit(story_edits.move_beat, beat_id, scene_id, index)

    def moveRows(
        self, source_parent: Index, source_row: int, count: int, destination_parent: Index, destination_child: int
    ) -> bool:
        """Qt's programmatic move (``moveRow``), as undoable beat moves."""
        if not source_parent.isValid() or source_parent.internalId() != 0 or count < 1:
            return False
        scene = self.scenes[source_parent.row()]
        ids = [b.id for b in scene.beats[source_row : source_row + count]]
        target = self._drop_target(destination_child, destination_parent)
        if not ids or target is None:
            return False
        dest_scene, before = target
        anchor = dest_scene.beats[before].id if before < len(dest_scene.beats) else None
        if anchor in ids:
            return False
        for beat_id in ids:
            self.move_beat_before(beat_id, dest_scene.id, anchor)
        return True
