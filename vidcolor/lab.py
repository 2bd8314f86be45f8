"""sRGB <-> CIE Lab (D65) on torch tensors, and the quantized ab gamut: the network's and training's colour math.

Everything here works on tensors shaped (..., 3, H, W) (channel dim = -3), so the same code serves the
network (batched, differentiable) and training. The per-frame side, in numpy and OpenCV, is color.py's;
both use its constants.

Ranges at the boundary:
    sRGB:  float in [0, 1]
    Lab:   L in [0, 100], a and b roughly in [-110, 110]
"""

from __future__ import annotations

import torch

from .color import _EPS, _KAPPA, _RGB2XYZ, _WHITE


def _matrix(rows: tuple, ref: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32, device=ref.device)


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector by m: x is (..., 3, H, W)."""
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _power(x: torch.Tensor, p: float) -> torch.Tensor:
    """x ** p for x > 0, as exp(p log x): torch's pow with a fractional exponent is 3-5x slower on a CPU
    (0.31-0.56 against 0.10-0.11 ms for a 256x160 RGB frame, one thread, with AMX and held to AVX2), and
    a fed-back frame's hint goes through two (model.HintGate). Within 1e-6 relative of pow."""
    return torch.exp(p * torch.log(x))


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, _power((x.clamp(min=0.04045) + 0.055) / 1.055, 2.4))


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * _power(x.clamp(min=0.0031308), 1 / 2.4) - 0.055)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab."""
    rgb = rgb.float()
    xyz = _apply(_matrix(_RGB2XYZ, rgb), srgb_to_linear(rgb))
    white = torch.tensor(_WHITE, device=rgb.device).view(3, 1, 1)
    t = xyz / white
    f = torch.where(t > _EPS, _power(t.clamp(min=_EPS), 1 / 3), (_KAPPA * t + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-3)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)
    return lab


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> (..., 3, H, W) sRGB clipped to [0, 1]."""
    lab = lab.float()
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=-3)
    t = torch.where(f > 6.0 / 29.0, f**3, (116.0 * f - 16.0) / _KAPPA)
    white = torch.tensor(_WHITE, device=lab.device).view(3, 1, 1)
    xyz = t * white
    m = torch.linalg.inv(_matrix(_RGB2XYZ, lab).double()).float()
    return linear_to_srgb(_apply(m, xyz))


def lightness(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB -> (..., 1, H, W) Lab L in [0, 100]."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def gray_rgb(L: torch.Tensor) -> torch.Tensor:
    """(..., 1, H, W) L in [0, 100] -> (..., 3, H, W) neutral sRGB with that lightness."""
    zeros = torch.zeros_like(L)
    return lab_to_rgb(torch.cat((L, zeros, zeros), dim=-3))


def join_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L (..., 1, H, W) and ab (..., 2, H, W) -> sRGB (..., 3, H, W)."""
    return lab_to_rgb(torch.cat((L, ab), dim=-3))


def gamut_bins(grid: float = 10.0, limit: float = 110.0, samples: int = 64) -> torch.Tensor:
    """Centres of the ab grid cells that in-gamut sRGB colours reach: (Q, 2).

    Zhang et al. quantize ab with a 10-unit grid and keep the Q=313 cells that
    ImageNet colours fall in. We reproduce that set from the sRGB gamut itself
    (a dense sample of the RGB cube), so it needs no data and is deterministic.
    """
    axis = torch.linspace(0.0, 1.0, samples)
    r, g, b = torch.meshgrid(axis, axis, axis, indexing="ij")
    rgb = torch.stack((r, g, b)).reshape(3, 1, -1)
    ab = rgb_to_lab(rgb)[1:].reshape(2, -1).T
    idx = torch.floor((ab + limit) / grid).long()
    n = int(round(2 * limit / grid))
    idx = idx.clamp(0, n - 1)
    used = torch.unique(idx[:, 0] * n + idx[:, 1])
    centres = torch.stack((used // n, used % n), dim=1).float() * grid - limit + grid / 2
    return centres
