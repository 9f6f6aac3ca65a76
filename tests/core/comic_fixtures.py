"""Shared helpers for the .comic file tests: a small but complete project, and zip surgery tools
for crafting damaged or hostile archives byte by byte."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from pathlib import Path

from PIL import Image

from comic_studio.core.assets import AssetStore
from comic_studio.core.model import (
    Balloon,
    BalloonKind,
    Beat,
    Box,
    Character,
    CharacterPlacement,
    DialogueLine,
    Page,
    PageFormat,
    Panel,
    PanelResult,
    Project,
    Scene,
    Story,
    TailTarget,
)
from comic_studio.core.sample_projects import tiny_png


def encoded_image(fmt: str, colour: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def build_sample_project() -> tuple[Project, AssetStore, dict[str, str]]:
    """Pages, panels, balloons, characters, story and results over PNG/JPEG/WebP images and one
    non-image (LoRA) asset. One PNG is used by two results and a face reference (stored once).
    Returns the project, its store and ``{label: hash}``."""
    store = AssetStore()
    h = {
        "png_a": store.add(tiny_png(1)),
        "png_b": store.add(tiny_png(2)),
        "jpeg": store.add(encoded_image("JPEG", (200, 30, 30))),
        "webp": store.add(encoded_image("WEBP", (30, 200, 30))),
        "lora": store.add(b"\x00LORA weights, not an image" * 10, validate_image=False),
    }
    ana = Character(
        id="ana",
        name="Ana",
        aliases=["A."],
        description="red scarf",
        face_refs=[h["png_a"]],
        body_refs=[h["webp"]],
        lora_asset=h["lora"],
    )
    ben = Character(id="ben", name="Ben", pronouns="he")
    beat = Beat(
        id="beat1",
        action="Ana waves at Ben.",
        characters=["ana", "ben"],
        actor_id="ana",
        target_id="ben",
        dialogue=[DialogueLine(speaker_id="ana", text="Hi Ben!")],
    )

    def result(rid: str, asset: str, seed: int) -> PanelResult:
        return PanelResult(
            id=rid,
            asset=asset,
            backend="storyboard",
            seed=seed,
            request={"prompt": "wave", "nested": {"k": [1, 2.5, None]}},
            created_at="2026-01-02T03:04:05+00:00",
        )

    panel1 = Panel(
        id="p1",
        shape=[(27.0, 27.0), (450.0, 27.0), (450.0, 300.0), (27.0, 300.0)],
        beat_id="beat1",
        characters=[CharacterPlacement(character_id="ana", body=Box(x=0.1, y=0.2, w=0.3, h=0.7), head=(0.25, 0.3))],
        seed=1234,
        seed_locked=True,
        backend_settings={"strength": 0.75},
        results=[result("r1", h["png_a"], 1), result("r2", h["png_a"], 2), result("r3", h["jpeg"], 3)],
        current_result="r2",
        balloons=[
            Balloon(
                id="b1",
                kind=BalloonKind.SPEECH,
                text="Hi Ben!",
                box=Box(x=40, y=40, w=90, h=30),
                tail=TailTarget(character_id="ana"),
            )
        ],
    )
    panel2 = Panel(
        id="p2", order=1, shape=[(27.0, 312.0), (450.0, 312.0), (240.0, 711.0)], results=[result("r4", h["png_b"], 4)]
    )
    project = Project(
        id="proj0001",
        title="Round trip",
        author="Tester",
        page_format=PageFormat(width=477.0, height=738.0),
        pages=[Page(id="pg1", panels=[panel1, panel2]), Page(id="pg2")],
        characters=[ana, ben],
        story=Story(text="Ana waves at Ben.", scenes=[Scene(id="s1", title="Hello", beats=[beat])]),
    )
    return project, store, h


def zip_bytes(members: list[tuple[str, bytes]], compress_type: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``members`` in order (duplicate names allowed: zipfile only warns)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted in hostile files
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, compress_type=compress_type)
    return buf.getvalue()


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def replace_member(data: bytes, name: str, new: bytes | None) -> bytes:
    """Rebuild the archive with member ``name`` replaced (or dropped when ``new`` is None)."""
    out = []
    for member, content in members_of(data):
        if member == name:
            if new is not None:
                out.append((member, new))
        else:
            out.append((member, content))
    return zip_bytes(out)


# Central directory record: signature(4) version made/needed(2+2) flags(2) method(2) time(2) date(2)
# crc(4) compressed size(4) uncompressed size(4) name len(2) extra len(2) comment len(2) ...
_CENTRAL_FIELDS = {
    "flags": (8, "<H"),
    "method": (10, "<H"),
    "crc": (16, "<I"),
    "compress_size": (20, "<I"),
    "file_size": (24, "<I"),
}


def patch_central_directory(data: bytes, name: str, field: str, value: int) -> bytes:
    """Overwrite one field of ``name``'s central directory record (a zip that lies)."""
    raw = bytearray(data)
    target = name.encode()
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if bytes(raw[pos + 46 : pos + 46 + name_len]) == target:
            offset, fmt = _CENTRAL_FIELDS[field]
            struct.pack_into(fmt, raw, pos + offset, value)
            return bytes(raw)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{name} not in the central directory")


def write_and_snapshot(path: Path, data: bytes) -> tuple[bytes, int]:
    path.write_bytes(data)
    return data, path.stat().st_mtime_ns


def assert_untouched(path: Path, snapshot: tuple[bytes, int]) -> None:
    assert path.read_bytes() == snapshot[0], f"{path} was modified by a failed load"
    assert path.stat().st_mtime_ns == snapshot[1], f"{path} mtime changed during a failed load"
