"""Undoable commands: the only way the document changes.

Commands address document objects by *locators* — ``("panel", id)``, ``("balloons", panel_id)`` —
never by Python reference, so a command stays valid after undo/redo replaced objects, and a command
can be described, logged and tested without the UI. Each ``redo``/``undo`` returns the
:class:`~comic_studio.core.changes.Changes` it made; the document broadcasts them.

Values stored in commands are deep copies: the caller may keep mutating what it passed in.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError

from comic_studio.core.changes import ChangeKind, Changes
from comic_studio.core.errors import CommandError
from comic_studio.core.lookup import panel_label
from comic_studio.core.model import Page, Panel, Project, Scene, Story

Locator = tuple[str, ...]

# Which change kind an edit of each object (or list) kind reports.
_KIND_OF = {
    "project": ChangeKind.PROJECT,
    "format": ChangeKind.FORMAT,
    "page": ChangeKind.PAGES,
    "pages": ChangeKind.PAGES,
    "panel": ChangeKind.PANELS,
    "panels": ChangeKind.PANELS,
    "balloon": ChangeKind.BALLOONS,
    "balloons": ChangeKind.BALLOONS,
    "result": ChangeKind.RESULTS,
    "results": ChangeKind.RESULTS,
    "character": ChangeKind.CHARACTERS,
    "characters": ChangeKind.CHARACTERS,
    "story": ChangeKind.STORY,
    "scene": ChangeKind.STORY,
    "scenes": ChangeKind.STORY,
    "beat": ChangeKind.STORY,
    "beats": ChangeKind.STORY,
    "style": ChangeKind.STYLES,
    "styles": ChangeKind.STYLES,
}


def _copy(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_copy(deep=True)
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _as_data(value: Any) -> Any:
    """``value`` with every model turned into its fields (a fresh copy), so validation sees all."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_data(v) for k, v in value.items()}
    return _copy(value)


def _find_by_id(items, item_id: str, what: str):
    for item in items:
        if item.id == item_id:
            return item
    raise CommandError(f"{what} {item_id!r} does not exist")


def resolve(project: Project, loc: Locator) -> Any:
    """The object a locator names (raises CommandError if it is gone)."""
    kind, *rest = loc
    ident = rest[0] if rest else ""  # no id: "does not exist" like any unknown id
    if kind == "project":
        return project
    if kind == "format":
        return project.page_format
    if kind == "story":
        return project.story
    if kind == "page":
        return _find_by_id(project.pages, ident, "page")
    if kind == "panel":
        found = project.find_panel(ident)
        if not found:
            raise CommandError(f"panel {ident!r} does not exist")
        return found[1]
    if kind == "balloon":
        for page in project.pages:
            for panel in page.panels:
                for balloon in panel.balloons:
                    if balloon.id == ident:
                        return balloon
        raise CommandError(f"balloon {ident!r} does not exist")
    if kind == "result":
        for page in project.pages:
            for panel in page.panels:
                for result in panel.results:
                    if result.id == ident:
                        return result
        raise CommandError(f"result {ident!r} does not exist")
    if kind == "character":
        return _find_by_id(project.characters, ident, "character")
    if kind == "scene":
        return _find_by_id(project.story.scenes, ident, "scene")
    if kind == "beat":
        beat = project.story.beat(ident)
        if beat is None:
            raise CommandError(f"beat {ident!r} does not exist")
        return beat
    if kind == "style":
        return _find_by_id(project.styles, ident, "style")
    raise CommandError(f"unknown locator {loc!r}")


def resolve_list(project: Project, loc: Locator) -> list:
    """The list a list-locator names: ``("pages",)``, ``("panels", page_id)``, …"""
    kind, *rest = loc
    owner = rest[0] if rest else ""
    if kind == "pages":
        return project.pages
    if kind == "characters":
        return project.characters
    if kind == "styles":
        return project.styles
    if kind == "scenes":
        return project.story.scenes
    if kind == "panels":
        return resolve(project, ("page", owner)).panels
    if kind in ("balloons", "results"):
        return getattr(resolve(project, ("panel", owner)), kind)
    if kind == "beats":
        return resolve(project, ("scene", owner)).beats
    raise CommandError(f"unknown list locator {loc!r}")


# The model field behind each list locator: its ``max_length`` is the limit the project loader
# applies, so inserting past it is refused here with the same number (one definition of each limit).
_LIST_FIELD: dict[str, tuple[type[BaseModel], str, str]] = {
    "pages": (Project, "pages", "pages"),
    "characters": (Project, "characters", "characters"),
    "styles": (Project, "styles", "styles"),
    "scenes": (Story, "scenes", "scenes"),
    "panels": (Page, "panels", "panels"),
    "balloons": (Panel, "balloons", "balloons"),
    "results": (Panel, "results", "results"),
    "beats": (Scene, "beats", "beats"),
}


def list_limit(kind: str) -> int | None:
    """The most items the project loader accepts in a list of this locator kind."""
    model, name, _ = _LIST_FIELD[kind]
    for constraint in model.model_fields[name].metadata:
        if isinstance(constraint, annotated_types.MaxLen):
            return constraint.max_length
    return None


def _owner_label(project: Project, loc: Locator) -> str:
    kind, *rest = loc
    if kind in ("balloons", "results") and rest:
        return panel_label(project, rest[0])
    if kind == "panels" and rest:
        page = project.page(rest[0])
        return f"page {project.pages.index(page) + 1}" if page is not None else f"page {rest[0]!r}"
    if kind == "beats" and rest:
        return f"scene {rest[0]!r}"
    return "the project"


def non_finite_at(value: Any) -> str | None:
    """Where ``value`` (a model, or plain data) holds NaN or an infinity, e.g. ``box.w``; else None.
    The loader refuses such numbers (JSON has none), so they must not enter: pydantic would save a
    NaN as ``null`` and the file would no longer load."""
    stack: list[tuple[Any, str]] = [(value.model_dump() if isinstance(value, BaseModel) else value, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, BaseModel):
            node = node.model_dump()
        if isinstance(node, float) and not math.isfinite(node):
            return where or "the value"
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(node))
    return None


def check_entering(project: Project, container: Locator, items: list, count: int) -> None:
    """Refuse items that the project loader would refuse: a list grown past its limit, or an item
    that does not validate as its model (layout code builds items with ``model_copy(update=…)``,
    which skips validation). Raises :class:`CommandError` naming the owner and the limit."""
    kind = container[0]
    limit = list_limit(kind) if kind in _LIST_FIELD else None
    if limit is not None and count > limit:
        noun = _LIST_FIELD[kind][2]
        raise CommandError(
            f"{_owner_label(project, container)} would hold {count:,} {noun}; a project holds at most {limit:,} "
            f"{noun} there (the same limit applies when a file is opened)"
        )
    for item in items:
        if not isinstance(item, BaseModel):
            continue
        try:
            type(item).model_validate(item.model_dump())
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in error["loc"])
            noun = kind.rstrip("s")
            raise CommandError(
                f"{_owner_label(project, container)}: the new {noun} is not valid"
                f"{f' ({where})' if where else ''}: {error['msg']}"
            ) from exc
        bad = non_finite_at(item)
        if bad is not None:
            raise CommandError(
                f"{_owner_label(project, container)}: the new {kind.rstrip('s')} has {bad} that is not a finite "
                "number; a project keeps finite numbers only"
            )


def _changes(loc: Locator, *ids: str | None) -> Changes:
    return Changes(_KIND_OF.get(loc[0], ChangeKind.NONE), frozenset(i for i in ids if i))


class Command(ABC):
    """One undoable step. ``merge_key``: consecutive commands with the same non-None key merge
    (a drag of many mouse moves, typing) into one undo step."""

    text: str = ""
    merge_key: Hashable | None = None
    merges_across_breaks: bool = False
    """A background batch ("Render all": a result and its lettering per panel) keeps merging into
    its one step when the author ends a gesture meanwhile (a click, a field left); an edit of the
    author in between still starts a new step, as only the top command ever merges."""

    @abstractmethod
    def redo(self, project: Project) -> Changes: ...

    @abstractmethod
    def undo(self, project: Project) -> Changes: ...

    def merge(self, newer: Command) -> bool:
        """Absorb ``newer`` (already applied) into this command; False if it cannot."""
        return False


class SetFields(Command):
    """Set one or more fields of one object: text edits, moves, resizes, settings."""

    def __init__(self, target: Locator, label: str, /, merge_key: Hashable | None = None, **values: Any):
        # target and label are positional-only so that fields named "text" can be set by keyword.
        if not values:
            raise CommandError("SetFields needs at least one field")
        self.target = tuple(target)
        self.text = label
        self.merge_key = merge_key
        self.new = {k: _copy(v) for k, v in values.items()}
        self.old: dict[str, Any] = {}

    def redo(self, project: Project) -> Changes:
        obj = resolve(project, self.target)
        if not self.old:
            for name in self.new:
                if not hasattr(obj, name):
                    raise CommandError(f"{self.target[0]} has no field {name!r}")
                self.old[name] = _copy(getattr(obj, name))
        for name, value in self.new.items():
            bad = non_finite_at(value)
            if bad is not None:
                where = name if bad == "the value" else f"{name}.{bad}"
                raise CommandError(
                    f"{self.target[0]}.{where} is not a finite number; a project keeps finite numbers only"
                )
        applied: list[str] = []
        for name, value in self.new.items():
            if isinstance(obj, BaseModel):
                # Validate like a load would (a combo's "close-up" string becomes ShotType), so a
                # saved file always loads back; a bad value undoes the fields already set.
                try:
                    # As plain data: pydantic does not re-check model instances it is handed, and
                    # one built with model_copy(update=…) or model_construct was never checked.
                    obj.__pydantic_validator__.validate_assignment(obj, name, _as_data(value))
                except ValidationError as exc:
                    for done in applied:
                        setattr(obj, done, _copy(self.old[done]))
                    raise CommandError(f"{self.target[0]}.{name}: {exc.errors()[0]['msg']}") from exc
            else:
                setattr(obj, name, _copy(value))
            applied.append(name)
        return _changes(self.target, *self.target[1:])

    def undo(self, project: Project) -> Changes:
        obj = resolve(project, self.target)
        for name, value in self.old.items():
            setattr(obj, name, _copy(value))
        return _changes(self.target, *self.target[1:])

    def merge(self, newer: Command) -> bool:
        if not isinstance(newer, SetFields) or newer.target != self.target:
            return False
        # Keep our original "old" values, take the newer "new" values (also for extra fields).
        for name, value in newer.new.items():
            if name not in self.old:
                self.old[name] = newer.old[name]
            self.new[name] = value
        return True


class InsertItem(Command):
    """Insert a model object into a list (``index`` None = append)."""

    def __init__(self, container: Locator, item: BaseModel, index: int | None = None, text: str = "Add"):
        self.container = tuple(container)
        self.item = _copy(item)
        self.index = index
        self.text = text

    def redo(self, project: Project) -> Changes:
        items = resolve_list(project, self.container)
        if any(getattr(i, "id", None) == self.item.id for i in items):
            raise CommandError(f"{self.container[0]} already holds an item with id {self.item.id!r}")
        check_entering(project, self.container, [self.item], len(items) + 1)
        index = len(items) if self.index is None else max(0, min(self.index, len(items)))
        self.index = index
        items.insert(index, _copy(self.item))
        return _changes(self.container, self.item.id, *self.container[1:])

    def undo(self, project: Project) -> Changes:
        items = resolve_list(project, self.container)
        items[:] = [i for i in items if i.id != self.item.id]
        return _changes(self.container, self.item.id, *self.container[1:])


class RemoveItem(Command):
    def __init__(self, container: Locator, item_id: str, text: str = "Delete"):
        self.container = tuple(container)
        self.item_id = item_id
        self.text = text
        self.index: int | None = None
        self.item: BaseModel | None = None

    def redo(self, project: Project) -> Changes:
        items = resolve_list(project, self.container)
        for index, item in enumerate(items):
            if item.id == self.item_id:
                self.index, self.item = index, _copy(item)
                del items[index]
                return _changes(self.container, self.item_id, *self.container[1:])
        raise CommandError(f"{self.container[0]}: no item {self.item_id!r} to delete")

    def undo(self, project: Project) -> Changes:
        assert self.index is not None, "undo before redo"
        items = resolve_list(project, self.container)
        items.insert(self.index, _copy(self.item))
        return _changes(self.container, self.item_id, *self.container[1:])


class MoveItem(Command):
    """Reorder within a list (pages in the strip, beats in the outliner)."""

    def __init__(self, container: Locator, item_id: str, new_index: int, text: str = "Reorder"):
        self.container = tuple(container)
        self.item_id = item_id
        self.new_index = new_index
        self.old_index: int | None = None
        self.text = text

    def _move(self, project: Project, to_index: int) -> tuple[int, Changes]:
        """Move the item to ``to_index``; returns the index it had and the changes."""
        items = resolve_list(project, self.container)
        index = next((i for i, it in enumerate(items) if it.id == self.item_id), None)
        if index is None:
            raise CommandError(f"{self.container[0]}: no item {self.item_id!r} to move")
        item = items.pop(index)
        items.insert(max(0, min(to_index, len(items))), item)
        return index, _changes(self.container, self.item_id, *self.container[1:])

    def redo(self, project: Project) -> Changes:
        self.old_index, changes = self._move(project, self.new_index)
        return changes

    def undo(self, project: Project) -> Changes:
        assert self.old_index is not None, "undo before redo"
        return self._move(project, self.old_index)[1]


class ReplaceList(Command):
    """Replace a whole list (a page's panels after a layout operation, the story's scenes after a
    parse). Layout operations are pure functions that return new panel lists; this command makes
    them undoable without each needing its own inverse."""

    def __init__(self, container: Locator, new_items: list, text: str, merge_key: Hashable | None = None):
        self.container = tuple(container)
        self.new_items = _copy(list(new_items))
        self.old_items: list | None = None
        self.text = text
        self.merge_key = merge_key

    def _ids(self) -> set[str]:
        return {getattr(i, "id", "") for i in (self.old_items or []) + self.new_items}

    def redo(self, project: Project) -> Changes:
        items = resolve_list(project, self.container)
        if self.old_items is None:
            check_entering(project, self.container, self.new_items, len(self.new_items))
            self.old_items = _copy(items)
        items[:] = _copy(self.new_items)
        return _changes(self.container, *self._ids(), *self.container[1:])

    def undo(self, project: Project) -> Changes:
        items = resolve_list(project, self.container)
        items[:] = _copy(self.old_items)
        return _changes(self.container, *self._ids(), *self.container[1:])

    def merge(self, newer: Command) -> bool:
        if not isinstance(newer, ReplaceList) or newer.container != self.container:
            return False
        self.new_items = newer.new_items
        return True


class Compound(Command):
    """Several commands as one undo step (e.g. "Lay out story": pages + story + balloons)."""

    def __init__(
        self, text: str, commands: list[Command], merge_key: Hashable | None = None, across_breaks: bool = False
    ):
        self.text = text
        self.commands = list(commands)
        self.merge_key = merge_key
        self.merges_across_breaks = across_breaks

    def redo(self, project: Project) -> Changes:
        changes = Changes()
        done: list[Command] = []
        try:
            for command in self.commands:
                changes |= command.redo(project)
                done.append(command)
        except Exception:
            for command in reversed(done):  # leave the document as it was
                command.undo(project)
            raise
        return changes

    def undo(self, project: Project) -> Changes:
        changes = Changes()
        for command in reversed(self.commands):
            changes |= command.undo(project)
        return changes

    def merge(self, newer: Command) -> bool:
        # ``newer`` is already applied after ours: appending it keeps redo's order and undo's
        # reverse order exact, whatever kind of command it is.
        self.commands.extend(newer.commands if isinstance(newer, Compound) else [newer])
        return True
