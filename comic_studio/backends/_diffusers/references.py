"""The ``reference_images`` setting every backend with ``needs_reference_images`` reads: JSON
``{asset hash: PNG data URI}`` filled by the app, each payload checked against its hash (the key is
what embeddings are cached under), and JSON-object settings in general."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from comic_studio.generation.request import GenerationError, data_uri_bytes


def json_object_setting(text: str, setting: str, expected: str, backend: str) -> dict[str, Any]:
    """A setting holding a JSON object (empty text: ``{}``); GenerationError naming the backend and
    setting when it is not JSON or not an object (``expected`` says what it should be)."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise GenerationError(f"{backend} setting {setting!r}: not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise GenerationError(f"{backend} setting {setting!r}: expected {expected}")
    return raw


def parse_images_setting(text: str, backend: str, setting: str = "reference_images") -> dict[str, bytes]:
    """JSON ``{sha256: data URI or base64}`` → ``{sha256: bytes}``; each payload must hash to its key."""
    raw = json_object_setting(text, setting, "an object {asset hash: image data}", backend)
    out: dict[str, bytes] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise GenerationError(f"{backend} setting {setting!r}: the value for {key[:12]}… is not text")
        try:
            data = data_uri_bytes(value)
        except ValueError as exc:  # binascii.Error is a ValueError
            raise GenerationError(f"{backend} setting {setting!r}: {key[:12]}… is not base64 ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != key:
            raise GenerationError(f"{backend} setting {setting!r}: the image under {key[:12]}… does not match its hash")
        out[key] = data
    return out
