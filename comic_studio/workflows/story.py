"""Story text → a document whose pages hold the story's beats as panels."""

from __future__ import annotations

from comic_studio.core.commands import Compound, ReplaceList, SetFields
from comic_studio.core.document import Document
from comic_studio.core.layout import auto_layout, page_format
from comic_studio.core.model import Character, ReadingDirection


def story_to_document(
    text: str,
    characters: list[Character],
    *,
    title: str = "Untitled comic",
    parser: str = "rules",
    preset: str = "us-comic",
    direction: ReadingDirection = ReadingDirection.LTR,
    document: Document | None = None,
) -> Document:
    """Parse ``text`` and lay its beats out on pages (one undoable "Lay out story" step)."""
    from comic_studio.parsing import parse, promote_suggestions

    # Proper names the library does not know become characters (the author can merge them later).
    parsed, created = promote_suggestions(parse(text, characters, parser=parser), characters)
    characters = [*characters, *created]
    if document is None:
        title = parsed.title.title() if parsed.title else title
        document = Document.new(title, page_format(preset))
        document.project.reading_direction = direction  # a brand-new document: nothing to undo yet
    doc = document
    project = doc.project
    scenes = parsed.scenes
    pages = auto_layout(scenes, project.page_format, project.reading_direction)
    doc.execute(
        Compound(
            "Lay out story",
            [
                ReplaceList(("characters",), characters, "Characters"),
                SetFields(("story",), "Story", text=text, scenes=scenes),
                ReplaceList(("pages",), pages, "Pages"),
            ],
        )
    )
    return doc
