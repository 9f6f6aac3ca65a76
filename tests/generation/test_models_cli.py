"""`comic-studio models list|locate|download` through the models command's own parser, with downloads served by a local HTTP server standing in for the Hugging Face endpoint."""

from __future__ import annotations

import argparse
import http.server
import json
import threading

import pytest

from comic_studio.cli import models as models_command
from comic_studio.core.errors import ComicStudioError
from comic_studio.weights.catalogue import load_catalogue


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="comic-studio")
    models_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(json.dumps({"models_folder": str(tmp_path / "models")}))
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


class AnyFile(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):  # noqa: N802
        AnyFile.paths.append(self.path)
        body = json.dumps({"served": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_list_shows_every_entry_and_state(isolated, capsys):
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0
    for entry in load_catalogue().models:
        assert entry.id in out
    assert "missing" in out and "6.9 GB" in out
    code, out, _ = run(["models", "list", "--json"], capsys)
    rows = json.loads(out)
    assert {r["id"] for r in rows} == {m.id for m in load_catalogue().models}
    assert not any(r["installed"] for r in rows)


def test_download_then_locate(isolated, capsys, monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnyFile)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    try:
        code, _out, err = run(["models", "locate", "sdxl-base-1.0-config"], capsys)
        assert code == 1 and "models download sdxl-base-1.0-config" in err
        code, out, err = run(["models", "download", "sdxl-base-1.0-config"], capsys)
    finally:
        httpd.shutdown()
    folder = isolated / "models" / "sdxl-base-1.0-config"
    assert code == 0 and out.strip() == str(folder)
    assert "/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/unet/config.json" in AnyFile.paths
    assert json.loads((folder / "tokenizer_2" / "merges.txt").read_text())["served"].endswith("tokenizer_2/merges.txt")
    assert "[14/14]" in err
    code, out, _ = run(["models", "locate", "sdxl-base-1.0-config"], capsys)
    assert code == 0 and out.strip() == str(folder)


def test_unknown_id_is_a_clear_error(isolated, capsys):
    with pytest.raises(ComicStudioError, match="no model 'nope'"):
        run(["models", "locate", "nope"], capsys)


def test_check_says_what_each_backend_still_needs(isolated, capsys, monkeypatch):
    monkeypatch.delenv("COMIC_STUDIO_SDXL_MODEL", raising=False)
    code, out, err = run(["models", "check"], capsys)
    assert code == 1 and "Preferences" in err
    assert "storyboard (Storyboard" in out and "needs no models" in out
    assert "racig (RaCig" in out and "missing 5 of 5 (13.7 GB to download)" in out
    assert (
        "MISSING    IP-Adapter Plus-Face (faces): comic-studio models download ip-adapter-plus-face-sdxl-vit-h" in out
    )
    code, out, _ = run(["models", "check", "--backend", "storyboard"], capsys)
    assert code == 0 and out.strip() == "storyboard (Storyboard (mannequins)): needs no models"

    entry = load_catalogue().get("sdxl-base-1.0")  # install it (a stand-in file is enough to be found)
    target = isolated / "models" / entry.id / entry.files[0].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    code, out, _ = run(["models", "check", "--backend", "sdxl"], capsys)
    assert code == 0 and out.startswith("sdxl (SDXL): ready")
    # Each backend's declared GPU memory per mode, under its name (issue 15: pick a card, a mode).
    assert out.splitlines()[1] == (
        "  GPU memory (estimate, ~1 MP panel): 10 GiB everything on the GPU, 7 GiB whole-model offload, "
        "3 GiB layer-by-layer offload"
    )
    assert f"installed  an SDXL base model: sdxl-base-1.0 (models folder: {target})" in out
    code, out, _ = run(["models", "check", "--backend", "racig", "--json"], capsys)
    (report,) = json.loads(out)
    assert code == 1 and not report["ready"]
    assert report["vram_gb"] == {"gpu": 14.0, "model-offload": 11.0, "sequential-offload": 4.0}
    assert [m["installed"] for m in report["models"]] == [True, False, False, False, False]
    assert report["models"][1] == {"needs": "the OpenPose ControlNet for SDXL", "kind": "controlnet", "setting": "controlnet",
                                   "installed": False, "id": "controlnet-openpose-sdxl", "where": None, "path": None,
                                   "problem": None, "download": ["controlnet-openpose-sdxl"]}  # fmt: skip
    with pytest.raises(ComicStudioError, match="no backend 'nope' is installed"):
        run(["models", "check", "--backend", "nope"], capsys)


def test_check_counts_only_usable_files_of_a_comfyui_folder(isolated, capsys, monkeypatch):
    """Real-layout, full-size single files (sparse): the OpenPose ControlNet and the ViT-H encoder
    are installed from the ComfyUI tree; a canny ControlNet of another shape is not."""
    pytest.importorskip("diffusers")
    from comic_studio.testing.sparse_weights import CONTROLNET, ENCODER, real_shapes, write_sparse_safetensors

    monkeypatch.delenv("COMIC_STUDIO_SDXL_MODEL", raising=False)
    comfy = isolated / "ComfyUI" / "models"
    settings = {"models_folder": str(isolated / "models"), "external_models_folder": str(isolated / "ComfyUI")}
    (isolated / "cfg" / "settings.json").write_text(json.dumps(settings))
    canny = comfy / "controlnet" / "diffusion_pytorch_model.safetensors"
    write_sparse_safetensors(canny, real_shapes(CONTROLNET, transformer_layers_per_block=[1, 2, 4]), "F16")
    encoder = comfy / "clip_vision" / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    write_sparse_safetensors(encoder, {**real_shapes(ENCODER), "vision_model.embeddings.position_ids": (1, 257)}, "F32")
    _, out, _ = run(["models", "check", "--backend", "racig"], capsys)
    assert f"installed  the ViT-H image encoder: clip-vit-h-image-encoder (ComfyUI/A1111 folder: {encoder})" in out
    assert "MISSING    the OpenPose ControlNet for SDXL: comic-studio models download controlnet-openpose-sdxl" in out
    write_sparse_safetensors(canny, real_shapes(CONTROLNET), "F16")  # now the real OpenPose layout
    _, out, _ = run(["models", "check", "--backend", "racig"], capsys)
    assert (
        f"installed  the OpenPose ControlNet for SDXL: controlnet-openpose-sdxl (ComfyUI/A1111 folder: {canny})" in out
    )


def test_check_covers_third_party_backends_by_their_declaration(isolated, capsys):
    from comic_studio.generation.backend_api import GenerationBackend, ModelNeed
    from comic_studio.generation.registry import register_backend, unregister_backend

    class PoseOnly(GenerationBackend):
        name = "pose-only"
        display_name = "Pose only"
        required_models = (
            ModelNeed("controlnet", "an OpenPose ControlNet", "controlnet-openpose-sdxl", interchangeable=True),
        )

        def generate(self, request, on_step=None):
            raise NotImplementedError

    register_backend("pose-only", PoseOnly)
    try:
        code, out, _ = run(["models", "check", "--backend", "pose-only"], capsys)
    finally:
        unregister_backend("pose-only")
    assert code == 1 and "pose-only (Pose only): missing 1 of 1 (2.5 GB to download)" in out
    assert "MISSING    an OpenPose ControlNet: comic-studio models download controlnet-openpose-sdxl" in out
