"""The model catalogue: ``comic_studio/resources/models.json`` as validated data (ids, files, sizes, licences).

Data, not code: adding a model is a JSON edit. Each entry names where the files come from (a
Hugging Face repo, or a plain HTTPS URL), per file its ``sha256``, exact ``size`` and the repo
``revision`` (a commit hash) it was pinned at, the licence, and the other entries it needs (an
IP-Adapter needs its image encoder). No torch, no network here.

Pins may be missing in the bundled file (filling them needs a networked run of ``comic-studio
models pin --from-hub --write-catalogue comic_studio/resources/models.json``); a user's own pins live in an
overlay beside the settings (``models.pins.json``, written by ``comic-studio models pin``) and
:func:`load_catalogue` applies them over the bundled values. The overlay carries pins only, never
URLs or repos, so it cannot redirect a download.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from comic_studio.core.atomic import atomic_write_text
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.resources import resource
from comic_studio.core.safe_read import UnsafeInputError, read_json

KINDS = (
    "sdxl", "sdxl-config", "sd15", "vae", "lora", "ipadapter", "clip_vision", "controlnet", "t2i_adapter",
    "embedding", "llm", "openclip", "face_encoder", "referencenet",
)  # fmt: skip
Kind = Literal[
    "sdxl",
    "sdxl-config",
    "sd15",
    "vae",
    "lora",
    "ipadapter",
    "clip_vision",
    "controlnet",
    "t2i_adapter",
    "embedding",
    "llm",
    "openclip",
    "face_encoder",
    "referencenet",
]


SHA256_PATTERN = r"^[0-9a-f]{64}$"
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
"""A full git commit hash: a branch or tag name can move, a commit cannot."""
PINS_FILE = "models.pins.json"
MAX_CATALOGUE_BYTES = 4 * 1024 * 1024


class CatalogueError(ComicStudioError):
    """The catalogue is invalid, or an id is not in it."""


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=500)]
    """Path inside the repo (or the file name for a URL download)."""
    url: str | None = None
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    size: int | None = Field(default=None, ge=0)
    """Bytes. Exact, and enforced by the downloader, when ``sha256`` is set (a pinned file); without
    a sha256 it is for display and "what is missing" totals only and may be rounded."""
    revision: str | None = Field(default=None, pattern=COMMIT_PATTERN)
    """The repo commit the file is pinned at: the download resolves this commit, never ``main``."""

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
    name: str
    kind: Kind
    format: Literal["single-file", "diffusers", "file"]
    """single-file: one checkpoint; diffusers: a folder of files; file: one file used as it is."""
    repo: str | None = None
    files: Annotated[list[ModelFile], Field(min_length=1)]
    aliases: list[str] = []
    """Other file names the model is known by in ComfyUI/A1111 folders."""
    licence: str = ""
    needs: list[str] = []
    notes: str = ""

    @model_validator(mode="after")
    def _has_source(self) -> ModelEntry:
        for f in self.files:
            if self.repo is None and f.url is None:
                raise ValueError(f"file {f.path!r} has neither a repo nor a url")
            if f.url is not None and f.revision is not None:
                raise ValueError(f"file {f.path!r} has a url: a revision only applies to repo files")
        return self

    @property
    def size(self) -> int | None:
        """Total bytes when every file's size is known (config files count as ~0)."""
        known = [f.size for f in self.files if f.size is not None]
        return sum(known) if known else None

    @property
    def weight_file(self) -> ModelFile:
        """The main file: the largest one with a known size, else the last one."""
        sized = [f for f in self.files if f.size]
        return max(sized, key=lambda f: f.size or 0) if sized else self.files[-1]


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    models: list[ModelEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        ids = [m.id for m in self.models]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate model ids: {sorted(dupes)}")
        for m in self.models:
            for need in m.needs:
                if need not in ids:
                    raise ValueError(f"{m.id} needs {need!r}, which is not in the catalogue")
        return self

    def get(self, model_id: str) -> ModelEntry:
        for m in self.models:
            if m.id == model_id:
                return m
        raise CatalogueError(f"no model {model_id!r} in the catalogue (known: {', '.join(m.id for m in self.models)})")

    def of_kind(self, kind: str) -> list[ModelEntry]:
        return [m for m in self.models if m.kind == kind]

    def requirements(self, model_id: str) -> list[ModelEntry]:
        """``model_id`` and everything it needs, transitively, dependencies first."""
        order: list[ModelEntry] = []

        def visit(mid: str, trail: tuple[str, ...]) -> None:
            if mid in trail:
                raise CatalogueError(f"circular 'needs' in the catalogue: {' → '.join(trail + (mid,))}")
            entry = self.get(mid)
            for need in entry.needs:
                visit(need, trail + (mid,))
            if entry not in order:
                order.append(entry)

        visit(model_id, ())
        return order


def read_catalogue(path: str | Path) -> Catalogue:
    p = Path(path)
    try:
        return Catalogue.model_validate(read_json(p, limit=MAX_CATALOGUE_BYTES, what="model catalogue"))
    except UnsafeInputError as exc:
        raise CatalogueError(f"{p}: invalid model catalogue: {exc.problem}") from exc
    except ValidationError as exc:
        raise CatalogueError(f"{p}: invalid model catalogue: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc']) or '(catalogue)'}: {err['msg']}"


# ------------------------------------------------------------------------------------ pins overlay


class FilePin(BaseModel):
    """What a verified download (or the Hub) stated for one file: enough to refuse any other bytes."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)
    revision: str | None = Field(default=None, pattern=COMMIT_PATTERN)


class Pins(BaseModel):
    """``models.pins.json``: catalogue id → repo path → pin."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    models: dict[str, dict[str, FilePin]] = {}


def pins_path() -> Path:
    from comic_studio.core.settings import config_dir

    return config_dir() / PINS_FILE


def read_pins(path: str | Path) -> Pins:
    """The overlay at ``path``; an absent file is an empty overlay. A broken one is an error rather
    than ignored: ignoring it would quietly drop checks the user asked for."""
    p = Path(path)
    if not p.exists():
        return Pins()
    try:
        return Pins.model_validate(read_json(p, limit=MAX_CATALOGUE_BYTES, what="model pins file"))
    except UnsafeInputError as exc:
        raise CatalogueError(f"{p}: invalid model pins: {exc.problem}; fix it or delete it") from exc
    except ValidationError as exc:
        raise CatalogueError(f"{p}: invalid model pins: {_first_error(exc)}; fix it or delete it") from exc


def write_pins(path: str | Path, pins: Pins) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(p, pins.model_dump_json(indent=2, exclude_none=True) + "\n", "the model pins")


def apply_pins(catalogue: Catalogue, pins: Pins) -> Catalogue:
    """``catalogue`` with the overlay's pins in place of its own. Pins for ids or paths the catalogue
    no longer has are ignored (a catalogue update may drop a model); a revision is applied to repo
    files only."""
    if not pins.models:
        return catalogue
    models = []
    for entry in catalogue.models:
        mine = pins.models.get(entry.id, {})
        files = []
        for f in entry.files:
            pin = mine.get(f.path)
            if pin is not None:
                update = {"sha256": pin.sha256, "size": pin.size}
                if f.url is None:
                    update["revision"] = pin.revision
                f = f.model_copy(update=update)
            files.append(f)
        models.append(entry.model_copy(update={"files": files}))
    return catalogue.model_copy(update={"models": models})


def catalogue_json(catalogue: Catalogue) -> str:
    """The catalogue as ``comic_studio/resources/models.json`` keeps it: one file per line, readable in a diff."""
    out = ["{", f'  "version": {catalogue.version},', '  "models": [']
    for i, entry in enumerate(catalogue.models):
        data = entry.model_dump(exclude_defaults=True)
        data["files"] = "@FILES@"
        text = json.dumps(data, indent=2, ensure_ascii=False)
        files = ",\n".join(
            "    " + json.dumps(f.model_dump(exclude_none=True), ensure_ascii=False) for f in entry.files
        )
        text = text.replace('"@FILES@"', "[\n" + files + "\n  ]")
        text = "\n".join("    " + line for line in text.splitlines())
        out.append(text + ("," if i < len(catalogue.models) - 1 else ""))
    out += ["  ]", "}"]
    return "\n".join(out) + "\n"


@lru_cache(maxsize=1)
def bundled_catalogue() -> Catalogue:
    """The catalogue shipped with the app (read once), without the user's pins."""
    return read_catalogue(resource("models.json"))


@lru_cache(maxsize=4)
def _pinned(path: str, stamp: tuple[int, int]) -> Catalogue:
    return apply_pins(bundled_catalogue(), read_pins(path))


def load_catalogue() -> Catalogue:
    """The bundled catalogue with the user's pins applied (re-read when the pins file changes)."""
    path = pins_path()
    try:
        st = path.stat()
    except OSError:
        return bundled_catalogue()
    return _pinned(str(path), (st.st_mtime_ns, st.st_size))
