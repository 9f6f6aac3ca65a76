"""The canvas on a real storyboard-rendered page: images drawn cropped into panels, balloons lettered,
a screenshot to look at, and the cost of re-syncing a 9-panel page."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage

from comic_studio.core import editing
from comic_studio.core.layout import bbox
from comic_studio.core.lettering import balloon_geometry
from comic_studio.ui.canvas import PageCanvas, items as canvas_items
from comic_studio.ui.context import StudioContext
from comic_studio.workflows.batch import render_document
from comic_studio.workflows.story import story_to_document

STORY = """INT. KITCHEN - NIGHT

Rain hammered the old lighthouse. Mara sat at the table and studied a brass key.

"Still awake?" Theo asked.

"I can't stop looking at it," Mara said.
"""


@pytest.fixture(scope="module")
def rendered_doc():
    doc = story_to_document(STORY, [])
    render_document(doc)
    return doc


def test_rendered_page_screenshot(qtbot, tmp_path, rendered_doc):
    ctx = StudioContext(rendered_doc)
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    view.resize(640, 900)
    view.show()
    qtbot.waitExposed(view)
    page = ctx.current_page
    assets = [p.result().asset for p in page.panels if p.result()]
    assert assets, "the storyboard backend rendered the panels"
    view.fit_page()
    view.grab()  # the first paint asks the worker thread to decode the panel images
    assert view.page_scene.images.busy() or all(view.page_scene.images.image(rendered_doc.assets, a) for a in assets)
    qtbot.waitUntil(lambda: not view.page_scene.images.busy(), timeout=10_000)
    view.set_show_reading_order(True)
    path = tmp_path / "canvas.png"
    image = view.grab().toImage()
    assert image.save(str(path))
    assert path.stat().st_size > 10_000

    # Inside each rendered panel the screen shows the image, not the grey placeholder.
    for panel in page.panels:
        box = bbox(panel.shape)
        point = view.mapFromScene(box.x + box.w * 0.5, box.y + box.h * 0.8)
        colour = QColor(image.pixel(point))
        assert colour.name() != "#e6e6e6"
    # Balloons exist for the dialogue and are lettered.
    items = view.page_scene.balloon_items
    assert items and all(i.paths is not None and i.fits for i in items.values())


def test_nine_panel_page_resync_reletters_only_what_changed(qtbot, ctx, monkeypatch):
    # How long a resync takes is measured by ``bench/run.py --only canvas_resync``.
    page = editing.add_page(ctx.document, "grid-3x3")
    ctx.select_page(page.id)
    for panel in page.panels:
        editing.add_balloon(
            ctx.document,
            panel.id,
            editing.BalloonKind.SPEECH,
            editing.Box(x=bbox(panel.shape).x + 5, y=bbox(panel.shape).y + 5, w=70, h=40),
            "Hello there, friend!",
        )
    view = PageCanvas(ctx)
    qtbot.addWidget(view)
    scene = view.page_scene
    assert len(scene.panel_items) == 9 and len(scene.balloon_items) == 9
    lettered: list[str] = []

    def counting(balloon, panel, project):
        lettered.append(balloon.id)
        return balloon_geometry(balloon, panel, project)

    monkeypatch.setattr(canvas_items, "balloon_geometry", counting)
    scene.sync(full=True)
    assert len(lettered) == 9
    # A change to one balloon re-letters that balloon only.
    lettered.clear()
    first = ctx.current_page.panels[0].balloons[0]
    ctx.edit(editing.edit_balloon_text, first.id, "Changed!")
    assert lettered == [first.id]


def test_placeholder_panels_show_number_and_beat(qtbot, ctx, tmp_path):
    view = PageCanvas(ctx)
    doc = story_to_document(STORY, [], document=ctx.document)  # pages arrive while it is open
    qtbot.addWidget(view)
    view.resize(500, 700)
    view.show()
    qtbot.waitExposed(view)
    panel = ctx.current_page.panels_in_order()[0]
    item = view.page_scene.panel_items[panel.id]
    assert item.number == 1 and item.beat_text == ctx.document.project.story.beat(panel.beat_id).action
    view.fit_page()
    image: QImage = view.grab().toImage()
    image.save(str(tmp_path / "placeholders.png"))
    box = bbox(panel.shape)
    point = view.mapFromScene(box.x + box.w - 4, box.y + box.h - 4)  # a corner: no text there
    assert QColor(image.pixel(point)).name() == "#e6e6e6"
    assert doc is ctx.document
