"""StableIdentity's training augmentations of the face photo, in pixel space, with its masks.

The seed paper (002) names no augmentation; the official code does four, in this order
(qinghew/StableIdentity ``datasets_face/face_id.py``, read at 5426350; research note
wave2_methods_engine_sota.md §2.2), and they are followed here with its numbers:

1. **colour jitter**: brightness, contrast and saturation factors uniform in [0.8, 1.2], hue shift
   uniform in [−0.01, 0.01] turns, applied in a random order (torchvision's ``ColorJitter``, whose
   definitions are reimplemented below: the app does not depend on torchvision);
2. **horizontal flip** with probability 0.5 (image and masks; the face encoder's input too — the
   trainer uses the flipped photo's CLS embedding on such a step);
3. **random crop and resize**: a square crop of side ``S − S // 4`` at a uniform position, resized
   back to ``S`` (bicubic, corners aligned), masks alike;
4. **paste on a background**: the picture resized to a height ``h · U(0.5, 1.0)`` and width
   ``height · U(0.9, 1.1)`` (at most the picture's), pasted at a uniform position on −1 (black),
   the masks on 0.

Every random draw comes from the ``generator`` passed in (the trainer's augmentation generator,
held by the checkpoint), so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

JITTER = (0.8, 1.2)  # brightness, contrast, saturation: the official ColorJitter ranges
HUE = 0.01  # the official hue range, in turns
PASTE_SCALE = (0.5, 1.0)  # the official _add_bg scale
PASTE_ASPECT = (0.9, 1.1)


def _uniform(generator: Any, low: float, high: float) -> float:
    import torch

    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: Any, high: int) -> int:
    """Uniform in [0, high) (0 when ``high`` ≤ 0)."""
    import torch

    return int(torch.randint(0, high, (), generator=generator)) if high > 0 else 0


def _gray(rgb: Any) -> Any:
    """ITU-R 601 luma, as torchvision's ``rgb_to_grayscale``: [.., 1, H, W]."""
    r, g, b = rgb.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _shift_hue(rgb: Any, shift: float) -> Any:
    """Rotate the hue of ``rgb`` (in [0, 1]) by ``shift`` turns through HSV, as torchvision does."""
    import torch

    r, g, b = rgb.unbind(dim=-3)
    high, _ = rgb.max(dim=-3)
    low, _ = rgb.min(dim=-3)
    delta = high - low
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(high == r, ((g - b) / safe) % 6, torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    saturation = torch.where(
        high > 0, delta / torch.where(high > 0, high, torch.ones_like(high)), torch.zeros_like(high)
    )
    hue = (hue + shift) % 1.0
    i = torch.floor(hue * 6.0)
    f = hue * 6.0 - i
    p, q, t = high * (1 - saturation), high * (1 - saturation * f), high * (1 - saturation * (1 - f))
    i = i.long() % 6
    out_r = torch.stack([high, q, p, p, t, high], dim=0).gather(0, i[None]).squeeze(0)
    out_g = torch.stack([t, high, high, q, p, p], dim=0).gather(0, i[None]).squeeze(0)
    out_b = torch.stack([p, p, t, high, high, q], dim=0).gather(0, i[None]).squeeze(0)
    return torch.stack([out_r, out_g, out_b], dim=-3)


def colour_jitter(pixels: Any, generator: Any) -> Any:
    """Step 1 on ``pixels`` in [−1, 1] ([1, 3, H, W])."""
    import torch

    rgb = (pixels + 1) / 2
    order = torch.randperm(4, generator=generator).tolist()
    factors = [_uniform(generator, *JITTER) for _ in range(3)] + [_uniform(generator, -HUE, HUE)]
    for op in order:
        if op == 0:  # brightness
            rgb = (rgb * factors[0]).clamp(0, 1)
        elif op == 1:  # contrast: towards the mean gray level
            mean = _gray(rgb).mean(dim=(-3, -2, -1), keepdim=True)
            rgb = (factors[1] * rgb + (1 - factors[1]) * mean).clamp(0, 1)
        elif op == 2:  # saturation: towards the gray image
            rgb = (factors[2] * rgb + (1 - factors[2]) * _gray(rgb)).clamp(0, 1)
        else:
            rgb = _shift_hue(rgb, factors[3])
    return rgb * 2 - 1


def _resize(x: Any, size: tuple[int, int]) -> Any:
    import torch.nn.functional as F  # noqa: N812

    return F.interpolate(x, size=size, mode="bicubic", align_corners=True)


def crop_and_resize(pixels: Any, face: Any, hair: Any, generator: Any) -> tuple[Any, Any, Any]:
    """Step 3: a square crop of side ``S − S // 4`` at a uniform position, resized back."""
    height, width = pixels.shape[-2:]
    side = width - width // 4  # the official crop_size, from the width, square
    top, left = _randint(generator, height - side + 1), _randint(generator, width - side + 1)
    window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
    out = [_resize(x[window], (height, width)) for x in (pixels, face, hair)]
    return out[0], out[1], out[2]


def paste_on_background(pixels: Any, face: Any, hair: Any, generator: Any) -> tuple[Any, Any, Any]:
    """Step 4: the picture smaller, at a uniform position, on −1; the masks on 0."""
    import torch

    height, width = pixels.shape[-2:]
    rh = min(int(height * _uniform(generator, *PASTE_SCALE)), height)
    rw = min(int(rh * _uniform(generator, *PASTE_ASPECT)), width)
    rh, rw = max(rh, 1), max(rw, 1)
    top = _randint(generator, height - rh)
    left = _randint(generator, width - rw)
    out = []
    for x, fill in ((pixels, -1.0), (face, 0.0), (hair, 0.0)):
        canvas = torch.full_like(x, fill)
        canvas[..., top : top + rh, left : left + rw] = _resize(x, (rh, rw))
        out.append(canvas)
    return out[0], out[1], out[2]


def official_augment(pixels: Any, face: Any, hair: Any, generator: Any, *, flip: bool) -> tuple[Any, Any, Any]:
    """Steps 1–4 on one photo (``pixels`` [1, 3, S, S] in [−1, 1]; ``face``, ``hair`` [1, 1, S, S]
    in {0, 1}); ``flip``: step 2's draw, made by the caller (it also picks the CLS embedding)."""
    pixels = colour_jitter(pixels, generator)
    if flip:
        pixels, face, hair = pixels.flip(-1), face.flip(-1), hair.flip(-1)
    pixels, face, hair = crop_and_resize(pixels, face, hair, generator)
    return paste_on_background(pixels, face, hair, generator)
