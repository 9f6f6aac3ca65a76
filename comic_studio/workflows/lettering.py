"""The lettering pass: a panel's beat (caption, then dialogue) → its balloons, placed automatically.

Balloons the author moved by hand stay where they are; automatic ones are placed afresh."""

from __future__ import annotations

from collections.abc import Hashable

from comic_studio.core.commands import Compound, ReplaceList
from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.lettering import place_balloons
from comic_studio.core.lettering.placement import check_lettering_cost
from comic_studio.core.lookup import panel_label
from comic_studio.core.model import (
    Balloon,
    BalloonKind,
    Beat,
    DialogueKind,
    Panel,
    Project,
)

_BALLOON_KIND = {
    DialogueKind.SPEECH: BalloonKind.SPEECH,
    DialogueKind.THOUGHT: BalloonKind.THOUGHT,
    DialogueKind.SHOUT: BalloonKind.SHOUT,
    DialogueKind.WHISPER: BalloonKind.WHISPER,
}


def lettering_lines(beat: Beat) -> list[tuple[BalloonKind, str, str | None]]:
    """What a panel's balloons say: the beat's caption first, then its dialogue in order, then its
    sound effects. An off-panel line keeps its balloon but has no speaker to point its tail at."""
    lines = [
        (_BALLOON_KIND[line.kind], line.text, None if line.off_panel else line.speaker_id) for line in beat.dialogue
    ]
    if beat.caption:
        lines.insert(0, (BalloonKind.CAPTION, beat.caption, None))
    lines.extend((BalloonKind.SFX, text, None) for text in beat.sfx)
    return lines


def plan_lettering(project: Project, panel: Panel) -> list[Balloon] | None:
    """The panel's balloons after automatic lettering (hand-moved balloons kept, automatic ones
    placed afresh), or None when there is nothing to do. Pure: safe on a copy in a worker thread."""
    beat = project.story.beat(panel.beat_id) if panel.beat_id else None
    if beat is None:
        return None
    lines = lettering_lines(beat)
    if not lines and not any(b.auto_placed for b in panel.balloons):
        return None
    kept = [b for b in panel.balloons if not b.auto_placed]
    check_lettering_cost(panel, lines, panel_label(project, panel.id))
    return kept + (place_balloons(panel, lines, project) if lines else [])


def apply_lettering(doc: Document, panel_id: str, balloons: list[Balloon], batch: Hashable | None = None) -> None:
    """Store planned balloons as one undoable "Letter panel" step; with the ``batch`` key of the
    render that asked for it, it joins that render's step (see ``record_result``)."""
    command = ReplaceList(("balloons", panel_id), balloons, "Letter panel")
    if batch is not None:
        doc.execute(Compound("Letter panel", [command], merge_key=batch, across_breaks=True))
    else:
        doc.execute(command)


def letter_panel(doc: Document, panel_id: str, batch: Hashable | None = None) -> int:
    """Place balloons for the panel's beat (dialogue + caption), replacing earlier automatic ones.
    Balloons the author moved by hand stay. Returns the number of automatic balloons placed; no
    undo step when there is nothing to letter."""
    found = doc.project.find_panel(panel_id)
    if found is None:
        raise ComicStudioError(f"panel {panel_id!r} does not exist")
    balloons = plan_lettering(doc.project, found[1])
    if balloons is None:
        return 0
    apply_lettering(doc, panel_id, balloons, batch)
    return sum(1 for b in balloons if b.auto_placed)
