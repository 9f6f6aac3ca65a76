"""The Models dialog: catalogue rows, where installed models were found, "what is missing" guidance,
and real downloads from a local HTTP server on 127.0.0.1 (progress, landing, errors, cancel)."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from comic_studio.core.settings import AppSettings
from comic_studio.ui.dialogs.models_dialog import LLAMA_KEY, ModelsDialog
from comic_studio.weights.catalogue import Catalogue, load_catalogue
from comic_studio.weights.locate import Places

PAYLOAD = bytes(range(256)) * 1024  # 256 KB: several download chunks, so progress has steps
SLOW_SIZE = 4 * 1024 * 1024


class Server(http.server.BaseHTTPRequestHandler):
    """/ok/* serves PAYLOAD, /slow/* trickles SLOW_SIZE bytes, anything else is a 404."""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/ok/"):
            self._send(PAYLOAD)
        elif self.path.startswith("/slow/"):
            self.send_response(200)
            self.send_header("Content-Length", str(SLOW_SIZE))
            self.end_headers()
            try:
                for _ in range(SLOW_SIZE // 65536):
                    self.wfile.write(b"x" * 65536)
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.send_error(404, "no such file")

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.delenv("COMIC_STUDIO_SDXL_MODEL", raising=False)  # `--models tiny` tests set it process-wide
    return Places(models=tmp_path / "models", external=tmp_path / "comfy", hf_cache=tmp_path / "hf")


def local_catalogue(base: str, *, size: int = 262_144) -> Catalogue:
    # A pinned file's size is exact and enforced: a display size that is not the real one comes
    # without a sha256, as an unpinned catalogue entry does.
    sha = hashlib.sha256(PAYLOAD).hexdigest() if size == len(PAYLOAD) else None
    return Catalogue.model_validate({"version": 1, "models": [
        {"id": "tiny-gguf", "name": "Tiny GGUF", "kind": "llm", "format": "file", "licence": "MIT",
         "files": [{"path": "tiny.gguf", "url": f"{base}/ok/tiny.gguf", "sha256": sha, "size": size}]},
        {"id": "tiny-config", "name": "Tiny config", "kind": "sdxl-config", "format": "diffusers", "licence": "MIT",
         "files": [{"path": "unet/config.json", "url": f"{base}/ok/unet.json"},
                   {"path": "vae/config.json", "url": f"{base}/ok/vae.json"}]},
        {"id": "tiny-sdxl", "name": "Tiny SDXL", "kind": "sdxl", "format": "single-file", "licence": "Open RAIL++",
         "needs": ["tiny-config"], "files": [{"path": "tiny.safetensors", "url": f"{base}/ok/tiny.safetensors"}]},
        {"id": "broken", "name": "Broken link", "kind": "lora", "format": "file",
         "files": [{"path": "gone.safetensors", "url": f"{base}/missing/gone.safetensors"}]},
        {"id": "slow", "name": "Slow model", "kind": "vae", "format": "file",
         "files": [{"path": "slow.safetensors", "url": f"{base}/slow/slow.safetensors"}]},
    ]})  # fmt: skip


def make(qtbot, places, catalogue=None, settings=None) -> ModelsDialog:
    dialog = ModelsDialog(settings or AppSettings(), catalogue=catalogue, places=places)
    qtbot.addWidget(dialog)
    return dialog


def finish(dialog: ModelsDialog) -> None:
    dialog.cancel_downloads()
    dialog.wait_for_downloads(10)


def test_lists_every_catalogue_entry_with_size_and_licence(qtbot, places):
    dialog = make(qtbot, places)
    ids = [dialog.table.item(r, 0).data(0x0100) for r in range(dialog.table.rowCount())]
    assert ids == [m.id for m in load_catalogue().models]
    row = dialog.row_of("sdxl-base-1.0")
    assert dialog.table.item(row, 2).text() == "6.9 GB"
    assert "RAIL" in dialog.table.item(row, 3).text()
    assert all(dialog.state(i) == "missing" for i in ids)


def test_installed_entries_show_where_they_were_found(qtbot, places):
    catalogue = load_catalogue()
    gguf = catalogue.get("qwen2.5-1.5b-instruct-gguf")
    target = places.models / gguf.id / gguf.files[0].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF")
    vae_entry = catalogue.get("sdxl-vae-fp16-fix")  # a ComfyUI tree finds files by name in vae/
    (places.external / "models" / "vae").mkdir(parents=True)
    comfy = places.external / "models" / "vae" / vae_entry.weight_file.name
    comfy.write_bytes(b"x")  # not a VAE: never "installed" (the loader would fail on it)
    assert make(qtbot, places).state(vae_entry.id) == "missing"
    pytest.importorskip("diffusers")
    from comic_studio.testing.sparse_weights import VAE, real_shapes, write_sparse_safetensors

    write_sparse_safetensors(comfy, real_shapes(VAE), "F32")  # the real layout, full size (sparse)
    dialog = make(qtbot, places)
    assert dialog.state(gguf.id) == "installed"
    assert dialog.status_text(gguf.id) == f"installed — models folder: {target}"
    assert dialog.status_text(vae_entry.id) == f"installed — ComfyUI/A1111 folder: {comfy}"
    assert dialog.state("sdxl-base-1.0") == "missing"


def test_guidance_says_what_each_backend_is_missing(qtbot, places):
    dialog = make(qtbot, places)
    dialog.set_need("sdxl")
    text = dialog.guidance.text()
    assert "needs an SDXL base model" in text and "Stable Diffusion XL base 1.0 (6.9 GB)" in text
    visible = {
        dialog.table.item(r, 0).data(0x0100) for r in range(dialog.table.rowCount()) if not dialog.table.isRowHidden(r)
    }
    assert visible == {"sdxl-base-1.0", "animagine-xl-3.1"}  # the SDXL configs are bundled: no download
    assert dialog.selected_ids() == ["sdxl-base-1.0"]  # the suggestion is preselected for Download
    dialog.set_need("storyboard")
    assert "needs no downloaded models" in dialog.guidance.text()
    assert "GPU memory" not in dialog.guidance.text()  # declares none
    dialog.set_need(LLAMA_KEY)
    assert "GGUF" in dialog.guidance.text()
    assert dialog.selected_ids() == ["qwen2.5-1.5b-instruct-gguf"]


def test_racig_guidance_comes_from_the_backends_declaration(qtbot, places):
    from comic_studio.backends.racig import RacigBackend

    dialog = make(qtbot, places)
    dialog.set_need("racig")
    text = dialog.guidance.text()
    for need in RacigBackend.required_models:
        assert need.words in text
    wanted = {"sdxl-base-1.0", "controlnet-openpose-sdxl", "ip-adapter-plus-sdxl-vit-h", "ip-adapter-plus-face-sdxl-vit-h",
              "clip-vit-h-image-encoder"}  # fmt: skip
    assert set(dialog.selected_ids()) == wanted  # everything missing is preselected: Download is one click
    assert "13.7 GB in all" in text  # the image encoder both adapters need counts once
    assert text.endswith("GPU memory (estimate, ~1 MP panel): 14 GiB everything on the GPU, "
                         "11 GiB whole-model offload, 4 GiB layer-by-layer offload.")  # fmt: skip
    entry = dialog.catalogue.get("controlnet-openpose-sdxl")  # installed: no longer asked for
    target = places.models / entry.id
    target.mkdir(parents=True)
    for f in entry.files:
        (target / f.path).write_bytes(b"x")
    dialog.refresh()
    assert set(dialog.selected_ids()) == wanted - {"controlnet-openpose-sdxl"}
    assert "OpenPose ControlNet" not in dialog.guidance.text().split("Missing:")[1]
    dialog.set_need("consistent")  # inherits the sdxl declaration
    assert "needs an SDXL base model" in dialog.guidance.text()


def test_guidance_reports_ready_once_installed(qtbot, places):
    catalogue = load_catalogue()
    entry = catalogue.get("llama-3.2-3b-instruct-gguf")
    target = places.models / entry.id / entry.files[0].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF")
    dialog = make(qtbot, places)
    dialog.set_need(LLAMA_KEY)
    assert dialog.guidance.text().startswith("✓") and entry.name in dialog.guidance.text()


def test_download_with_progress_lands_the_file_and_its_needs(qtbot, places, server):
    dialog = make(qtbot, places, local_catalogue(server))
    bars: list[str] = []
    original = dialog._on_progress

    def spy(model_id, done, total, index, count):
        original(model_id, done, total, index, count)
        bars.append(dialog.status_text(model_id))

    dialog._on_progress = spy  # the relay connects to the attribute at download time
    assert dialog.download(["tiny-sdxl", "tiny-gguf"])
    assert dialog.state("tiny-sdxl") in ("queued", "downloading")
    qtbot.waitUntil(lambda: not dialog.is_downloading(), timeout=10_000)
    for model_id in ("tiny-config", "tiny-sdxl", "tiny-gguf"):
        assert dialog.state(model_id) == "installed", dialog.states[model_id]
    landed = places.models / "tiny-gguf" / "tiny.gguf"
    assert landed.read_bytes() == PAYLOAD
    assert (places.models / "tiny-config" / "vae" / "config.json").read_bytes() == PAYLOAD
    assert dialog.status_text("tiny-gguf") == f"installed — models folder: {landed}"
    assert any("%" in b for b in bars) and any("100%" in b for b in bars)
    assert any("file 2/2" in b for b in bars)  # the two-file config entry counts its files
    finish(dialog)


def test_failed_download_shows_the_reason_in_the_row(qtbot, places, server):
    dialog = make(qtbot, places, local_catalogue(server))
    dialog.download(["broken"])
    qtbot.waitUntil(lambda: dialog.state("broken") == "failed", timeout=10_000)
    text = dialog.status_text("broken")
    assert text.startswith("failed: broken/gone.safetensors: the server has no such file (HTTP 404)")
    assert "Traceback" not in text
    assert not (places.models / "broken" / "gone.safetensors").exists()


def test_unreachable_server_fails_fast(qtbot, places):
    catalogue = local_catalogue("http://127.0.0.1:9")  # discard port: nothing listens
    dialog = make(qtbot, places, catalogue)
    dialog.download(["tiny-gguf"])  # fails at the first connection, without retrying
    qtbot.waitUntil(lambda: dialog.state("tiny-gguf") == "failed", timeout=10_000)
    text = dialog.status_text("tiny-gguf")
    assert "you appear to be offline" in text and "connection refused" in text
    assert not (places.models / "tiny-gguf").exists(), "no empty model folder is left behind"


def test_cancel_stops_the_download_and_keeps_the_partial_file(qtbot, places, server, shots):
    dialog = make(qtbot, places, local_catalogue(server))
    dialog.download(["broken"])  # the queue runs in order: this one fails first
    dialog.download(["slow", "tiny-gguf"])
    qtbot.waitUntil(
        lambda: dialog.state("slow") == "downloading" and dialog.state("broken") == "failed", timeout=10_000
    )
    qtbot.wait(150)  # a few progress updates
    assert dialog.cancel_button.isEnabled()
    dialog.show()
    dialog.grab().save(str(shots / "models_downloading.png"))
    dialog.cancel_downloads()
    qtbot.waitUntil(lambda: not dialog.is_downloading(), timeout=10_000)
    assert dialog.state("slow") == "cancelled" and dialog.state("tiny-gguf") == "cancelled"
    assert not (places.models / "slow" / "slow.safetensors").exists()
    part = places.models / "slow" / "slow.safetensors.part"
    assert 0 < part.stat().st_size < SLOW_SIZE
    assert not (places.models / "tiny-gguf" / "tiny.gguf").exists()
    assert not dialog.cancel_button.isEnabled()
    dialog.wait_for_downloads(10)


def test_large_downloads_ask_first(qtbot, places, server, monkeypatch):
    dialog = make(qtbot, places, local_catalogue(server, size=3_000_000_000))
    asked: list[str] = []
    monkeypatch.setattr(dialog, "ask_to_confirm", lambda title, text: asked.append(title + text) or False)
    assert dialog.download(["tiny-gguf"]) is False
    assert dialog.state("tiny-gguf") == "missing" and "3.0 GB" in asked[0] and "MIT" in asked[0]
    monkeypatch.setattr(dialog, "ask_to_confirm", lambda title, text: True)
    assert dialog.download(["tiny-gguf"]) is True
    qtbot.waitUntil(lambda: dialog.state("tiny-gguf") == "installed", timeout=10_000)
    finish(dialog)


def test_the_gui_stays_responsive_while_downloading(qtbot, places, server):
    import threading

    from PySide6.QtCore import QTimer

    dialog = make(qtbot, places, local_catalogue(server))
    dialog.download(["slow"])
    qtbot.waitUntil(lambda: dialog.state("slow") == "downloading", timeout=10_000)
    # The download runs on its own thread, and the GUI thread handles events meanwhile.
    worker = dialog._job._thread
    assert worker.is_alive() and worker is not threading.current_thread()
    handled: list[bool] = []
    QTimer.singleShot(0, lambda: handled.append(dialog.state("slow") == "downloading"))
    qtbot.waitUntil(lambda: bool(handled), timeout=10_000)
    assert handled == [True]
    finish(dialog)


def test_grab_png(qtbot, places, server, shots):
    catalogue = load_catalogue()
    gguf = catalogue.get("qwen2.5-1.5b-instruct-gguf")
    target = places.models / gguf.id / gguf.files[0].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF")
    dialog = make(qtbot, places)
    dialog.set_need("sdxl")
    dialog.show()
    qtbot.waitExposed(dialog)
    out = shots / "models_dialog.png"
    assert dialog.grab().save(str(out)) and out.stat().st_size > 0


def test_a_comfyui_controlnet_counts_only_when_it_is_the_openpose_architecture(qtbot, places):
    """Full-size real-layout single files (sparse) in the ComfyUI tree: a canny ControlNet of another
    shape under the generic name is not "installed" (racig would fail on it); the real layout is."""
    pytest.importorskip("diffusers")
    from comic_studio.testing.sparse_weights import CONTROLNET, real_shapes, write_sparse_safetensors

    target = places.external / "models" / "controlnet" / "diffusion_pytorch_model.safetensors"
    write_sparse_safetensors(target, real_shapes(CONTROLNET, transformer_layers_per_block=[1, 2, 4]), "F16")
    dialog = make(qtbot, places)
    dialog.set_need("racig")
    assert "controlnet-openpose-sdxl" in dialog.selected_ids()
    write_sparse_safetensors(target, real_shapes(CONTROLNET), "F16")
    dialog.refresh()
    assert "controlnet-openpose-sdxl" not in dialog.selected_ids()
    assert "OpenPose ControlNet" not in dialog.guidance.text().split("Missing:")[1]
