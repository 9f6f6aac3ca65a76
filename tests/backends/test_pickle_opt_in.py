"""Pickled weights are the user's choice, never a project's: a project that stores ``allow_pickle``
and names a pickled checkpoint is refused through the CLI with the file and the setting to change
named; the app setting or ``--allow-pickle`` lets it past the pickle check. racig refuses ControlNet,
image-encoder and IP-Adapter folders/files that hold only pickled ``.bin`` weights unless the user
allowed them, and then loads real weights (read with weights_only=True: a payload never runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from comic_studio.backends.racig import adapters as ipa  # noqa: E402
from comic_studio.backends.racig.backend import RacigBackend  # noqa: E402
from comic_studio.cli import main  # noqa: E402
from comic_studio.core import editing  # noqa: E402
from comic_studio.core.document import Document  # noqa: E402
from comic_studio.core.layout import page_format  # noqa: E402
from comic_studio.generation.models.pickle_policy import allow_pickles_for_this_process  # noqa: E402
from comic_studio.generation.request import GenerationError  # noqa: E402
from comic_studio.workflows.story import story_to_document  # noqa: E402


class _Payload:
    """Unpickling this would create the marker file: the proof that nothing was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(autouse=True)
def app_settings(tmp_path, monkeypatch):
    """A config folder of the test's own (the user's real settings are never read); returns a
    function that writes its settings.json."""
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("COMIC_STUDIO_CONFIG_DIR", str(folder))
    yield lambda **values: (folder / "settings.json").write_text(json.dumps(values))
    allow_pickles_for_this_process(None)


def _project(tmp_path: Path, **settings) -> Path:
    doc = story_to_document("Ana walks in.", [], document=Document.new("T", page_format("us-comic")))
    panel = doc.project.pages[0].panels_in_order()[0]
    editing.set_panel_fields(doc, panel.id, "settings", backend="sdxl", backend_settings=settings)
    return doc.save(tmp_path / "p.comic")


def test_a_project_cannot_opt_itself_into_pickles(tmp_path, capsys, app_settings):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": _Payload(marker)}, evil)
    path = _project(tmp_path, model=str(evil), allow_pickle=True)
    args = ["render", str(path), "--out", str(tmp_path / "out.pdf"), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "evil.ckpt: .ckpt files are Python pickles" in err and "'Allow pickled weights' in Edit → Preferences" in err
    # The user's own choice lets it past the pickle check (a pickled single-file checkpoint is then
    # refused for another reason: diffusers would unpickle it outside the weights_only guard).
    assert main([*args, "--allow-pickle"]) == 1
    assert "pickled single-file checkpoints are not supported" in capsys.readouterr().err
    app_settings(allow_pickled_weights=True)
    assert main(args) == 1
    assert "pickled single-file checkpoints are not supported" in capsys.readouterr().err
    assert not marker.exists()


def _as_bin(folder: Path, dest: Path, safetensors_name: str, bin_name: str) -> Path:
    """A copy of a diffusers/transformers folder whose weights are a real pickled ``.bin``."""
    shutil.copytree(folder, dest)
    state = load_file(str(dest / safetensors_name))
    (dest / safetensors_name).unlink()
    torch.save(state, dest / bin_name)
    return dest


def test_racig_refuses_pickled_bin_folders_until_the_user_allows_them(tiny_kit, tmp_path):
    backend = RacigBackend()
    controlnet = _as_bin(tiny_kit.controlnet, tmp_path / "cn", "diffusion_pytorch_model.safetensors",
                         "diffusion_pytorch_model.bin")  # fmt: skip
    encoder = _as_bin(tiny_kit.image_encoder, tmp_path / "enc", "model.safetensors", "pytorch_model.bin")
    with pytest.raises(GenerationError, match=r"cn/diffusion_pytorch_model.bin: the OpenPose ControlNet is a pickled"
                                              r" .bin file.*'Allow pickled weights'"):  # fmt: skip
        backend._controlnet(str(controlnet))
    with pytest.raises(GenerationError, match=r"enc/pytorch_model.bin: the IP-Adapter image encoder is a pickled"):
        backend._image_encoder(str(encoder))
    allow_pickles_for_this_process(True)
    loaded = backend._controlnet(str(controlnet))
    reference = load_file(str(tiny_kit.controlnet / "diffusion_pytorch_model.safetensors"))
    name = next(iter(reference))
    assert torch.equal(loaded.state_dict()[name].float(), reference[name].float())
    assert backend._image_encoder(str(encoder)).model is not None


def test_racig_ip_adapter_bin_needs_the_opt_in_and_never_runs_a_payload(tiny_kit, tmp_path):
    backend = RacigBackend()
    weights = tiny_kit.ip_adapter / "sdxl_models" / tiny_kit.ip_adapter_weights[0]
    flat = load_file(str(weights))
    nested: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        nested[head][rest] = value
    good = tmp_path / "ip-adapter-plus_sdxl_vit-h.bin"
    torch.save(nested, good)
    with pytest.raises(GenerationError, match=r"setting 'ip_adapter_plus': .*ip-adapter-plus_sdxl_vit-h.bin: the "
                                              r"IP-Adapter is a pickled .bin file.*--allow-pickle"):  # fmt: skip
        backend._adapter_state(str(good), "ip_adapter_plus")
    allow_pickles_for_this_process(True)
    state = backend._adapter_state(str(good), "ip_adapter_plus")
    assert state["ip_adapter"].keys() == ipa.read_adapter_state(weights)["ip_adapter"].keys()
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.bin"
    torch.save({"image_proj": {}, "ip_adapter": _Payload(marker)}, evil)
    with pytest.raises(GenerationError, match="evil.bin is not readable as weights"):
        backend._adapter_state(str(evil), "ip_adapter_face")
    assert not marker.exists()
