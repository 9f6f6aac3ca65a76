"""StableIdentity's official augmentations (colour jitter, flip, crop-resize, paste on black): the
masks move with the face, the numbers are the official code's, every draw comes from the given
generator (so a resumed run augments the same), and hue rotation matches HSV's definition."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from comic_studio.training.face_augment import (  # noqa: E402
    _shift_hue,
    colour_jitter,
    crop_and_resize,
    official_augment,
    paste_on_background,
)

S = 64


def _probe():
    """A picture that *is* its face mask (white face on black) and a hair band above it."""
    face = torch.zeros(1, 1, S, S)
    face[..., 20:44, 18:34] = 1.0  # off-centre: a flip moves it
    hair = torch.zeros(1, 1, S, S)
    hair[..., 12:20, 16:36] = 1.0
    return face * 2 - 1, face, hair


def test_the_masks_move_with_the_face_through_crop_and_paste():
    pixels, face, hair = _probe()
    rgb = pixels.expand(1, 3, S, S).clone()
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        p, f, h = paste_on_background(*crop_and_resize(rgb, face, hair, g), g)
        assert p.shape == rgb.shape and f.shape == face.shape
        # The picture is still its mask (the same resampling and placement): no drift between them.
        assert (f > 0.5).any() and torch.allclose(p, (2 * f - 1).expand_as(p), atol=1e-5)
        assert h.max() > 0.5 and float((h * f).sum()) < float(h.sum())  # the hair stays beside the face
        outside = (f[0, 0] == 0) & (p[0, 0] == -1)
        assert outside.sum() > 0  # pasted smaller (scale ≤ 1): some black background shows


def test_the_paste_scale_and_crop_follow_the_official_numbers():
    pixels, face, hair = _probe()
    rgb = torch.ones(1, 3, S, S)  # all "picture": its extent after the paste is the pasted size
    heights, widths = [], []
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        p, _f, _h = paste_on_background(rgb, face, hair, g)
        rows = (p[0, 0] > -1).any(dim=1).nonzero()
        cols = (p[0, 0] > -1).any(dim=0).nonzero()
        heights.append(int(rows.max() - rows.min() + 1))
        widths.append(int(cols.max() - cols.min() + 1))
    assert min(heights) >= S // 2 - 1 and max(heights) <= S  # U(0.5, 1.0) of the height
    assert all(w <= min(S, int(h * 1.1) + 1) and w >= int(h * 0.9) - 1 for h, w in zip(heights, widths, strict=True))


def test_the_same_generator_state_gives_the_same_augmentation_and_jitter_stays_in_range():
    pixels, face, hair = _probe()
    rgb = torch.rand(1, 3, S, S, generator=torch.Generator().manual_seed(9)) * 2 - 1
    a = official_augment(rgb, face, hair, torch.Generator().manual_seed(3), flip=True)
    b = official_augment(rgb, face, hair, torch.Generator().manual_seed(3), flip=True)
    c = official_augment(rgb, face, hair, torch.Generator().manual_seed(4), flip=True)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    jittered = colour_jitter(rgb, torch.Generator().manual_seed(1))
    assert jittered.min() >= -1 and jittered.max() <= 1 and not torch.equal(jittered, rgb)
    flipped = official_augment(rgb, face, hair, torch.Generator().manual_seed(3), flip=False)
    assert not torch.equal(flipped[1], a[1])  # the flip draw mirrors the masks too


def test_hue_rotation_is_hsvs():
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    assert torch.allclose(_shift_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).reshape(1, 3, 1, 1), atol=1e-6)
    gray = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(_shift_hue(gray, 0.01), gray)  # no saturation: no hue to turn
    mixed = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_shift_hue(mixed, 0.0), mixed, atol=1e-6)
