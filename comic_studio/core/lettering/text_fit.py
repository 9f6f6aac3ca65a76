"""Fitting text into a balloon: text area, word wrap, font-size search, line positions.

The text area is the largest axis-aligned rectangle of the ellipse's aspect inscribed in the
balloon's text ellipse (its box scaled by 1/√2) minus padding; captions use their box minus
padding; SFX use the whole box. Text is rendered as written (no forced upper case): authors who
want the traditional all-caps look type it, and the stored text stays the single source of truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from comic_studio.core.lettering.contract import TextLine
from comic_studio.core.lettering.fonts import bold_font_path, font_metrics, font_path, text_width
from comic_studio.core.lettering.shapes import text_ellipse
from comic_studio.core.model import BalloonKind, BalloonStyle, Box

LINE_HEIGHT = 1.15  # × font size, baseline to baseline
SIZE_STEP = 0.5  # font sizes are searched on a half-point grid
SFX_MAX_SIZE = 400.0  # BalloonStyle's own upper bound
_EPS = 1e-6


def font_file_for(kind: BalloonKind, style: BalloonStyle) -> Path:
    return bold_font_path(style.font) if kind is BalloonKind.SFX else font_path(style.font)


def text_padding(kind: BalloonKind, style: BalloonStyle) -> float:
    """Clear space between the text and the balloon's outline, in points."""
    if kind is BalloonKind.SFX:
        return 0.0
    if kind is BalloonKind.CAPTION:
        return 3.0 + style.stroke_width
    return 1.5 + style.stroke_width


def text_area(kind: BalloonKind, box: Box, style: BalloonStyle) -> Box:
    """The rectangle every line of text must stay inside, in the box's units."""
    pad = text_padding(kind, style)
    ell = text_ellipse(kind, box)
    if ell is not None:
        w, h = ell.w / math.sqrt(2), ell.h / math.sqrt(2)
        cx, cy = ell.cx, ell.cy
    else:
        w, h, cx, cy = box.w, box.h, box.cx, box.cy
    w, h = max(w - 2 * pad, 0.0), max(h - 2 * pad, 0.0)
    return Box(x=cx - w / 2, y=cy - h / 2, w=w, h=h)


def alignment(kind: BalloonKind, style: BalloonStyle) -> str:
    """Captions are always left-aligned (narration convention); the rest follow the style."""
    return "left" if kind is BalloonKind.CAPTION else style.align


# --------------------------------------------------------------------------- wrapping


def _break_word(word: str, font: Path, size: float, max_width: float) -> list[str]:
    """Split a word wider than the line into chunks that fit (at least one character each)."""
    chunks: list[str] = []
    current = ""
    for ch in word:
        if current and text_width(font, current + ch, size) > max_width + _EPS:
            chunks.append(current)
            current = ch
        else:
            current += ch
    if current:
        chunks.append(current)
    return chunks


def wrap_text(text: str, font: Path, size: float, max_width: float) -> list[tuple[str, float]]:
    """Greedy word wrap: ``(line, width)`` pairs. Newlines in the text force breaks; runs of
    spaces collapse to one; words longer than a line are broken between characters."""
    lines: list[tuple[str, float]] = []
    space = text_width(font, " ", size)
    for paragraph in text.strip().split("\n"):
        words = paragraph.split()
        if not words:
            lines.append(("", 0.0))
            continue
        current, current_w = "", 0.0
        for word in words:
            word_w = text_width(font, word, size)
            if current and current_w + space + word_w <= max_width + _EPS:
                current, current_w = f"{current} {word}", text_width(font, f"{current} {word}", size)
                continue
            if current:
                lines.append((current, current_w))
            if word_w > max_width + _EPS:
                *full, last = _break_word(word, font, size, max_width)
                lines.extend((c, text_width(font, c, size)) for c in full)
                current, current_w = last, text_width(font, last, size)
            else:
                current, current_w = word, word_w
        lines.append((current, current_w))
    return lines


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class FitResult:
    font_size: float
    lines: tuple[tuple[str, float], ...]
    fits: bool


def _fits(lines: list[tuple[str, float]], size: float, area_w: float, area_h: float) -> bool:
    return all(w <= area_w + _EPS for _, w in lines) and len(lines) * LINE_HEIGHT * size <= area_h + _EPS


def fit_text(text: str, font: Path, area_w: float, area_h: float, min_size: float, max_size: float) -> FitResult:
    """The largest size on the half-point grid in ``[min_size, max_size]`` at which the wrapped
    text fits ``area_w × area_h``; at ``min_size`` with ``fits=False`` when none does.

    Binary search over the grid: fitting is monotonic in the size for practical purposes (a wrap
    can occasionally improve by a line at a larger size, which at worst costs half a point).
    """
    max_size = max(min_size, max_size)
    sizes = [max_size - SIZE_STEP * i for i in range(int((max_size - min_size) / SIZE_STEP + _EPS) + 1)]
    if sizes[-1] > min_size + _EPS:
        sizes.append(min_size)
    if not text.strip():
        return FitResult(sizes[0], (), True)

    def attempt(size: float) -> list[tuple[str, float]]:
        return wrap_text(text, font, size, area_w)

    lo, hi = 0, len(sizes) - 1  # find the first (largest) size that fits
    last = attempt(sizes[hi])
    if not _fits(last, sizes[hi], area_w, area_h):
        return FitResult(sizes[hi], tuple(last), False)
    best = (sizes[hi], last)
    while lo < hi:
        mid = (lo + hi) // 2
        lines = attempt(sizes[mid])
        if _fits(lines, sizes[mid], area_w, area_h):
            best, hi = (sizes[mid], lines), mid
        else:
            lo = mid + 1
    return FitResult(best[0], tuple(best[1]), True)


def size_range(kind: BalloonKind, style: BalloonStyle, area: Box) -> tuple[float, float]:
    """Font-size bounds for a balloon. Dialogue and captions are lettered at one type size, the
    style's (clamped to its min/max), as a letterer keeps one size per book: text that does not
    fit grows the balloon (:mod:`.grow`) or is reported, never shrunk. SFX are display lettering:
    their box sets the size, so the upper bound grows to what one line of the box's height allows."""
    if kind is not BalloonKind.SFX:
        size = preferred_size(kind, style)
        return size, size
    lo, hi = style.min_font_size, max(style.min_font_size, style.max_font_size)
    return lo, min(SFX_MAX_SIZE, max(hi, area.h / LINE_HEIGHT))


def position_lines(fit: FitResult, font: Path, area: Box, align: str) -> tuple[TextLine, ...]:
    """Baselines for the fitted lines, the block centred vertically in the area."""
    size = fit.font_size
    metrics = font_metrics(font)
    line_h = LINE_HEIGHT * size
    half_leading = (line_h - (metrics.ascent + metrics.descent) * size) / 2
    top = area.cy - len(fit.lines) * line_h / 2
    out = []
    for i, (text, width) in enumerate(fit.lines):
        x = area.x if align == "left" else area.cx - width / 2
        out.append(TextLine(text=text, x=x, y=top + i * line_h + half_leading + metrics.ascent * size, width=width))
    return tuple(out)


# --------------------------------------------------------------------------- sizing a new balloon

_BLOCK_ASPECT = 2.2  # a comfortable balloon's text block is about twice as wide as tall
_CAPTION_ASPECT = 6.0  # narration boxes run wide and shallow
_MIN_BOX = (24.0, 16.0)


def preferred_size(kind: BalloonKind, style: BalloonStyle) -> float:
    """The size a new balloon is laid out for: the style's size, clamped; SFX are shown big."""
    lo, hi = style.min_font_size, max(style.min_font_size, style.max_font_size)
    if kind is BalloonKind.SFX:
        return min(SFX_MAX_SIZE, max(2.5 * style.font_size, 24.0))
    return min(max(style.font_size, lo), hi)


def _box_for_block(kind: BalloonKind, style: BalloonStyle, block_w: float, block_h: float) -> tuple[float, float]:
    """Smallest box (by multiplicative growth) whose text area holds a ``block_w × block_h`` block."""
    scale = math.sqrt(2) if text_ellipse(kind, Box(x=0, y=0, w=1, h=1)) is not None else 1.0
    pad = text_padding(kind, style)
    w = max(_MIN_BOX[0], (block_w + 2 * pad) * scale)
    h = max(_MIN_BOX[1], (block_h + 2 * pad) * scale)
    for _ in range(200):
        area = text_area(kind, Box(x=0, y=0, w=w, h=h), style)
        grow_w, grow_h = area.w < block_w - _EPS, area.h < block_h - _EPS
        if not (grow_w or grow_h):
            break
        w, h = w * (1.03 if grow_w else 1.0), h * (1.03 if grow_h else 1.0)
    return w, h


def fit_box_for_text(text: str, kind: BalloonKind, style: BalloonStyle, max_width: float) -> tuple[float, float]:
    """A comfortable ``(w, h)`` balloon box for ``text`` at the style's preferred size, no wider
    than ``max_width`` when the text allows (used by automatic placement and "add balloon")."""
    font = font_file_for(kind, style)
    size = preferred_size(kind, style)
    line_h = LINE_HEIGHT * size
    words = text.split() or [""]
    longest_word = max(text_width(font, w, size) for w in words)
    one_line = text_width(font, " ".join(words), size) if kind is not BalloonKind.SFX else 0.0
    if kind is BalloonKind.SFX:
        wrap_w = max(text_width(font, line, size) for line in text.strip().split("\n") or [""])
    else:
        aspect = _CAPTION_ASPECT if kind is BalloonKind.CAPTION else _BLOCK_ASPECT
        wrap_w = max(longest_word, math.sqrt(aspect * one_line * line_h))
        if one_line <= 1.5 * wrap_w:
            wrap_w = one_line  # a short phrase reads better on one line than as two stubs
    w = h = 0.0
    for _ in range(40):
        lines = wrap_text(text, font, size, wrap_w) if text.strip() else [("", 0.0)]
        block_w = max(lw for _, lw in lines)
        w, h = _box_for_block(kind, style, max(block_w, 1.0), len(lines) * line_h)
        if w <= max_width or wrap_w <= longest_word:
            break
        wrap_w = max(longest_word, wrap_w * 0.9)
    return w, h


def box_for_width(text: str, kind: BalloonKind, style: BalloonStyle, width: float) -> tuple[float, float]:
    """A ``(w, h)`` box about ``width`` wide holding ``text`` at the preferred size: the text is
    wrapped to the text area such a box has, and the box is the smallest that holds that block.
    Automatic placement tries a few widths (a wide, shallow balloon fits over a close-up's face)."""
    font = font_file_for(kind, style)
    size = preferred_size(kind, style)
    ellipse = text_ellipse(kind, Box(x=0, y=0, w=1, h=1)) is not None
    wrap_w = max(1.0, (width / math.sqrt(2) if ellipse else width) - 2 * text_padding(kind, style))
    longest = max((text_width(font, word, size) for word in text.split()), default=1.0)
    w = h = 0.0
    for _ in range(40):  # the body's own margins may make the box wider than asked: wrap tighter
        lines = wrap_text(text, font, size, wrap_w) if text.strip() else [("", 0.0)]
        block_w = max(max(lw for _, lw in lines), 1.0)
        w, h = _box_for_block(kind, style, block_w, len(lines) * LINE_HEIGHT * size)
        if w <= width or wrap_w <= longest:
            break
        wrap_w = max(longest, wrap_w * 0.92)
    return w, h
