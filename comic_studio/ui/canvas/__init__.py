"""The page canvas: a QGraphicsView of the current page (panels, balloons, guides) where layout
and lettering are edited by direct manipulation. See :mod:`.view` for the zoom/pan conventions."""

from comic_studio.ui.canvas.view import PageCanvas

__all__ = ["PageCanvas"]
