"""Download tests run against a Hub stand-in on 127.0.0.1 (``fake_hub``), with their own catalogue
(``COMIC_STUDIO_RESOURCES``), config folder (the pins overlay) and models folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fake_hub import CONFIG, REPO, WEIGHTS, Hub, start

from comic_studio.weights.catalogue import bundled_catalogue


def test_catalogue(base: str) -> dict:
    return {"version": 1, "models": [
        {"id": "hub-model", "name": "Hub model", "kind": "lora", "format": "diffusers", "repo": REPO,
         "licence": "MIT", "files": [{"path": "config.json"}, {"path": "weights/model.safetensors"}]},
        {"id": "plain-model", "name": "Plain model", "kind": "lora", "format": "file", "licence": "MIT",
         "files": [{"path": "plain.safetensors", "url": f"{base}/files/plain.safetensors"}]},
    ]}  # fmt: skip


test_catalogue.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def hub(tmp_path, monkeypatch):
    hub = Hub()
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    hub.add(REPO, "weights/model.safetensors", WEIGHTS)
    hub.plain["/files/plain.safetensors"] = (WEIGHTS, '"v1"')
    httpd, _thread = start(hub)
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "models.json").write_text(json.dumps(test_catalogue(hub.base)))
    monkeypatch.setenv("COMIC_STUDIO_RESOURCES", str(resources))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_ENDPOINT", hub.base)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", "")
    bundled_catalogue.cache_clear()
    yield hub
    httpd.shutdown()
    httpd.server_close()
    bundled_catalogue.cache_clear()


@pytest.fixture
def models(tmp_path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def cli(capsys, models):
    """``comic-studio ARGS --models-folder MODELS`` through the CLI's main(), bounded in time."""
    from comic_studio.cli import main

    def run(*argv: str, folder: bool = True) -> tuple[int, str, str]:
        result: list[int] = []
        args = [*argv, "--models-folder", str(models)] if folder else list(argv)
        worker = threading.Thread(target=lambda: result.append(main(args)), daemon=True)
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), f"comic-studio {' '.join(argv)} hung"
        out, err = capsys.readouterr()
        return result[0], out, err

    return run
