"""A halftone screen in numpy: the image is cut into rotated square cells and each cell becomes one
dot whose area matches the cell's mean darkness (like newspaper comics printed with Ben-Day dots).
Pure function, no state: determinism is free."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

PAPER = (250, 246, 236)
INK = (28, 26, 32)

LINE_DARKNESS = 0.62
"""Pixels at least this dark are line art and print as solid ink (comic keylines are never screened)."""
PAPER_DARKNESS = 0.1
"""Tones lighter than this print as bare paper, so the page is not peppered with specks."""

# Classic process-colour screen angles (degrees, relative to the user's angle) so the three dot
# grids do not beat against each other in a moiré.
CMY_ANGLES = (15.0, 75.0, 0.0)


def dot_mask(darkness: np.ndarray, cell: int, angle_deg: float) -> np.ndarray:
    """``True`` where ink falls, for a darkness map (0 white … 1 black) of shape (h, w)."""
    h, w = darkness.shape
    theta = math.radians(angle_deg)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    u = xs * math.cos(theta) + ys * math.sin(theta)
    v = -xs * math.sin(theta) + ys * math.cos(theta)
    iu = np.floor(u / cell).astype(np.int64)
    iv = np.floor(v / cell).astype(np.int64)
    du = u - (iu + 0.5) * cell
    dv = v - (iv + 0.5) * cell
    # Mean darkness of every (rotated) cell, gathered back per pixel: one bincount, no Python loop.
    iu -= iu.min()
    iv -= iv.min()
    keys = (iu * (iv.max() + 1) + iv).ravel()
    sums = np.bincount(keys, weights=darkness.ravel())
    counts = np.bincount(keys)
    mean = (sums / np.maximum(counts, 1))[keys].reshape(h, w)
    # Light tones: an ink dot of area darkness × cell², centred in the cell. Dark tones: the inverse,
    # a paper hole of area (1 - darkness) × cell² split into quarter circles at the cell corners, so
    # the dots join smoothly into a dark field instead of overlapping and overshooting.
    ink_dot = du * du + dv * dv < cell * cell * mean / math.pi
    cu = cell / 2 - np.abs(du)
    cv = cell / 2 - np.abs(dv)
    paper_hole = cu * cu + cv * cv < cell * cell * (1.0 - mean) / math.pi
    return np.where(mean > 0.5, ~paper_hole, ink_dot)


def halftone(image: Image.Image, cell: int, angle_deg: float, colour: bool) -> Image.Image:
    """Screen ``image``: one ink on paper (``colour=False``) or cyan/magenta/yellow dot grids."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    darkness = 1.0 - rgb.mean(axis=2)
    lines = darkness >= LINE_DARKNESS
    if not colour:
        mask = dot_mask(_tone(darkness), cell, angle_deg) | lines
        out = np.where(mask[..., None], np.array(INK, np.uint8), np.array(PAPER, np.uint8))
        return Image.fromarray(out.astype(np.uint8), "RGB")
    # Subtractive: a cyan dot removes red, magenta removes green, yellow removes blue.
    out = np.empty(rgb.shape, dtype=np.uint8)
    for channel, offset in enumerate(CMY_ANGLES):
        mask = dot_mask(_tone(1.0 - rgb[..., channel]), cell, angle_deg + offset)
        out[..., channel] = np.where(mask, 40, PAPER[channel])
    out[lines] = INK
    return Image.fromarray(out, "RGB")


def _tone(darkness: np.ndarray) -> np.ndarray:
    """Paper-white below ``PAPER_DARKNESS``, the rest stretched back to 0..1."""
    return np.clip((darkness - PAPER_DARKNESS) / (1.0 - PAPER_DARKNESS), 0.0, 1.0)
