"""Identity banks at real size (issue 15, item 4): the backend's bank cache is capped by bytes of its
own memory, saved banks are memory-mapped (and render bit for bit like banks loaded whole), and a
bank is serialised by streaming (its extra peak memory is a small fraction of the bank)."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from comic_studio.backends.consistent import ConsistentBackend  # noqa: E402
from comic_studio.backends.consistent.bank import (  # noqa: E402
    BankError,
    IdentityBank,
    bank_file,
    open_bank_file,
    read_bank_file,
)
from comic_studio.generation.request import GenerationRequest, RequestCharacter  # noqa: E402

ANA = RequestCharacter(id="ana", name="Ana", description="green raincoat")


def bank_of(nbytes: int, character: str = "ana", seed: int = 0) -> IdentityBank:
    """A bank holding exactly ``nbytes`` bytes of fp16 tokens (a multiple of 16 bytes)."""
    bank = IdentityBank("fp16", meta={"steps": 4})
    channels = 8
    tokens = nbytes // (2 * channels)
    bank.put(
        character,
        901.0,
        "up_blocks.0.attn1",
        torch.randn(1, tokens, channels, generator=torch.Generator().manual_seed(seed)),
    )
    assert bank.nbytes() == nbytes
    return bank


def test_the_cache_evicts_by_bytes_of_its_own_memory(tmp_path):
    backend = ConsistentBackend()
    settings = {"bank_cache_gb": 3_200 / 1e9}  # room for three 1 KB banks
    for key in "abc":
        backend._remember(key, bank_of(1_024), settings)
    assert list(backend._banks) == ["a", "b", "c"]
    backend._remember("a", backend._banks["a"], settings)  # used again: most recent now
    backend._remember("d", bank_of(1_024), settings)
    assert list(backend._banks) == ["c", "a", "d"]  # b, the least recently used, went
    backend._remember("big", bank_of(2_048), settings)  # needs two 1 KB banks to go
    assert list(backend._banks) == ["d", "big"]
    backend._remember("huge", bank_of(4_096), settings)  # alone over the cap: not kept at all
    assert "huge" not in backend._banks
    # A memory-mapped bank counts nothing: any number of them stay beside the cap's banks.
    digests = [bank_of(100_000, seed=s).save(tmp_path) for s in range(3)]
    for digest in digests:
        backend._remember(digest, open_bank_file(tmp_path, digest), settings)
    assert set(digests) <= set(backend._banks) and backend._banks[digests[0]].resident_bytes() == 0
    assert backend._banks[digests[0]].nbytes() == 100_000
    assert ConsistentBackend.default_settings()["bank_cache_gb"] == 4.0


def test_saving_streams_and_its_extra_peak_is_small():
    bank = bank_of(16 * 2**20)  # 16 MiB of tokens
    size = bank.nbytes()
    tracemalloc.start()
    try:
        digest = bank.sha256()
        _, peak_hash = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        data = bank.to_bytes()  # the in-memory form, for comparison: one whole copy
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(data).hexdigest()
    assert peak_hash < 0.3 * size  # streamed: the bank plus less than 0.3× → below 1.3× in all
    assert peak_bytes >= size  # what joining would cost (the old serialiser held two copies)


def test_save_writes_the_same_file_by_streaming(tmp_path):
    bank = bank_of(4 * 2**20)
    tracemalloc.start()
    try:
        digest = bank.save(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.3 * bank.nbytes()
    assert read_bank_file(tmp_path, digest) == bank.to_bytes()
    assert bank.save(tmp_path) == digest  # content-addressed: a second save finds the file


def test_a_mapped_bank_reads_the_same_tensors_lazily(tmp_path):
    bank = bank_of(64_000)
    bank.put("ben", 500.0, "up_blocks.0.attn1", torch.ones(2, 3, 8))
    digest = bank.save(tmp_path)
    mapped = open_bank_file(tmp_path, digest)
    assert mapped.resident_bytes() == 0 and mapped.nbytes() == bank.nbytes()
    assert mapped.keys() == bank.keys() and mapped.meta == bank.meta
    assert all(torch.equal(mapped.get(*k), bank.get(*k)) for k in bank.keys())
    assert mapped.sha256() == digest  # re-serialising a mapped bank gives its own file
    path = bank_file(tmp_path, digest)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(BankError, match="does not match its hash"):
        open_bank_file(tmp_path, digest)


def test_a_mapped_bank_renders_bit_for_bit_like_a_loaded_one(tiny_kit, tmp_path):
    def request(**settings):
        base = {"model": str(tiny_kit.sdxl), "steps": 4, "anchor_size": 64, "start_step": 1, **settings}
        return GenerationRequest(backend="consistent", width=64, height=64, seed=3, prompt="on a pier",
                                 characters=[ANA], backend_settings=base)  # fmt: skip

    made = ConsistentBackend().generate(request(anchor_for="ana", bank_folder=str(tmp_path)))
    digest = made.settings["banks"].split("=")[1]
    panel = request(banks=f"ana={digest}", bank_folder=str(tmp_path))
    mapped_backend = ConsistentBackend()
    mapped = mapped_backend.generate(panel)
    assert mapped_backend._banks[digest].resident_bytes() == 0  # the job read it through the map
    loaded_backend = ConsistentBackend()
    loaded_backend._banks[digest] = IdentityBank.from_bytes(read_bank_file(tmp_path, digest))  # loaded whole
    loaded = loaded_backend.generate(panel)
    assert np.array_equal(np.asarray(mapped.image), np.asarray(loaded.image))
