"""A broken LoRA or checkpoint header (a huge or "negative" length, JSON that is not JSON or too
deep, a shape that is not a shape, data that ends early, a FIFO) is a ModelLoadError naming the
file, through the real paths: the checkpoint check before any weights load, and a LoRA in an sdxl
job on the tiny kit."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from hang_guard import outcome_of

from comic_studio.generation.models.loading import ModelLoadError, load_lora_state_dict, sdxl_source


def _file(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def _tensor_header(**overrides) -> bytes:
    info = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16], **overrides}
    return json.dumps({"w": info}).encode()


BROKEN = {
    "empty": (lambda p: (p.write_bytes(b""), p)[1], "too short"),
    "huge-length": (lambda p: _file(p, b"{}", length=2**62), "implausible safetensors header length"),
    "negative-length": (lambda p: _file(p, b"{}", length=2**64 - 1), "implausible safetensors header length"),
    "header-cut-short": (lambda p: _file(p, b'{"w": {', length=4000), "cut short"),
    "not-json": (lambda p: _file(p, b"\x00\x01garbage"), "not UTF-8|not valid JSON"),
    "a-list": (lambda p: _file(p, b"[1, 2]"), "not a JSON object"),
    "deep": (lambda p: _file(p, b'{"w": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "nests more than"),
    "nan": (lambda p: _file(p, b'{"w": {"shape": [NaN]}}'), "unusable number"),
    "shape-strings": (lambda p: _file(p, _tensor_header(shape=["2", None]), b"\0" * 16), "no valid shape"),
    "shape-missing": (lambda p: _file(p, b'{"w": {"dtype": "F32"}}'), "no valid shape"),
    "offsets-backwards": (lambda p: _file(p, _tensor_header(data_offsets=[16, 0]), b"\0" * 16), "data_offsets"),
    "truncated-data": (lambda p: _file(p, _tensor_header(), b"\0" * 5), "truncated"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_checkpoint_header_names_the_file(tmp_path, case) -> None:
    make, problem = BROKEN[case]
    path = make(tmp_path / f"{case}.safetensors")
    with pytest.raises(
        ModelLoadError, match=rf"^{case}\.safetensors: not a readable \.safetensors checkpoint: .*({problem})"
    ):
        sdxl_source(path)
    with pytest.raises(ModelLoadError, match=rf"^{case}\.safetensors: .*({problem})"):
        load_lora_state_dict(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_named_like_weights_is_refused_at_once(tmp_path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for load in (load_lora_state_dict, sdxl_source):
        outcome = outcome_of(load, fifo)
        assert isinstance(outcome.get("error"), ModelLoadError), outcome
        assert "pipe.safetensors" in str(outcome["error"]) and "not a regular file" in str(outcome["error"])


def test_a_broken_lora_in_an_sdxl_job_is_named_and_the_next_job_runs(tiny_kit, tmp_path) -> None:
    pytest.importorskip("diffusers")
    from comic_studio.backends.sdxl import SdxlBackend
    from comic_studio.generation.request import GenerationRequest

    backend = SdxlBackend()

    def job(**settings):
        return GenerationRequest(backend="sdxl", width=64, height=64, seed=3, prompt="a lighthouse",
                                 backend_settings={"model": str(tiny_kit.sdxl), "steps": 1, **settings})  # fmt: skip

    for case in ("huge-length", "not-json", "truncated-data"):
        make, problem = BROKEN[case]
        path = make(tmp_path / f"{case}.safetensors")
        with pytest.raises(ModelLoadError, match=rf"{case}\.safetensors: .*({problem})"):
            backend.generate(job(loras=f"{path}:0.5"))
    assert backend.generate(job()).image.size == (64, 64)
