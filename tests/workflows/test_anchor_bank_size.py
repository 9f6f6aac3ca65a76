"""Recording an anchor whose bank is real-size (issue 15, item 4): only a bank that the project will
keep (within the asset limit) is read and hashed; a GB-size bank is recorded from its size alone, and
the reading is :func:`job_bank`, which the app runs off the GUI thread."""

from __future__ import annotations

import pytest
from anchor_helpers import cid, make_document, tiny_settings

from comic_studio.core.assets import MAX_ASSET_BYTES
from comic_studio.core.errors import ComicStudioError
from comic_studio.generation.request import GenerationRequest, GenerationResult
from comic_studio.workflows.anchors import job_bank, record_anchor


def anchor_job(doc, kit, character_id: str, digest: str) -> tuple[GenerationRequest, GenerationResult]:
    from PIL import Image

    request = GenerationRequest(backend="consistent", width=64, height=64, seed=1, prompt="",
                                backend_settings=tiny_settings(kit, anchor_for=character_id))  # fmt: skip
    result = GenerationResult(images=[Image.new("RGB", (64, 64), "white")], seed=1, backend="consistent",
                              settings={"banks": f"{character_id}={digest}"})  # fmt: skip
    return request, result


def test_a_gb_size_bank_is_recorded_from_its_size_without_reading_it(tiny_kit, tmp_path):
    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    digest = "ab" * 32
    size = 3 * 10**9  # a real SDXL bank is ≈2.6 GB per anchor
    with (tmp_path / f"{digest}.safetensors").open("wb") as sparse:
        sparse.truncate(size)  # sparse: no 3 GB on the disk, and the test would hang if it were read whole
    request, result = anchor_job(doc, tiny_kit, ana, digest)
    bank = job_bank(result, tmp_path, doc.project.character(ana))
    assert (bank.digest, bank.size, bank.data) == (digest, size, None)
    anchor = record_anchor(doc, ana, request, result, tmp_path, bank=bank)
    assert anchor.bank == digest and anchor.bank_bytes == size and not anchor.stored_in_project
    assert digest not in doc.assets


def test_a_small_bank_is_read_checked_and_kept_in_the_project(tiny_kit, tmp_path):
    import hashlib

    doc = make_document(tiny_kit)
    ana = cid(doc, "Ana")
    data = b"not really a bank, but bytes with a hash"
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / f"{digest}.safetensors").write_bytes(data)
    request, result = anchor_job(doc, tiny_kit, ana, digest)
    bank = job_bank(result, tmp_path, doc.project.character(ana))
    assert bank.size == len(data) <= MAX_ASSET_BYTES and bank.data == data
    anchor = record_anchor(doc, ana, request, result, tmp_path, bank=bank)
    assert anchor.stored_in_project and doc.assets.get(digest) == data
    (tmp_path / f"{digest}.safetensors").write_bytes(data + b"!")  # damaged after the job
    with pytest.raises(ComicStudioError, match="does not match its hash"):
        job_bank(result, tmp_path, doc.project.character(ana))
