"""Story edits: every one is a single undo step; re-parse merge keeps the author's beats."""

import pytest
from undo_helpers import assert_undoable

from comic_studio.core import editing, story_edits
from comic_studio.core.document import Document
from comic_studio.core.errors import CommandError
from comic_studio.core.model import Balloon, BalloonKind, Beat, Box, Character, DialogueLine, Scene, ShotType
from comic_studio.core.story_edits import merge_scenes

MARA = Character(id="mara", name="Mara")
THEO = Character(id="theo", name="Theo")


def _scenes() -> list[Scene]:
    return [
        Scene(
            id="s1",
            title="Kitchen",
            beats=[
                Beat(id="b1", action="Rain hammered the old lighthouse.", shot=ShotType.ESTABLISHING),
                Beat(id="b2", action="Mara studied a brass key.", characters=["mara"], actor_id="mara"),
                Beat(
                    id="b3",
                    action="Theo walked in.",
                    characters=["theo"],
                    dialogue=[
                        DialogueLine(speaker_id="theo", text="Still awake?"),
                        DialogueLine(speaker_id="mara", text="Yes."),
                    ],
                ),
            ],
        ),
        Scene(
            id="s2",
            title="Harbour",
            beats=[
                Beat(id="b4", action="Mara and Theo ran down the pier.", characters=["mara", "theo"]),
                Beat(id="b5", action="Brandt raised a hand.", caption="Dawn."),
            ],
        ),
    ]


def _doc() -> Document:
    doc = Document.new("Story")
    doc.project.characters = [MARA, THEO]
    story_edits.apply_parse(doc, _scenes(), text="A story.")
    doc.undo_stack.clear()
    return doc


def _ids(doc: Document) -> list[list[str]]:
    return [[b.id for b in s.beats] for s in doc.project.story.scenes]


def test_story_text_typing_merges_into_one_step():
    doc = _doc()
    for text in ("O", "On", "Once", "Once upon"):
        story_edits.set_story_text(doc, text)
    assert len(doc.undo_stack) == 1 and doc.project.story.text == "Once upon"
    doc.undo_stack.break_merge()
    story_edits.set_story_text(doc, "Once upon a time")
    assert len(doc.undo_stack) == 2
    doc.undo()
    assert doc.project.story.text == "Once upon"
    doc.undo()
    assert doc.project.story.text == "A story."
    with pytest.raises(CommandError, match="at most"):
        story_edits.set_story_text(doc, "x" * 100_001)


def test_edit_beat_marks_it_the_authors_and_validates():
    doc = _doc()
    assert_undoable(doc, lambda: story_edits.edit_beat(doc, "b2", action="Mara turned the key."))
    beat = doc.project.story.beat("b2")
    assert beat.action == "Mara turned the key." and beat.edited and beat.source == "user"
    # Removing the actor from the characters clears the actor; setting a target adds it.
    story_edits.edit_beat(doc, "b2", characters=[])
    assert doc.project.story.beat("b2").actor_id is None
    story_edits.edit_beat(doc, "b2", target_id="theo")
    assert doc.project.story.beat("b2").characters == ["theo"]
    story_edits.edit_beat(
        doc, "b3", dialogue=[DialogueLine(speaker_id="theo", text="Hi", kind="shout")], shot="close-up"
    )
    beat = doc.project.story.beat("b3")
    assert beat.shot is ShotType.CLOSE_UP and beat.dialogue[0].text == "Hi"
    with pytest.raises(CommandError, match="shot"):
        story_edits.edit_beat(doc, "b3", shot="huge")
    with pytest.raises(CommandError, match="no editable field"):
        story_edits.edit_beat(doc, "b3", id="x")
    with pytest.raises(CommandError, match="text"):
        story_edits.edit_beat(doc, "b3", dialogue=[{"text": ""}])


def test_typing_in_a_beat_merges():
    doc = _doc()
    for text in ("M", "Ma", "Mar"):
        story_edits.edit_beat(doc, "b1", merge_key=("beat-action", "b1"), action=text)
    assert len(doc.undo_stack) == 1


def test_move_beats_within_and_across_scenes():
    doc = _doc()
    assert_undoable(doc, lambda: story_edits.move_beat(doc, "b3", "s1", 0))
    assert _ids(doc) == [["b3", "b1", "b2"], ["b4", "b5"]]
    assert_undoable(doc, lambda: story_edits.move_beat(doc, "b1", "s2", 1))
    assert _ids(doc) == [["b3", "b2"], ["b4", "b1", "b5"]]
    assert not doc.project.story.beat("b1").edited  # a move does not change content
    assert not story_edits.move_beat(doc, "b3", "s1", 0)  # no-op, no undo step
    with pytest.raises(CommandError):
        story_edits.move_beat(doc, "b3", "nope", 0)


def test_merge_and_split_beats():
    doc = _doc()
    editing.add_page(doc, "grid-2x2")
    panel = doc.project.pages[0].panels[0]
    doc.execute(story_edits.SetFields(("panel", panel.id), "link", beat_id="b3"))
    merged = assert_undoable(doc, lambda: story_edits.merge_beats(doc, "b2", "b3"))
    assert merged.action == "Mara studied a brass key. Theo walked in."
    assert merged.characters == ["mara", "theo"] and len(merged.dialogue) == 2 and merged.edited
    assert _ids(doc)[0] == ["b1", "b2"]
    assert doc.project.pages[0].panels[0].beat_id is None  # the panel forgot the removed beat
    second = assert_undoable(doc, lambda: story_edits.split_beat(doc, "b2"))
    first = doc.project.story.beat("b2")
    assert first.action == "Mara studied a brass key." and second.action == "Theo walked in."
    assert len(first.dialogue) == 2 and second.dialogue == [] and second.characters == ["mara", "theo"]
    assert _ids(doc)[0] == ["b1", "b2", second.id]
    # One sentence, two lines: the dialogue is split.
    third = story_edits.split_beat(doc, "b2")
    assert len(doc.project.story.beat("b2").dialogue) == 1 and len(third.dialogue) == 1
    with pytest.raises(CommandError, match="empty"):
        story_edits.split_beat(doc, "b2", action_at=0, dialogue_at=0)
    with pytest.raises(CommandError):
        story_edits.merge_beats(doc, "b1", "b1")


def test_add_and_delete_beats():
    doc = Document.new()
    beat = assert_undoable(doc, lambda: story_edits.add_beat(doc))
    assert doc.project.story.scenes[0].beats[0].id == beat.id and beat.edited
    doc = _doc()
    new = story_edits.add_beat(doc, "s1", 1, action="Lightning.")
    assert _ids(doc)[0] == ["b1", new.id, "b2", "b3"]
    assert_undoable(doc, lambda: story_edits.delete_beats(doc, ["b1", "b5"]))
    assert _ids(doc) == [[new.id, "b2", "b3"], ["b4"]]
    assert_undoable(doc, lambda: story_edits.rename_scene(doc, "s2", "Pier"))


def test_merge_keeps_edited_beats_by_order_and_similarity():
    old = _scenes()
    old[0].beats[1] = old[0].beats[1].model_copy(update={"action": "Mara studies the key closely.", "edited": True})
    old[1].beats[1] = old[1].beats[1].model_copy(update={"edited": True})
    # The new parse has an extra beat at the start of scene 1 and a shorter scene 2.
    new = [
        Scene(
            id="n1",
            beats=[
                Beat(id="x0", action="Thunder."),
                Beat(id="x1", action="Rain hammered the lighthouse."),
                Beat(id="x2", action="Mara studied a brass key."),
                Beat(id="x3", action="Theo walked in."),
            ],
        ),
        Scene(id="n2", beats=[Beat(id="x4", action="Mara and Theo ran.")]),
    ]
    merged = merge_scenes(old, new)
    assert [[b.id for b in s.beats] for s in merged] == [["x0", "x1", "b2", "x3"], ["x4", "b5"]]
    assert merged[0].beats[2].action == "Mara studies the key closely."
    # An old scene without a counterpart keeps only its edited beats.
    merged = merge_scenes(old, new[:1])
    assert [[b.id for b in s.beats] for s in merged] == [["x0", "x1", "b2", "x3"], ["b5"]]


def test_apply_parse_merge_and_title():
    doc = _doc()
    story_edits.edit_beat(doc, "b4", action="They sprint down the pier.")
    fresh = [
        Scene(beats=[Beat(action="Rain.")]),
        Scene(beats=[Beat(action="Mara and Theo ran down the pier."), Beat(action="Brandt.")]),
    ]
    assert_undoable(doc, lambda: story_edits.apply_parse(doc, fresh, "merge", text="New text", title="The Key"))
    beats = doc.project.story.beats()
    assert [b.action for b in beats] == ["Rain.", "They sprint down the pier.", "Brandt."]
    assert doc.project.story.text == "New text" and doc.project.title == "Story"  # titled project keeps its title
    story_edits.apply_parse(doc, fresh, "replace")
    assert [b.action for b in doc.project.story.beats()] == ["Rain.", "Mara and Theo ran down the pier.", "Brandt."]
    with pytest.raises(CommandError):
        story_edits.apply_parse(doc, fresh, "mix")


def test_lay_out_and_assign():
    doc = _doc()
    pages = assert_undoable(doc, lambda: story_edits.lay_out_story(doc))
    panels = [p for page in doc.project.pages for p in page.panels]
    assert {p.beat_id for p in panels} == {"b1", "b2", "b3", "b4", "b5"} and len(pages) >= 1
    assert not story_edits.pages_have_artwork(doc.project)
    first = doc.project.pages[0].panels_in_order()
    doc.execute(
        story_edits.InsertItem(("balloons", first[0].id), Balloon(kind=BalloonKind.SPEECH, box=Box(x=0, y=0, w=9, h=9)))
    )
    assert story_edits.pages_have_artwork(doc.project)
    targets = [first[1].id, first[0].id]
    assert_undoable(doc, lambda: story_edits.assign_beats(doc, ["b4", "b5"], targets))
    assert doc.project.find_panel(first[1].id)[1].beat_id == "b4"
    assert doc.project.find_panel(first[0].id)[1].beat_id == "b5"
    assert len(doc.project.find_panel(first[0].id)[1].balloons) == 1  # balloons kept
    assert [c.character_id for c in doc.project.find_panel(first[1].id)[1].characters] == ["mara", "theo"]
    with pytest.raises(CommandError, match="select more panels"):
        story_edits.assign_beats(doc, ["b1", "b2", "b3"], targets)
    with pytest.raises(CommandError, match="no beats"):
        story_edits.lay_out_story(Document.new())


def test_adopt_characters_rewrites_provisional_ids():
    doc = _doc()
    story_edits.edit_beat(
        doc,
        "b5",
        characters=["new:brandt", "new:crowd"],
        actor_id="new:brandt",
        dialogue=[DialogueLine(speaker_id="new:crowd", text="Hey!")],
    )
    story_edits.lay_out_story(doc)
    assert story_edits.provisional_ids(doc.project) == ["new:brandt", "new:crowd"]
    brandt = Character(id="c-brandt", name="Brandt")
    assert_undoable(
        doc, lambda: story_edits.adopt_characters(doc, [brandt], {"new:brandt": "c-brandt"}, drop=["new:crowd"])
    )
    beat = doc.project.story.beat("b5")
    assert beat.characters == ["c-brandt"] and beat.actor_id == "c-brandt" and beat.dialogue[0].speaker_id is None
    panel = next(p for page in doc.project.pages for p in page.panels if p.beat_id == "b5")
    assert [c.character_id for c in panel.characters] == ["c-brandt"]
    assert doc.project.character("c-brandt") and story_edits.provisional_ids(doc.project) == []
