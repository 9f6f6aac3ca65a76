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


# --------------------------------------------------------------------------- overset text

OVERSET = " ".join(["far too many words for this little balloon"] * 6)
INK = (0, 0, 255)


@pytest.fixture
def overset(assets):
    """A small speech balloon (with a tail) on the red panel holding far more blue text than fits."""
    from comic_studio.core.model import BalloonStyle

    project = make_project(assets, balloon=False, dpi=DPI)
    top, _ = project.pages[0].panels_in_order()
    top.balloons.append(
        Balloon(
            kind=BalloonKind.SPEECH,
            text=OVERSET,
            box=Box(x=100, y=80, w=70, h=40),
            tail=TailTarget(point=(200, 180)),
            style=BalloonStyle(text_colour="#0000ff"),
        )
    )
    return project


def _inside_union(shapes, x: float, y: float) -> bool:
    from comic_studio.core.layout.geometry import point_in_polygon

    return any(point_in_polygon((x, y), shape) for shape in shapes)


def _near_outline(shapes, x: float, y: float, distance: float) -> bool:
    from comic_studio.core.layout.geometry import point_segment_distance

    return any(
        point_segment_distance((x, y), shape[i], shape[(i + 1) % len(shape)]) <= distance
        for shape in shapes
        for i in range(len(shape))
    )


def test_overset_text_is_cut_at_the_balloon_outline_in_png(overset, assets, tmp_path):
    top, _ = overset.pages[0].panels_in_order()
    geometry = balloon_geometry(top.balloons[0], top, overset)
    assert not geometry.fits
    # Without the clip the lines would run past the balloon: the test can fail.
    lowest = max(line.y for line in geometry.lines)
    assert lowest > max(y for shape in geometry.shapes for _, y in shape) + 10

    overset_places: list[str] = []
    (path,) = export_pngs(overset, assets, tmp_path, dpi=DPI, overset=overset_places)
    assert overset_places == ["page 1 panel 1"]
    image = Image.open(path).convert("RGB")
    scale = DPI / 72
    inked_inside = inked_outside = 0
    for py in range(image.height):
        for px_ in range(image.width):
            r, g, b = image.getpixel((px_, py))
            if not (b > 120 and b > r + 60 and b > g + 60):
                continue  # not the blue ink
            x, y = px_ / scale, py / scale  # the page is exported without bleed
            if _inside_union(geometry.shapes, x, y):
                inked_inside += 1
            elif not _near_outline(geometry.shapes, x, y, 1.5 / scale):  # antialiased edge pixels
                inked_outside += 1
    assert inked_inside > 50
    assert inked_outside == 0


def test_overset_text_is_clipped_to_the_balloon_in_pdf(overset, assets, tmp_path):
    from pypdf.generic import ContentStream

    top, _ = overset.pages[0].panels_in_order()
    geometry = balloon_geometry(top.balloons[0], top, overset)
    places: list[str] = []
    out = export_pdf(overset, assets, tmp_path / "overset.pdf", dpi=72, bleed=False, overset=places)
    assert places == ["page 1 panel 1"]
    reader = PdfReader(out)
    page = reader.pages[0]
    assert "words for" in page.extract_text()  # the text is in the file, only cut where seen
    height = float(page.mediabox.height)
    ops = ContentStream(page.get_contents(), reader).operations
    clip_stack: list[list[tuple[float, float]] | None] = [None]
    path: list[tuple[float, float]] = []
    shown_clips = []
    for operands, op in ops:
        if op == b"q":
            clip_stack.append(clip_stack[-1])
        elif op == b"Q":
            clip_stack.pop()
        elif op in (b"m", b"l"):
            path.append((float(operands[0]), float(operands[1])))
        elif op == b"W":
            clip_stack[-1] = list(path)
        elif op in (b"n", b"f", b"S", b"B", b"f*", b"b"):
            path = []
        elif op == b"Tj" and set(str(operands[0]).split()) <= set(OVERSET.split()):
            shown_clips.append(clip_stack[-1])  # one of the overset balloon's lines
    assert shown_clips and all(clip is not None for clip in shown_clips)
    # The clip is the balloon's outlines (body and tail), in PDF space (y up).
    expected = [(x, height - y) for shape in geometry.shapes for x, y in shape]
    got = shown_clips[0]
    assert len(got) == len(expected)
    for a in got:  # every clip vertex is an outline vertex (reportlab writes 2-3 decimals)
        assert min(max(abs(a[0] - b[0]), abs(a[1] - b[1])) for b in expected) < 0.02


def test_fitting_text_is_not_clipped(lettered, assets):
    drawing = compose_page(lettered, lettered.pages[0], assets)
    assert all(b.fits and b.text_clip == () for b in drawing.balloons())
    assert drawing.overset == []


def test_overset_message_names_every_place():
    from comic_studio.export.common import overset_message

    assert overset_message([]) == ""
    one = overset_message(["page 2 panel 3"])
    assert one.startswith("1 balloon has more text than fits: page 2 panel 3.")
    two = overset_message(["page 1 panel 1", "page 1 panel 1", "page 3 panel 2"])
    assert two.startswith("3 balloons have more text than fits: page 1 panel 1, page 3 panel 2.")
