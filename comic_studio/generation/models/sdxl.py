"""Resolving the SDXL family's model settings to files: the base model spec (a catalogue id, a
diffusers folder or a single-file checkpoint; empty = the default) to a loadable
:class:`~comic_studio.generation.models.loading.SdxlSource`, and LoRA / IP-Adapter specs to a file.

It joins the catalogue (:mod:`comic_studio.weights`: what is installed where) to the loader's
checks, and raises :class:`ModelLoadError` saying what to download; :mod:`comic_studio.weights`
itself knows nothing of SDXL loading.
"""

from __future__ import annotations

import os
from pathlib import Path

from comic_studio.generation.models.loading import ModelLoadError, SdxlSource, sdxl_source
from comic_studio.generation.models.sdxl_config import bundled_sdxl_configs
from comic_studio.weights.catalogue import CatalogueError, load_catalogue
from comic_studio.weights.locate import Places, locate, scan_external

DEFAULT_SDXL_ENV = "COMIC_STUDIO_SDXL_MODEL"
"""Overrides the default SDXL model (a catalogue id or a path): ``--models tiny`` sets it."""
DEFAULT_SDXL_ID = "sdxl-base-1.0"
CONFIG_ID = "sdxl-base-1.0-config"
"""The SDXL configs as a download; optional since the app bundles them (comic_studio/resources/sdxl/)."""


def default_sdxl_model() -> str:
    return os.environ.get(DEFAULT_SDXL_ENV, "").strip() or DEFAULT_SDXL_ID


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or "\\" in spec
        or spec.lower().endswith((".safetensors", ".ckpt"))
        or Path(spec).expanduser().exists()
    )


def resolve_sdxl(
    spec: str = "", config: str = "", *, places: Places | None = None, allow_pickle: bool = False
) -> SdxlSource:
    """An SDXL model spec (catalogue id, a diffusers folder or a checkpoint path; empty = the
    default) → a loadable :class:`SdxlSource`. Raises :class:`ModelLoadError` saying what to do.
    A single-file checkpoint without ``config`` loads with the bundled SDXL configuration."""
    spec = spec.strip() or default_sdxl_model()
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if path.is_file() and not config:
            return sdxl_source(path, allow_pickle=allow_pickle, candidates=sdxl_config_candidates(places))
        return sdxl_source(path, config or None, allow_pickle=allow_pickle)
    places = places or Places.from_settings()
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError as exc:
        raise ModelLoadError(str(exc)) from exc
    if entry.kind != "sdxl":
        raise ModelLoadError(f"{spec!r} is a {entry.kind} model, not an SDXL base model")
    found = locate(entry, places)
    if found is None:
        raise ModelLoadError(
            f"the model {spec!r} is not installed; download it in the Models window (or with the models download command)"
        )
    if found.path.is_file() and not config:
        return sdxl_source(found.path, allow_pickle=allow_pickle, candidates=sdxl_config_candidates(places))
    return sdxl_source(found.path, config or None, allow_pickle=allow_pickle)


def sdxl_config_candidates(places: Places | None = None) -> list[Path]:
    """Config folders for a single-file checkpoint, in order: the bundled ones, then the
    downloadable ``sdxl-base-1.0-config`` entry where a user installed it (an older setup)."""
    candidates = bundled_sdxl_configs()
    places = places or Places.from_settings()
    try:
        entry = load_catalogue().get(CONFIG_ID)
    except CatalogueError:
        return candidates
    found = locate(entry, places)
    return candidates + [found.path] if found else candidates


def resolve_file(spec: str, kind: str, places: Places | None = None) -> Path:
    """A LoRA/embedding/... spec → a file: a path, a catalogue id, or a file name in the external tree."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    places = places or Places.from_settings()
    try:
        entry = load_catalogue().get(spec)
    except CatalogueError:
        entry = None
    if entry is not None:
        found = locate(entry, places)
        if found is None:
            raise ModelLoadError(
                f"the model {spec!r} is not installed; download it in the Models window (or with the models download command)"
            )
        return found.path
    for candidate in scan_external(places, kind):
        if candidate.name == spec or candidate.stem == spec:
            return candidate
    raise ModelLoadError(f"no {kind} file {spec!r} found (not a path, a catalogue id or a file in the models tree)")
