"""``comic-studio anchor`` then ``render --backend consistent`` on a tiny project (``--models tiny``)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import cid, make_document  # noqa: E402

from comic_studio.cli import main  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.workflows.requests import build_request  # noqa: E402


@pytest.fixture
def project(tiny_kit, restore_default_settings, tmp_path, monkeypatch):
    """A saved story project whose panels name no backend; ``--models tiny`` finds the session's tiny
    kit in the (temporary) user cache, where the bank folder is too."""
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("COMIC_STUDIO_BANK_DIR", raising=False)
    doc = make_document(tiny_kit)
    for page in doc.project.pages:
        for panel in page.panels:
            panel.backend, panel.backend_settings = "storyboard", {}
    return doc.save(tmp_path / "story.comic"), cache / "comic-studio" / "banks"


def test_anchor_then_render_with_the_consistent_backend(project, tmp_path, capsys):
    path, banks = project
    assert main(["anchor", str(path), "--character", "Ana", "--models", "tiny", "--quiet"]) == 0
    assert "Ana has a new rendered anchor" in capsys.readouterr().out
    assert main(["anchor", str(path), "--character", "ben", "--models", "tiny", "--size", "64", "--quiet"]) == 0
    doc = Document.open(path)
    anchors = {c.name: c.anchor for c in doc.project.characters}
    assert all(a is not None and (banks / f"{a.bank}.safetensors").is_file() for a in anchors.values())
    assert doc.assets.open_image(anchors["Ana"].image).size == (256, 256)
    assert doc.assets.open_image(anchors["Ben"].image).size == (64, 64)

    saved = tmp_path / "rendered.comic"
    assert main(["render", str(path), "--backend", "consistent", "--models", "tiny", "--out", str(tmp_path / "book.pdf"),
                 "--save", str(saved), "--quiet"]) == 0  # fmt: skip
    rendered = Document.open(saved)
    panels = [p for page in rendered.project.pages for p in page.panels]
    for panel in panels:
        request = panel.result().request
        named = dict(item.split("=") for item in request["backend_settings"]["banks"].split(","))
        assert request["backend"] == "consistent"
        assert named == {
            p.character_id: rendered.project.character(p.character_id).anchor.bank for p in panel.characters
        }

    # Regenerating with a new seed gives another bank; --from-panel makes a picture anchor.
    assert main(["anchor", str(saved), "--character", "Ana", "--models", "tiny", "--seed", "7", "--quiet"]) == 0
    regenerated = Document.open(saved).project.character(cid(rendered, "Ana")).anchor
    assert regenerated.bank != anchors["Ana"].bank and regenerated.request["backend_settings"]["anchor_seed"] == 7
    assert main(["anchor", str(saved), "--character", "Ben", "--from-panel", "1.2", "--models", "tiny", "--quiet"]) == 0
    again = Document.open(saved)
    second = again.project.pages[0].panels_in_order()[1]
    assert again.project.character(cid(again, "Ben")).anchor.image == second.result().asset
    # The regenerated anchors are what a panel renders with now.
    request = build_request(again.project, second, "consistent")
    assert f"{cid(again, 'Ana')}={regenerated.bank}" in request.backend_settings["banks"]


def test_anchor_errors_name_the_problem(project, capsys):
    path, _banks = project
    assert main(["anchor", str(path), "--character", "Zed", "--quiet"]) == 1
    assert "no character 'Zed' in this project (its characters: Ana, Ben)" in capsys.readouterr().err
    assert main(["anchor", str(path), "--character", "Ana", "--from-panel", "1.1", "--quiet"]) == 1
    assert "has no image yet" in capsys.readouterr().err
    assert main(["anchor", str(path), "--character", "Ana", "--from-panel", "9.1", "--quiet"]) == 1
    assert "there is no page 9" in capsys.readouterr().err
