"""Issue 15 item 9 through the racig backend on the tiny kit: a pose imported from RaCig data with
its segmentation maps conditions the IP-Adapters under the segmentation's masks (not skeleton
capsules), and outfit references are embedded cut out by the offline person segmenter."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402
from test_racig_support import HASHES, REFS, as_array, build_kit, characters, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.generation.backend_api import BackendSettingsError  # noqa: E402
from comic_studio.poses.importing import import_racig  # noqa: E402
from comic_studio.poses.user_library import POSES_DIR_ENV  # noqa: E402
from comic_studio.testing.racig_data import write_racig_sample  # noqa: E402
from comic_studio.vision.detect import available_detectors, person_on_white  # noqa: E402

PHOTO = Path(__file__).parents[1] / "vision" / "fixtures" / "emma_1female.png"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


@pytest.fixture
def piers(tmp_path, monkeypatch):
    """A two-person RaCig picture with its maps, imported as ``user:piers/a-1``."""
    monkeypatch.setenv(POSES_DIR_ENV, str(tmp_path / "user-poses"))
    write_racig_sample(tmp_path / "data", "a/1", [(1, 400.0), (2, 900.0)])
    assert import_racig(tmp_path / "data", "piers").segmented == 1
    return "user:piers/a-1"


def items(backend, request):
    checked = backend.validate_settings(request.backend_settings)
    cond = backend.conditioning(request, checked)
    return cond, backend._regional_items(request, checked, cond)


def test_segmentation_masks_condition_the_adapters(kit, piers):
    tiny, strong = kit
    backend = RacigBackend()
    settings = kit_settings(tiny, strong, reference_images=reference_images_setting(REFS))
    request = panel_request(settings, pose_id=piers, width=168, height=96)
    cond, (face, body, _negative) = items(backend, request)
    skeleton = panel_request({**settings, "masks_from": "skeleton"}, pose_id=piers, width=168, height=96)
    skel_cond, (skel_face, skel_body, _) = items(backend, skeleton)
    # Each character's body reference is under its segmentation body mask, which holds far more of
    # the (coat-wide) person than the skeleton's capsules.
    assert len(body) == len(skel_body) == 2
    for i in range(2):
        assert np.array_equal(body[i][1], cond.body_masks[i]) and np.array_equal(face[i][1], cond.head_masks[i])
        assert body[i][1].sum() > 1.5 * skel_body[i][1].sum()
    # The whole render goes through them: the two ways give different pictures.
    a = backend.generate(request)
    b = backend.generate(skeleton)
    assert a.pose_id == b.pose_id == piers
    assert not np.array_equal(as_array(a.image), as_array(b.image))
    with pytest.raises(BackendSettingsError, match="masks_from"):
        backend.validate_settings({**settings, "masks_from": "sapiens"})


@pytest.mark.skipif("mediapipe-segmentation" not in available_detectors(), reason="needs MediaPipe's segmenter")
def test_outfit_references_are_embedded_cut_out_by_the_person_segmenter(kit):
    tiny, strong = kit
    photo = PHOTO.read_bytes()
    digest = hashlib.sha256(photo).hexdigest()
    refs = reference_images_setting({**dict(zip(HASHES, REFS)), digest: photo})
    chars = characters(1)
    chars[0] = chars[0].model_copy(update={"body_refs": [digest], "face_refs": [HASHES[0]]})
    backend = RacigBackend()
    settings = kit_settings(tiny, strong, reference_images=refs)
    _cond, (face, body, _) = items(backend, panel_request(settings, n=1, characters=chars))
    _cond, (face_plain, body_plain, _) = items(
        backend, panel_request({**settings, "outfit_cutout": "none"}, n=1, characters=chars)
    )
    encoder = backend._image_encoder(str(tiny.image_encoder))
    cut = io.BytesIO()
    person_on_white(Image.open(PHOTO)).save(cut, "PNG")
    # The default embeds the photo with its background whitened; "none" the photo as it is.
    assert torch.allclose(body[0][0], encoder.embed(cut.getvalue()))
    assert torch.allclose(body_plain[0][0], encoder.embed(photo))
    assert not torch.allclose(body[0][0], body_plain[0][0])
    # Face references are never cut out, and both embeddings of the photo stay cached apart.
    assert torch.equal(face[0][0], face_plain[0][0])
    computed = backend.embeddings.computed
    items(backend, panel_request(settings, n=1, characters=chars))
    assert backend.embeddings.computed == computed
