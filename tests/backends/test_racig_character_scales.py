"""Per-character IP-Adapter strengths on the tiny kit: a character's own face/body scale overrides
the backend's, the panel's ``character_scales`` still wins, and the number really reaches the
adapter processors on the UNet during the run."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_racig_support import REFS, as_array, build_kit, characters, kit_settings, panel_request  # noqa: E402

from comic_studio.backends.racig import RacigBackend  # noqa: E402
from comic_studio.backends.racig.adapters import character_scale, reference_images_setting  # noqa: E402

ALL_REFS = reference_images_setting(REFS)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def backend():
    return RacigBackend()


def settings(kit, **extra):
    tiny, strong = kit
    return kit_settings(tiny, strong, **{"reference_images": ALL_REFS, **extra})


def _with_scales(face=None, body=None, who=1):
    chars = characters(2)
    chars[who] = chars[who].model_copy(update={"face_scale": face, "body_scale": body})
    return chars


def test_precedence_panel_override_then_character_then_backend():
    assert character_scale(0.3, 1.5, 0.7) == 0.3
    assert character_scale(None, 1.5, 0.7) == 1.5
    assert character_scale(None, None, 0.7) == 0.7
    assert character_scale(None, 0.0, 0.7) == 0.0  # 0 is a real strength, not "unset"


def test_a_character_scale_of_zero_equals_no_references(kit, backend):
    """Same expectation as the "unused slot" test: Ben without references, and Ben with references
    at his own strength 0, are pixel-identical (both leave him off the adapters)."""
    s = settings(kit)
    no_refs = characters(2)
    no_refs[1] = no_refs[1].model_copy(update={"face_refs": [], "body_refs": []})
    without = backend.generate(panel_request(s, characters=no_refs))
    zeroed = backend.generate(panel_request(s, characters=_with_scales(0.0, 0.0)))
    assert np.array_equal(as_array(without.image), as_array(zeroed.image))
    plain = backend.generate(panel_request(s))
    assert not np.array_equal(as_array(plain.image), as_array(zeroed.image)), "Ben's references had no effect at all"


def test_the_character_scale_reaches_the_adapter_and_the_panel_override_wins(kit, backend):
    s = settings(kit, steps=2, face_scale=0.7, body_scale=0.6)
    seen: list = []

    def on_step(step, total, preview):
        # While the job runs, the adapters are attached to the shared UNet: read their scales.
        unet = next(v for k, v in backend.resources.models._items.items() if k.component == "unet")
        scales = [p.scale for p in unet.attn_processors.values() if hasattr(p, "to_k_ip")]
        seen.append(scales[0])
        return True

    backend.generate(panel_request(s, characters=_with_scales(face=1.25, body=0.4)), on_step)
    face, body = seen[-1]
    assert face == [0.7, 1.25] and body == [0.6, 0.4]  # Ana: the backend's; Ben: his own

    seen.clear()
    override = '{"ben": {"face": 0.2}}'
    backend.generate(
        panel_request({**s, "character_scales": override}, characters=_with_scales(face=1.25, body=0.4)), on_step
    )
    face, body = seen[-1]
    assert face == [0.7, 0.2] and body == [0.6, 0.4]  # the panel's override beats Ben's face strength only
