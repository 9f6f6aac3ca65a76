"""The model catalogue: ``resources/models.json`` as validated data (ids, files, sizes, licences).

Data, not code: adding a model is a JSON edit. Each entry names where the files come from (a
Hugging Face repo, or a plain HTTPS URL), optional sha256/size per file, the licence, and the other
entries it needs (an IP-Adapter needs its image encoder). No torch, no network here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.resources import resource

KINDS = ("sdxl", "sdxl-config", "vae", "lora", "ipadapter", "clip_vision", "controlnet", "embedding", "llm", "openclip")
Kind = Literal[
    "sdxl", "sdxl-config", "vae", "lora", "ipadapter", "clip_vision", "controlnet", "embedding", "llm", "openclip"
]


class CatalogueError(ComicStudioError):
    """The catalogue is invalid, or an id is not in it."""


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=500)]
    """Path inside the repo (or the file name for a URL download)."""
    url: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)
    """Bytes, for display and "what is missing" totals (may be rounded; sha256 is what verifies)."""

    @property
    def name(self) -> str:
        return Path(self.path).name


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
        return Catalogue.model_validate(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else _first_error(exc)
        raise CatalogueError(f"{p}: invalid model catalogue: {reason}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc']) or '(catalogue)'}: {err['msg']}"


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The bundled catalogue (read once)."""
    return read_catalogue(resource("models.json"))
