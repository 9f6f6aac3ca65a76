"""The set behind the figures: paper and light by time of day, perspective hints, the place label.

Everything here is drawn light and thin so figures read first: an artist's construction lines, not
scenery. Interiors get a back wall with floor/ceiling lines running to the corners; exteriors a
horizon, sky and ground lines, plus a few props the place words suggest in wide shots.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PIL import ImageDraw, ImageFont

from comic_studio.core.resources import resource

RGB = tuple[int, int, int]
SetKind = Literal["interior", "exterior", "neutral"]

INTERIOR_WORDS = frozenset(
    "room bedroom kitchen office bar pub cafe café restaurant house home inside indoors hall hallway corridor "
    "apartment flat lobby library classroom school shop store church cell prison basement attic garage studio "
    "bathroom lounge living dining cabin tavern inn hospital ward lab laboratory warehouse theatre theater "
    "cockpit train bus car elevator lift stairs staircase interior int".split()
)
EXTERIOR_WORDS = frozenset(
    "street road avenue alley park garden harbour harbor port dock docks pier forest wood woods jungle roof "
    "rooftop beach sea ocean shore coast river lake field fields meadow mountain mountains hill hills desert "
    "city town village square market outside outdoors yard courtyard bridge cliff valley sky countryside "
    "farm camp campsite parking highway station platform exterior ext cemetery graveyard".split()
)
CITY_WORDS = frozenset("street road avenue alley city town square market parking highway roof rooftop station".split())
TREE_WORDS = frozenset(
    "park garden forest wood woods jungle field fields meadow countryside farm camp campsite cemetery graveyard yard".split()
)
WATER_WORDS = frozenset("harbour harbor port dock docks pier beach sea ocean shore coast river lake bridge".split())
HILL_WORDS = frozenset("mountain mountains hill hills cliff valley desert".split())


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-zà-ÿ]+", text.lower()))


def classify_setting(text: str) -> SetKind:
    """Interior or exterior from the setting's words; ties and unknown places are neutral."""
    words = _words(text)
    inside, outside = len(words & INTERIOR_WORDS), len(words & EXTERIOR_WORDS)
    if inside > outside:
        return "interior"
    if outside > inside:
        return "exterior"
    return "neutral"


@dataclass(frozen=True)
class Palette:
    paper: RGB
    sky: RGB
    ground: RGB
    wall: RGB
    floor: RGB
    line: RGB  # construction lines
    label: RGB
    halo: RGB  # knocked-out edge around figures
    dark: bool
    name: str


def palette_for(time_of_day: str, paper: str = "warm") -> Palette:
    words = _words(time_of_day)
    base: RGB = (247, 244, 236) if paper == "warm" else (252, 252, 252)
    if words & {"night", "midnight", "nighttime", "dark", "moonlight", "moonlit"}:
        return Palette((72, 80, 98), (58, 66, 86), (84, 91, 106), (88, 95, 112), (74, 80, 96),
                       (122, 131, 152), (214, 220, 232), (104, 112, 132), True, "night")  # fmt: skip
    if words & {"dusk", "evening", "sunset", "twilight"}:
        return Palette(base, (240, 222, 206), (232, 228, 218), (240, 232, 222), (230, 224, 214),
                       (192, 182, 176), (112, 100, 96), base, False, "dusk")  # fmt: skip
    if words & {"dawn", "sunrise", "daybreak"}:
        return Palette(base, (238, 230, 222), (234, 232, 224), (242, 238, 230), (232, 229, 222),
                       (190, 186, 182), (108, 104, 104), base, False, "dawn")  # fmt: skip
    return Palette(base, (236, 240, 243), (238, 235, 227), (243, 240, 232), (234, 231, 223),
                   (196, 194, 190), (104, 104, 108), base, False, "day")  # fmt: skip


@lru_cache(maxsize=64)
def font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "ComicNeue-Bold.ttf" if bold else "ComicNeue-Regular.ttf"
    try:
        return ImageFont.truetype(str(resource("fonts", name)), max(6, int(size)))
    except Exception:  # a missing bundled font must not stop a thumbnail: fall back to PIL's font
        return ImageFont.load_default()


# ------------------------------------------------------------------------------ environment


class _Sketch:
    """Construction lines with a pencil feel: each stroke jittered and doubled faintly."""

    def __init__(self, draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB, faint: RGB, width: int, amp: float):
        self.d, self.rng, self.colour, self.faint, self.width, self.amp = draw, rng, colour, faint, width, amp

    def line(self, a: tuple[float, float], b: tuple[float, float], faint_only: bool = False) -> None:
        j = self.rng.uniform
        amp = self.amp
        a1 = (a[0] + j(-amp, amp), a[1] + j(-amp, amp))
        b1 = (b[0] + j(-amp, amp), b[1] + j(-amp, amp))
        self.d.line([a1, b1], fill=self.faint, width=self.width)
        if not faint_only:
            self.d.line([a, b], fill=self.colour, width=self.width)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def draw_environment(
    draw: ImageDraw.ImageDraw,
    w: int,
    h: int,
    kind: SetKind,
    setting: str,
    horizon: float,
    vp_x: float,
    zoom: float,
    pal: Palette,
    rng: random.Random,
    ss: int,
    construction: bool = True,
) -> None:
    """Paint the set behind the figures."""
    horizon = max(-0.5 * h, min(1.5 * h, horizon))
    width = max(1, round(ss * 0.9))
    sk = _Sketch(draw, rng, pal.line, _mix(pal.line, pal.paper, 0.55), width, 1.2 * ss)
    words = _words(setting)
    if kind == "exterior":
        if horizon > 0:
            draw.rectangle((0, 0, w, min(h, horizon)), fill=pal.sky)
        if horizon < h:
            draw.rectangle((0, max(0, horizon), w, h), fill=pal.ground)
        if not construction:
            return
        if zoom < 0.9:
            _props(draw, sk, w, h, horizon, zoom, words, pal, rng, ss)
        sk.line((0, horizon), (w, horizon))
        if horizon < h:
            # Ground lines running to the vanishing point: fewer as the camera gets closer.
            n = 7 if zoom <= 0.5 else 5
            for i in range(n):
                x = w * (-0.6 + 2.2 * (i + 0.5) / n) + rng.uniform(-0.03, 0.03) * w
                a, b = (x, h), (vp_x, horizon)
                _ray(sk, a, b, horizon, h, 0.15 if zoom > 1 else 0.0)
            for i in range(3 if zoom <= 0.8 else 1):  # a few horizontal ground strokes for depth
                y = horizon + (h - horizon) * (0.25 + 0.25 * i) + rng.uniform(-2, 2) * ss
                x0 = rng.uniform(0.05, 0.5) * w
                sk.line((x0, y), (x0 + rng.uniform(0.1, 0.3) * w, y), faint_only=True)
        return
    if kind == "interior":
        draw.rectangle((0, 0, w, h), fill=pal.wall)
        # Back wall: grows with the zoom (a close camera sees mostly wall).
        bw, bh = 0.62 * w * zoom + 0.1 * w, 0.62 * h * zoom + 0.1 * h
        x0 = vp_x - bw * 0.5
        x1 = vp_x + bw * 0.5
        y0 = horizon - bh * 0.48
        y1 = horizon + bh * 0.52
        draw.polygon([(0, h), (w, h), (x1, y1), (x0, y1)], fill=pal.floor)
        if not construction:
            return
        corners = [((0, 0), (x0, y0)), ((w, 0), (x1, y0)), ((0, h), (x0, y1)), ((w, h), (x1, y1))]
        for a, b in corners:
            sk.line(a, b)
        sk.line((x0, y0), (x1, y0))
        sk.line((x1, y0), (x1, y1))
        sk.line((x1, y1), (x0, y1))
        sk.line((x0, y1), (x0, y0))
        # A window on the back wall and floorboard lines give scale without stealing attention.
        wx = x0 + bw * (0.12 if rng.random() < 0.5 else 0.6)
        ww, wh = bw * 0.28, bh * 0.34
        wy = y0 + bh * 0.18
        for a, b in (((wx, wy), (wx + ww, wy)), ((wx + ww, wy), (wx + ww, wy + wh)),
                     ((wx + ww, wy + wh), (wx, wy + wh)), ((wx, wy + wh), (wx, wy)),
                     ((wx + ww / 2, wy), (wx + ww / 2, wy + wh))):  # fmt: skip
            sk.line(a, b, faint_only=zoom > 1.2)
        if words & {"bar", "pub", "tavern", "cafe", "café", "restaurant", "kitchen"}:
            cy = y1 - bh * 0.28  # a counter along the back wall
            sk.line((x0, cy), (x1, cy))
        for i in range(1, 4):
            fx = x0 + bw * i / 4
            sk.line((fx, y1), (vp_x + (fx - vp_x) * 3.2, h + (h - y1) * 0.6), faint_only=True)
        return
    # Neutral: no known place. A floor line at the figures' feet level is drawn by the renderer.
    if construction and zoom <= 0.85 and 0 < horizon < h:
        sk.line((0, horizon), (w, horizon), faint_only=True)
    return


def _ray(sk: _Sketch, a: tuple[float, float], vp: tuple[float, float], horizon: float, h: float, start: float) -> None:
    """Part of the line from ``a`` toward ``vp`` below the horizon, stopping short of it."""
    t_end = 0.78
    p0 = (a[0] + (vp[0] - a[0]) * start, a[1] + (vp[1] - a[1]) * start)
    p1 = (a[0] + (vp[0] - a[0]) * t_end, a[1] + (vp[1] - a[1]) * t_end)
    sk.line(p0, p1, faint_only=True)


def _props(draw: ImageDraw.ImageDraw, sk: _Sketch, w: int, h: int, horizon: float, zoom: float,
           words: set[str], pal: Palette, rng: random.Random, ss: int) -> None:  # fmt: skip
    """Distant shapes on the horizon that say *which* outside this is."""
    unit = h * 0.16 * (0.5 / max(zoom, 0.3))
    fill = _mix(pal.sky, pal.line, 0.25)
    if words & CITY_WORDS:
        x = rng.uniform(-0.05, 0.02) * w
        while x < w:
            bw = rng.uniform(0.5, 1.2) * unit
            bh = rng.uniform(0.6, 2.0) * unit
            box = (x, horizon - bh, x + bw, horizon)
            draw.rectangle(box, fill=fill)
            sk.line((x, horizon - bh), (x + bw, horizon - bh))
            sk.line((x, horizon - bh), (x, horizon), faint_only=True)
            x += bw + rng.uniform(0.0, 0.4) * unit
    elif words & TREE_WORDS:
        for _ in range(int(4 + 3 / max(zoom, 0.3))):
            x = rng.uniform(0, w)
            r = rng.uniform(0.35, 0.7) * unit
            draw.ellipse((x - r, horizon - 2.3 * r, x + r, horizon - 0.3 * r), fill=fill)
            sk.line((x, horizon - 0.4 * r), (x, horizon))
    elif words & WATER_WORDS:
        for i in range(4):
            y = horizon + (i + 1) * 0.02 * h * (1 + i)
            x0 = rng.uniform(0.0, 0.3) * w
            sk.line((x0, y), (x0 + rng.uniform(0.2, 0.5) * w, y))
        if words & {"harbour", "harbor", "port", "dock", "docks", "pier"}:
            # A moored boat: hull, mast and sail, and a pier running out from the edge.
            bx, u = rng.uniform(0.55, 0.8) * w, 0.8 * unit
            hull = [
                (bx - u, horizon - 0.25 * u),
                (bx + u, horizon - 0.25 * u),
                (bx + 0.7 * u, horizon + 0.1 * u),
                (bx - 0.7 * u, horizon + 0.1 * u),
            ]
            draw.polygon(hull, fill=fill, outline=pal.line)
            sk.line((bx, horizon - 0.25 * u), (bx, horizon - 2.0 * u))
            draw.polygon(
                [
                    (bx + 0.08 * u, horizon - 1.9 * u),
                    (bx + 0.08 * u, horizon - 0.4 * u),
                    (bx + 0.9 * u, horizon - 0.4 * u),
                ],
                fill=fill,
                outline=pal.line,
            )
            py = horizon + 0.06 * h
            sk.line((0, py), (0.3 * w, py))
            sk.line((0, py + 0.02 * h), (0.3 * w, py + 0.02 * h))
            for k in range(4):
                px = 0.3 * w * (k + 0.5) / 4
                sk.line((px, py), (px, py + 0.05 * h))
    elif words & HILL_WORDS:
        # A saw-tooth ridge: alternating peaks and saddles, so it reads as mountains, not a slope.
        pts = [(0.0, horizon - rng.uniform(0.1, 0.4) * unit)]
        x, peak = 0.0, True
        while x < w:
            x += rng.uniform(0.4, 0.9) * unit
            lift = rng.uniform(0.6, 1.3) if peak else rng.uniform(0.1, 0.35)
            pts.append((x, horizon - lift * unit))
            peak = not peak
        pts.append((w, horizon))
        draw.polygon(pts + [(w, horizon), (0, horizon)], fill=fill)
        draw.line(pts, fill=pal.line, width=max(1, ss))


# ------------------------------------------------------------------------------ label


def place_label(setting: str, time_of_day: str) -> str:
    parts = [p.strip() for p in (setting, time_of_day) if p and p.strip()]
    text = " · ".join(parts)
    return text[:60] + ("…" if len(text) > 60 else "")


def _label_metrics(text: str, w: int, h: int, ss: int) -> tuple[int, int, float, float]:
    big = max(8 * ss, round(min(w, h) * 0.045))
    small = max(6 * ss, round(big * 0.78))
    width = sum(font(small if ch.islower() else big).getlength(ch.upper()) + 0.06 * big for ch in text)
    margin = max(4 * ss, round(min(w, h) * 0.03))
    return big, small, min(width, w - 2 * margin), margin


def label_box(text: str, w: int, h: int, ss: int, right: bool = False) -> tuple[float, float, float, float] | None:
    """Where :func:`draw_label` would put ``text`` (plate included)."""
    if not text:
        return None
    big, _small, width, margin = _label_metrics(text, w, h, ss)
    pad = 0.3 * big
    x = w - margin - width if right else margin
    return (x - pad, margin - pad, x + width + pad, margin + 1.45 * big)


def draw_label(draw: ImageDraw.ImageDraw, text: str, w: int, h: int, pal: Palette, ss: int,
               right: bool = False) -> tuple[float, float, float, float] | None:  # fmt: skip
    """The place/time slug at the top (left unless ``right``), in small caps: capitals at full
    size, lower-case letters as smaller capitals, on a paper plate so no limb crosses it.
    Returns the box it covers (name tags keep out of it)."""
    box = label_box(text, w, h, ss, right)
    if box is None:
        return None
    big, small, width, margin = _label_metrics(text, w, h, ss)
    f_big, f_small = font(big), font(small)
    pad = 0.3 * big
    draw.rounded_rectangle(box, radius=pad, fill=pal.paper)
    x0 = x = box[0] + pad
    baseline = margin + big
    for ch in text:
        f = f_small if ch.islower() else f_big
        c = ch.upper()
        if x + f.getlength(c) > x0 + width + 1:
            break
        draw.text((x, baseline), c, font=f, fill=pal.label, anchor="ls")
        x += f.getlength(c) + 0.06 * big
    draw.line(
        [(x0, baseline + 0.25 * big), (x, baseline + 0.25 * big)],
        fill=_mix(pal.label, pal.paper, 0.5),
        width=max(1, ss),
    )
    return box
