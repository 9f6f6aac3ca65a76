"""LoRAs for one job: parsed from the ``loras`` setting, loaded into the pipeline's shared UNet and
text encoders for the job only, and removed when it ends (the next job starts from clean weights
whatever it asks for)."""

from __future__ import annotations

import json
from typing import Any

from comic_studio.generation.models.loading import apply_loras, remove_loras
from comic_studio.generation.models.sdxl import resolve_file
from comic_studio.generation.request import GenerationError


def parse_loras(text: str) -> list[tuple[str, float]]:
    """``"detail.safetensors:0.6, style-id"`` → ``[("detail.safetensors", 0.6), ("style-id", 1.0)]``."""
    out: list[tuple[str, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        spec, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head:
            try:  # "C:\\x.safetensors" has a colon too: only a number after the last one is a weight
                weight, spec = float(tail), head
            except ValueError:
                pass
        if not -5.0 <= weight <= 5.0:
            raise GenerationError(f"sdxl setting 'loras': weight {weight} for {spec!r} is outside -5..5")
        out.append((spec, weight))
    return out


def parse_character_loras(text: str) -> list[tuple[str, float]]:
    """The ``character_loras`` setting (JSON ``[[file, weight], …]``, filled in by the workflows from
    the panel's characters) as ``(file, weight)`` pairs."""
    if not text.strip():
        return []
    try:
        entries = json.loads(text)
        pairs = [(str(path), float(weight)) for path, weight in entries]
    except (ValueError, TypeError) as exc:
        raise GenerationError(f"setting 'character_loras' is not a list of [file, weight] pairs ({exc})") from exc
    for path, weight in pairs:
        if not 0.0 <= weight <= 2.0:
            raise GenerationError(f"setting 'character_loras': weight {weight} for {path!r} is outside 0..2")
    return pairs


class JobLoras:
    """The LoRAs of one job: the ``loras`` setting ``text`` and the panel's characters' trained
    LoRAs (``character_text``, the ``character_loras`` setting). :meth:`apply` loads them into the
    first pipeline it is given (every pipeline of a job shares that UNet and those text encoders,
    so once is enough); :meth:`remove` takes them out again — call it in a ``finally``."""

    def __init__(self, text: str, allow_pickle: bool, character_text: str = ""):
        self.loras = parse_loras(text) + parse_character_loras(character_text)
        self.allow_pickle = allow_pickle
        self._pipe: Any = None
        self._adapters: list[str] = []

    def apply(self, pipe: Any) -> None:
        if not self.loras or self._pipe is not None:
            return
        self._pipe = pipe
        files = [(resolve_file(spec, "lora"), weight) for spec, weight in self.loras]
        self._adapters = apply_loras(pipe, files, allow_pickle=self.allow_pickle)

    def remove(self) -> None:
        if self._adapters:
            remove_loras(self._pipe, self._adapters)
            self._adapters = []
