"""The full path: real lettering geometry (comic_studio.core.lettering) through PNG and PDF export."""

from __future__ import annotations

import pytest
from export_builders import BLEED, make_project
from PIL import Image
from pypdf import PdfReader

from comic_studio.core.lettering import balloon_geometry
from comic_studio.core.model import Balloon, BalloonKind, Box, TailTarget
from comic_studio.export import compose_page, export_pdf, export_pngs
from comic_studio.export.drawing import bounding_box

DPI = 144
SPEECH = "Where did everyone go?"
WHISPER = "psst over here"
CAPTION = "Meanwhile, on the roof"
SFX = "BOOM"


def px(x: float, y: float, bleed: float = 0.0) -> tuple[int, int]:
    return (int((x + bleed) * DPI / 72), int((y + bleed) * DPI / 72))


@pytest.fixture
def lettered(assets):
    project = make_project(assets, balloon=False, dpi=DPI)
    top, bottom = project.pages[0].panels_in_order()
    top.balloons += [
        Balloon(
            kind=BalloonKind.SPEECH, text=SPEECH, box=Box(x=40, y=40, w=110, h=50), tail=TailTarget(point=(120, 170))
        ),
        Balloon(kind=BalloonKind.WHISPER, text=WHISPER, box=Box(x=170, y=110, w=80, h=40)),
    ]
    bottom.balloons += [
        Balloon(kind=BalloonKind.CAPTION, text=CAPTION, box=Box(x=24, y=250, w=120, h=30)),
        Balloon(kind=BalloonKind.SFX, text=SFX, box=Box(x=120, y=320, w=120, h=60)),
    ]
    return project


def test_compositor_uses_the_lettering_engine_by_default(lettered, assets):
    drawing = compose_page(lettered, lettered.pages[0], assets)
    kinds = [b.kind for b in drawing.balloons()]
    assert kinds == ["speech", "whisper", "caption", "sfx"]
    speech = drawing.balloons()[0]
    assert len(speech.shapes) >= 2  # body + tail
    assert " ".join(line.text for line in speech.lines) == SPEECH
    assert drawing.balloons()[1].dashed and not speech.dashed
    assert drawing.balloons()[3].shapes == () and drawing.balloons()[3].lines[0].outline > 0


def test_png_pixels_with_real_lettering(lettered, assets, tmp_path):
    (path,) = export_pngs(lettered, assets, tmp_path, dpi=DPI)
    image = Image.open(path).convert("RGB")
    top, bottom = lettered.pages[0].panels_in_order()

    speech = balloon_geometry(top.balloons[0], top, lettered)
    left, body_top, right, _ = bounding_box(speech.shapes[0])
    first = speech.lines[0]
    above_text = (body_top + first.y - speech.font_size) / 2
    assert first.y - speech.font_size - body_top > 4  # room for a probe between outline and text
    assert image.getpixel(px((left + right) / 2, above_text)) == (255, 255, 255)  # balloon paper
    row = [
        image.getpixel((x, px(0, first.y - speech.font_size * 0.3)[1]))
        for x in range(px(first.x, 0)[0], px(first.x + first.width, 0)[0])
    ]
    assert min(sum(p) for p in row) < 150  # dark glyphs on the line
    assert not any(p == (255, 0, 0) for p in row)  # the balloon covers the red art under the text

    caption = balloon_geometry(bottom.balloons[0], bottom, lettered)
    c_left, c_top, _, _ = bounding_box(caption.shapes[0])
    r, g, b = image.getpixel(px(c_left + 3, c_top + 3))
    assert (r, g, b) == pytest.approx((255, 246, 196), abs=2)  # narration-box yellow

    sfx = balloon_geometry(bottom.balloons[1], bottom, lettered)
    line = sfx.lines[0]
    area = image.crop((*px(line.x - 4, line.y - sfx.font_size), *px(line.x + line.width + 4, line.y + 4)))
    colours = set(area.get_flattened_data())
    assert (255, 255, 255) in colours  # white outline around the glyphs on the grey placeholder
    assert min(sum(c) for c in colours) < 60  # black glyphs


def test_pdf_with_real_lettering_has_each_text_once(lettered, assets, tmp_path):
    out = export_pdf(lettered, assets, tmp_path / "lettered.pdf", dpi=72)
    page = PdfReader(out).pages[0]
    text = page.extract_text()
    for words in (SPEECH, WHISPER, CAPTION):
        for word in words.split():
            assert word in text
    assert text.count(SFX) == 1  # the SFX outline is drawn as paths, not as a second text run
    content = page.get_contents().get_data().decode("latin-1")
    assert "] 0 d" in content  # the whisper balloon's dash pattern
    assert box_size(page.mediabox) == pytest.approx((288 + 2 * BLEED, 432 + 2 * BLEED))


def box_size(rect) -> tuple[float, float]:
    return (float(rect.width), float(rect.height))


def test_pdf_sfx_outline_falls_back_to_a_text_pass_without_fonttools(lettered, assets, tmp_path, monkeypatch):
    import comic_studio.export.pdf as pdf_module

    monkeypatch.setattr(pdf_module, "glyph_outline_paths", lambda *a: None)
    out = export_pdf(lettered, assets, tmp_path / "fallback.pdf", dpi=72)
    page = PdfReader(out).pages[0]
    assert page.extract_text().count(SFX) == 2  # outline pass as stroked text, then the fill pass
    assert "1 Tr" in page.get_contents().get_data().decode("latin-1")
