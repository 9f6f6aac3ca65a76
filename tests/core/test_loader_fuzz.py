"""Fuzzing the .comic loader with hypothesis: 1,350 generated damaged and hostile files.

Every file must either load (a harmless mutation) or be refused with ProjectFileError, never with
another exception and never with the loader's "internal error" fallback (that would mean a failure
mode the loader does not understand). The file on disk must be byte-identical afterwards.

Whatever loads must also work: a sample of the fuzzed files that loaded, and files holding every
model limit at its extreme, are opened in a child process under RLIMIT_AS / RLIMIT_CPU, rendered
with the storyboard backend, exported to PDF, CBZ and PNG and saved again
(:func:`test_zz_what_loads_renders_exports_and_saves_within_bounds`, last so the fuzzers above
have filled its sample).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from comic_fixtures import build_sample_project, members_of, patch_central_directory, zip_bytes
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from comic_studio.core.errors import ProjectFileError
from comic_studio.core.projectfile import load_project, save_project

# COMIC_STUDIO_FUZZ_SCALE=20 runs twenty times as many examples (a deeper, slower hunt).
SCALE = max(1, int(os.environ.get("COMIC_STUDIO_FUZZ_SCALE", "1")))


def fuzz(examples: int) -> settings:
    # No example database: the suite must not write a .hypothesis folder into the checkout.
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@functools.cache
def base() -> tuple[Path, bytes]:
    """A work folder and the bytes of one valid saved project (built once for the whole module)."""
    folder = Path(tempfile.mkdtemp(prefix="comic-fuzz-"))
    atexit.register(shutil.rmtree, folder, True)  # module-wide folder: hypothesis forbids tmp_path here
    project, store, _ = build_sample_project()
    save_project(folder / "base.comic", project, store)
    return folder, (folder / "base.comic").read_bytes()


@functools.cache
def base_members() -> list[tuple[str, bytes]]:
    return members_of(base()[1])


def base_doc() -> dict[str, Any]:
    return json.loads(dict(base_members())["project.json"])


def check_load(data: bytes) -> None:
    """Load ``data`` from a real file: it loads cleanly or is refused cleanly, and is left as it was."""
    folder, _ = base()
    path = folder / "fuzzed.comic"
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns
    try:
        project, store = load_project(path)
    except ProjectFileError as exc:
        assert exc.path == path.absolute()
        assert exc.problem and "internal error" not in exc.problem, exc.problem
    else:
        for digest in project.asset_refs():  # a file that loads must be fully usable
            assert hashlib.sha256(store.get(digest)).hexdigest() == digest
        _keep_loaded(data)
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- what loads must work

LOADED_SAMPLE = 12
"""Fuzzed files that loaded, kept (a uniform sample of all of them) to be rendered and exported."""
_loaded: list[bytes] = []
_loaded_seen = 0
_sampler = random.Random(14)  # a fixed seed: the sample depends only on the examples drawn


def _keep_loaded(data: bytes) -> None:
    """Reservoir sampling over every fuzzed file that loaded."""
    global _loaded_seen
    _loaded_seen += 1
    if len(_loaded) < LOADED_SAMPLE:
        _loaded.append(data)
    elif (slot := _sampler.randrange(_loaded_seen)) < LOADED_SAMPLE:
        _loaded[slot] = data


def with_json_text(text: str) -> bytes:
    return zip_bytes(
        [(n, text.encode("utf-8", "surrogatepass") if n == "project.json" else d) for n, d in base_members()]
    )


# --------------------------------------------------------------------------- raw damage


@fuzz(150)
@given(st.binary(max_size=3000), st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x89PNG\r\n\x1a\n"]))
def test_random_bytes(noise: bytes, prefix: bytes) -> None:
    check_load(prefix + noise)


@fuzz(150)
@given(st.data())
def test_truncated_valid_file(data: st.DataObject) -> None:
    _, valid = base()
    cut = data.draw(st.integers(0, len(valid) - 1))
    keep_tail = data.draw(st.booleans())  # also drop the *start* (the end of central directory survives)
    check_load(valid[cut:] if keep_tail else valid[:cut])


@fuzz(300)
@given(st.data())
def test_bit_flips_in_valid_file(data: st.DataObject) -> None:
    _, valid = base()
    raw = bytearray(valid)
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255)), min_size=1, max_size=8))
    for at, mask in flips:
        raw[at] ^= mask
    check_load(bytes(raw))


@fuzz(100)
@given(
    st.sampled_from(["flags", "method", "crc", "compress_size", "file_size"]),
    st.sampled_from([name for name, _ in [("mimetype", 0), ("project.json", 0)]] + ["ASSET"]),
    st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 8, 12, 14, 99, 2**31, 2**32 - 1]),
)
def test_lying_central_directory(field: str, member: str, value: int) -> None:
    if member == "ASSET":
        member = next(n for n, _ in base_members() if n.startswith("assets/"))
    if field in ("flags", "method"):
        value &= 0xFFFF
    check_load(patch_central_directory(base()[1], member, field, value))


# --------------------------------------------------------------------------- hostile project.json

_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_hostile_values = (
    _json_values
    | st.sampled_from(["x" * 200_000, "#zzzzzz", "", "0" * 64, "../../etc/passwd", 10**300, -1, 2**63, 1e308, -0.0])
    | st.integers(1, 200_000).map(lambda depth: ("__DEEP__", depth))
)
_ACTIONS = ["replace", "replace", "replace", "delete", "unknown field", "version"]


def _walk(doc: Any, data: st.DataObject) -> tuple[Any, Any]:
    """Draw a random (container, key) location inside ``doc``."""
    parent, key = None, None
    node = doc
    for _ in range(data.draw(st.integers(0, 8))):
        if isinstance(node, dict) and node:
            k = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        parent, key, node = node, k, node[k]
    return parent, key


@fuzz(400)
@given(st.data())
def test_mutated_project_json(data: st.DataObject) -> None:
    doc = base_doc()
    deep: int | None = None
    for _ in range(data.draw(st.integers(1, 3))):
        if not isinstance(doc, dict):
            break  # the whole document was replaced by a non-object: nothing left to walk
        action = data.draw(st.sampled_from(_ACTIONS))
        parent, key = _walk(doc, data)
        if action == "version":
            doc["schema_version"] = data.draw(st.integers(-5, 10**6) | st.sampled_from([0, 2, "1", 1.0, True, None]))
        elif action == "unknown field":
            target = parent[key] if parent is not None and isinstance(parent[key], dict) else doc
            target[data.draw(st.text(min_size=1, max_size=10))] = data.draw(_json_values)
        elif parent is None:
            doc = data.draw(_json_values)  # replace the whole document
        elif action == "delete":
            del parent[key]
        else:
            value = data.draw(_hostile_values)
            if isinstance(value, tuple):
                value, deep = "__DEEP__", value[1]
            parent[key] = value
    text = json.dumps(doc, allow_nan=True)  # NaN/Infinity literals: the loader must refuse them
    if deep is not None:
        text = text.replace('"__DEEP__"', "[" * deep + "]" * deep)
    check_load(with_json_text(text))


@fuzz(50)
@given(st.text(max_size=200), st.binary(max_size=200))
def test_arbitrary_project_json_text(text: str, raw: bytes) -> None:
    check_load(with_json_text(text))
    check_load(zip_bytes([(n, raw if n == "project.json" else d) for n, d in base_members()]))


# --------------------------------------------------------------------------- hostile members and assets

_name_parts = st.sampled_from(
    ["..", ".", "", "assets", "project.json", "mimetype", "C:", "\\", "x", "é", "\u202e", "a" * 300, "\x01"]
)


@fuzz(100)
@given(
    st.lists(_name_parts | st.text(max_size=12), min_size=1, max_size=5),
    st.sampled_from(["/", "\\", ""]),
    st.booleans(),
    st.binary(max_size=64),
)
def test_hostile_member_names(parts: list[str], joiner: str, replace_asset: bool, payload: bytes) -> None:
    name = joiner.join(parts)
    members = list(base_members())
    if replace_asset:  # rename an existing asset (the reference then dangles, or the name is unsafe)
        index = next(i for i, (n, _) in enumerate(members) if n.startswith("assets/"))
        members[index] = (name, members[index][1])
    else:
        members.append((name, payload))
    check_load(zip_bytes(members))


def _png(width: int, height: int, body: bytes, colour_type: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, colour_type, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


_payloads = st.one_of(
    st.builds(
        _png,
        st.integers(0, 2**31 - 1),
        st.integers(0, 2**31 - 1),
        st.binary(max_size=64),
        st.sampled_from([0, 2, 3, 6, 7]),
    ),
    st.builds(_png, st.integers(1, 64), st.integers(1, 64), st.binary(max_size=2000), st.sampled_from([0, 2, 6])),
    st.builds(
        lambda n, fill: _png(n, n, bytes([fill]) * (n * (3 * n + 1)), 2), st.integers(1, 300), st.integers(0, 255)
    ),
    st.binary(max_size=500).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.binary(max_size=500).map(lambda b: b"\xff\xd8\xff" + b),
    st.binary(max_size=500).map(lambda b: b"RIFF\x00\x00\x00\x00WEBP" + b),
    st.binary(max_size=500),
)


@fuzz(100)
@given(
    _payloads,
    st.sampled_from(["png", "jpg", "webp", "bin"]),
    st.sampled_from(["result", "face", "lora"]),
    st.booleans(),
)
def test_fake_images_and_pixel_bombs(payload: bytes, ext: str, use: str, true_name: bool) -> None:
    doc = base_doc()
    digest = hashlib.sha256(payload if true_name else payload + b"!").hexdigest()
    if use == "result":
        doc["pages"][0]["panels"][0]["results"][0]["asset"] = digest
    elif use == "face":
        doc["characters"][0]["face_refs"] = [digest]
    else:
        doc["characters"][0]["lora_asset"] = digest
    members = [(n, json.dumps(doc).encode() if n == "project.json" else d) for n, d in base_members()]
    members.append((f"assets/{digest}.{ext}", payload))
    check_load(zip_bytes(members, compress_type=zipfile.ZIP_DEFLATED))


# --------------------------------------------------------------------------- what loads must work


def _at_extremes() -> dict[str, bytes]:
    """Files holding model limits at their extremes: each loads, and each must then render, export
    and save within the child's memory and time limits."""
    from comic_studio.core.model import MAX_BALLOON_TEXT, MAX_BALLOONS_PER_PANEL, MAX_STORED_JSON_DEPTH

    def doc_with(change) -> dict[str, Any]:
        doc = base_doc()
        for page in doc["pages"]:
            for p in page["panels"]:
                p["backend_settings"] = {}  # the sample's are another backend's: let storyboard render
        change(doc)
        return doc

    def panel(doc: dict[str, Any]) -> dict[str, Any]:
        return doc["pages"][0]["panels"][0]

    def balloon(text: str, **extra: Any) -> dict[str, Any]:
        return {"text": text, "box": {"x": 40, "y": 40, "w": 90, "h": 40}, "auto_placed": False, **extra}

    def deep(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels - 1):
            value = {"d": value}
        return value

    words = " ".join(["lettering"] * 200)[:MAX_BALLOON_TEXT]
    changes = {
        # At the text cap too, each export draws 3,200 overflowing lines (4.5 s a page); a quarter
        # of it keeps this test short, the text cap itself is in the next file.
        "64 balloons of 250 characters": lambda d: panel(d).update(
            balloons=[balloon(words[:250]) for _ in range(MAX_BALLOONS_PER_PANEL)]
        ),
        "balloons huge, tiny, one 1000-letter word, 400-point type": lambda d: panel(d).update(
            balloons=[
                balloon(words, box={"x": -1e6, "y": -1e6, "w": 1e7, "h": 1e7}),
                balloon(words, box={"x": 0, "y": 0, "w": 0, "h": 0}),
                balloon("W" * MAX_BALLOON_TEXT, kind="sfx"),
                balloon(words, style={"font_size": 400, "min_font_size": 400, "max_font_size": 400}),
                balloon("far tail", tail={"point": [1e12, -1e12]}),
            ]
        ),
        "64-point outline a million points wide": lambda d: panel(d).update(
            shape=[[1e6 * ((i % 2) * 2 - 1), i * 1e4] for i in range(64)]
        ),
        "256 panels on a page": lambda d: d["pages"][0].update(
            panels=[{**panel(d), "id": f"p{i}", "results": [], "current_result": None} for i in range(256)]
        ),
        "largest page format": lambda d: d.update(
            page_format={"width": 20_000, "height": 200_000, "bleed": 200, "margin": 500, "gutter": 200, "dpi": 300}
        ),
        "stored request and settings at the depth limit": lambda d: (
            panel(d)["results"][0].update(request={"r": deep(MAX_STORED_JSON_DEPTH - 1)}),
            panel(d).update(backend_settings={"s": deep(MAX_STORED_JSON_DEPTH - 1)}),
        ),
        "story of 20 million characters, 64 lines of 5000 in a beat": lambda d: d["story"].update(
            text="x" * 20_000_000,
            scenes=[{"beats": [{"action": "a", "dialogue": [{"text": "y" * 5000}] * 64, "caption": "c" * 5000}]}],
        ),
        "right to left, 1000 characters": lambda d: d.update(
            reading_direction="rtl", characters=[{"id": f"c{i}", "name": f"C{i}"} for i in range(1000)]
        ),
    }
    files = {name: with_json_text(json.dumps(doc_with(change))) for name, change in changes.items()}

    # A result image of 8192×8192 pixels (a backend's largest), decoded and resampled by every export.
    big = io.BytesIO()
    Image.new("RGB", (8192, 8192), (90, 120, 200)).save(big, format="PNG")
    digest = hashlib.sha256(big.getvalue()).hexdigest()
    doc = doc_with(lambda d: panel(d)["results"][1].update(asset=digest))
    members = [(n, json.dumps(doc).encode() if n == "project.json" else b) for n, b in base_members()]
    files["8192×8192 result image"] = zip_bytes([*members, (f"assets/{digest}.png", big.getvalue())])
    return files


CHILD = Path(__file__).with_name("loaded_file_child.py")
CHILD_MEMORY = 2 * 2**30
"""RLIMIT_AS of the child: the app with an 8192² image decoded and a page being rasterised fits."""
CHILD_CPU_S = 240
PER_FILE_S = 60


def _limits() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_S, CHILD_CPU_S))


def test_zz_what_loads_renders_exports_and_saves_within_bounds(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = {f"fuzzed-{i:02}": data for i, data in enumerate(_loaded)}
    files.update(_at_extremes())
    for i, data in enumerate(files.values()):
        (corpus / f"{i:02}.comic").write_bytes(data)
    names = {f"{i:02}.comic": name for i, name in enumerate(files)}
    for path in sorted(corpus.glob("*.comic")):  # every extreme file is one that loads
        load_project(path)

    report = tmp_path / "report.jsonl"
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(CHILD), str(corpus), str(report), str(PER_FILE_S)],
        env=env,
        preexec_fn=_limits,  # noqa: PLW1509 — only setrlimit, no locks or threads involved
        capture_output=True,
        text=True,
        timeout=CHILD_CPU_S + 60,
    )
    lines = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    outcomes = {names[line["file"]]: line for line in lines}
    assert done.returncode == 0, f"the child died ({done.returncode}): {done.stderr[-2000:]}\n{outcomes}"
    assert len(outcomes) == len(files), f"files without an outcome: {set(files) - set(outcomes)}"
    failures = {name: o["outcome"] for name, o in outcomes.items() if not o["outcome"].startswith("ok")}
    assert not failures, failures
