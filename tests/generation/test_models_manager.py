"""Model manager without weights: the bundled catalogue, locating models (our folder, the HF cache,
ComfyUI/A1111 trees), resumable verified downloads from a local HTTP server, pickle refusal."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from comic_studio.generation.models.loading import ModelLoadError, check_weights_file, read_state_dict, sdxl_source
from comic_studio.generation.models.sdxl import resolve_file, resolve_sdxl
from comic_studio.weights import download as dl
from comic_studio.weights.catalogue import Catalogue, CatalogueError, load_catalogue, read_catalogue
from comic_studio.weights.locate import Places, entry_root, locate, missing_for

# ------------------------------------------------------------------------------------ catalogue


def test_bundled_catalogue_has_the_required_entries():
    cat = load_catalogue()
    ids = {m.id for m in cat.models}
    assert {"sdxl-base-1.0", "sdxl-vae-fp16-fix", "animagine-xl-3.1", "ip-adapter-plus-sdxl-vit-h",
            "ip-adapter-plus-face-sdxl-vit-h", "clip-vit-h-image-encoder", "controlnet-openpose-sdxl"} <= ids  # fmt: skip
    assert cat.of_kind("llm")
    for m in cat.models:
        assert m.licence, m.id
    assert [m.id for m in cat.requirements("ip-adapter-plus-sdxl-vit-h")] == [
        "clip-vit-h-image-encoder",
        "ip-adapter-plus-sdxl-vit-h",
    ]
    assert cat.get("sdxl-base-1.0").size and cat.get("sdxl-base-1.0").files[0].sha256


def test_catalogue_errors_are_named(tmp_path):
    bad = {"version": 1, "models": [{"id": "a", "name": "A", "kind": "sdxl", "format": "file", "repo": "x/y",
                                     "files": [{"path": "a.safetensors"}], "needs": ["ghost"]}]}  # fmt: skip
    path = tmp_path / "models.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CatalogueError, match="ghost"):
        read_catalogue(path)
    path.write_text("{not json")
    with pytest.raises(CatalogueError, match="models.json"):
        read_catalogue(path)
    with pytest.raises(CatalogueError, match="no model 'nope'"):
        load_catalogue().get("nope")


# ------------------------------------------------------------------------------------ locate


def places(tmp_path, external=None) -> Places:
    return Places(models=tmp_path / "models", external=external, hf_cache=tmp_path / "hf")


def test_locate_in_models_folder_needs_every_file(tmp_path):
    entry = load_catalogue().get("clip-vit-h-image-encoder")
    p = places(tmp_path)
    assert locate(entry, p) is None
    root = p.models / entry.id
    (root / "models/image_encoder").mkdir(parents=True)
    (root / "models/image_encoder/config.json").write_text("{}")
    assert locate(entry, p) is None  # the weights are still missing
    (root / "models/image_encoder/model.safetensors").write_bytes(b"x")
    found = locate(entry, p)
    assert found.source == "models-folder" and found.path == root / "models/image_encoder"
    assert entry_root(entry) == "models/image_encoder"


def test_locate_in_hf_cache(tmp_path):
    entry = load_catalogue().get("controlnet-openpose-sdxl")
    snap = tmp_path / "hf" / "models--xinsir--controlnet-openpose-sdxl-1.0" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    refs = tmp_path / "hf" / "models--xinsir--controlnet-openpose-sdxl-1.0" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    found = locate(entry, places(tmp_path))
    assert found.source == "hf-cache" and found.path == snap


@pytest.mark.parametrize("layout", ["comfy", "a1111"])
def test_locate_in_external_trees(tmp_path, layout):
    ext = tmp_path / ("ComfyUI" if layout == "comfy" else "stable-diffusion-webui")
    folder = ext / "models" / ("checkpoints" if layout == "comfy" else "Stable-diffusion") / "xl"
    folder.mkdir(parents=True)
    with open(folder / "sd_xl_base_1.0.safetensors", "wb") as fh:  # a pinned entry: its exact size (sparse)
        fh.truncate(load_catalogue().get("sdxl-base-1.0").weight_file.size)
    lora_dir = ext / "models" / ("loras" if layout == "comfy" else "Lora")
    lora_dir.mkdir(parents=True)
    (lora_dir / "inked.safetensors").write_bytes(b"x")
    p = places(tmp_path, external=ext)
    found = locate(load_catalogue().get("sdxl-base-1.0"), p)
    assert found.source == "external" and found.path.name == "sd_xl_base_1.0.safetensors"
    assert resolve_file("inked", "lora", p) == lora_dir / "inked.safetensors"
    assert missing_for("sdxl-base-1.0", p) == []  # its configs are bundled with the app


def test_resolve_sdxl_explains_missing_models(tmp_path, monkeypatch):
    monkeypatch.delenv("COMIC_STUDIO_SDXL_MODEL", raising=False)
    with pytest.raises(ModelLoadError, match=r"'sdxl-base-1.0' is not installed; download it in the Models window"):
        resolve_sdxl("", places=places(tmp_path))
    with pytest.raises(ModelLoadError, match="not an SDXL base model"):
        resolve_sdxl("controlnet-openpose-sdxl", places=places(tmp_path))
    with pytest.raises(ModelLoadError, match="not a diffusers model folder"):
        resolve_sdxl(str(tmp_path), places=places(tmp_path))


def test_single_file_checkpoint_is_checked_before_any_weights_load(tmp_path):
    """No config folder is needed any more (the SDXL configs are bundled), but a file that is not a
    safetensors checkpoint is named as such before diffusers ever opens it."""
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="model.safetensors: not a readable .safetensors checkpoint"):
        sdxl_source(ckpt)


# ------------------------------------------------------------------------------------ pickles


def test_pickled_weights_are_refused_unless_allowed(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "lora.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ModelLoadError, match="pickle"):
        read_state_dict(path)
    assert torch.equal(read_state_dict(path, allow_pickle=True)["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"x": Evil()}, evil, _use_new_zipfile_serialization=True)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        read_state_dict(evil, allow_pickle=True)  # weights_only=True refuses arbitrary objects
    with pytest.raises(ModelLoadError, match="unknown weights format"):
        check_weights_file(tmp_path / "x.onnx")


# ------------------------------------------------------------------------------------ downloads


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests_seen: list[tuple[str, str | None]] = []
    cut_after: int | None = None  # send only this many bytes (simulates a dropped connection)

    def do_GET(self):  # noqa: N802
        data = self.files.get(self.path)
        self.requests_seen.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_response(404)
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None:
            body = body[: self.cut_after]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    RangeHandler.files, RangeHandler.requests_seen, RangeHandler.cut_after = {}, [], None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def entry_for(base: str, data: bytes, sha: str | None = None):
    cat = Catalogue.model_validate({"version": 1, "models": [{
        "id": "tiny-lora", "name": "Tiny", "kind": "lora", "format": "file", "licence": "MIT",
        "files": [{"path": "w/tiny.safetensors", "url": f"{base}/tiny.safetensors",
                   "sha256": sha or hashlib.sha256(data).hexdigest(), "size": len(data)}],
    }]})  # fmt: skip
    return cat.get("tiny-lora")


def test_download_with_progress_resume_and_verification(tmp_path, server):
    data = bytes(range(256)) * 9000  # 2.3 MB: several chunks
    RangeHandler.files["/tiny.safetensors"] = data
    entry = entry_for(server, data)
    RangeHandler.cut_after = 1_000_000  # the first attempt drops the connection mid-file
    with pytest.raises(dl.DownloadError, match="resume"):
        dl.download_entry(entry, tmp_path)
    part = tmp_path / "tiny-lora" / "w" / "tiny.safetensors.part"
    kept = part.stat().st_size
    assert 1_000_000 - dl.CHUNK < kept <= 1_000_000
    RangeHandler.cut_after = None
    seen = []
    dl.download_entry(entry, tmp_path, progress=seen.append)
    final = tmp_path / "tiny-lora" / "w" / "tiny.safetensors"
    assert final.read_bytes() == data and not part.exists()
    assert RangeHandler.requests_seen[-1] == ("/tiny.safetensors", f"bytes={kept}-")
    assert seen[0].done == kept and seen[-1].done == len(data) and seen[-1].fraction == 1.0
    assert locate(entry, Places(models=tmp_path, hf_cache=tmp_path / "hf")).path == final
    count = len(RangeHandler.requests_seen)
    dl.download_entry(entry, tmp_path)  # already there and verified: no request
    assert len(RangeHandler.requests_seen) == count


def test_corrupt_download_is_deleted(tmp_path, server):
    data = b"weights" * 1000
    RangeHandler.files["/tiny.safetensors"] = data
    entry = entry_for(server, data, sha="0" * 64)
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download_entry(entry, tmp_path)
    assert not list((tmp_path / "tiny-lora").rglob("*.safetensors*"))


def test_download_errors_and_cancel(tmp_path, server):
    entry = entry_for(server, b"abc")
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download_entry(entry, tmp_path)
    RangeHandler.files["/tiny.safetensors"] = b"x" * (3 * dl.CHUNK)
    entry = entry_for(server, b"x" * (3 * dl.CHUNK))
    with pytest.raises(dl.DownloadCancelled):
        dl.download_entry(entry, tmp_path, should_stop=lambda: True)


def test_hf_urls_honour_the_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    entry = load_catalogue().get("sdxl-base-1.0")
    assert dl.file_url(entry, entry.files[0]) == (
        "https://mirror.example/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors"
    )
    commit = "0123456789abcdef0123456789abcdef01234567"
    pinned = entry.files[0].model_copy(update={"revision": commit})
    assert dl.file_url(entry, pinned).endswith(f"/resolve/{commit}/sd_xl_base_1.0.safetensors")
    assert isinstance(Path(__file__), Path)


# ------------------------------------------------------------------------------------ backend needs


def test_backends_declare_the_models_they_need():
    from comic_studio.generation.registry import available_backends

    backends = available_backends()
    catalogue = load_catalogue()
    assert backends["storyboard"].required_models == ()
    assert [n.kind for n in backends["sdxl"].required_models] == ["sdxl"]
    assert backends["consistent"].required_models == backends["sdxl"].required_models  # inherited
    racig = backends["racig"].required_models
    assert {n.default for n in racig} == {"sdxl-base-1.0", "controlnet-openpose-sdxl", "ip-adapter-plus-sdxl-vit-h",
                                          "ip-adapter-plus-face-sdxl-vit-h", "clip-vit-h-image-encoder"}  # fmt: skip
    for name, cls in backends.items():
        schema = cls.settings_schema()
        for need in cls.required_models:  # every declaration points at real data
            assert catalogue.get(need.default).kind == need.kind, (name, need)
            assert need.setting in schema, (name, need.setting)


def test_check_need_finds_installed_models_and_lists_what_to_download(tmp_path):
    from comic_studio.backends.racig import RacigBackend
    from comic_studio.weights.locate import locate_all
    from comic_studio.weights.needs import check_need, to_download

    catalogue = load_catalogue()
    p = places(tmp_path, external=tmp_path / "comfy")
    sdxl, controlnet, face, plus, encoder = RacigBackend.required_models
    status = check_need(sdxl, catalogue, locate_all(p, catalogue))
    assert (
        not status.ready
        and status.suggestion.id == "sdxl-base-1.0"
        and [m.id for m in status.missing] == ["sdxl-base-1.0"]
    )
    # Any SDXL checkpoint will do: an anime one in a ComfyUI tree meets the need.
    (tmp_path / "comfy" / "models" / "checkpoints").mkdir(parents=True)
    anime = tmp_path / "comfy" / "models" / "checkpoints" / "animagine-xl-3.1.safetensors"
    anime.write_bytes(b"x")
    status = check_need(sdxl, catalogue, locate_all(p, catalogue))
    assert status.ready and status.satisfied_by == "animagine-xl-3.1"
    assert (status.where, status.path) == ("ComfyUI/A1111 folder", str(anime))
    # A configured default that is a path (--models tiny) counts when it exists.
    status = check_need(sdxl, catalogue, {}, preferred=str(anime))
    assert status.ready and status.where == "configured path"
    # The adapters are not interchangeable: Plus does not stand in for Plus-Face.
    entry = catalogue.get("ip-adapter-plus-sdxl-vit-h")
    (p.models / entry.id / entry.files[0].path).parent.mkdir(parents=True)
    (p.models / entry.id / entry.files[0].path).write_bytes(b"x")
    found = locate_all(p, catalogue)
    statuses = [check_need(n, catalogue, found) for n in (face, plus, encoder)]
    assert [s.ready for s in statuses] == [False, False, False]  # Plus lacks its image encoder
    assert [m.id for m in to_download(statuses)] == ["clip-vit-h-image-encoder", "ip-adapter-plus-face-sdxl-vit-h"]


def test_a_need_met_by_an_alternative_of_another_kind(tmp_path):
    """AnimeAdapter's pose goes through an OpenPose ControlNet or a T2I-Adapter: with only the
    T2I-Adapter installed the need is met by it; with neither, the ControlNet is suggested."""
    from comic_studio.generation.registry import get_backend_class
    from comic_studio.weights.locate import locate_all
    from comic_studio.weights.needs import check_need, relevant_ids

    catalogue = load_catalogue()
    p = places(tmp_path)
    need = next(n for n in get_backend_class("anime").required_models if n.kind == "controlnet")
    status = check_need(need, catalogue, locate_all(p, catalogue))
    assert not status.ready and status.suggestion.id == "controlnet-openpose-sd15"
    t2i = catalogue.get("t2i-adapter-openpose-sd14")
    assert t2i.kind != need.kind and t2i.id in relevant_ids(need, catalogue)
    for f in t2i.files:
        (p.models / t2i.id / f.path).parent.mkdir(parents=True, exist_ok=True)
        (p.models / t2i.id / f.path).write_bytes(b"x")
    status = check_need(need, catalogue, locate_all(p, catalogue))
    assert status.ready and status.satisfied_by == "t2i-adapter-openpose-sd14"
