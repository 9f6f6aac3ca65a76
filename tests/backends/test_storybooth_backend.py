"""``storybooth`` by name: the consistent backend plus the characters' trained LoRAs. With a LoRA for
everyone in the panels it renders exactly what ``consistent`` renders with those LoRAs on; a
character without one (or with it switched off) makes it refuse, naming who and how to train."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from anchor_helpers import cid, make_document  # noqa: E402

from comic_studio.cli import main  # noqa: E402
from comic_studio.core import character_edits  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.generation.backend_api import CONSISTENT_CHARACTERS, NEEDS_CHARACTER_LORAS  # noqa: E402
from comic_studio.generation.registry import available_backends, register_backend, unregister_backend  # noqa: E402
from comic_studio.testing.tiny import write_tiny_lora  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def storybooth():
    """The backend as pyproject declares it (an installed checkout finds the same entry point;
    registered here too so the test runs before a reinstall picks the new entry point up)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    target = declared["project"]["entry-points"]["comic_studio.backends"]["storybooth"]
    assert target == "comic_studio.backends.consistent:StoryboothBackend"
    register_backend("storybooth", target)
    yield
    unregister_backend("storybooth")


def _project(kit, tmp_path: Path, backend: str, loras: dict[str, int]) -> Path:
    doc = make_document(kit)
    for page in doc.project.pages:
        for panel in page.panels:
            panel.backend = backend  # the panels' own (tiny) settings travel with --backend of that name
    for name, seed in loras.items():
        data = write_tiny_lora(tmp_path / f"{name}-{seed}.safetensors", seed=seed).read_bytes()
        character_edits.update_character(doc, cid(doc, name),
                                         lora_asset=doc.assets.add(data, validate_image=False))  # fmt: skip
    return doc.save(tmp_path / f"{backend}.comic")


def _pages(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


def test_storybooth_is_listed_with_its_capabilities(storybooth):
    cls = available_backends()["storybooth"]
    assert {NEEDS_CHARACTER_LORAS, CONSISTENT_CHARACTERS, "lora"} <= cls.capabilities
    assert "StoryBooth" in cls.display_name


def test_render_storybooth_equals_consistent_with_the_loras_on(tiny_kit, tmp_path, monkeypatch, storybooth):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    loras = {"Ana": 3, "Ben": 4}
    outputs = {}
    for backend in ("consistent", "storybooth"):
        project = _project(tiny_kit, tmp_path, backend, loras)
        out = tmp_path / f"pages-{backend}"
        args = ["render", str(project), "--out", str(out), "--backend", backend, "--models", "tiny", "--quiet"]
        assert main([*args, "--save", str(project)]) == 0
        outputs[backend] = _pages(out)
        results = [p.result() for page in Document.open(project).project.pages for p in page.panels]
        assert all(r is not None and r.request["backend"] == backend for r in results)
    assert len(outputs["storybooth"]) == len(outputs["consistent"]) >= 1
    for a, b in zip(outputs["storybooth"], outputs["consistent"], strict=True):
        assert np.array_equal(a, b)
    # (that the LoRAs change a consistent render: tests/workflows/test_character_lora.py)


def test_storybooth_refuses_characters_without_a_lora(tiny_kit, tmp_path, monkeypatch, capsys, storybooth):
    monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(tmp_path / "banks"))
    project = _project(tiny_kit, tmp_path, "storybooth", {"Ana": 3})  # Ben has none
    args = ["render", str(project), "--out", str(tmp_path / "pages"), "--backend", "storybooth", "--models", "tiny"]
    assert main([*args, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Ben has none" in err and "Train LoRA…" in err and "comic-studio train lora PROJECT --character 'Ben'" in err
    assert "Ana" not in err.split("storybooth draws")[1].split("(or it")[0]  # only who lacks one is named
    assert not list(tmp_path.glob("pages/*.png"))  # refused: no pages written

    doc = Document.open(project)  # a LoRA switched off counts as none: the render would lack it
    character_edits.update_character(doc, cid(doc, "Ana"), lora_enabled=False)
    doc.save(project)
    assert main([*args, "--quiet"]) == 1
    assert "Ana, Ben have none" in capsys.readouterr().err  # every panel checked before any render

    # The backend itself refuses too (a caller that skips the workflows' check).
    from comic_studio.generation.backend_api import MissingCharacterLoras
    from comic_studio.generation.registry import get_backend
    from comic_studio.workflows.requests import build_request

    doc = Document.open(project)
    request = build_request(doc.project, doc.project.pages[0].panels[0])  # not hydrated: no check
    with pytest.raises(MissingCharacterLoras, match="Ana has none") as refused:
        get_backend("storybooth").generate(request)
    assert refused.value.characters == [(cid(doc, "Ana"), "Ana")]
