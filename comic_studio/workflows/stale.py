"""Stale panels: the image no longer fits the panel's shape well enough to show its figures whole.

A panel's image is drawn *cover*-cropped into the panel (centred, scaled to fill, as the canvas
and the exporters do). After a gutter drag, a template change or a split, the panel's proportions
differ from the image's, the crop cuts deeper, and a figure may lose its head or much of its body.
Such a panel is *stale*: the canvas marks it and offers a one-click re-render with the same seed
and pose at the panel's new size (:func:`rerender_request`). Staleness is worked out from the
document each time (never stored), so undoing the layout edit, or the re-render, brings the
marker back exactly as it was.

The thresholds are settings of this module, not a paper's: a head is cut when more than
``HEAD_CUT`` of its diameter leaves the crop on either axis; a body when more than ``BODY_CUT``
of its box's area does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comic_studio.core.layout import bbox
from comic_studio.core.lettering.tails import cover_window
from comic_studio.core.model import Box, Panel, Project

HEAD_CUT = 0.1
"""Fraction of a head's diameter that may leave the crop before the figure counts as cut."""
BODY_CUT = 0.2
"""Fraction of a figure's body box that may leave the crop before the figure counts as cut."""


@dataclass(frozen=True)
class StaleCrop:
    result_id: str
    cut: tuple[str, ...]
    """Ids of the characters whose figure the present crop cuts."""
    image_size: tuple[int, int]
    """The image's pixel size (what it was rendered for)."""


def visible_window(image_size: tuple[int, int], panel_box: Box) -> Box:
    """The part of the image (0..1 of its width and height) a cover crop shows in ``panel_box``."""
    return cover_window(image_size, panel_box)


def _outside_1d(lo: float, hi: float, w_lo: float, w_hi: float) -> float:
    """Length of ``[lo, hi]`` outside ``[w_lo, w_hi]``."""
    return max(0.0, w_lo - lo) + max(0.0, hi - w_hi) if hi > lo else 0.0


def _image_size(request: dict[str, Any]) -> tuple[int, int] | None:
    w, h = request.get("width"), request.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    return None


def stale_crop(panel: Panel) -> StaleCrop | None:
    """Whether the panel's current image, cover-cropped to the panel's present shape, cuts one of
    its figures (see the module's thresholds); ``None`` when it does not or nothing is known."""
    result = panel.result()
    if result is None:
        return None
    size = _image_size(result.request)
    if size is None:
        return None
    window = visible_window(size, bbox(panel.shape))
    if window.w > 1 - 1e-6 and window.h > 1 - 1e-6:
        return None
    iw, ih = size
    short = min(iw, ih)
    cut: list[str] = []
    for placement in result.heads:
        hit = False
        if placement.head is not None and placement.head_radius > 0:
            # The radius is a fraction of the image's shorter side: in each axis's units it differs.
            ru, rv = placement.head_radius * short / iw, placement.head_radius * short / ih
            u, v = placement.head
            out_u = _outside_1d(u - ru, u + ru, window.x, window.x + window.w) / (2 * ru)
            out_v = _outside_1d(v - rv, v + rv, window.y, window.y + window.h) / (2 * rv)
            hit = max(out_u, out_v) > HEAD_CUT
        body = placement.body
        if not hit and body is not None and body.w > 0 and body.h > 0:
            vw = max(0.0, min(body.x + body.w, window.x + window.w) - max(body.x, window.x))
            vh = max(0.0, min(body.y + body.h, window.y + window.h) - max(body.y, window.y))
            hit = 1 - (vw * vh) / (body.w * body.h) > BODY_CUT
        if hit:
            cut.append(placement.character_id)
    return StaleCrop(result.id, tuple(cut), size) if cut else None


def stale_reason(project: Project, panel: Panel, stale: StaleCrop) -> str:
    """The marker's tooltip: who is cut and what the button does."""
    names = [c.name if (c := project.character(cid)) else cid for cid in stale.cut]
    who = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    return (
        f"The panel's shape changed since this image was made, and the crop now cuts {who}. "
        "Click to render it again at the panel's size with the same seed and pose."
    )


__all__ = ["BODY_CUT", "HEAD_CUT", "StaleCrop", "stale_crop", "stale_reason", "visible_window"]
