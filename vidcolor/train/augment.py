"""Training-time corruptions, batched in torch.

Two jobs:
- `archival_look`: make the lightness input look like old film (grain, blur,
  contrast and gamma changes, vignetting), so real archival footage is in
  distribution. The target colours are not touched.
- `sparse_points`: a user's clicks, as Zhang et al. 2017 trained them: a few small square patches, each
  the mean true colour under it, gray everywhere else.
- `degrade_hint`: turn ground-truth chroma into what a warped previous-frame
  colorization looks like (shifted, warped, blurred, holed, desaturated,
  hue-shifted, sometimes plainly wrong), so the model learns to follow a good
  hint and repair a bad one.

Shapes: L is (B, 1, H, W) in [0, 100]; ab is (B, 2, H, W) in Lab units.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _rand(b: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(b, generator=g) * (hi - lo) + lo


def _chance(b: int, p: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(b, generator=g) < p


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur; sigma (B,) in pixels (0 = none)."""
    b, c, h, w = x.shape
    r = 4
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, 2r+1)
    xs = x.reshape(1, b * c, h, w)
    kx = k.repeat_interleave(c, 0)[:, None, None, :]
    ky = k.repeat_interleave(c, 0)[:, None, :, None]
    xs = F.conv2d(F.pad(xs, (r, r, 0, 0), mode="replicate"), kx, groups=b * c)
    xs = F.conv2d(F.pad(xs, (0, 0, r, r), mode="replicate"), ky, groups=b * c)
    return xs.reshape(b, c, h, w)


def smooth_noise(b: int, h: int, w: int, cells: int, g: torch.Generator) -> torch.Tensor:
    """Low-frequency noise in [0, 1]: (B, 1, H, W), from a cells x cells grid upsampled."""
    n = torch.rand(b, 1, cells, cells, generator=g)
    return F.interpolate(n, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def archival_look(L: torch.Tensor, g: torch.Generator, p: float = 0.6) -> torch.Tensor:
    """L (B, 1, H, W) in [0, 100] -> an aged copy, same shape and range."""
    b, _, h, w = L.shape
    on = _chance(b, p, g)[:, None, None, None]
    x = L / 100.0
    gamma = _rand(b, 0.7, 1.4, g)[:, None, None, None]
    x = x.clamp(min=1e-4) ** gamma
    contrast = _rand(b, 0.7, 1.3, g)[:, None, None, None]
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + _rand(b, -0.08, 0.08, g)[:, None, None, None]
    sigma = _rand(b, 0.0, 1.3, g) * _chance(b, 0.4, g)
    x = gaussian_blur(x, sigma)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    vignette = 1.0 - _rand(b, 0.0, 0.3, g)[:, None, None, None] * (xx**2 + yy**2)[None, None] / 2
    x = torch.where(_chance(b, 0.3, g)[:, None, None, None], x * vignette, x)
    grain = torch.randn(b, 1, h, w, generator=g) * _rand(b, 0.0, 0.05, g)[:, None, None, None]
    x = x + grain * _chance(b, 0.6, g)[:, None, None, None]
    return torch.where(on, x.clamp(0, 1) * 100.0, L)


def _warp_grid(b: int, h: int, w: int, g: torch.Generator, max_shift: float) -> torch.Tensor:
    """A random affine + elastic sampling grid for grid_sample: (B, H, W, 2) in [-1, 1] coordinates."""
    ang = _rand(b, -3.0, 3.0, g) * math.pi / 180
    scale = _rand(b, 0.97, 1.03, g)
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * max_shift
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(ang)
    theta[:, 0, 1] = -scale * torch.sin(ang) * h / w
    theta[:, 1, 0] = scale * torch.sin(ang) * w / h
    theta[:, 1, 1] = scale * torch.cos(ang)
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    amp = _rand(b, 0.0, 3.0, g)[:, None, None, None]  # elastic amplitude in pixels
    elastic = (torch.rand(b, 2, 5, 5, generator=g) * 2 - 1) * amp
    elastic = F.interpolate(elastic, size=(h, w), mode="bicubic", align_corners=False)
    elastic = elastic.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])
    return grid + elastic


def hole_mask(b: int, h: int, w: int, g: torch.Generator, lo: float = 0.1, hi: float = 0.6) -> torch.Tensor:
    """1 where the hint survives, 0 in holes covering lo..hi of the area: (B, 1, H, W)."""
    noise = smooth_noise(b, h, w, 6, g)
    frac = _rand(b, lo, hi, g)
    flat = noise.reshape(b, -1).sort(dim=1).values
    idx = (frac * (flat.shape[1] - 1)).long().clamp(0, flat.shape[1] - 1)
    thresh = flat.gather(1, idx[:, None])[:, 0]
    return (noise >= thresh[:, None, None, None]).float()


def degrade_hint(ab: torch.Tensor, g: torch.Generator, max_shift: float = 6.0, clean: float = 0.0) -> torch.Tensor:
    """Ground-truth ab (B, 2, H, W) -> a plausible warped-previous-frame hint, same shape; 0 = no hint.
    A share `clean` of the samples are only warped and holed (a user's keyframe carried by flow), to see
    whether the spoiled hints teach the network to hedge on right ones too (given the truth itself as its
    hint it gains +6.8 dB; 900 steps with half the hints clean did not change that: docs/experiments.md)."""
    b, _, h, w = ab.shape
    warped = F.grid_sample(ab, _warp_grid(b, h, w, g, max_shift), mode="bilinear", padding_mode="zeros", align_corners=False)
    mild = _chance(b, clean, g)[:, None, None, None]
    return torch.where(mild, warped * hole_mask(b, h, w, g), _spoil(warped, g))


def _spoil(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A warped hint (B, 2, H, W) -> blurred, re-saturated, hue-shifted, holed, sometimes partly wrong."""
    b, _, h, w = x.shape
    x = gaussian_blur(x, _rand(b, 0.0, 2.0, g) * _chance(b, 0.5, g))
    sat = torch.where(_chance(b, 0.5, g), saturation_errors(b, g), torch.ones(b))
    hue = _rand(b, -15.0, 15.0, g) * _chance(b, 0.4, g) * math.pi / 180
    c, s = torch.cos(hue)[:, None, None], torch.sin(hue)[:, None, None]
    a2, b2 = x[:, 0], x[:, 1]
    x = torch.stack((c * a2 - s * b2, s * a2 + c * b2), dim=1) * sat[:, None, None, None]
    x = x * hole_mask(b, h, w, g)
    return _wrong_patch(x, g)


def saturation_errors(b: int, g: torch.Generator) -> torch.Tensor:
    """(b,) factors a spoiled hint's chroma is scaled by, both ways, such that the truth is on average the
    hint itself: truth / hint is uniform in [0.7, 1.3], mean 1. A hint only ever too pale teaches the network
    to boost every hint, and fed back frame after frame that drifts; so did factors uniform in [0.65, 1.35],
    whose mean is 1 but the truth's mean 1.044 x the hint (fed its own colours back 40 times on a still frame,
    the shipped network's regression grew 1.87x in chroma; docs/experiments.md)."""
    return 1.0 / _rand(b, 0.7, 1.3, g)


def _wrong_patch(x: torch.Tensor, g: torch.Generator, p: float = 0.25) -> torch.Tensor:
    """Now and then paint a rectangle with a random, wrong colour."""
    b, _, h, w = x.shape
    out = x.clone()
    for i in torch.nonzero(_chance(b, p, g)).flatten().tolist():
        ph, pw = int(_rand(1, 0.1, 0.4, g) * h), int(_rand(1, 0.1, 0.4, g) * w)
        y0, x0 = int(torch.randint(0, h - ph + 1, (1,), generator=g)), int(torch.randint(0, w - pw + 1, (1,), generator=g))
        colour = (torch.rand(2, generator=g) * 2 - 1) * 60
        out[i, :, y0 : y0 + ph, x0 : x0 + pw] = colour[:, None, None]
    return out


def sparse_points(ab: torch.Tensor, g: torch.Generator, max_points: int = 50, p: float = 1 / 8) -> torch.Tensor:
    """Ground-truth ab (B, 2, H, W) -> hints of a few clicks, same shape; 0 = no hint: n ~ Geometric(p) points
    a sample (1 + failures, capped at max_points: most samples a few), squares of 1 to 9 px."""
    u = torch.rand(ab.shape[0], generator=g).clamp(min=1e-6)
    counts = (torch.log(u) / math.log(1 - p)).floor().long().add(1).clamp(max=max_points)
    return point_hints(ab, counts.tolist(), g, (1, 9))


def point_hints(ab: torch.Tensor, counts: list[int], g: torch.Generator, sizes: tuple[int, int]) -> torch.Tensor:
    """ab (B, 2, H, W) -> counts[i] squares of sizes[0]..sizes[1] px in sample i at uniform positions, each
    coloured with the mean ab under it; 0 elsewhere. Same shape."""
    b, _, h, w = ab.shape
    out = torch.zeros_like(ab)
    for i, n in enumerate(counts):
        side = torch.randint(sizes[0], sizes[1] + 1, (n,), generator=g).tolist()
        where = torch.rand(n, 2, generator=g).tolist()
        for s, (fy, fx) in zip(side, where, strict=True):
            y0, x0 = int(fy * (h - s + 1)), int(fx * (w - s + 1))
            out[i, :, y0 : y0 + s, x0 : x0 + s] = ab[i, :, y0 : y0 + s, x0 : x0 + s].mean(dim=(1, 2), keepdim=True)
    return out
