"""Find models on this machine before downloading anything.

Three places, in this order:

1. the app's models folder (``AppSettings.models_folder``, else platformdirs
   ``user_data_dir("comic-studio")/models``), laid out as ``<id>/<repo path>`` by our downloader;
2. the Hugging Face cache (files fetched by any HF tool), via ``try_to_load_from_cache``;
3. an existing ComfyUI or Automatic1111 models tree (``AppSettings.external_models_folder``), by file
   name or exact size in the folder for the model's kind (``checkpoints``/``Stable-diffusion``,
   ``loras``/``Lora``, ``controlnet``, ``ipadapter``, ``clip_vision``, ``embeddings``, ``vae``), and
   only when usable (:func:`usable_file`: the exact size when pinned, the header against the architecture).
   There the located path is a single file even for a diffusers-format entry; the loaders build it
   around the config bundled for it (:func:`comic_studio.weights.architecture.bundled_config`).

No torch here; ``huggingface_hub`` is imported only to look in its cache (never the network).
Turning a user's model setting into something loadable (and an error saying what to download) is
the loader's job: :mod:`comic_studio.generation.models.sdxl`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from comic_studio.weights.architecture import ENTRY_KEY_PREFIX, bundled_config, file_mismatch
from comic_studio.weights.catalogue import Catalogue, ModelEntry, load_catalogue

EXTERNAL_FOLDERS: dict[str, tuple[str, ...]] = {
    "sdxl": ("checkpoints", "Stable-diffusion"),
    "sd15": ("checkpoints", "Stable-diffusion"),
    "lora": ("loras", "Lora", "LyCORIS"),
    "controlnet": ("controlnet", "ControlNet"),
    "t2i_adapter": ("t2i_adapter", "controlnet", "ControlNet"),
    "ipadapter": ("ipadapter", "ip-adapter", "ip_adapter"),
    "clip_vision": ("clip_vision",),
    "embedding": ("embeddings",),
    "vae": ("vae", "VAE"),
}
"""ComfyUI names first, then Automatic1111's."""


@dataclass(frozen=True)
class Located:
    id: str
    path: Path
    """The weight file (single-file / file entries) or the model folder (diffusers entries)."""
    source: str
    """``models-folder``, ``hf-cache`` or ``external``."""


@dataclass(frozen=True)
class Places:
    models: Path
    external: Path | None = None
    hf_cache: Path | None = None
    """``None``: huggingface_hub's default cache (honours ``HF_HUB_CACHE``/``HF_HOME``)."""

    @classmethod
    def from_settings(cls, settings: Any | None = None) -> Places:
        if settings is None:
            from comic_studio.core.settings import load_settings

            settings, _problem = load_settings()
        external = Path(settings.external_models_folder).expanduser() if settings.external_models_folder else None
        return cls(models=settings.effective_models_folder(), external=external)


def entry_root(entry: ModelEntry) -> str:
    """The repo-relative folder holding a diffusers entry's files (``""`` for the repo root)."""
    parents = {str(PurePosixPath(f.path).parent) for f in entry.files}
    common = os.path.commonpath(sorted(parents)) if parents else ""
    return "" if common in (".", "") else common


def _result_path(base: Path, entry: ModelEntry) -> Path:
    if entry.format == "diffusers":
        root = entry_root(entry)
        return base / root if root else base
    return base / entry.weight_file.path


def in_models_folder(entry: ModelEntry, models: Path) -> Located | None:
    base = models / entry.id
    if all((base / f.path).is_file() for f in entry.files):
        return Located(entry.id, _result_path(base, entry), "models-folder")
    return None


def in_hf_cache(entry: ModelEntry, cache_dir: Path | None = None) -> Located | None:
    if entry.repo is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found: list[Path] = []
    for f in entry.files:
        hit = try_to_load_from_cache(entry.repo, f.path, cache_dir=str(cache_dir) if cache_dir else None)
        if not isinstance(hit, str):  # None, or the "known to be missing" sentinel
            return None
        found.append(Path(hit))
    # All files of one snapshot share its folder: strip the repo path from the first hit.
    snapshot = found[0]
    for _part in PurePosixPath(entry.files[0].path).parts:
        snapshot = snapshot.parent
    return Located(entry.id, _result_path(snapshot, entry), "hf-cache")


def external_kind_folders(external: Path, kind: str) -> list[Path]:
    """The existing folders for ``kind`` under a ComfyUI/A1111 tree (its root or its models/)."""
    out = []
    for root in (external, external / "models"):
        for name in EXTERNAL_FOLDERS.get(kind, ()):
            if (root / name).is_dir():
                out.append(root / name)
    return out


def in_external(entry: ModelEntry, external: Path | None) -> Located | None:
    """The first usable file for ``entry`` in the external tree's folder for its kind.

    Candidates are files named as the entry's weight file or an alias, then any ``.safetensors`` of
    the entry's exact size (users rename downloads). A candidate counts only when it is usable
    (:func:`usable_file`): the exact size when the entry is pinned, and for a diffusers-format entry
    (loaded around a bundled config, :mod:`comic_studio.weights.architecture`) its header fits that
    architecture — a canny ControlNet named ``diffusion_pytorch_model.safetensors`` is not OpenPose's."""
    if external is None:
        return None
    weight = entry.weight_file
    names = {weight.name.lower(), *(a.lower() for a in entry.aliases)}
    found: list[tuple[Path, Path]] = []
    for folder in external_kind_folders(external, entry.kind):
        found += [(folder, p) for p in sorted(folder.rglob("*"))]
    named = [(f, p) for f, p in found if p.name.lower() in names]
    # By size only where the header is checked too: SDXL fine-tunes share the base's exact size.
    sized = [(f, p) for f, p in found if bundled_config(entry.id) and weight.size and (f, p) not in named
             and p.suffix.lower() == ".safetensors" and _size(p) == weight.size]  # fmt: skip
    for folder, path in named + sized:
        if (
            path.is_file()
            and not _names_another_control(entry, path.relative_to(folder))
            and usable_file(entry, path) is None
        ):
            return Located(entry.id, path, "external")
    return None


CONTROL_TYPES = ("openpose", "canny", "depth", "lineart", "scribble", "softedge", "tile", "normal", "mlsd",
                 "seg", "inpaint", "union", "sketch", "blur", "recolor", "qrcode")  # fmt: skip
"""ControlNets of one architecture differ only in their training (xinsir's canny and OpenPose files
have the same shapes and size); a ComfyUI user's file or the folder holding
``diffusion_pytorch_model.safetensors`` is named after the repo, so a name saying another control
type rules the file out."""


def _names_another_control(entry: ModelEntry, relative: Path) -> bool:
    if entry.kind != "controlnet":
        return False
    words = "/".join(relative.parts).lower()
    own = {t for t in CONTROL_TYPES if t in entry.id}
    return any(t in words for t in CONTROL_TYPES if t not in own)


def usable_file(entry: ModelEntry, path: Path) -> str | None:
    """Why ``path`` cannot stand in for ``entry``'s weights (``None``: it can). Cheap, so the Models
    dialog can ask at every refresh: the exact size when the catalogue pins the file (a pinned size
    is exact; hashing 7 GB at each start would not be cheap), and for a diffusers-format entry the
    header against the architecture it is loaded with."""
    weight = entry.weight_file
    if weight.sha256 is not None and _size(path) != weight.size:
        return f"{path.name} is {_size(path):,} bytes, not the {weight.size:,} of {entry.id}"
    # Single-file entries with a bundled config are checked too (RaCig's ControlNet is a generic
    # "model.safetensors": only its layout tells it apart).
    config = bundled_config(entry.id) if entry.format in ("diffusers", "file") else None
    if config is not None:
        problem = file_mismatch(path, entry.kind, config, ENTRY_KEY_PREFIX.get(entry.id))
        if problem:
            return f"{path.name} does not fit {entry.id}: {problem}"
    elif entry.format == "diffusers":
        return f"{path.name}: {entry.id} is a diffusers folder model with no bundled config to load one file with"
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def locate(entry: ModelEntry, places: Places) -> Located | None:
    """Where ``entry`` is installed, or ``None`` (see the module docstring for the order)."""
    return (
        in_models_folder(entry, places.models)
        or in_hf_cache(entry, places.hf_cache)
        or in_external(entry, places.external)
    )


def locate_all(places: Places, catalogue: Catalogue | None = None) -> dict[str, Located | None]:
    catalogue = catalogue or load_catalogue()
    return {m.id: locate(m, places) for m in catalogue.models}


def scan_external(places: Places, kind: str) -> list[Path]:
    """Every weights file of ``kind`` in the external tree (a LoRA or checkpoint picker lists these)."""
    if places.external is None:
        return []
    out: list[Path] = []
    for folder in external_kind_folders(places.external, kind):
        out += [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in (".safetensors", ".ckpt", ".pt", ".bin")]
    return out


def missing_for(model_id: str, places: Places, catalogue: Catalogue | None = None) -> list[ModelEntry]:
    """What still has to be downloaded before ``model_id`` can run (it and what it needs)."""
    catalogue = catalogue or load_catalogue()
    return [m for m in catalogue.requirements(model_id) if locate(m, places) is None]
