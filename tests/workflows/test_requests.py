"""Reference images reach backends that need them (``needs_reference_images``) without bloating the
project: build_request fills them in, record_result strips them, hydrate_request puts them back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_racig_support import HASHES, REFS, build_kit, kit_settings  # noqa: E402

from comic_studio.core.document import Document
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character
from comic_studio.generation.request import GenerationRequest, png_data_uri
from comic_studio.workflows.batch import render_panel
from comic_studio.workflows.requests import build_request, dehydrate_request, hydrate_request, reference_hashes
from comic_studio.workflows.story import story_to_document

STORY = 'Ana hands Ben a brass key on the pier. "Take it," Ana said.'


def _document() -> tuple[Document, str]:
    doc = Document.new("Refs", page_format("us-comic"))
    for data in REFS[:4]:
        doc.assets.add(data)
    ana = Character(name="Ana", face_refs=[HASHES[0]], body_refs=[HASHES[1]])
    ben = Character(name="Ben", face_refs=[HASHES[2]], body_refs=[HASHES[3], HASHES[1]])  # a shared outfit
    story_to_document(STORY, [ana, ben], document=doc)
    panel = doc.project.pages[0].panels_in_order()[0]
    assert {p.character_id for p in panel.characters} == {ana.id, ben.id}
    return doc, panel.id


def _panel(doc: Document, panel_id: str):
    return doc.project.find_panel(panel_id)[1]


def test_build_request_fills_references_only_for_backends_that_need_them():
    doc, panel_id = _document()
    panel = _panel(doc, panel_id)
    racig = build_request(doc.project, panel, "racig", doc.assets)
    images = json.loads(racig.backend_settings["reference_images"])
    assert list(images) == HASHES[:4] == reference_hashes(racig)  # each image once
    assert all(v.startswith("data:image/png;base64,") for v in images.values())
    storyboard = build_request(doc.project, panel, "storyboard", doc.assets)
    assert "reference_images" not in storyboard.backend_settings
    # Without the asset store nothing is inlined (the request only names its references).
    assert "reference_images" not in build_request(doc.project, panel, "racig").backend_settings


def test_a_missing_reference_is_a_clear_error():
    doc, panel_id = _document()
    request = build_request(doc.project, _panel(doc, panel_id), "racig")
    request.characters[0].face_refs.append("f" * 64)
    with pytest.raises(ComicStudioError, match="reference image ffffffffffff… is not in this project"):
        hydrate_request(request, doc.assets)


def test_dehydrate_turns_inline_images_into_asset_names_and_back():
    doc, panel_id = _document()
    request = build_request(doc.project, _panel(doc, panel_id), "racig", doc.assets)
    request = request.model_copy(
        update={"backend_settings": {**request.backend_settings, "init_image": png_data_uri(REFS[5])}}
    )
    stored = dehydrate_request(request, doc.assets)
    assert stored.backend_settings == {"init_image": "asset:" + HASHES[5]}
    assert HASHES[5] in doc.assets
    assert hydrate_request(stored, doc.assets) == request


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    pytest.importorskip("diffusers")
    return build_kit(tmp_path_factory.getbasetemp())


def test_racig_render_stores_no_images_and_replays_exactly(kit, tmp_path):
    from comic_studio.generation.registry import get_backend

    tiny, strong = kit
    doc, panel_id = _document()
    panel = _panel(doc, panel_id)
    panel.backend, panel.backend_settings = "racig", kit_settings(tiny, strong, max_side=96)
    result = render_panel(doc, panel_id)
    text = json.dumps(result.request)
    assert "data:" not in text and "reference_images" not in text and len(text) < 5_000
    assert [c["face_refs"] + c["body_refs"] for c in result.request["characters"]] == [
        HASHES[:2],
        HASHES[2:4] + [HASHES[1]],
    ]
    # Saved and reopened, the project still replays the same image from its asset store.
    reopened = Document.open(doc.save(tmp_path / "refs.comic"))
    stored = reopened.project.find_panel(panel_id)[1].result()
    replay = hydrate_request(GenerationRequest.from_dict(stored.request), reopened.assets)
    assert json.loads(replay.backend_settings["reference_images"]).keys() == set(HASHES[:4])
    image = get_backend("racig").generate(replay).image
    original = np.asarray(reopened.assets.open_image(stored.asset).convert("RGB"))
    assert np.array_equal(np.asarray(image.convert("RGB")), original)


def test_an_init_image_a_stored_request_names_is_saved_and_replays_after_reopening(tmp_path):
    """Dehydrating a request turns its init image into ``asset:<hash>``; the save used to leave that
    asset out (only pictures the document shows were kept), so replaying the result after reopening
    failed with "not in this project's assets". A file from before, without it, still opens."""
    import io
    import zipfile

    from PIL import Image

    from comic_studio.core import editing
    from comic_studio.core.projectfile import load_project
    from comic_studio.generation.request import GenerationResult
    from comic_studio.workflows.results import record_result

    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(buffer, format="PNG")
    init = png_data_uri(buffer.getvalue())
    doc = Document.new()
    panel_id = editing.add_page(doc).panels[0].id
    request = GenerationRequest(width=64, height=64, backend_settings={"init_image": init})
    generated = GenerationResult([Image.new("RGB", (64, 64))], 1, "storyboard", settings={"init_image": init})
    result = record_result(doc, panel_id, request, generated)
    assert result.request["backend_settings"]["init_image"].startswith("asset:")
    doc.save(tmp_path / "img2img.comic")

    project, store = load_project(tmp_path / "img2img.comic")
    stored = GenerationRequest.from_dict(project.pages[0].panels[0].results[0].request)
    assert hydrate_request(stored, store).backend_settings["init_image"] == init

    # The same file without the init image (as older versions wrote it) opens; the replay names it.
    older = tmp_path / "older.comic"
    with zipfile.ZipFile(tmp_path / "img2img.comic") as src, zipfile.ZipFile(older, "w") as dst:
        digest = result.request["backend_settings"]["init_image"].removeprefix("asset:")
        for info in src.infolist():
            if digest not in info.filename:
                dst.writestr(info, src.read(info))
    project, store = load_project(older)
    with pytest.raises(ComicStudioError, match="setting 'init_image': image"):
        hydrate_request(GenerationRequest.from_dict(project.pages[0].panels[0].results[0].request), store)
