"""`comic-studio tryon` on a tiny project with the tiny racig models: the outfit joins the
character's body references, only the character's body is repainted, the old image stays in the
panel's history, and bad input is one clear error that changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import HASHES, REFS  # noqa: E402

from comic_studio import cli  # noqa: E402
from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.core import editing  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.layout import page_format  # noqa: E402
from comic_studio.core.model import Character  # noqa: E402
from comic_studio.generation.request import GenerationRequest  # noqa: E402
from comic_studio.workflows.batch import render_panel  # noqa: E402
from comic_studio.workflows.story import story_to_document  # noqa: E402

STORY = "Ana hands Ben a brass key on the pier.\n\nBen looks at the sea."


@pytest.fixture
def book(tmp_path, tiny_kit, tiny_models, monkeypatch):
    """A saved project whose first panel (Ana and Ben) has one racig image, rendered with the
    ``--models tiny`` defaults (restored after the test)."""
    # `--models tiny` builds its kit in the user cache: there, find the session's kit.
    cache = tmp_path / "cache"
    (cache / "comic-studio").mkdir(parents=True)
    (cache / "comic-studio" / "tiny-models").symlink_to(tiny_kit.root, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    settings: dict = {}
    doc = Document.new("Try-on", page_format("us-comic").model_copy(update={"dpi": 72}))  # small panels: fast
    for data in REFS[:4]:
        doc.assets.add(data)
    cast = [Character(name="Ana", colour="#d0563b", face_refs=[HASHES[0]], body_refs=[HASHES[1]]),
            Character(name="Ben", aliases=["Benjamin"], colour="#3b6fd0", face_refs=[HASHES[2]], body_refs=[HASHES[3]])]  # fmt: skip
    story_to_document(STORY, cast, document=doc)
    panel = doc.project.pages[0].panels_in_order()[0]
    editing.set_panel_fields(doc, panel.id, "Backend", backend="racig", backend_settings=settings)
    render_panel(doc, panel.id)
    path = doc.save(tmp_path / "book.comic")
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(REFS[6])
    return path, panel.id, outfit


def _pixels(doc, asset):
    return np.asarray(doc.assets.open_image(asset).convert("RGB"))


def test_tryon_repaints_only_the_body_and_keeps_the_history(book, tmp_path, capsys):
    path, panel_id, outfit = book
    out = tmp_path / "tried.comic"
    code = cli.main(["tryon", str(path), "--panel", "1.1", "--character", "benjamin", "--outfit", str(outfit),
                     "--models", "tiny", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "2 in the panel's history" in capsys.readouterr().out

    before = Document.open(path)
    after = Document.open(out)
    old_panel, new_panel = before.project.find_panel(panel_id)[1], after.project.find_panel(panel_id)[1]
    assert len(new_panel.results) == len(old_panel.results) + 1
    first, tried = new_panel.results[0], new_panel.result()
    assert first.id == old_panel.result().id and tried.id != first.id  # the old image stays, the new one shows
    ben = next(c for c in after.project.characters if c.name == "Ben")
    assert ben.body_refs == [HASHES[3], HASHES[6]]
    assert (
        tried.request["backend_settings"]["mode"] == "tryon"
        and tried.request["backend_settings"]["tryon_outfit"] == HASHES[6]
    )

    request = GenerationRequest.from_dict(tried.request)
    backend = RacigBackend()
    body = backend.conditioning(request, backend.validate_settings(request.backend_settings)).body_masks[1]
    old, new = _pixels(after, first.asset), _pixels(after, tried.asset)
    assert body.any() and body.shape == old.shape[:2]
    assert np.array_equal(old[~body], new[~body]), "try-on changed pixels outside Ben's body"
    assert np.abs(old[body].astype(int) - new[body]).mean() > 1.0, "Ben's body was not repainted"
    # Without --out nothing else was written: the source project is as it was.
    assert len(Document.open(path).project.find_panel(panel_id)[1].results) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--panel", "9.1"], "there is no page 9"),
        (["--panel", "nope"], "no panel 'nope'"),
        (["--character", "Zed"], "no character 'Zed' in this panel (it has: Ana, Ben)"),
        (["--outfit", "missing.png"], "missing.png: no such image file"),
    ],
)
def test_bad_input_is_one_clear_error_and_changes_nothing(book, capsys, args, message):
    path, _panel_id, outfit = book
    before = path.read_bytes()
    base = {"--panel": "1.1", "--character": "Ben", "--outfit": str(outfit)}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["tryon", str(path), *[x for kv in base.items() for x in kv], "--models", "tiny", "--quiet"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("comic-studio: error:") and message in err, err
    assert path.read_bytes() == before


def test_body_tryon_needs_an_image(book, tmp_path, capsys):
    path, _panel_id, outfit = book
    # The second panel (Ben alone) has never been rendered: only a whole-panel try-on can run.
    assert (
        cli.main(["tryon", str(path), "--panel", "1.2", "--character", "Ben", "--outfit", str(outfit), "--quiet"]) == 1
    )
    assert "no image to repaint yet" in capsys.readouterr().err
    assert Document.open(path).project.characters[1].body_refs == [HASHES[3]]


def test_render_with_racig_on_the_tiny_models_renders_every_panel(book, tmp_path):
    path, _panel_id, _outfit = book
    before = Document.open(path).project
    out = tmp_path / "racig.comic"
    assert cli.main(["render", str(path), "--backend", "racig", "--all", "--models", "tiny", "--out", str(tmp_path / "racig.pdf"),
                 "--save", str(out), "--quiet"]) == 0  # fmt: skip
    after = Document.open(out).project
    for old_page, new_page in zip(before.pages, after.pages):
        for old, new in zip(old_page.panels, new_page.panels):
            assert len(new.results) == len(old.results) + 1 and new.result().backend == "racig"
