"""The LoRA training samples on the character's card and in the editor's LoRA box: read from the
files a run keeps beside its checkpoint (written here by the trainer's own writer, as a run in the
queue or in another process writes them), live as steps arrive, gone when a new run starts."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QColor, QImage

from comic_studio.core import character_edits as ce
from comic_studio.core.document import Document
from comic_studio.training.samples import keep_samples, remove_samples
from comic_studio.ui.characters import CharacterLibrary
from comic_studio.ui.characters.card import CARD_SIZE, card_pixmap
from comic_studio.ui.characters.editor import CharacterEditor
from comic_studio.workflows.training import checkpoint_path

WAIT_MS = 10_000  # file-system notifications arrive in milliseconds; a lost one fails the test


def _pictures(*colours: str) -> list[Image.Image]:
    return [Image.new("RGB", (64, 64), colour) for colour in colours]


def test_card_and_lora_box_follow_the_runs_sample_files(ctx, qtbot):
    doc = Document.new(title="Samples")
    mara = ce.add_character(doc, name="Mara")
    ada = ce.add_character(doc, name="Ada")
    ctx.set_document(doc)
    library = CharacterLibrary(ctx)
    qtbot.addWidget(library)
    editor = CharacterEditor(ctx, mara.id)
    qtbot.addWidget(editor)
    box = editor.lora_box
    assert box is not None
    assert library.sample_steps == {} and not box.sample_strip.isVisibleTo(box)  # no run yet

    checkpoint = checkpoint_path(doc.project.id, mara.id)
    keep_samples(checkpoint, 10, _pictures("red", "blue"))  # two prompts
    qtbot.waitUntil(lambda: library.sample_steps.get(mara.id) == 10, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: box.sample_strip.steps == [10, 10], timeout=WAIT_MS)
    assert box.sample_strip.isVisibleTo(box) and "step 10" in box.samples_label.text()
    assert "Ada" in library.card_names() and ada.id not in library.sample_steps  # only Mara trains
    tip = next(library.grid.item(i) for i in range(2) if library.grid.item(i).text() == "Mara").toolTip()
    assert "LoRA training sample (upper right): step 10" in tip

    for step in (20, 30, 40, 50):  # the run goes on: the box keeps the newest four steps
        keep_samples(checkpoint, step, _pictures("green", "yellow"))
    qtbot.waitUntil(lambda: library.sample_steps.get(mara.id) == 50, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: box.sample_strip.steps == [20, 20, 30, 30, 40, 40, 50, 50], timeout=WAIT_MS)

    remove_samples(checkpoint)  # what a new (not resumed) run does first
    qtbot.waitUntil(lambda: mara.id not in library.sample_steps, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: box.sample_strip.steps == [], timeout=WAIT_MS)
    assert not box.sample_strip.isVisibleTo(box)

    keep_samples(checkpoint, 5, _pictures("white"))  # the new run's first samples (the folder is new)
    qtbot.waitUntil(lambda: library.sample_steps.get(mara.id) == 5, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: box.sample_strip.steps == [5], timeout=WAIT_MS)


def test_the_card_draws_the_newest_sample_as_a_badge_in_the_upper_right(ctx):
    mara = ce.add_character(ctx.document, name="Mara", colour="#3060c0")
    sample = QImage(32, 32, QImage.Format.Format_RGB32)
    sample.fill(QColor("red"))
    plain = card_pixmap(mara, None).toImage()
    badged = card_pixmap(mara, None, sample=sample).toImage()
    corner = (CARD_SIZE - CARD_SIZE // 5, CARD_SIZE // 5)
    assert badged.pixelColor(*corner) == QColor("red") and plain.pixelColor(*corner) != QColor("red")
    # The rest of the card (the initials on the character's tint) is untouched.
    assert badged.pixelColor(CARD_SIZE // 5, CARD_SIZE - CARD_SIZE // 4) == plain.pixelColor(
        CARD_SIZE // 5, CARD_SIZE - CARD_SIZE // 4
    )
