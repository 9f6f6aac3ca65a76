"""Shared check for undoable edits: one step that undo restores exactly and redo re-applies."""

from comic_studio.core.document import Document


def assert_undoable(doc: Document, action) -> object:
    before = doc.project.model_dump()
    value = action()
    after = doc.project.model_dump()
    assert after != before
    doc.undo()
    assert doc.project.model_dump() == before
    doc.redo()
    assert doc.project.model_dump() == after
    return value
