"""Shared pieces of the identity-anchor tests (not a test module): a three-panel story whose panels
use the consistent backend on the tiny kit, at 36 dpi so panels are ~100 px.

Everything that feeds a render is fixed: the characters' ids (anchor seeds derive from them) and the
panels' seeds (the consistency schedule's coins derive from them). With ids left random, each run
drew other coins, and a panel whose only bank-reading step was the last of its 3 steps changed by at
most one grey level, sometimes none, when its anchor changed."""

from __future__ import annotations

from comic_studio.core.document import Document
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character
from comic_studio.workflows.anchors import character_named
from comic_studio.workflows.story import story_to_document

STORY = "Ana walks onto the pier.\n\nBen waves at Ana from the boat.\n\nAna laughs at Ben."
STEPS = 3
PANEL_SEEDS = (11, 12, 13)
"""Fixed panel seeds. 11 (the first panel: Ana alone) reads the identity bank at steps 1 and 2 of 3
(per-layer coins), where the bank visibly shapes the image (the tests that change an anchor check
that plan)."""


def tiny_settings(kit, **extra):
    return {"model": str(kit.sdxl), "steps": STEPS, "anchor_size": 64, "start_step": 1, "max_side": 64,
            "preview_every": 0, **extra}  # fmt: skip


def make_document(kit) -> Document:
    doc = Document.new("Anchors", page_format("us-comic"))
    doc.project.page_format.dpi = 36  # panels of ~100 px: quick to render and to encode
    cast = [
        Character(id="ana", name="Ana", description="green raincoat"),
        Character(id="ben", name="Ben", description="grey sweater"),
    ]
    story_to_document(STORY, cast, document=doc)
    for index, panel in enumerate(p for page in doc.project.pages for p in page.panels):
        panel.backend, panel.backend_settings = "consistent", tiny_settings(kit)
        panel.seed = PANEL_SEEDS[index]
    return doc


def cid(doc: Document, name: str) -> str:
    return character_named(doc.project, name).id


def two_shot(doc: Document):
    """The panel showing both characters."""
    return next(p for page in doc.project.pages for p in page.panels if len(p.characters) == 2)
