"""Generated projects of realistic shape, for benchmarks and tests (no randomness between runs)."""

from __future__ import annotations

import io
import random
import zlib

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
    ShotType,
    Story,
    Style,
    TailTarget,
)

_SHOTS = list(ShotType)


def tiny_png(seed: int, size: int = 24) -> bytes:
    """A small, valid RGB PNG whose pixels depend on ``seed`` (so each seed hashes differently).

    Written by hand with zlib rather than Pillow: generating hundreds of these stays instant.
    """
    rng = random.Random(seed)
    base = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type "none" for this scanline
        for x in range(size):
            rows += bytes(((base[0] + x * 7) % 256, (base[1] + y * 5) % 256, (base[2] + x * y) % 256))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = size.to_bytes(4, "big") * 2 + bytes((8, 2, 0, 0, 0))  # 8-bit RGB, no interlace
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", header))
    out.write(chunk(b"IDAT", zlib.compress(bytes(rows), 6)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()


def make_big_project(
    pages: int = 300,
    panels: int = 1500,
    assets: int = 200,
    results_per_panel: int = 3,
    characters: int = 12,
    seed: int = 0,
) -> tuple[Project, AssetStore]:
    """A project with ``pages`` pages holding ``panels`` panels in total (spread evenly), each panel
    with ``results_per_panel`` results, a couple of balloons and character placements; ``assets``
    distinct small PNGs shared between results and character references; a story with one beat per
    panel. Identical inputs give identical projects (ids included)."""
    if pages < 1 or panels < 0 or assets < 1:
        raise ValueError("make_big_project needs at least one page and one asset")
    rng = random.Random(seed)
    ids = (f"{seed:04x}{n:08x}" for n in range(10**9))  # deterministic 12-character ids
    store = AssetStore()
    hashes = [store.add(tiny_png(seed * 100_003 + n), validate_image=False) for n in range(assets)]

    cast = [
        Character(
            id=next(ids),
            name=f"Character {n}",
            aliases=[f"C{n}"],
            description=f"person number {n}, distinctive outfit {n % 5}",
            face_refs=[hashes[n % assets]],
            body_refs=[hashes[(n + 1) % assets]],
        )
        for n in range(characters)
    ]
    fmt = PageFormat(width=477.0, height=738.0)
    beats: list[Beat] = []
    page_list: list[Page] = []
    per_page = [panels // pages + (1 if p < panels % pages else 0) for p in range(pages)]
    asset_cursor = 0
    for p, count in enumerate(per_page):
        page_panels: list[Panel] = []
        row_h = (fmt.height - 2 * fmt.margin) / max(count, 1)
        for k in range(count):
            y0 = fmt.margin + k * row_h
            who = cast[(p + k) % len(cast)] if cast else None
            beat = Beat(
                id=next(ids),
                action=f"Page {p + 1}, panel {k + 1}: something happens.",
                characters=[who.id] if who else [],
                shot=_SHOTS[(p + k) % len(_SHOTS)],
                dialogue=[DialogueLine(speaker_id=who.id if who else None, text=f"Line {p}-{k}.")],
            )
            beats.append(beat)
            results = []
            for r in range(results_per_panel):
                results.append(
                    PanelResult(
                        id=next(ids),
                        asset=hashes[asset_cursor % assets],
                        backend="storyboard",
                        seed=rng.randrange(2**32),
                        request={"prompt": beat.action, "steps": 20, "size": [512, 768]},
                        created_at="2026-01-01T00:00:00+00:00",
                        accepted=r == 0,
                    )
                )
                asset_cursor += 1
            page_panels.append(
                Panel(
                    id=next(ids),
                    shape=[
                        (fmt.margin, y0),
                        (fmt.width - fmt.margin, y0),
                        (fmt.width - fmt.margin, y0 + row_h - fmt.gutter),
                        (fmt.margin, y0 + row_h - fmt.gutter),
                    ],
                    order=k,
                    beat_id=beat.id,
                    characters=[
                        CharacterPlacement(character_id=who.id, body=Box(x=0.3, y=0.2, w=0.4, h=0.8), head=(0.5, 0.3))
                    ]
                    if who
                    else [],
                    shot=beat.shot,
                    prompt=beat.action,
                    seed=rng.randrange(2**32),
                    results=results,
                    current_result=results[0].id if results else None,
                    balloons=[
                        Balloon(
                            id=next(ids),
                            kind=BalloonKind.SPEECH,
                            text=f"Line {p}-{k}.",
                            box=Box(x=fmt.margin + 10, y=y0 + 10, w=120, h=40),
                            tail=TailTarget(character_id=who.id if who else None),
                        ),
                        Balloon(
                            id=next(ids),
                            kind=BalloonKind.CAPTION,
                            text="Meanwhile…",
                            box=Box(x=fmt.margin, y=y0, w=100, h=20),
                            auto_placed=False,
                        ),
                    ],
                )
            )
        page_list.append(Page(id=next(ids), panels=page_panels, notes=f"page {p + 1}"))

    scenes = [Scene(id=next(ids), title=f"Scene {s + 1}", beats=beats[s::4]) for s in range(4)]
    project = Project(
        id=next(ids),
        title="Generated comic",
        author="sample_projects",
        page_format=fmt,
        pages=page_list,
        characters=cast,
        story=Story(text="A generated story.", scenes=scenes),
        styles=[Style(id="style-ink", name="Ink", prompt_suffix="ink drawing")],
        active_style_id="style-ink",
    )
    return project, store
