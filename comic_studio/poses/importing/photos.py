"""Import a folder of pose photos: one single-figure entry per image whose pose the offline detector
finds (:mod:`comic_studio.poses.extract`). The caption comes from a sidecar ``NAME.txt`` or the file
name ("two_people-fighting.jpg" → "two people fighting"); the photo is copied next to the library
so a text→image search can use it later.

Every photo and sidecar is read through :mod:`.readers`: a link out of the folder, a FIFO, a file
over the size cap or a pixel bomb is skipped with its reason, never read or waited on.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.poses.extract import MIN_VISIBILITY, PoseDetectorUnavailable, PoseExtractionError, extract_pose
from comic_studio.poses.importing.library_writer import (
    ImportReport,
    PoseImportError,
    clip_caption,
    entry_stem,
    library_name,
    write_library,
)  # fmt: skip
from comic_studio.poses.importing.readers import confined, read_photo, read_sidecar
from comic_studio.poses.library import PoseEntry
from comic_studio.poses.stored_features import features_folder
from comic_studio.poses.user_library import IMAGE_SUFFIXES


def caption_for_photo(image: Path) -> str:
    """A sidecar ``NAME.txt`` when present (and inside the photo's folder), else words from the
    file name."""
    sidecar = image.with_suffix(".txt")
    if sidecar.is_file():
        try:
            text = read_sidecar(confined(image.parent, Path(sidecar.name), "caption file")).strip()
        except PoseImportError:
            text = ""  # a sidecar linking out of the folder: its text is not ours to copy
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
    # Not only regular files: a FIFO or a link named like a photo is listed, and skipped with its reason.
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
    if not photos:
        raise PoseImportError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to import")
    entries: list[PoseEntry] = []
    skipped: list[tuple[str, str]] = []
    kept: list[tuple[bytes, str]] = []
    taken: set[str] = set()
    for i, photo in enumerate(photos):
        if progress:
            progress(i, len(photos), photo.name)
        try:
            data, picture = read_photo(confined(folder, Path(photo.name), "photo"))
            result = extract_pose(picture, min_visibility=min_visibility)
        except PoseDetectorUnavailable:
            raise  # not this photo's fault: every other photo would fail the same way
        except (PoseImportError, PoseExtractionError) as exc:
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
        kept.append((data, image))
    path = write_library(lib, entries, user_dir, skipped)
    images = path.with_name(f"{lib}.images")
    shutil.rmtree(images, ignore_errors=True)  # a re-import replaces the old photos too
    shutil.rmtree(features_folder(path), ignore_errors=True)  # and features stored by an earlier import
    images.mkdir()
    for data, image in kept:  # the bytes that were checked, not the file again (it may have changed)
        atomic_write_bytes(path.parent / image, data, "a pose photo")
    return ImportReport(path, entries, skipped)
