"""Identity banks reach the workflows only through the backend's hooks: a third-party backend with
the ``consistent_characters`` capability, its own ``banks`` syntax and its own bank files, gets its
banks named, written out, checked before a replay; a backend without the capability refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from comic_studio.core.document import Document
from comic_studio.core.layout import page_format
from comic_studio.core.model import Character, CharacterAnchor
from comic_studio.generation.backend_api import CONSISTENT_CHARACTERS, GenerationBackend
from comic_studio.generation.registry import get_backend_class, register_backend, unregister_backend
from comic_studio.generation.request import GenerationError, GenerationRequest
from comic_studio.workflows.banks import (
    ensure_banks,
    materialise_banks,
    replay_banks,
    uses_identity_banks,
    with_anchor_banks,
)

NAME = "banks-by-hooks"


class HookBackend(GenerationBackend):
    """Banks as ``<hash>.bank`` files, named ``id:hash;id:hash`` (not the consistent backend's syntax)."""

    name = NAME
    capabilities = frozenset({CONSISTENT_CHARACTERS})

    @classmethod
    def parse_banks(cls, text: str) -> dict[str, str]:
        return dict(item.split(":") for item in text.split(";") if item)

    @classmethod
    def format_banks(cls, banks):
        return ";".join(f"{cid}:{digest}" for cid, digest in banks.items())

    @classmethod
    def bank_file(cls, folder, digest: str) -> Path:
        return Path(folder) / f"{digest}.bank"

    @classmethod
    def write_bank_file(cls, data: bytes, folder) -> str:
        digest = hashlib.sha256(data).hexdigest()
        cls.bank_file(folder, digest).parent.mkdir(parents=True, exist_ok=True)
        cls.bank_file(folder, digest).write_bytes(data)
        return digest

    def generate(self, request, on_step=None):
        raise AssertionError("no job runs in these tests")


@pytest.fixture
def backend():
    register_backend(NAME, HookBackend)
    yield NAME
    unregister_backend(NAME)


@pytest.fixture
def doc():
    doc = Document.new("Banks", page_format("us-comic"))
    carried = doc.assets.add(b"ana's bank", validate_image=False)
    too_big = hashlib.sha256(b"ben's bank, not in the project").hexdigest()
    for name, bank in (("Ana", carried), ("Ben", too_big)):
        doc.project.characters.append(
            Character(id=name.lower(), name=name, anchor=CharacterAnchor(image=carried, bank=bank))
        )
    return doc


def test_banks_are_named_written_and_checked_through_the_backends_hooks(backend, doc, tmp_path):
    ana, ben = (c.anchor.bank for c in doc.project.characters)
    assert uses_identity_banks(backend)
    settings = with_anchor_banks(backend, {"banks": "zed:" + "0" * 64}, doc.project, ["ana", "ben"])
    assert settings["banks"] == f"zed:{'0' * 64};ana:{ana};ben:{ben}"

    folder = tmp_path / "banks"
    assert ensure_banks(backend, doc.project, doc.assets, folder, ["ana", "ben"]) == ["ben"]  # Ben's is nowhere
    assert (folder / f"{ana}.bank").read_bytes() == b"ana's bank"
    assert materialise_banks(backend, settings, doc.assets, folder) == folder

    request = GenerationRequest(backend=backend, width=64, height=64, seed=1,
                                backend_settings={"banks": HookBackend.format_banks({"ana": ana, "ben": ben}),
                                                  "bank_folder": str(folder)})  # fmt: skip
    assert replay_banks(doc.project, request) == (request, ["ben"])  # Ben's current bank: rebuild it first


def test_a_backend_without_the_capability_refuses_the_bank_hooks():
    assert not uses_identity_banks("storyboard")
    with pytest.raises(GenerationError, match="'storyboard' does not have the 'consistent_characters' capability"):
        get_backend_class("storyboard").parse_banks("")
