"""Verified downloads through the real path: the CLI's main() and the real downloader against a Hub
stand-in on 127.0.0.1 (tests/weights/fake_hub.py). Each way a server or network can hand over the
wrong bytes gets a scenario; none may install a file, every one exits non-zero with one line naming
the file and URL."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from fake_hub import COMMIT, CONFIG, OTHER_COMMIT, REPO, WEIGHTS, git_blob_id, sha

from comic_studio.core.safe_read import parse_json
from comic_studio.weights import download as dl
from comic_studio.weights.catalogue import (
    Catalogue,
    CatalogueError,
    bundled_catalogue,
    catalogue_json,
    load_catalogue,
    pins_path,
    read_catalogue,
)
from comic_studio.weights.lock import LOCK_FILE

PLAIN_URL_PATH = "/files/plain.safetensors"
OTHER = bytes(reversed(WEIGHTS))  # a second version of the weights, the same size


def installed(models, model_id="hub-model"):
    return sorted(str(p.relative_to(models)) for p in (models / model_id).rglob("*") if p.is_file())


def lock_of(models) -> dict:
    return json.loads((models / LOCK_FILE).read_text())


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("comic-studio: error:")]
    assert len(lines) == 1, err
    return lines[0]


def weight_gets(hub):
    """The requests for the weights' bytes (the storage the Hub redirects to)."""
    return [s for s in hub.seen if s[0] == "GET" and s[1].startswith("/cdn/")]


# ------------------------------------------------------------------------------------ what verifies


def test_hub_stated_hashes_verify_and_pin_on_first_use(hub, cli, models):
    code, out, err = cli("models", "download", "hub-model")
    assert code == 0, err
    assert installed(models) == ["hub-model/config.json", "hub-model/weights/model.safetensors"]
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == WEIGHTS
    lock = lock_of(models)
    assert lock["repos"] == {REPO: COMMIT}
    weights = lock["files"][f"hf:{REPO}:weights/model.safetensors"]
    assert weights["sha256"] == sha(WEIGHTS) and weights["revision"] == COMMIT
    assert weights["checked"] == ["hub-sha256", "hub-size"]
    config = lock["files"][f"hf:{REPO}:config.json"]
    assert config["checked"] == ["hub-git-sha1", "hub-size"] and config["sha256"] == sha(CONFIG)
    # the first file resolved `main` to the commit; every byte came from that commit
    assert [s[1] for s in hub.seen if s[0] == "GET" and "/resolve/" in s[1]] == [
        f"/{REPO}/resolve/{COMMIT}/config.json",
        f"/{REPO}/resolve/{COMMIT}/weights/model.safetensors",
    ]


def test_a_git_file_that_is_not_its_blob_id_is_refused(hub, cli, models):
    # `main` states the blob id of CONFIG; the commit it resolves to serves other bytes
    hub.plain[f"/{REPO}/resolve/{COMMIT}/config.json"] = (b'{"layers": 5}\n', None)
    assert git_blob_id(b'{"layers": 5}\n') != git_blob_id(CONFIG)
    code, _out, err = cli("models", "download", "hub-model")
    assert code == 1
    line = one_error_line(err)
    assert "hub-model/config.json" in line and "git blob id" in line and f"/resolve/{COMMIT}/config.json" in line
    assert installed(models) == []
    assert not models.exists() or not (models / "hub-model").exists(), "no empty model folder is left"


def test_the_lock_pins_the_commit_and_a_later_change_is_refused_and_named(hub, cli, models):
    assert cli("models", "download", "hub-model")[0] == 0
    (models / "hub-model/weights/model.safetensors").unlink()
    hub.commit = OTHER_COMMIT  # `main` moved on: the lock's commit is still resolved...
    hub.seen.clear()
    code, _out, err = cli("models", "download", "hub-model")
    assert code == 1  # ...and this server no longer has it
    assert all("/main/" not in s[1] for s in hub.seen)
    assert f"/resolve/{COMMIT}/" in one_error_line(err)

    hub.commit = COMMIT
    hub.files[(REPO, "weights/model.safetensors")] = OTHER  # the same commit now states other bytes
    code, _out, err = cli("models", "download", "hub-model")
    line = one_error_line(err)
    assert code == 1 and "hub-model/weights/model.safetensors" in line
    assert "the first download recorded the other in" in line and "models unpin" in line
    assert installed(models) == ["hub-model/config.json"]

    code, out, _err = cli("models", "unpin", "hub-model")
    assert code == 0 and "2 pin(s) and download record(s) forgotten" in out
    assert cli("models", "download", "hub-model")[0] == 0
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == OTHER


def test_a_pinned_catalogue_value_is_enforced(hub, cli, models, tmp_path):
    """What `models pin` writes (and what a filled bundled catalogue carries) is enforced: the pinned
    commit is resolved, never `main`, and other bytes or another commit are refused."""
    assert cli("models", "download", "hub-model")[0] == 0
    code, out, err = cli("models", "pin", "hub-model")
    assert code == 0, err
    assert f"pinned     hub-model/weights/model.safetensors: sha256 {sha(WEIGHTS)[:12]}…" in out
    pinned = load_catalogue().get("hub-model").files[1]
    assert (pinned.sha256, pinned.size, pinned.revision) == (sha(WEIGHTS), len(WEIGHTS), COMMIT)
    assert json.loads(pins_path().read_text())["models"]["hub-model"]["config.json"]["revision"] == COMMIT

    # a fresh machine (no lock) with the pins: the Hub changed the file at its commit → refused early
    fresh = tmp_path / "fresh"
    hub.files[(REPO, "weights/model.safetensors")] = OTHER
    hub.seen.clear()
    code, _out, err = cli("models", "download", "hub-model", "--models-folder", str(fresh), folder=False)
    line = one_error_line(err)
    assert code == 1 and "hub-sha256 states" in line and "the catalogue states" in line
    assert not weight_gets(hub), "nothing is fetched once the stated hash disagrees"
    assert all("/main/" not in s[1] for s in hub.seen)
    assert not (fresh / "hub-model" / "weights").exists()

    # the Hub states the pinned hash but serves other bytes → fetched, refused, deleted
    hub.stated_sha[(REPO, "weights/model.safetensors")] = sha(WEIGHTS)
    code, _out, err = cli("models", "download", "hub-model", "--models-folder", str(fresh), folder=False)
    line = one_error_line(err)
    assert code == 1 and "does not match the catalogue's" in line and "/cdn/" not in line
    assert f"/resolve/{COMMIT}/weights/model.safetensors" in line
    assert not list((fresh / "hub-model").rglob("model.safetensors*"))

    # a server that answers another commit for the pinned one → refused
    hub.files[(REPO, "weights/model.safetensors")] = WEIGHTS
    hub.stated_sha.clear()
    hub.answered_commit = OTHER_COMMIT
    code, _out, err = cli("models", "download", "hub-model", "--models-folder", str(fresh), folder=False)
    assert code == 1 and f"asked for the pinned commit {COMMIT}" in one_error_line(err)
    hub.answered_commit = None
    assert cli("models", "download", "hub-model", "--models-folder", str(fresh), folder=False)[0] == 0


def test_a_filled_bundled_value_is_enforced(hub, cli, models, tmp_path, monkeypatch):
    """`models pin --from-hub --write-catalogue` fills a catalogue file (what one networked run does
    for comic_studio/resources/models.json); its values then govern every download."""
    target = tmp_path / "resources" / "models.json"
    hub.seen.clear()
    code, out, err = cli("models", "pin", "--from-hub", "--write-catalogue", str(target))
    assert code == 0, err
    assert "pinned     plain-model/plain.safetensors" in out and "(from the server)" in out
    filled = read_catalogue(target)
    assert [(f.sha256, f.size, f.revision) for f in filled.get("hub-model").files] == [
        (sha(CONFIG), len(CONFIG), COMMIT), (sha(WEIGHTS), len(WEIGHTS), COMMIT)]  # fmt: skip
    # an LFS file's hash is stated by the Hub: not downloaded; a git file and a plain URL are hashed
    assert not weight_gets(hub) and ("GET", PLAIN_URL_PATH, None) in hub.seen
    assert filled.get("plain-model").files[0].sha256 == sha(WEIGHTS)
    assert not installed(models) and not installed(models, "plain-model")  # pinning installs nothing

    bundled_catalogue.cache_clear()
    hub.files[(REPO, "weights/model.safetensors")] = OTHER
    hub.stated_sha[(REPO, "weights/model.safetensors")] = sha(WEIGHTS)
    code, _out, err = cli("models", "download", "hub-model")
    assert code == 1 and "does not match the catalogue's" in one_error_line(err)
    assert installed(models) == ["hub-model/config.json"]


def test_catalogue_schema_validates_pins(tmp_path):
    base = {"id": "m", "name": "M", "kind": "lora", "format": "file", "repo": "o/m", "licence": "MIT"}
    for bad, words in (({"path": "a", "revision": "main"}, "revision"),
                       ({"path": "a", "sha256": "ABC"}, "sha256"),
                       ({"path": "a", "url": "https://x/a", "revision": COMMIT}, "a revision only applies")):  # fmt: skip
        path = tmp_path / "models.json"
        path.write_text(json.dumps({"version": 1, "models": [{**base, "files": [bad]}]}))
        with pytest.raises(CatalogueError, match=words):
            read_catalogue(path)
    ok = Catalogue.model_validate({"version": 1, "models": [{**base, "files": [
        {"path": "a", "sha256": "0" * 64, "size": 3, "revision": COMMIT}]}]})  # fmt: skip
    assert ok.get("m").files[0].pinned


def test_the_catalogue_writer_keeps_every_value():
    bundled_catalogue.cache_clear()
    bundled = bundled_catalogue()
    assert Catalogue.model_validate(parse_json(catalogue_json(bundled), where="written")) == bundled


def test_a_broken_pins_file_is_an_error_naming_it(hub, cli):
    pins_path().parent.mkdir(parents=True)
    pins_path().write_text('{"version": 1, "models": {"hub-model": {"config.json": {"sha256": "nope"}}}}')
    code, _out, err = cli("models", "list", folder=False)
    assert code == 1 and str(pins_path()) in one_error_line(err) and "fix it or delete it" in err


def test_a_renamed_repo_is_followed_and_still_verified(hub, cli, models):
    new = "new-org/hub-model"
    for path in ("config.json", "weights/model.safetensors"):
        hub.add(new, path, hub.files.pop((REPO, path)), lfs=(REPO, path) in hub.lfs)
    hub.renamed[REPO] = new
    assert cli("models", "download", "hub-model")[0] == 0
    assert lock_of(models)["files"][f"hf:{REPO}:weights/model.safetensors"]["checked"] == ["hub-sha256", "hub-size"]
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == WEIGHTS


def test_a_damaged_lock_is_named_and_nothing_is_fetched(hub, cli, models):
    models.mkdir()
    (models / LOCK_FILE).write_text('{"version": 1, "files": {"x": {"url": "u", "sha256": "short", "size": 1}}}')
    hub.seen.clear()
    code, _out, err = cli("models", "download", "hub-model")
    line = one_error_line(err)
    assert code == 1 and str(models / LOCK_FILE) in line and "delete it" in line
    assert hub.seen == []


# ------------------------------------------------------------------------------------ bad answers


def interrupt_first_attempt(hub, cli, models, cut=100_000):
    hub.cut_once = cut
    code, _out, err = cli("models", "download", "hub-model")
    assert code == 1 and "run it again to resume" in one_error_line(err)
    part = models / "hub-model/weights/model.safetensors.part"
    assert 0 < part.stat().st_size <= cut
    return part.stat().st_size


def test_truncated_body_is_kept_to_resume_and_never_installed(hub, cli, models):
    hub.seen.clear()
    hub.cut_once = 100_000  # Content-Length says 512 000, the server sends 100 000 and closes
    code, _out, err = cli("models", "download", "plain-model")
    line = one_error_line(err)
    assert code == 1 and "plain-model/plain.safetensors" in line and hub.base + PLAIN_URL_PATH in line
    assert installed(models, "plain-model") == ["plain-model/plain.safetensors.part",
                                                "plain-model/plain.safetensors.part.json"]  # fmt: skip
    assert cli("models", "download", "plain-model")[0] == 0
    assert hub.seen[-1][2] is not None and hub.seen[-1][2].startswith("bytes=")  # resumed
    assert (models / "plain-model/plain.safetensors").read_bytes() == WEIGHTS


def test_a_resume_answered_with_the_whole_file_starts_over(hub, cli, models):
    interrupt_first_attempt(hub, cli, models)
    hub.ignore_range = True  # 200 and the whole body to a Range request
    assert cli("models", "download", "hub-model")[0] == 0
    assert weight_gets(hub)[-1][2] is not None  # it asked for a range...
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == WEIGHTS  # ...and got no mix


def test_a_resume_answered_with_the_wrong_range_starts_over(hub, cli, models):
    kept = interrupt_first_attempt(hub, cli, models)
    hub.wrong_range = True  # 206 from byte 0 to a request from byte `kept`
    assert cli("models", "download", "hub-model")[0] == 0
    assert [g[2] for g in weight_gets(hub)[-2:]] == [f"bytes={kept}-", None]
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == WEIGHTS


def test_a_file_changed_between_attempts_is_never_mixed(hub, cli, models):
    # The Hub says so (its stated sha256 changed): the partial of the old version is dropped.
    interrupt_first_attempt(hub, cli, models)
    hub.files[(REPO, "weights/model.safetensors")] = OTHER
    assert cli("models", "download", "hub-model")[0] == 0
    assert weight_gets(hub)[-1][2] is None
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == OTHER


def test_a_changed_file_the_server_does_not_admit_is_refused(hub, cli, models):
    # The server still states the old sha256 but sends the new bytes: the resumed file mixes two
    # versions, fails its check, and one fresh download fails it too → refused, nothing kept.
    interrupt_first_attempt(hub, cli, models)
    hub.stated_sha[(REPO, "weights/model.safetensors")] = sha(WEIGHTS)
    hub.files[(REPO, "weights/model.safetensors")] = OTHER
    code, _out, err = cli("models", "download", "hub-model")
    line = one_error_line(err)
    assert code == 1 and "hub-model/weights/model.safetensors" in line and "does not match" in line
    assert [g[2] is None for g in weight_gets(hub)[-2:]] == [False, True]  # a resume, then a fresh try
    assert installed(models) == ["hub-model/config.json"]


def test_a_plain_url_that_changed_its_etag_starts_over(hub, cli, models):
    hub.cut_once = 100_000
    assert cli("models", "download", "plain-model")[0] == 1
    hub.plain[PLAIN_URL_PATH] = (OTHER, '"v2"')  # a server that ignores If-Range but sends its ETag
    assert cli("models", "download", "plain-model")[0] == 0
    assert (models / "plain-model/plain.safetensors").read_bytes() == OTHER
    # pinned on first use: the URL now serving other bytes is refused
    (models / "plain-model/plain.safetensors").unlink()
    hub.plain[PLAIN_URL_PATH] = (WEIGHTS, '"v3"')
    code, _out, err = cli("models", "download", "plain-model")
    assert code == 1 and "does not match the lock's" in one_error_line(err)
    assert installed(models, "plain-model") == []


def test_a_stale_oversized_partial_is_discarded(hub, cli, models):
    interrupt_first_attempt(hub, cli, models)
    part = models / "hub-model/weights/model.safetensors.part"
    part.write_bytes(WEIGHTS + b"junk from some other file")  # bigger than the file can be
    assert cli("models", "download", "hub-model")[0] == 0
    assert weight_gets(hub)[-1][2] is None
    assert (models / "hub-model/weights/model.safetensors").read_bytes() == WEIGHTS
    # a partial without its note (another program's, or an older version's) is not trusted either
    (models / "hub-model/weights/model.safetensors").unlink()
    part.write_bytes(WEIGHTS[:1000])
    assert cli("models", "download", "hub-model")[0] == 0
    assert weight_gets(hub)[-1][2] is None


@pytest.mark.parametrize("kind", ["typed", "disguised", "redirect"])
def test_a_captive_portal_page_is_named_and_never_installed(hub, cli, models, kind):
    hub.web_page = kind
    for model_id in ("hub-model", "plain-model"):
        code, _out, err = cli("models", "download", model_id)
        line = one_error_line(err)
        assert code == 1 and dl.WEB_PAGE in line and hub.base in line, line
        assert not models.exists() or not any(models.iterdir()), "no folders, no partials"


def test_an_empty_answer_is_named_and_never_installed(hub, cli, models):
    hub.empty = True
    code, _out, err = cli("models", "download", "plain-model")
    line = one_error_line(err)
    assert code == 1 and "empty file" in line and "plain-model/plain.safetensors" in line
    assert not models.exists() or not any(models.iterdir())


def test_a_server_without_head_falls_back_to_what_the_body_says(hub, cli, models):
    hub.no_head = True
    assert cli("models", "download", "hub-model")[0] == 0
    record = lock_of(models)["files"][f"hf:{REPO}:weights/model.safetensors"]
    assert record["checked"] == ["content-length"] and record["sha256"] == sha(WEIGHTS)
    assert "revision" not in record  # no commit stated: nothing to pin but the bytes


# ------------------------------------------------------------------------------------ offline


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for s in held:
        s.close()
    listener.close()


@pytest.mark.parametrize("where", ["refused", "no-such-name", "silent"])
def test_offline_is_one_line_and_leaves_no_folders(hub, cli, models, monkeypatch, where, request):
    endpoint = {"refused": lambda: f"http://127.0.0.1:{closed_port()}",
                "no-such-name": lambda: "http://comic-studio-test.invalid",
                "silent": lambda: request.getfixturevalue("silent_server")}[where]()  # fmt: skip
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(dl, "TIMEOUT", 0.5)  # bounds the silent server's wait; not a timing assert
    code, _out, err = cli("models", "download", "hub-model")
    line = one_error_line(err)
    assert code == 1 and "you appear to be offline" in line and "hub-model/config.json" in line
    assert endpoint.split("//")[1] in line
    assert {"refused": "connection refused", "no-such-name": "does not resolve",
            "silent": "no answer within"}[where] in line  # fmt: skip
    assert not models.exists(), "the download created the models folder and must remove it"
