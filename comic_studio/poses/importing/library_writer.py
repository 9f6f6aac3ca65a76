"""What every pose import produces: a named user library file, written atomically and read back,
with unique entry stems and captions of bounded length; the error and report types of an import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from comic_studio.core.atomic import atomic_write_text
from comic_studio.core.errors import ComicStudioError
from comic_studio.poses.library import PoseEntry, dump_library, load_library
from comic_studio.poses.user_library import user_poses_dir

MAX_CAPTION = 500


class PoseImportError(ComicStudioError):
    """A pose collection cannot be imported (the message names the file and the problem)."""


@dataclass
class ImportReport:
    """What an import did: the library file written, the entries, and each skipped item with why."""

    library: Path
    entries: list[PoseEntry]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    features_model: str | None = None
    """The model id of the stored CLIP image features that came with the data, if any."""
    features_stored: int = 0
    segmented: int = 0
    """How many entries kept segmentation maps (RaCig data; their panels' masks come from them)."""
    segment_notes: list[tuple[str, str]] = field(default_factory=list)
    """Entries imported without their segmentation maps, and why (their masks come from the skeleton)."""

    def summary(self) -> str:
        text = f"imported {len(self.entries)} pose(s) into {self.library}"
        if self.features_model:
            text += f" with {self.features_stored} stored image feature row(s) for {self.features_model}"
        if self.segmented or self.segment_notes:
            text += f"; segmentation masks for {self.segmented}"
        return text + (f"; skipped {len(self.skipped)}" if self.skipped else "")


def library_name(raw: str) -> str:
    """A safe file stem for a library name ("My Poses!" → "my-poses")."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")[:60]
    if not name:
        raise PoseImportError(f"{raw!r} is not a usable library name (use letters and digits)")
    return name


MAX_LISTED_SKIPS = 20
"""How many skipped items an import that found nothing names in its error (the rest are counted)."""


def write_library(
    name: str, entries: list[PoseEntry], user_dir: Path | None, skipped: list[tuple[str, str]] | None = None
) -> Path:
    """Replace the user library ``name`` with ``entries`` (the one place an import writes a library
    file) and read it back; returns its path. With nothing to import, the error lists why each
    item in ``skipped`` was skipped (there is no report to print them from then)."""
    if not entries:
        reasons = [f"\n  skipped {item}: {why}" for item, why in (skipped or [])[:MAX_LISTED_SKIPS]]
        if skipped and len(skipped) > MAX_LISTED_SKIPS:
            reasons.append(f"\n  … and {len(skipped) - MAX_LISTED_SKIPS} more")
        raise PoseImportError(f"library {name!r}: nothing to import (no usable pose was found)" + "".join(reasons))
    folder = Path(user_dir) if user_dir is not None else user_poses_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    atomic_write_text(path, dump_library(entries), f"the pose library {name!r}")  # a crash never leaves half a library
    load_library(path)  # what we wrote must read back (validates every field once more)
    return path


def entry_stem(raw: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")[:36] or "pose"
    unique, n = stem, 2
    while unique in taken:
        unique, n = f"{stem}-{n}", n + 1
    taken.add(unique)
    return unique


def clip_caption(text: str) -> str:
    """At most :data:`MAX_CAPTION` characters, cut at a sentence end when there is one."""
    text = " ".join(text.split())
    if len(text) <= MAX_CAPTION:
        return text
    cut = text[:MAX_CAPTION]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > MAX_CAPTION // 4 else cut.rsplit(" ", 1)[0]
