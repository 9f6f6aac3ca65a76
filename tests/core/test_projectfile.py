"""The .comic file: round trip, atomic save with backup, every refusal of a bad file, the version-0
migration, and crash-recovery files. Everything goes through real files on disk."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import pytest
from comic_fixtures import (
    assert_untouched,
    build_sample_project,
    encoded_image,
    members_of,
    patch_central_directory,
    replace_member,
    write_and_snapshot,
    zip_bytes,
)

from comic_studio.core.assets import MAX_ASSET_BYTES, AssetStore
from comic_studio.core.autosave import (
    discard_recovery,
    find_recovery,
    pending_recoveries,
    recovery_dir,
    write_recovery,
)
from comic_studio.core.errors import ProjectFileError
from comic_studio.core.migrations import MIGRATIONS, migrate
from comic_studio.core.model import SCHEMA_VERSION, Project
from comic_studio.core.projectfile import MAX_MEMBERS, MAX_PROJECT_JSON_BYTES, load_project, save_project
from comic_studio.core.sample_projects import make_big_project, tiny_png
from comic_studio.core.settings import STATE_DIR_ENV

FIXTURES = Path(__file__).parent / "fixtures"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory) -> bytes:
    """Bytes of a valid saved sample project (built once; each test crafts its variant from it)."""
    project, store, _ = build_sample_project()
    path = tmp_path_factory.mktemp("base") / "base.comic"
    save_project(path, project, store)
    return path.read_bytes()


def project_json_of(data: bytes) -> dict:
    return json.loads(dict(members_of(data))["project.json"])


def with_project_json(data: bytes, doc) -> bytes:
    return replace_member(data, "project.json", json.dumps(doc).encode())


# =========================================================================== round trip and saving


def test_round_trip_equal_project_identical_assets_deduplicated(tmp_path: Path) -> None:
    project, store, h = build_sample_project()
    path = tmp_path / "story.comic"
    save_project(path, project, store)

    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names[0] == "mimetype" and zf.read("mimetype") == b"application/x-comic-studio"
        assert infos[0].compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("project.json").compress_type == zipfile.ZIP_DEFLATED
        # 5 distinct assets although png_a is used by two results and a face reference
        assert len(infos) == 2 + 5
        assert sorted(n for n in names if n.startswith("assets/")) == sorted(
            [
                f"assets/{h['png_a']}.png",
                f"assets/{h['png_b']}.png",
                f"assets/{h['jpeg']}.jpg",
                f"assets/{h['webp']}.webp",
                f"assets/{h['lora']}.bin",
            ]
        )
        assert all(zf.getinfo(n).compress_type == zipfile.ZIP_STORED for n in names if n.startswith("assets/"))
        assert json.loads(zf.read("project.json"))["schema_version"] == SCHEMA_VERSION

    loaded, loaded_store = load_project(path)
    assert loaded.model_dump() == project.model_dump()
    for digest in h.values():
        assert loaded_store.get(digest) == store.get(digest)
        assert loaded_store.source_of(digest)[0] == path.absolute()


def test_save_moves_memory_assets_to_the_session_cache_never_to_the_saved_file(tmp_path: Path) -> None:
    project, store, h = build_sample_project()
    unused = store.add(tiny_png(99))
    path = tmp_path / "lazy.comic"
    save_project(path, project, store)
    path.unlink()  # the user deletes the file they saved: the store does not read from it
    for digest in h.values():
        assert store.source_of(digest) is None  # a plain file of the session cache, not an archive
        assert store.get(digest)
    kept = sorted(p.name for p in (store.cache.folder / "assets").iterdir())
    assert kept == sorted(set(h.values()))  # each saved asset once, and only those
    assert unused in store and unused not in kept  # unreferenced: not saved, so left in memory
    save_project(tmp_path / "again.comic", project, store)
    assert load_project(tmp_path / "again.comic")[1].get(h["png_a"]) == store.get(h["png_a"])


def test_second_save_after_load_copies_lazy_assets_and_keeps_backup(tmp_path: Path) -> None:
    project, store, h = build_sample_project()
    expected = {d: store.get(d) for d in h.values()}
    path = tmp_path / "book.comic"
    save_project(path, project, store)
    first_bytes = path.read_bytes()
    assert not (tmp_path / "book.comic.bak").exists()

    loaded, loaded_store = load_project(path)
    loaded.title = "Second edition"
    save_project(path, loaded, loaded_store)  # assets are copied out of the file being replaced
    assert (tmp_path / "book.comic.bak").read_bytes() == first_bytes

    again, again_store = load_project(path)
    assert again.title == "Second edition"
    assert again.model_dump(exclude={"title"}) == project.model_dump(exclude={"title"})
    assert {d: again_store.get(d) for d in h.values()} == expected

    # Save the lazily loaded project elsewhere: the new file is complete on its own.
    copy = tmp_path / "copy.comic"
    save_project(copy, again, again_store)
    path.unlink()
    (tmp_path / "book.comic.bak").unlink()
    reloaded, reloaded_store = load_project(copy)
    assert reloaded.model_dump() == again.model_dump()
    assert {d: reloaded_store.get(d) for d in h.values()} == expected
    assert sorted(os.listdir(tmp_path)) == ["copy.comic"]  # no temporary files left behind


def test_backup_is_replaced_on_each_save(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    path = tmp_path / "b.comic"
    for title in ("one", "two", "three"):
        project.title = title
        save_project(path, project, store)
    assert load_project(tmp_path / "b.comic.bak")[0].title == "two"
    assert load_project(path)[0].title == "three"


def test_save_refuses_missing_assets_and_writes_nothing(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    ghost = sha(b"never added")
    project.pages[0].panels[0].results[0].asset = ghost
    path = tmp_path / "new.comic"
    with pytest.raises(ProjectFileError, match=rf"missing from the project: {ghost[:12]}…"):
        save_project(path, project, store)
    assert os.listdir(tmp_path) == []

    existing = tmp_path / "existing.comic"
    snapshot = write_and_snapshot(existing, b"previous contents")
    with pytest.raises(ProjectFileError, match="missing"):
        save_project(existing, project, store)
    assert_untouched(existing, snapshot)
    assert sorted(os.listdir(tmp_path)) == ["existing.comic"]


def test_save_into_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    with pytest.raises(
        ProjectFileError, match=r"cannot save: cannot create a file in .*nowhere \(No such file or directory\)"
    ):
        save_project(tmp_path / "nowhere" / "x.comic", project, store)


def test_save_refuses_an_invalid_project_rather_than_write_an_unloadable_file(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    project.pages[0].panels[1].shape = [(0.0, 0.0), (1.0, 1.0)]  # assignment is not validated
    with pytest.raises(
        ProjectFileError,
        match=r"cannot save: the project would not load back \(project.json is not a valid project — pages\.0\.panels\.1\.shape",
    ):
        save_project(tmp_path / "x.comic", project, store)
    assert os.listdir(tmp_path) == []


def test_save_refuses_numbers_the_loader_would_refuse(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    project.pages[0].panels[0].backend_settings = {"seed": 10**5000}  # a plugin's oversized number
    with pytest.raises(ProjectFileError, match="would not load back .*unusable number"):
        save_project(tmp_path / "x.comic", project, store)
    project.pages[0].panels[0].backend_settings = {}
    project.pages[0].panels[0].shape[0] = (float("nan"), 0.0)  # serialised as null: not a number
    with pytest.raises(ProjectFileError, match=r"would not load back .*pages\.0\.panels\.0\.shape\.0\.0"):
        save_project(tmp_path / "x.comic", project, store)
    assert os.listdir(tmp_path) == []


def test_save_refuses_non_image_bytes_used_as_an_image(tmp_path: Path) -> None:
    project, store, h = build_sample_project()
    project.pages[0].panels[0].results[0].asset = h["lora"]
    with pytest.raises(ProjectFileError, match="used as an image but its bytes are not"):
        save_project(tmp_path / "x.comic", project, store)
    assert os.listdir(tmp_path) == []


def test_save_removes_leftovers_of_killed_saves_of_this_file_only(tmp_path: Path) -> None:
    # Killed writers hold no lock any more, so their files go however young (a live writer's are
    # kept: tests/core/test_atomic.py; real killed saves: tests/core/test_save_kill.py).
    project, store, _ = build_sample_project()
    leftover = tmp_path / ".x.comic.0123abcd.tmp"
    leftover_backup = tmp_path / ".x.comic.bak.89abcdef.tmp"
    other = tmp_path / ".y.comic.0123abcd.tmp"  # another document's
    for p in (leftover, leftover_backup, other):
        p.write_bytes(b"partial")
    save_project(tmp_path / "x.comic", project, store)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.comic", other.name])


def test_save_keeps_file_permissions_and_symlink(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    real = tmp_path / "real.comic"
    save_project(real, project, store)
    os.chmod(real, 0o640)
    link = tmp_path / "link.comic"
    link.symlink_to(real)
    project.title = "through the link"
    save_project(link, project, store)
    assert link.is_symlink()
    assert load_project(real)[0].title == "through the link"
    assert (real.stat().st_mode & 0o777) == 0o640


def test_big_project_round_trip(tmp_path: Path) -> None:
    # How long this takes is measured by ``bench/run.py --only project_io`` (target: under a second).
    project, store = make_big_project()
    path = tmp_path / "big.comic"
    save_project(path, project, store)
    loaded, _ = load_project(path)
    assert len(loaded.pages) == 300 and sum(len(p.panels) for p in loaded.pages) == 1500
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 2 + 200


# =========================================================================== refusals

PNG_OK = tiny_png(5)
JPEG_OK = encoded_image("JPEG", (1, 2, 3))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` pixels but carries almost no data (a pixel bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, 2, 0, 0, 0))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )


def _first_result_asset(base: bytes) -> tuple[str, str]:
    doc = project_json_of(base)
    digest = doc["pages"][0]["panels"][0]["results"][0]["asset"]
    member = next(n for n, _ in members_of(base) if digest in n)
    return digest, member


def _asset_swapped(base: bytes, payload: bytes, ext: str) -> bytes:
    """Point the first result at ``payload`` stored under its true hash with extension ``ext``."""
    doc = project_json_of(base)
    digest = sha(payload)
    doc["pages"][0]["panels"][0]["results"][0]["asset"] = digest
    members = [(n, d) for n, d in members_of(with_project_json(base, doc))] + [(f"assets/{digest}.{ext}", payload)]
    return zip_bytes(members)


def _flip_stored_asset_byte(base: bytes) -> bytes:
    _, member = _first_result_asset(base)
    content = dict(members_of(base))[member]
    raw = bytearray(base)
    at = raw.find(content) + len(content) // 2  # the asset is stored, so its bytes appear verbatim
    raw[at] ^= 0xFF
    return bytes(raw)


def _corrupt_deflate(base: bytes) -> bytes:
    raw = bytearray(base)
    start = raw.find(b"project.json") + len(b"project.json")  # local header name: data follows it
    for i in range(start + 5, start + 40):
        raw[i] ^= 0x5A
    return bytes(raw)


def _deep_json(base: bytes) -> bytes:
    doc = project_json_of(base)
    text = json.dumps(doc)[:-1] + ', "deep": ' + "[" * 50_000 + "]" * 50_000 + "}"
    return replace_member(base, "project.json", text.encode())


def _cases() -> dict:
    """name -> (function base_bytes -> hostile bytes, expected message fragment)."""

    def doc_edit(edit):
        def make(base: bytes) -> bytes:
            doc = project_json_of(base)
            edit(doc)
            return with_project_json(base, doc)

        return make

    def drop_key(key):
        return doc_edit(lambda d: d.pop(key))

    def set_key(key, value):
        return doc_edit(lambda d: d.__setitem__(key, value))

    def add_member(name, data=b"x"):
        return lambda base: zip_bytes(members_of(base) + [(name, data)])

    def shape_of_two(d):
        d["pages"][0]["panels"][0]["shape"] = [[0, 0], [1, 1]]

    def first_asset_removed(base):
        _, member = _first_result_asset(base)
        return replace_member(base, member, None)

    def first_asset_renamed(base):
        digest, member = _first_result_asset(base)
        members = [(n.replace(digest, sha(b"other")) if n == member else n, d) for n, d in members_of(base)]
        return zip_bytes(members)

    def image_ref_as_bin(base):
        digest, member = _first_result_asset(base)
        return zip_bytes([(n.replace(".png", ".bin") if n == member else n, d) for n, d in members_of(base)])

    return {
        "random text": (lambda base: b"this is a text file, not a comic\n" * 10, "not a readable zip archive"),
        "empty file": (lambda base: b"", "not a readable zip archive"),
        "truncated": (lambda base: base[: len(base) // 2], "not a readable zip archive"),
        "truncated tail": (lambda base: base[:-10], "not a readable zip archive"),
        "crc error in asset": (_flip_stored_asset_byte, "Bad CRC-32"),
        "corrupt deflate": (_corrupt_deflate, "is damaged"),
        "no project.json": (lambda base: replace_member(base, "project.json", None), "has no project.json"),
        "wrong mimetype": (
            lambda base: replace_member(base, "mimetype", b"application/epub+zip"),
            "some other kind of zip",
        ),
        "project.json too big": (
            lambda base: patch_central_directory(base, "project.json", "file_size", MAX_PROJECT_JSON_BYTES + 1),
            f"project.json is {MAX_PROJECT_JSON_BYTES + 1:,} bytes, over the 64 MiB limit",
        ),
        "invalid utf-8": (
            lambda base: replace_member(base, "project.json", b'{"title": "\xff\xfe"}'),
            "not valid UTF-8",
        ),
        "invalid json": (
            lambda base: replace_member(base, "project.json", b'{"schema_version": 1,'),
            "not valid JSON (line 1",
        ),
        "json list": (
            lambda base: replace_member(base, "project.json", b"[1, 2]"),
            "must hold a JSON object, not a list",
        ),
        "json null": (lambda base: replace_member(base, "project.json", b"null"), "must hold a JSON object, not null"),
        "no schema_version": (drop_key("schema_version"), "has no schema_version"),
        "string schema_version": (set_key("schema_version", "1"), "schema_version must be a whole number, not '1'"),
        "bool schema_version": (set_key("schema_version", True), "schema_version must be a whole number, not True"),
        "negative schema_version": (set_key("schema_version", -3), "-3 is not a valid schema version"),
        "future version": (
            set_key("schema_version", 99),
            f"was saved by a newer comic_studio (schema 99); this build reads up to {SCHEMA_VERSION} — update the app",
        ),
        "invalid field": (
            doc_edit(shape_of_two),
            "not a valid project — pages.0.panels.0.shape: List should have at least 3 items",
        ),
        "unknown field": (set_key("malware", 1), "malware: Extra inputs are not permitted"),
        "wrong type": (set_key("pages", "many"), "pages: Input should be a valid list"),
        "NaN": (
            lambda base: replace_member(
                base, "project.json", json.dumps(project_json_of(base)).replace('"seed": 1234', '"seed": NaN').encode()
            ),
            "NaN is not a number JSON allows",
        ),
        "huge float": (
            lambda base: replace_member(
                base, "project.json", json.dumps(project_json_of(base)).replace("27.0", "1e999", 1).encode()
            ),
            "1e999 is out of range",
        ),
        "huge int": (
            lambda base: replace_member(
                base,
                "project.json",
                json.dumps(project_json_of(base)).replace('"seed": 1234', '"seed": ' + "9" * 5000).encode(),
            ),
            "unusable number",
        ),
        "deep nesting": (_deep_json, "nested too deeply"),
        "zip slip": (add_member("../../evil.sh"), "path-traversal"),
        "zip slip inside": (add_member("assets/../../x"), "path-traversal"),
        "absolute name": (add_member("/etc/passwd"), "absolute path"),
        "drive letter": (add_member("C:/Windows/x"), "absolute path"),
        "backslash": (add_member("assets\\..\\x"), "backslashes"),
        "control char": (add_member("a\x07b"), "control characters"),
        "duplicate member": (
            lambda base: zip_bytes(members_of(base) + [("project.json", b"{}")]),
            "'project.json' appears twice",
        ),
        "encrypted": (lambda base: patch_central_directory(base, "project.json", "flags", 1), "is encrypted"),
        "bzip2 member": (
            lambda base: zip_bytes(members_of(base), compress_type=zipfile.ZIP_BZIP2),
            "compression method 12",
        ),
        "asset over limit": (
            lambda base: patch_central_directory(base, _first_result_asset(base)[1], "file_size", MAX_ASSET_BYTES + 1),
            f"is {MAX_ASSET_BYTES + 1:,} bytes, over the 64 MiB limit",
        ),
        "bad asset name": (add_member("assets/not-a-hash.png"), "is not a valid asset name"),
        "uppercase hash": (add_member(f"assets/{sha(b'x').upper()}.png"), "is not a valid asset name"),
        "hash mismatch": (first_asset_renamed, "does not match its hash"),
        "text posing as png": (
            lambda base: _asset_swapped(base, b"#!/bin/sh\necho not an image\n", "png"),
            "claims to be a PNG image but is not an image at all",
        ),
        "jpeg posing as png": (
            lambda base: _asset_swapped(base, JPEG_OK, "png"),
            "claims to be a PNG image but is JPEG data",
        ),
        "pixel bomb": (lambda base: _asset_swapped(base, png_with_header(100_000, 100_000), "png"), "bomb"),
        "truncated png": (lambda base: _asset_swapped(base, PNG_OK[:-30], "png"), "asset assets/"),
        "asset stored twice": (
            lambda base: zip_bytes(members_of(base) + [(f"assets/{_first_result_asset(base)[0]}.webp", b"x")]),
            "is stored twice",
        ),
        "referenced asset absent": (first_asset_removed, "asset(s) used by the project are missing from the file"),
        "image stored as bin": (image_ref_as_bin, "used as an image but is stored as non-image data"),
    }


CASES = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_refuses_bad_file_and_leaves_it_untouched(case: str, valid_file: bytes, tmp_path: Path) -> None:
    make, expected = CASES[case]
    path = tmp_path / "bad.comic"
    snapshot = write_and_snapshot(path, make(valid_file))
    with pytest.raises(ProjectFileError) as info:
        load_project(path)
    assert expected in str(info.value), str(info.value)
    assert info.value.path == path.absolute()
    assert "internal error" not in str(info.value)
    assert_untouched(path, snapshot)
    assert os.listdir(tmp_path) == ["bad.comic"]


def test_cases_start_from_a_loadable_file(valid_file: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ok.comic"
    path.write_bytes(valid_file)
    assert load_project(path)[0].title == "Round trip"


def test_truly_oversized_project_json_and_asset_are_refused(valid_file: bytes, tmp_path: Path) -> None:
    big_json = b" " * (MAX_PROJECT_JSON_BYTES + 1)
    path = tmp_path / "big-json.comic"
    snapshot = write_and_snapshot(path, zip_bytes([("project.json", big_json)]))
    with pytest.raises(
        ProjectFileError, match=f"project.json is {MAX_PROJECT_JSON_BYTES + 1:,} bytes, over the 64 MiB limit"
    ):
        load_project(path)
    assert_untouched(path, snapshot)

    blob = bytes(MAX_ASSET_BYTES + 1)
    path = tmp_path / "big-asset.comic"
    write_and_snapshot(path, zip_bytes(members_of(valid_file) + [(f"assets/{sha(blob)}.bin", blob)]))
    with pytest.raises(ProjectFileError, match=r"asset assets/\w+\.bin is 67,108,865 bytes, over the 64 MiB limit"):
        load_project(path)


def test_lying_size_in_directory_is_caught(valid_file: bytes, tmp_path: Path) -> None:
    path = tmp_path / "liar.comic"
    snapshot = write_and_snapshot(path, patch_central_directory(valid_file, "project.json", "file_size", 10))
    with pytest.raises(ProjectFileError, match="damaged"):
        load_project(path)
    assert_untouched(path, snapshot)


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.comic"
    path.write_bytes(zip_bytes([(f"m{n}", b"") for n in range(MAX_MEMBERS + 1)], compress_type=zipfile.ZIP_STORED))
    with pytest.raises(ProjectFileError, match=f"has {MAX_MEMBERS + 1:,} archive members"):
        load_project(path)


def test_missing_path_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match="does not exist"):
        load_project(tmp_path / "nope.comic")
    with pytest.raises(ProjectFileError, match="is a folder"):
        load_project(tmp_path)


def test_unknown_top_level_members_are_ignored(valid_file: bytes, tmp_path: Path) -> None:
    path = tmp_path / "extra.comic"
    path.write_bytes(zip_bytes(members_of(valid_file) + [("thumbnails/cover.png", PNG_OK), ("recovery.json", b"{}")]))
    assert load_project(path)[0].title == "Round trip"


def test_large_image_gets_header_check_not_full_decode(valid_file: bytes, tmp_path: Path) -> None:
    big = encoded_image("PNG", (9, 9, 9), size=(1200, 900))
    path = tmp_path / "large.comic"
    path.write_bytes(_asset_swapped(valid_file, big, "png"))
    project, store = load_project(path)
    assert store.get(project.pages[0].panels[0].results[0].asset) == big


# =========================================================================== migrations


def test_version_0_fixture_loads_through_migration(tmp_path: Path) -> None:
    fixture = FIXTURES / "v0_project.comic"
    assert json.loads(zipfile.ZipFile(fixture).read("project.json"))["version"] == 0
    mtime = fixture.stat().st_mtime_ns
    project, store = load_project(fixture)
    assert fixture.stat().st_mtime_ns == mtime
    assert project.schema_version == SCHEMA_VERSION
    assert project.title == "Pre-release comic"
    panel = project.pages[0].panels[0]
    assert panel.shape == [(27, 27), (450, 27), (450, 300), (27, 300)]
    assert project.characters[0].description == "young woman, red scarf"
    assert store.open_image(panel.results[0].asset).size == (8, 8)
    # Saving writes the current layout; it loads back identical.
    resaved = tmp_path / "upgraded.comic"
    save_project(resaved, project, store)
    assert json.loads(zipfile.ZipFile(resaved).read("project.json"))["schema_version"] == SCHEMA_VERSION
    assert load_project(resaved)[0].model_dump() == project.model_dump()


def test_migration_chain_and_its_errors(tmp_path: Path) -> None:
    assert set(MIGRATIONS) == set(range(SCHEMA_VERSION))  # one step per older version
    old = {
        "version": 0,
        "page_format": {"width": 10, "height": 10},
        "pages": [{"panels": [{"polygon": [[0, 0], [1, 0], [0, 1]]}, "junk"]}],
        "characters": "junk",
    }
    new = migrate(old, tmp_path)
    assert new["schema_version"] == SCHEMA_VERSION and "version" not in new
    assert new["pages"][0]["panels"][0] == {"shape": [[0, 0], [1, 0], [0, 1]]}
    assert new["pages"][0]["panels"][1] == "junk"  # malformed parts are left for validation to name
    with pytest.raises(ProjectFileError, match="'version': 3 is not a known layout"):
        migrate({"version": 3}, tmp_path)
    with pytest.raises(ProjectFileError, match="schema 7"):
        migrate({"schema_version": 7}, tmp_path)
    with pytest.raises(ProjectFileError, match="must be a whole number, not 1.0"):
        migrate({"schema_version": 1.0}, tmp_path)
    assert migrate({"schema_version": SCHEMA_VERSION, "x": 1}, tmp_path) == {"schema_version": SCHEMA_VERSION, "x": 1}


def test_a_broken_migration_is_reported_not_half_applied(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(MIGRATIONS, 0, lambda data: dict(data))  # forgets to bump the version
    with pytest.raises(ProjectFileError, match="upgrading from schema 0 failed"):
        load_project(FIXTURES / "v0_project.comic")
    monkeypatch.delitem(MIGRATIONS, 0)
    with pytest.raises(ProjectFileError, match="schema version 0 is too old"):
        load_project(FIXTURES / "v0_project.comic")


# =========================================================================== autosave / recovery


def test_recovery_dir_resolution(tmp_path: Path, monkeypatch) -> None:
    from platformdirs import user_state_dir

    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    assert recovery_dir() == Path(user_state_dir("comic-studio")) / "recovery"
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "env"))
    assert recovery_dir() == tmp_path / "env" / "recovery"
    assert recovery_dir(tmp_path / "arg") == tmp_path / "arg" / "recovery"  # the argument wins


def test_recovery_written_found_when_newer_listed_and_discarded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    project, store, h = build_sample_project()
    source = tmp_path / "work.comic"
    save_project(source, project, store)
    sources_before = {d: store.source_of(d) for d in h.values()}

    project.title = "Unsaved edits"
    recovery = write_recovery(project, store, source)
    assert recovery.parent == tmp_path / "state" / "recovery"
    assert {d: store.source_of(d) for d in h.values()} == sources_before  # store still points at the user's file

    os.utime(source, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    os.utime(recovery, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    assert find_recovery(source, project.id) == recovery
    os.utime(recovery, ns=(500_000_000_000_000_000, 500_000_000_000_000_000))
    assert find_recovery(source, project.id) is None  # the user saved after the recovery was written
    assert find_recovery(source, "other-project") is None

    (tmp_path / "state" / "recovery" / "junk.recovery.comic").write_bytes(b"not a zip")
    pending = pending_recoveries()
    assert [(p.path, p.project_id, p.title, p.source_path) for p in pending] == [
        (recovery, project.id, "Unsaved edits", source.absolute())
    ]
    assert pending[0].saved_at.tzinfo is not None

    restored, restored_store = load_project(recovery)
    assert restored.model_dump() == project.model_dump()
    assert all(restored_store.get(d) == store.get(d) for d in h.values())

    discard_recovery(project.id, source)
    assert not recovery.exists() and find_recovery(source, project.id) is None
    discard_recovery(project.id, source)  # discarding twice is fine


def test_recovery_explicit_state_dir_and_hostile_project_id(tmp_path: Path) -> None:
    project, store, _ = build_sample_project()
    project.id = "../../escape"
    path = write_recovery(project, store, None, state_dir=tmp_path)
    assert path.parent == tmp_path / "recovery" and ".." not in path.name
    assert pending_recoveries(state_dir=tmp_path)[0].source_path is None
    assert find_recovery(None, project.id, state_dir=tmp_path) == path


def test_recovery_of_unsaved_in_memory_project(tmp_path: Path) -> None:
    store = AssetStore()
    project = Project.model_validate({"page_format": {"width": 100, "height": 100}})
    path = write_recovery(project, store, None, state_dir=tmp_path)
    assert load_project(path)[0].model_dump() == project.model_dump()
