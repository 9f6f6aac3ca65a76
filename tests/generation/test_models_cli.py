"""`comic-studio models list|locate|download` through the cli_models parser (the lead wires it into
cli.py), with downloads served by a local HTTP server standing in for the Hugging Face endpoint."""

from __future__ import annotations

import argparse
import http.server
import json
import threading

import pytest

from comic_studio import cli_models
from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.models.catalogue import load_catalogue


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="comic-studio")
    cli_models.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(json.dumps({"models_folder": str(tmp_path / "models")}))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


class AnyFile(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):  # noqa: N802
        AnyFile.paths.append(self.path)
        body = json.dumps({"served": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_list_shows_every_entry_and_state(isolated, capsys):
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0
    for entry in load_catalogue().models:
        assert entry.id in out
    assert "missing" in out and "6.9 GB" in out
    code, out, _ = run(["models", "list", "--json"], capsys)
    rows = json.loads(out)
    assert {r["id"] for r in rows} == {m.id for m in load_catalogue().models}
    assert not any(r["installed"] for r in rows)


def test_download_then_locate(isolated, capsys, monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnyFile)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    try:
        code, _out, err = run(["models", "locate", "sdxl-base-1.0-config"], capsys)
        assert code == 1 and "models download sdxl-base-1.0-config" in err
        code, out, err = run(["models", "download", "sdxl-base-1.0-config"], capsys)
    finally:
        httpd.shutdown()
    folder = isolated / "models" / "sdxl-base-1.0-config"
    assert code == 0 and out.strip() == str(folder)
    assert "/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/unet/config.json" in AnyFile.paths
    assert json.loads((folder / "tokenizer_2" / "merges.txt").read_text())["served"].endswith("tokenizer_2/merges.txt")
    assert "[14/14]" in err
    code, out, _ = run(["models", "locate", "sdxl-base-1.0-config"], capsys)
    assert code == 0 and out.strip() == str(folder)


def test_unknown_id_is_a_clear_error(isolated, capsys):
    with pytest.raises(ComicStudioError, match="no model 'nope'"):
        run(["models", "locate", "nope"], capsys)
