"""SerialGen's stage 1 from the character library: Standardize queues a "Standard sheet" job in the
render queue; the finished sheet becomes the character's standard sheet and first outfit reference
in one undo step; Discard removes it."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid  # noqa: E402

from comic_studio.testing.tiny import character_picture  # noqa: E402


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_standardize_and_discard_from_the_library(studio, tiny_models, qtbot):
    ctx, service, library, messages = studio
    ana = cid(ctx.document, "Ana")
    character = ctx.document.project.character(ana)
    character.body_refs = [ctx.document.assets.add(_png(character_picture(10, 48, 64)))]
    author_picture = character.body_refs[0]
    library.select(ana)
    (job_id,) = library.standardize()
    (job,) = service.jobs()
    assert job.job_id == job_id and job.label == "Standard sheet: Ana" and job.sheet_for == ana
    assert service.standardize(ana) is None and "already being drawn" in messages[-1]
    qtbot.waitUntil(service.is_idle, timeout=120_000)
    character = ctx.document.project.character(ana)
    assert character.standard_sheet is not None and character.body_refs == [character.standard_sheet, author_picture]
    assert ctx.undo_stack.undoText() == "Set standard sheet"
    assert "standard sheet is now the first outfit reference" in messages[-1]
    ctx.undo_stack.undo()
    assert ctx.document.project.character(ana).standard_sheet is None
    ctx.undo_stack.redo()
    library.select(ana)
    library.discard_sheets()
    assert ctx.document.project.character(ana).standard_sheet is None
    assert ctx.document.project.character(ana).body_refs == [author_picture]
    ben = cid(ctx.document, "Ben")  # no reference at all: refused with the reason, nothing queued
    assert library.standardize([ben]) == [] and "Ben has no reference picture" in messages[-1]
