"""Import a folder of pose photos: one single-figure entry per image whose pose the offline detector
finds (:mod:`comic_studio.poses.extract`). The caption comes from a sidecar ``NAME.txt`` or the file
name ("two_people-fighting.jpg" → "two people fighting"); the photo is copied next to the library
so a text→image search can use it later.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from comic_studio.poses.extract import MIN_VISIBILITY, PoseDetectorUnavailable, PoseExtractionError, extract_pose
from comic_studio.poses.importing.library_writer import (
    ImportReport,
    PoseImportError,
    clip_caption,
    entry_stem,
    library_name,
    write_library,
)  # fmt: skip
from comic_studio.poses.library import PoseEntry
from comic_studio.poses.stored_features import features_folder
from comic_studio.poses.user_library import IMAGE_SUFFIXES


def caption_for_photo(image: Path) -> str:
    """A sidecar ``NAME.txt`` when present, else words from the file name."""
    sidecar = image.with_suffix(".txt")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return clip_caption(text)
    words = re.sub(r"[_\-.]+", " ", image.stem)
    words = re.sub(r"\s*\d+$", "", words).strip()  # "kick 03" → "kick"
    return clip_caption(words or image.stem)


def import_photo_folder(folder: Path, name: str | None = None, *, user_dir: Path | None = None,
                        min_visibility: float = MIN_VISIBILITY,
                        progress: Callable[[int, int, str], None] | None = None) -> ImportReport:  # fmt: skip
    """One single-figure entry per photo in ``folder`` whose pose the detector finds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PoseImportError(f"{folder}: not a folder")
    lib = library_name(name or folder.name)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not photos:
        raise PoseImportError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to import")
    entries: list[PoseEntry] = []
    skipped: list[tuple[str, str]] = []
    kept: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for i, photo in enumerate(photos):
        if progress:
            progress(i, len(photos), photo.name)
        try:
            result = extract_pose(photo, min_visibility=min_visibility)
        except PoseDetectorUnavailable:
            raise  # not this photo's fault: every other photo would fail the same way
        except PoseExtractionError as exc:
            skipped.append((photo.name, str(exc)))
            continue
        if result.figure is None:
            skipped.append((photo.name, result.reason))
            continue
        stem = entry_stem(photo.stem, taken)
        aspect = float(np.clip(result.aspect, 0.2, 5.0))
        image = f"{lib}.images/{stem}{photo.suffix.lower()}"
        entries.append(PoseEntry(id=f"{lib}/{stem}", caption=caption_for_photo(photo), tags=("imported", "photo"),
                                 figures=(result.figure,), aspect=aspect, image=image))  # fmt: skip
        kept.append((photo, image))
    path = write_library(lib, entries, user_dir)
    images = path.with_name(f"{lib}.images")
    shutil.rmtree(images, ignore_errors=True)  # a re-import replaces the old photos too
    shutil.rmtree(features_folder(path), ignore_errors=True)  # and features stored by an earlier import
    images.mkdir()
    for photo, image in kept:
        shutil.copyfile(photo, path.parent / image)
    return ImportReport(path, entries, skipped)
