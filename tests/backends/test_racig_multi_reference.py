"""Several references of one character (issue 15, item 9, second half): each reference is its own
image on the adapter under the character's mask, sharing the character's strength — combined after
the Resampler as RaCig combines them — instead of averaging ViT patch tokens before it (kept as
``multi_reference="mean-patches"``). Tiny kit, CPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import HASHES, REFS, as_array, build_kit, characters, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.backends.racig.adapters import reference_images_setting  # noqa: E402
from comic_studio.generation.backend_api import BackendSettingsError  # noqa: E402


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


def two_face_refs(kit, **extra):
    tiny, strong = kit
    settings = kit_settings(tiny, strong, reference_images=reference_images_setting(REFS), face_scale=0.8, **extra)
    chars = characters(2)
    chars[0] = chars[0].model_copy(update={"face_refs": [HASHES[0], HASHES[8]]})
    return panel_request(settings, characters=chars)


def items(backend, request):
    checked = backend.validate_settings(request.backend_settings)
    return backend._regional_items(request, checked, backend.conditioning(request, checked))


def test_each_reference_is_an_image_under_the_same_mask_sharing_the_strength(kit):
    backend = RacigBackend()
    face, _body, _negative = items(backend, two_face_refs(kit))
    assert len(face) == 3  # Ana's two references, Ben's one
    (ana_1, mask_1, scale_1), (ana_2, mask_2, scale_2), (_ben, _mask_b, scale_b) = face
    assert np.array_equal(mask_1, mask_2) and scale_1 == scale_2 == pytest.approx(0.4) and scale_b == 0.8
    assert not torch.equal(ana_1, ana_2)
    mean, _body, _negative = items(backend, two_face_refs(kit, multi_reference="mean-patches"))
    assert len(mean) == 2 and torch.equal(mean[0][0], torch.stack([ana_1, ana_2]).mean(0)) and mean[0][2] == 0.8


def test_the_two_ways_render_differently_and_a_single_reference_alike(kit):
    backend = RacigBackend()
    images = as_array(backend.generate(two_face_refs(kit)).image)
    patches = as_array(backend.generate(two_face_refs(kit, multi_reference="mean-patches")).image)
    assert not np.array_equal(images, patches)
    tiny, strong = kit
    one = kit_settings(tiny, strong, reference_images=reference_images_setting(REFS))
    assert np.array_equal(
        as_array(backend.generate(panel_request(one)).image),
        as_array(backend.generate(panel_request({**one, "multi_reference": "mean-patches"})).image),
    )
    with pytest.raises(BackendSettingsError, match="multi_reference"):
        backend.validate_settings({**one, "multi_reference": "median"})
