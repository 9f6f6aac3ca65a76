"""Named, undoable edits of the story outline: story text, parse results, beats, lay-out.

The story outliner calls these through ``ctx.edit`` exactly like :mod:`core.editing`; each function
is one undo step. Beat edits made by the author mark the beat ``edited=True, source="user"`` so a
later re-parse can keep them (see :func:`merge_scenes` for the rule).

Pure core: parse results arrive as plain :class:`Scene` lists and new characters as ready-made
:class:`Character` objects, so nothing here imports the parsers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from typing import Any

from pydantic import ValidationError

from comic_studio.core.changes import Changes
from comic_studio.core.commands import Command, Compound, InsertItem, MoveItem, RemoveItem, ReplaceList, SetFields
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.ids import new_id
from comic_studio.core.layout import assign_beats_to_panels as fill_panels, auto_layout
from comic_studio.core.model import MAX_TEXT, Beat, Character, Page, Project, Scene

STORY_TEXT_MERGE_KEY = ("story-text",)
"""Consecutive story-text edits merge into one undo step until ``break_merge``."""

ORDER_WEIGHT = 0.3
"""Merge rule: bonus ``ORDER_WEIGHT / (1 + distance)`` for a new beat near the edited beat's place."""
MIN_SIMILARITY = 0.35
"""Merge rule: a new beat at another place must be at least this similar to be replaced."""
MATCH_WINDOW = 25
"""Merge rule: only new beats at most this many places away are candidates (keeps it linear)."""

_EDITABLE = set(Beat.model_fields) - {"id", "source", "edited"}
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


# --------------------------------------------------------------------------- look-ups


def _beat(doc: Document, beat_id: str) -> Beat:
    beat = doc.project.story.beat(beat_id)
    if beat is None:
        raise CommandError(f"beat {beat_id!r} does not exist")
    return beat


def scene_of(project: Project, beat_id: str) -> Scene:
    for scene in project.story.scenes:
        if any(b.id == beat_id for b in scene.beats):
            return scene
    raise CommandError(f"beat {beat_id!r} does not exist")


def _unlink_panels(project: Project, beat_ids: Iterable[str]) -> list[Command]:
    """Panels showing a beat that goes away forget it (instead of pointing at nothing)."""
    gone = set(beat_ids)
    return [
        SetFields(("panel", panel.id), "Unlink beat", beat_id=None)
        for page in project.pages
        for panel in page.panels
        if panel.beat_id in gone
    ]


def pages_have_artwork(project: Project) -> bool:
    """True when replacing the pages would throw away rendered images or balloons."""
    return any(panel.results or panel.balloons for page in project.pages for panel in page.panels)


# --------------------------------------------------------------------------- story text and parses


def set_story_text(doc: Document, text: str) -> Changes:
    """Typing in the story editor: consecutive calls merge into one undo step."""
    if len(text) > MAX_TEXT:
        # A longer text would be saved but refused when the file is opened again.
        raise CommandError(
            f"the story is {len(text):,} characters; a project keeps at most {MAX_TEXT:,} (split it into issues)"
        )
    if text == doc.project.story.text:
        return Changes()
    return doc.execute(SetFields(("story",), "Edit story text", merge_key=STORY_TEXT_MERGE_KEY, text=text))


def _beat_words(beat: Beat) -> list[str]:
    """The beat's words cut to 5 letters (a cheap stem: "studies" and "studied" agree)."""
    text = beat.action or " ".join(line.text for line in beat.dialogue) or beat.caption
    return [w[:5] for w in _WORD.findall(text.lower())]


def similarity(a: Beat, b: Beat) -> float:
    """0..1: difflib's ratio over the two beats' stemmed words, in order."""
    return SequenceMatcher(None, _beat_words(a), _beat_words(b), autojunk=False).ratio()


def merge_scenes(old_scenes: Sequence[Scene], new_scenes: Sequence[Scene]) -> list[Scene]:
    """A fresh parse (``new_scenes``) with the author's edited beats of ``old_scenes`` kept.

    The rule: scenes are paired by order (old scene *k* with new scene *k*). Inside a pair, each
    edited old beat (in order) replaces the not-yet-taken new beat with the best score
    ``similarity + ORDER_WEIGHT / (1 + |i - j|)``, where :func:`similarity` compares the two
    actions word by word (dialogue text when a beat has no action) and *i*, *j* are the beats'
    places in their scenes. Candidates: the new beat at the same place, and new beats within
    ``MATCH_WINDOW`` places that are at least ``MIN_SIMILARITY`` similar. So a beat stays at its
    place unless another new beat's text is clearly closer. An edited beat left without a partner
    is inserted at its old place; an old scene without a new counterpart keeps
    just its edited beats. Edited beats keep their ids, so panels showing them stay linked. Every
    beat that was not edited is replaced by the new parse.
    """
    # Shallow copies: nothing here mutates a beat, and the command storing the result copies deeply.
    out = [scene.model_copy(update={"beats": list(scene.beats)}) for scene in new_scenes]
    for k, old in enumerate(old_scenes):
        edited = [(i, beat) for i, beat in enumerate(old.beats) if beat.edited]
        if not edited:
            continue
        if k >= len(out):
            out.append(old.model_copy(update={"beats": [b for _, b in edited]}))
            continue
        target = out[k].beats
        taken: set[int] = set()
        leftovers: list[tuple[int, Beat]] = []
        for i, beat in edited:
            best, best_score = None, -1.0
            for j in range(max(0, i - MATCH_WINDOW), min(len(target), i + MATCH_WINDOW + 1)):
                if j in taken:
                    continue
                similar = similarity(beat, target[j])
                if j != i and similar < MIN_SIMILARITY:
                    continue
                score = similar + ORDER_WEIGHT / (1 + abs(i - j))
                if score > best_score:
                    best, best_score = j, score
            if best is None:
                leftovers.append((i, beat))
            else:
                taken.add(best)
                target[best] = beat
        for i, beat in leftovers:
            target.insert(min(i, len(target)), beat)
    return out


def apply_parse(
    doc: Document, scenes: Sequence[Scene], mode: str = "replace", text: str | None = None, title: str | None = None
) -> Changes:
    """Put a parse result into the story: ``"replace"`` drops every old beat, ``"merge"`` keeps the
    beats the author edited (:func:`merge_scenes`). ``text``: the story text that was parsed (stored
    in the same step); ``title``: the story's title, used only while the project is untitled."""
    if mode not in ("replace", "merge"):
        raise CommandError(f"unknown re-parse mode {mode!r}; use 'replace' or 'merge'")
    story = doc.project.story
    new = merge_scenes(story.scenes, scenes) if mode == "merge" else list(scenes)  # SetFields copies
    fields: dict[str, Any] = {"scenes": new}
    if text is not None:
        if len(text) > MAX_TEXT:
            raise CommandError(f"the story is {len(text):,} characters; a project keeps at most {MAX_TEXT:,}")
        fields["text"] = text
    commands: list[Command] = [SetFields(("story",), "Story", **fields)]
    if title and doc.project.title in ("", "Untitled comic"):
        commands.append(SetFields(("project",), "Title", title=title))
    label = "Merge parse" if mode == "merge" else "Parse story"
    return doc.execute(Compound(label, commands))


# --------------------------------------------------------------------------- beats


def edit_beat(doc: Document, beat_id: str, label: str = "Edit beat", merge_key: Any = None, **fields: Any) -> Changes:
    """Change beat fields (validated like a loaded file) and mark the beat as the author's.
    Characters removed from the beat stop being its actor/target. Pass a ``merge_key`` for typing."""
    beat = _beat(doc, beat_id)
    unknown = set(fields) - _EDITABLE
    if unknown:
        raise CommandError(f"beats have no editable field {', '.join(sorted(unknown))}")
    merged = {
        **beat.model_dump(),
        **{k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in fields.items()},
    }
    if "dialogue" in fields:
        merged["dialogue"] = [d.model_dump() if hasattr(d, "model_dump") else d for d in fields["dialogue"]]
    for role in ("actor_id", "target_id"):
        if merged[role] is not None and merged[role] not in merged["characters"]:
            if role in fields:
                merged["characters"] = [*merged["characters"], merged[role]]
            else:
                merged[role] = None
    if merged["actor_id"] is not None and merged["actor_id"] == merged["target_id"]:
        raise CommandError("a beat's actor and target must be different characters")
    try:
        checked = Beat.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CommandError(f"beat {where}: {first['msg']}") from None
    values = {name: getattr(checked, name) for name in _EDITABLE if getattr(checked, name) != getattr(beat, name)}
    if not values and beat.edited and beat.source == "user":
        return Changes()
    return doc.execute(SetFields(("beat", beat_id), label, merge_key=merge_key, **values, edited=True, source="user"))


def move_beat(doc: Document, beat_id: str, scene_id: str, index: int) -> Changes:
    """Move a beat to ``scene_id`` so that it ends up at ``index`` (its place after the move).
    A move does not mark the beat edited: its content is unchanged."""
    source = scene_of(doc.project, beat_id)
    target = next((s for s in doc.project.story.scenes if s.id == scene_id), None)
    if target is None:
        raise CommandError(f"scene {scene_id!r} does not exist")
    if source.id == scene_id:
        index = max(0, min(index, len(source.beats) - 1))
        if source.beats[index].id == beat_id:
            return Changes()
        return doc.execute(MoveItem(("beats", scene_id), beat_id, index, text="Move beat"))
    beat = _beat(doc, beat_id)
    index = max(0, min(index, len(target.beats)))
    return doc.execute(
        Compound(
            "Move beat",
            [
                RemoveItem(("beats", source.id), beat_id, text="Move beat"),
                InsertItem(("beats", scene_id), beat, index, text="Move beat"),
            ],
        )
    )


def merge_beats(doc: Document, first_id: str, second_id: str) -> Beat:
    """Fold the second beat into the first (actions, characters, dialogue and captions joined);
    the merged beat stays where the first one is. Panels that showed the second beat forget it."""
    if first_id == second_id:
        raise CommandError("pick two different beats to merge")
    first, second = _beat(doc, first_id), _beat(doc, second_id)
    characters = list(dict.fromkeys([*first.characters, *second.characters]))
    if len(characters) > 16:
        raise CommandError("the merged beat would have more than 16 characters")
    dialogue = [*first.dialogue, *second.dialogue]
    if len(dialogue) > 64:
        raise CommandError("the merged beat would have more than 64 dialogue lines")
    actor = first.actor_id or second.actor_id
    target = first.target_id or second.target_id
    if target == actor:
        target = next((t for t in (first.target_id, second.target_id) if t and t != actor), None)

    def joined(a: str, b: str) -> str:
        return " ".join(p for p in (a.strip(), b.strip()) if p)

    values: dict[str, Any] = dict(
        action=joined(first.action, second.action),
        characters=characters,
        actor_id=actor,
        target_id=target,
        dialogue=dialogue,
        caption=joined(first.caption, second.caption),
        setting=first.setting or second.setting,
        time_of_day=first.time_of_day or second.time_of_day,
        mood=first.mood or second.mood,
    )
    commands: list[Command] = [
        SetFields(("beat", first_id), "Merge beats", **values, edited=True, source="user"),
        RemoveItem(("beats", scene_of(doc.project, second_id).id), second_id, text="Merge beats"),
        *_unlink_panels(doc.project, [second_id]),
    ]
    doc.execute(Compound("Merge beats", commands))
    return _beat(doc, first_id)


def _sentence_cut(action: str) -> int | None:
    """The sentence end nearest the middle of ``action`` (None for a single sentence)."""
    end = len(action.rstrip())
    cuts = [m.end() for m in _SENTENCE_END.finditer(action) if 0 < m.end() < end]
    return min(cuts, key=lambda c: abs(c - len(action) / 2)) if cuts else None


def _word_cut(action: str) -> int | None:
    stripped = action.rstrip()
    cuts = [m.start() for m in re.finditer(r"\s+", stripped) if m.start() > 0]
    return min(cuts, key=lambda c: abs(c - len(stripped) / 2)) if cuts else None


def split_beat(doc: Document, beat_id: str, action_at: int | None = None, dialogue_at: int | None = None) -> Beat:
    """Cut a beat in two. By default the action is cut at the sentence end nearest its middle and
    all dialogue stays with the first part; a one-sentence beat with two or more dialogue lines
    keeps its action and moves the second half of the dialogue; otherwise the action is cut at the
    word gap nearest the middle. ``action_at`` (a character offset) and ``dialogue_at`` (a line
    index) choose the cut by hand. The second part follows the first, with the same characters,
    shot and setting. Returns the new (second) beat."""
    beat = _beat(doc, beat_id)
    action, lines = beat.action, beat.dialogue
    if action_at is None and dialogue_at is None:
        cut = _sentence_cut(action)
        if cut is not None:
            action_at, dialogue_at = cut, len(lines)
        elif len(lines) >= 2:
            action_at, dialogue_at = len(action), (len(lines) + 1) // 2
        else:
            action_at, dialogue_at = (_word_cut(action) or len(action)), len(lines)
    elif action_at is None:
        action_at = len(action)
    elif dialogue_at is None:
        dialogue_at = len(lines)
    assert action_at is not None and dialogue_at is not None  # every branch above set both
    action_at = max(0, min(action_at, len(action)))
    dialogue_at = max(0, min(dialogue_at, len(beat.dialogue)))
    head, tail = action[:action_at].strip(), action[action_at:].strip()
    first_lines, second_lines = beat.dialogue[:dialogue_at], beat.dialogue[dialogue_at:]
    if not (tail or second_lines) or not (head or first_lines or beat.caption.strip()):
        raise CommandError("cannot split this beat there: one of the two parts would be empty")
    second = beat.model_copy(
        update={
            "id": new_id(),
            "action": tail,
            "dialogue": second_lines,
            "caption": "",
            "source": "user",
            "edited": True,
        },
        deep=True,
    )
    scene = scene_of(doc.project, beat_id)
    index = next(i for i, b in enumerate(scene.beats) if b.id == beat_id)
    doc.execute(
        Compound(
            "Split beat",
            [
                SetFields(
                    ("beat", beat_id), "Split beat", action=head, dialogue=first_lines, edited=True, source="user"
                ),
                InsertItem(("beats", scene.id), second, index + 1, text="Split beat"),
            ],
        )
    )
    return second


def add_beat(doc: Document, scene_id: str | None = None, index: int | None = None, action: str = "New beat") -> Beat:
    """A new, author-written beat (in the last scene by default; a first scene is made if needed)."""
    beat = Beat(action=action, source="user", edited=True)
    scenes = doc.project.story.scenes
    if not scenes:
        doc.execute(InsertItem(("scenes",), Scene(title="Scene 1", beats=[beat]), text="Add beat"))
        return beat
    scene = next((s for s in scenes if s.id == scene_id), None) if scene_id else scenes[-1]
    if scene is None:
        raise CommandError(f"scene {scene_id!r} does not exist")
    doc.execute(InsertItem(("beats", scene.id), beat, index, text="Add beat"))
    return beat


def delete_beats(doc: Document, beat_ids: Sequence[str]) -> Changes:
    """Delete beats (one undo step); panels that showed them forget them."""
    if not beat_ids:
        raise CommandError("no beat selected")
    commands: list[Command] = [
        RemoveItem(("beats", scene_of(doc.project, b).id), b, text="Delete beat") for b in beat_ids
    ]
    commands += _unlink_panels(doc.project, beat_ids)
    return doc.execute(Compound("Delete beat" if len(beat_ids) == 1 else "Delete beats", commands))


def rename_scene(doc: Document, scene_id: str, title: str) -> Changes:
    return doc.execute(SetFields(("scene", scene_id), "Rename scene", title=title))


# --------------------------------------------------------------------------- lay-out


def lay_out_story(doc: Document) -> list[Page]:
    """Replace every page by the auto-layout of all beats (one panel per beat): the layout half of
    ``workflows.story.story_to_document``. The caller asks first when :func:`pages_have_artwork`."""
    project = doc.project
    if not project.story.beats():
        raise CommandError("the story has no beats yet: parse it (or add beats) first")
    pages = auto_layout(list(project.story.scenes), project.page_format, project.reading_direction)
    doc.execute(Compound("Lay out story", [ReplaceList(("pages",), pages, "Pages")]))
    return pages


def assign_beats(doc: Document, beat_ids: Sequence[str], panel_ids: Sequence[str]) -> Changes:
    """Give the beats, in order, to the panels, in the order given (the selection order); each
    panel takes the beat's id, shot, setting and characters and keeps its images and balloons."""
    if not beat_ids:
        raise CommandError("select the beats to assign in the outliner")
    if not panel_ids:
        raise CommandError("select the panels to fill on the page first")
    if len(beat_ids) > len(panel_ids):
        raise CommandError(f"{len(beat_ids)} beats cannot go into {len(panel_ids)} selected panels; select more panels")
    commands: list[Command] = []
    for beat_id, panel_id in zip(beat_ids, panel_ids, strict=False):
        found = doc.project.find_panel(panel_id)
        if found is None:
            raise CommandError(f"panel {panel_id!r} does not exist")
        filled = fill_panels([found[1]], [_beat(doc, beat_id)])[0]
        commands.append(
            SetFields(
                ("panel", panel_id),
                "Assign beat",
                beat_id=beat_id,
                shot=filled.shot,
                setting=filled.setting,
                characters=filled.characters,
            )
        )
    return doc.execute(Compound("Assign beats to panels", commands))


# --------------------------------------------------------------------------- suggested characters


def provisional_ids(project: Project, prefix: str = "new:") -> list[str]:
    """Ids of characters the parser suggested but the library does not hold yet, in story order."""
    seen: dict[str, None] = {}
    for beat in project.story.beats():
        for cid in (*beat.characters, beat.actor_id, beat.target_id, *(d.speaker_id for d in beat.dialogue)):
            if cid and cid.startswith(prefix):
                seen.setdefault(cid, None)
    return list(seen)


def adopt_characters(
    doc: Document, created: Sequence[Character], mapping: dict[str, str], drop: Iterable[str] = ()
) -> Changes:
    """Add ``created`` to the library and point beats and panels at them (``mapping``: provisional
    id → new id); provisional ids in ``drop`` are removed from beats (speakers become unattributed)
    and panels. One undo step; beats are not marked edited (their content did not change)."""
    dropped = set(drop)

    def swap(cid: str | None) -> str | None:
        return None if cid is None or cid in dropped else mapping.get(cid, cid)

    commands: list[Command] = [InsertItem(("characters",), c, text="Add character") for c in created]
    for beat in doc.project.story.beats():
        characters = [c for c in (swap(c) for c in beat.characters) if c]
        dialogue = [d.model_copy(update={"speaker_id": swap(d.speaker_id)}) for d in beat.dialogue]
        values: dict[str, Any] = dict(
            characters=characters, actor_id=swap(beat.actor_id), target_id=swap(beat.target_id), dialogue=dialogue
        )
        if any(values[k] != getattr(beat, k) for k in values):
            commands.append(SetFields(("beat", beat.id), "Characters", **values))
    for page in doc.project.pages:
        for panel in page.panels:
            placements = [
                p.model_copy(update={"character_id": swap(p.character_id)})
                for p in panel.characters
                if swap(p.character_id)
            ]
            if placements != panel.characters:
                commands.append(SetFields(("panel", panel.id), "Characters", characters=placements))
    if not commands:
        return Changes()
    return doc.execute(Compound("Add suggested characters", commands))


__all__ = [
    "MATCH_WINDOW",
    "MIN_SIMILARITY",
    "ORDER_WEIGHT",
    "STORY_TEXT_MERGE_KEY",
    "add_beat",
    "adopt_characters",
    "apply_parse",
    "assign_beats",
    "delete_beats",
    "edit_beat",
    "lay_out_story",
    "merge_beats",
    "merge_scenes",
    "move_beat",
    "pages_have_artwork",
    "provisional_ids",
    "rename_scene",
    "scene_of",
    "set_story_text",
    "similarity",
    "split_beat",
]
