"""Import pose collections into the user's pose library (:mod:`comic_studio.poses.user_library`).

One module per source: a folder of pose photos run through the offline detector
(:mod:`.photos`), and RaCig's retrieval data with its COCO-17 skeleton files and stored CLIP image
features (:mod:`.racig`, reading through :mod:`.readers` and :mod:`.skeletons`). What every import
writes is :mod:`.library_writer`. :func:`import_poses` picks the source from what it is given.

Security: only JSON and NPY/NPZ are read, NumPy always with ``allow_pickle=False`` (an object array is
refused), every number is validated, files are size-capped and paths in an index must stay inside
the index's folder.
"""

from __future__ import annotations

from pathlib import Path

from comic_studio.poses.importing.library_writer import ImportReport, PoseImportError
from comic_studio.poses.importing.photos import import_photo_folder
from comic_studio.poses.importing.racig import import_racig

__all__ = ["ImportReport", "PoseImportError", "import_photo_folder", "import_poses", "import_racig"]


def import_poses(source: Path, name: str | None = None, *, user_dir: Path | None = None,
                 features: Path | None = None, features_model: str | None = None) -> ImportReport:  # fmt: skip
    """Import whatever ``source`` is: RaCig data (a JSON index, or a folder with json/ + skeleton/,
    optionally with stored CLIP features) or a folder of pose photos."""
    source = Path(source)
    if not source.exists():
        raise PoseImportError(f"{source}: no such file or folder")
    if source.is_file() or ((source / "json").is_dir() and (source / "skeleton").is_dir()):
        return import_racig(source, name, user_dir=user_dir, features=features, features_model=features_model)
    if features is not None:
        raise PoseImportError(f"{source}: stored image features go with RaCig data (an index or json/ + skeleton/), "
                              "not with a photo folder, whose photos are encoded when searched")  # fmt: skip
    return import_photo_folder(source, name, user_dir=user_dir)
