"""The page layout engine: presets, templates, panel operations, reading order, auto-layout.

Pure Python on the document model (no Qt, no numpy). Operations return new panel lists and never
mutate their input; the caller wraps them in undoable commands.
"""

from comic_studio.core.layout.autolayout import assign_beats_to_panels, auto_layout, auto_layout_story, shot_class
from comic_studio.core.layout.geometry import (
    area,
    bbox,
    bounds,
    centroid,
    clip_half_plane,
    convex_hull,
    offset_line,
    parallel_edge_distance,
    point_in_polygon,
    polygon_contains,
    polygon_distance,
)
from comic_studio.core.layout.operations import (
    Border,
    clamp_border_delta,
    delete_panel,
    find_shared_borders,
    insert_panel,
    merge_panels,
    move_border,
    split_panel,
)
from comic_studio.core.layout.presets import (
    PagePreset,
    bleed_rect,
    inch,
    live_rect,
    load_presets,
    mm,
    page_format,
    to_inch,
    to_mm,
)
from comic_studio.core.layout.reading_order import assign_reading_order, reading_sequence
from comic_studio.core.layout.templates import (
    Slot,
    Template,
    apply_template,
    build_slots,
    get_template,
    load_templates,
    rows_template_id,
    template_panels,
)

__all__ = [
    "Border",
    "PagePreset",
    "Slot",
    "Template",
    "apply_template",
    "area",
    "assign_beats_to_panels",
    "assign_reading_order",
    "auto_layout",
    "auto_layout_story",
    "bbox",
    "bleed_rect",
    "bounds",
    "build_slots",
    "centroid",
    "clamp_border_delta",
    "clip_half_plane",
    "convex_hull",
    "delete_panel",
    "find_shared_borders",
    "get_template",
    "inch",
    "insert_panel",
    "live_rect",
    "load_presets",
    "load_templates",
    "merge_panels",
    "mm",
    "move_border",
    "offset_line",
    "page_format",
    "parallel_edge_distance",
    "point_in_polygon",
    "polygon_contains",
    "polygon_distance",
    "reading_sequence",
    "rows_template_id",
    "shot_class",
    "split_panel",
    "template_panels",
    "to_inch",
    "to_mm",
]
