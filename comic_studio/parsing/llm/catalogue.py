"""How the ``llama`` parser's model argument becomes a GGUF file.

A model is a path to a ``.gguf`` file or the id of a ``kind: "llm"`` entry of the model catalogue
(``comic_studio/resources/models.json``: a 1.5B and a 3B instruct model, Q4_K_M). Ids are located the way the
model manager locates every model — the app's models folder, then the Hugging Face cache — and
never downloaded here (the Models dialog owns downloads), so parsing works offline and says
clearly what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from comic_studio.parsing.errors import ParseError

MODEL_ENV = "COMIC_STUDIO_LLAMA_MODEL"
"""A GGUF path or catalogue id used when no model is given."""


def llm_entries() -> list[Any]:
    """The catalogue's story-parser models (``kind == "llm"``); empty without the model manager."""
    try:
        from comic_studio.weights.catalogue import load_catalogue
    except ImportError:
        return []
    return list(load_catalogue().of_kind("llm"))


def _locate(entry: Any) -> Path | None:
    from comic_studio.weights.locate import Places, locate

    found = locate(entry, Places.from_settings())
    return found.path if found is not None and found.path.is_file() else None


def resolve_model(spec: str | os.PathLike[str] | None) -> Path:
    """A path or catalogue id (or ``$COMIC_STUDIO_LLAMA_MODEL``) → an existing GGUF file.

    Raises :class:`ParseError` naming what is missing and how to get it."""
    value = os.fspath(spec) if spec is not None else os.environ.get(MODEL_ENV, "")
    entries = {e.id: e for e in llm_entries()}
    if not value:
        ids = ", ".join(entries) or "none installed"
        raise ParseError(
            f"the llama parser needs a model: pass --model PATH.gguf, set {MODEL_ENV}, or use a catalogue id ({ids})"
        )
    entry = entries.get(value)
    if entry is not None:
        path = _locate(entry)
        if path is not None:
            return path
        size = sum(f.size or 0 for f in entry.files) // 1_000_000
        raise ParseError(
            f"model {value!r} ({entry.repo}, {size} MB) is not downloaded yet; "
            "download it from the Models dialog or pass --model PATH.gguf"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        hint = f" (catalogue ids: {', '.join(entries)})" if entries and not value.endswith(".gguf") else ""
        raise ParseError(f"{path}: no such model file{hint}")
    return path
