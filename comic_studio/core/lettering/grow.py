"""Lettering the way a letterer does it: the type size stays, the balloon grows.

A book is lettered at one type size (per balloon style); text that no longer fits its balloon makes
the balloon bigger, never the type smaller. :func:`grow_for_text` is what an edit of a balloon's
text (or of its type size) calls: the box grows about its centre, inside its panel, only as much as
the text needs (a box the author made larger is never shrunk). When even the biggest balloon the
panel allows cannot hold the text, the box still grows to that and :func:`fit_problem` says why and
what to do, in words the canvas and the Inspector show.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from comic_studio.core.layout.geometry import bbox
from comic_studio.core.lettering.text_fit import (
    fit_box_for_text,
    fit_text,
    font_file_for,
    preferred_size,
    text_area,
)
from comic_studio.core.model import Balloon, BalloonKind, BalloonStyle, Box, Panel, Project

GROW_WIDTHS = (0.55, 0.8, 1.0)
"""Widths tried for a growing balloon, × the panel's width: a comfortable balloon first (the
automatic placement's own width), wider only when the text needs it to fit the panel's height."""


@dataclass(frozen=True)
class GrownBalloon:
    box: Box
    fits: bool
    """False: even the largest box the panel allows cannot hold the text at the type size."""


def text_fits(text: str, kind: BalloonKind, style: BalloonStyle, box: Box) -> bool:
    """Whether ``text`` fits ``box`` at the style's type size (no shrinking)."""
    if kind is BalloonKind.SFX or not text.strip():
        return True
    size = preferred_size(kind, style)
    area = text_area(kind, box, style)
    return fit_text(text, font_file_for(kind, style), area.w, area.h, size, size).fits


def _centred_inside(cx: float, cy: float, w: float, h: float, area: Box) -> Box:
    w, h = min(w, area.w), min(h, area.h)
    x = min(max(cx - w / 2, area.x), area.x + area.w - w)
    y = min(max(cy - h / 2, area.y), area.y + area.h - h)
    return Box(x=x, y=y, w=w, h=h)


def grow_for_text(text: str, kind: BalloonKind, style: BalloonStyle, box: Box, panel: Panel) -> GrownBalloon:
    """The box ``text`` needs at the type size: ``box`` itself when the text fits, else a box grown
    about ``box``'s centre (never smaller than ``box`` on either side) and kept inside the panel's
    bounding box. SFX are display lettering sized by their box: they keep it."""
    if text_fits(text, kind, style, box):
        return GrownBalloon(box, True)
    area = bbox(panel.shape)
    best = box
    for fraction in GROW_WIDTHS:
        w, h = fit_box_for_text(text, kind, style, max(box.w, fraction * area.w))
        best = _centred_inside(box.cx, box.cy, max(box.w, w), max(box.h, h), area)
        if text_fits(text, kind, style, best):
            return GrownBalloon(best, True)
    # Nothing fits: the whole panel's height at the widest try is the most the author gets.
    best = _centred_inside(box.cx, box.cy, max(best.w, box.w), area.h, area)
    return GrownBalloon(best, text_fits(text, kind, style, best))


def fit_problem(balloon: Balloon, panel: Panel) -> str:
    """Why ``balloon``'s text does not fit and what to do, or ``""`` when it fits."""
    if text_fits(balloon.text, balloon.kind, balloon.style, balloon.box):
        return ""
    size = f"{preferred_size(balloon.kind, balloon.style):g} pt"
    grown = grow_for_text(balloon.text, balloon.kind, balloon.style, balloon.box, panel)
    if grown.fits:
        return (
            f"The text does not fit this balloon at the book's type size ({size}). Drag the balloon's "
            "corner to make it bigger, or edit the text: the balloon grows as you type."
        )
    return (
        f"This text needs more room than the panel has at the book's type size ({size}); the type "
        "is not shrunk, so every balloon reads the same. Shorten the text, split it over two "
        "balloons (or two panels), or make the panel bigger."
    )


def house_style(project: Project) -> BalloonStyle:
    """The style new balloons take: the one most balloons of the book have (speech, thought,
    shout, whisper and captions; SFX are display lettering), so a book stays at one type size;
    the default style in a book without balloons."""
    styles: Counter[str] = Counter()
    first: dict[str, BalloonStyle] = {}
    for page in project.pages:
        for panel in page.panels:
            for balloon in panel.balloons:
                if balloon.kind is BalloonKind.SFX:
                    continue
                key = balloon.style.model_dump_json()
                styles[key] += 1
                first.setdefault(key, balloon.style)
    if not styles:
        return BalloonStyle()
    return first[styles.most_common(1)[0][0]].model_copy()
