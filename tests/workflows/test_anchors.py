"""Identity anchors end to end on the tiny kit: anchors recorded on characters, banks carried by the
project and restored into an empty bank folder, rebuilt from the recorded job when the project does
not carry them, exact single-panel replays, regenerate / undo / clear, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from anchor_helpers import STEPS, cid, make_document, tiny_settings, two_shot  # noqa: E402

from comic_studio.backends.consistent.schedule import ConsistencySchedule  # noqa: E402
from comic_studio.core.assets import MAX_ASSET_BYTES  # noqa: E402
from comic_studio.core.commands import SetFields  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.errors import ComicStudioError  # noqa: E402
from comic_studio.generation.request import GenerationError, GenerationRequest  # noqa: E402
from comic_studio.workflows.anchors import (  # noqa: E402
    anchor_request,
    anchor_settings,
    character_named,
    clear_anchor,
    generate_anchor,
    rebuild_request,
    record_rebuild,
)
from comic_studio.workflows.banks import ensure_banks  # noqa: E402
from comic_studio.workflows.batch import render_document, render_panel  # noqa: E402
from comic_studio.workflows.requests import build_request, hydrate_request, panel_seed  # noqa: E402


@pytest.fixture
def banks(tmp_path, monkeypatch):
    """Point the app's bank folder somewhere empty; ``banks("other")`` switches to another."""

    def use(name: str = "banks"):
        folder = tmp_path / name
        monkeypatch.setenv("COMIC_STUDIO_BANK_DIR", str(folder))
        return folder

    use()
    return use


def pixels(doc: Document, panel_id: str) -> np.ndarray:
    result = doc.project.find_panel(panel_id)[1].result()
    return np.asarray(doc.assets.open_image(result.asset).convert("RGB"))


def rerender(doc: Document, panel_id: str) -> np.ndarray:
    render_panel(doc, panel_id)
    return pixels(doc, panel_id)


def test_anchor_is_recorded_carried_by_the_project_and_replays_exactly(tiny_kit, banks, tmp_path):
    doc = make_document(tiny_kit)
    ana, ben = cid(doc, "Ana"), cid(doc, "Ben")
    folder = banks()
    for character in (ana, ben):
        generate_anchor(doc, character)
    assert doc.undo_stack.undo_text() == "Set anchor"
    anchor = doc.project.character(ana).anchor
    assert anchor.source == "rendered" and anchor.stored_in_project and 0 < anchor.bank_bytes < 1_000_000
    assert (folder / f"{anchor.bank}.safetensors").is_file() and anchor.bank in doc.assets
    assert doc.assets.open_image(anchor.image).size == (64, 64)
    # The recorded job names no machine path and no bank, and keeps the settings that shaped the bank.
    assert "bank_folder" not in anchor.request["backend_settings"] and "banks" not in anchor.request["backend_settings"]
    assert (
        anchor.request["backend_settings"]["steps"] == STEPS and anchor.request["backend_settings"]["anchor_for"] == ana
    )

    # The whole-story run: every panel names its characters' banks.
    assert render_document(doc) == 3
    panel = two_shot(doc)
    batch = pixels(doc, panel.id)
    stored = panel.result().request["backend_settings"]
    assert sorted(stored["banks"].split(",")) == sorted(
        [f"{ana}={anchor.bank}", f"{ben}={doc.project.character(ben).anchor.bank}"]
    )
    assert "bank_folder" not in stored

    # Next week, another machine: the project alone, an empty bank folder.
    reopened = Document.open(doc.save(tmp_path / "anchors.comic"))
    assert reopened.project.character(ana).anchor == anchor
    empty = banks("empty")
    assert not empty.exists()
    assert np.array_equal(rerender(reopened, panel.id), batch)
    assert (empty / f"{anchor.bank}.safetensors").is_file()  # written out from the project's assets
    # "Regenerate same seed" replays the stored request the same way.
    replay = hydrate_request(GenerationRequest.from_dict(panel.result().request), reopened.assets)
    assert replay.backend_settings["bank_folder"] == str(empty)

    # A bank too big for the project (simulated: the anchor says so) is not saved in the file…
    big = reopened.project.character(ana).anchor.model_copy(update={"bank_bytes": MAX_ASSET_BYTES + 1})
    reopened.execute(SetFields(("character", ana), "Simulate a big bank", anchor=big))
    again = Document.open(reopened.save(tmp_path / "big.comic"))
    assert anchor.bank not in again.assets and anchor.image in again.assets
    # …so with an empty bank folder it is rebuilt from the recorded job: same bytes, same panel.
    rebuilt = banks("rebuilt")
    assert ensure_banks("consistent", again.project, again.assets, rebuilt, [ana, ben]) == [ana]
    steps_before = again.undo_stack.index
    assert np.array_equal(rerender(again, panel.id), batch)
    assert (rebuilt / f"{anchor.bank}.safetensors").is_file()
    assert again.undo_stack.index == steps_before + 1  # the render only: the rebuilt bank was identical


def test_a_rebuild_that_differs_is_recorded_and_reported(tiny_kit, banks):
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    folder = banks()
    old = generate_anchor(doc, ana)
    # Another device renders other numbers; here another anchor seed stands in for that.
    request = rebuild_request(doc.project, doc.assets, ana, folder)
    request = request.model_copy(update={"backend_settings": {**request.backend_settings, "anchor_seed": 99}})
    from comic_studio.generation.registry import get_backend

    result = get_backend("consistent").generate(request)
    notice = record_rebuild(doc, ana, result, folder, old.bank)
    new = doc.project.character(ana).anchor
    assert notice and "Ana's identity bank was rebuilt" in notice and new.bank != old.bank and new.image == old.image
    assert new.bank in doc.assets and doc.undo_stack.undo_text() == "Rebuild anchor bank"
    doc.undo()
    assert doc.project.character(ana).anchor == old
    assert record_rebuild(doc, ana, result, folder, "0" * 64) is None  # anchor replaced meanwhile


def test_regenerate_changes_bank_and_panel_and_undo_restores(tiny_kit, banks):
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    panel = next(
        p for page in doc.project.pages for p in page.panels if [c.character_id for c in p.characters] == [ana]
    )
    # The panel's coins (one per layer of the tiny UNet's 4 patched layers) read the bank at steps 1
    # and 2 (of 3): a new anchor must then show in the picture.
    plan = ConsistencySchedule(start_step=1).layer_plan(STEPS, panel_seed(panel), 4)
    assert any(plan[1]) and any(plan[2])
    first = generate_anchor(doc, ana)
    original = rerender(doc, panel.id)
    second = generate_anchor(doc, ana, settings={"anchor_seed": 1234})
    assert second.bank != first.bank and second.image != first.image
    regenerated = rerender(doc, panel.id)
    assert not np.array_equal(regenerated, original)
    doc.undo()  # the render
    assert doc.undo_stack.undo_text() == "Set anchor"
    doc.undo()
    assert doc.project.character(ana).anchor == first
    assert np.array_equal(rerender(doc, panel.id), original)
    # Clearing: the panel no longer names a bank (its identity is built in the job again).
    clear_anchor(doc, ana)
    assert doc.project.character(ana).anchor is None
    request = build_request(doc.project, doc.project.find_panel(panel.id)[1])
    assert "banks" not in request.backend_settings
    with pytest.raises(ComicStudioError, match="Ana has no anchor to clear"):
        clear_anchor(doc, ana)


def test_anchor_from_a_panel_result(tiny_kit, banks, tmp_path):
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    panel = two_shot(doc)
    render_panel(doc, panel.id)  # Ana's bank is built in the job (no anchor yet)
    picture = panel.result().asset
    anchor = generate_anchor(doc, ana, picture)
    assert anchor.source == "picture" and anchor.image == picture
    assert anchor.request["backend_settings"]["anchor_image"] == "asset:" + picture  # hashes only
    reopened = Document.open(doc.save(tmp_path / "picture.comic"))
    assert reopened.project.character(ana).anchor == anchor
    # Rebuilding a picture anchor needs the picture: the project keeps it as the anchor image.
    rebuild = rebuild_request(reopened.project, reopened.assets, ana, tmp_path / "b")
    assert rebuild.backend_settings["anchor_image"].startswith("data:image/png;base64,")


def test_steps_mismatch_says_what_to_do(tiny_kit, banks):
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    generate_anchor(doc, ana)
    panel = two_shot(doc)
    panel.backend_settings = tiny_settings(tiny_kit, steps=2)
    with pytest.raises(
        GenerationError,
        match=f"made with {STEPS} steps and this job uses 2; regenerate the anchor or use {STEPS} steps",
    ):
        render_panel(doc, panel.id)


def test_anchor_settings_follow_the_projects_consistent_panels(tiny_kit):
    doc = make_document(tiny_kit)
    backend, settings = anchor_settings(doc.project)
    assert backend == "consistent" and settings == {k: v for k, v in tiny_settings(tiny_kit).items() if k != "max_side"}
    for page in doc.project.pages:
        for panel in page.panels:
            panel.backend, panel.backend_settings = "storyboard", {}
    assert anchor_settings(doc.project) == ("consistent", {})
    with pytest.raises(ComicStudioError, match="no character 'Zed' in this project"):
        character_named(doc.project, "Zed")
    picture = "f" * 64
    with pytest.raises(ComicStudioError, match="not in this project's assets"):
        anchor_request(doc.project, cid(doc, "Ana"), doc.assets, picture)
