"""Colour spaces in torch: sRGB <-> CIE Lab (D65), and the quantized ab gamut.

Everything here works on tensors shaped (..., 3, H, W) (channel dim = -3), so
the same code serves the network (batched, differentiable) and the pipeline.

Ranges at the boundary:
    sRGB:  float in [0, 1]
    Lab:   L in [0, 100], a and b roughly in [-110, 110]
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

# D65 white point and the sRGB -> XYZ matrix (IEC 61966-2-1).
_RGB2XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE = (0.950456, 1.0, 1.088754)
_EPS = 216.0 / 24389.0  # (6/29)^3: where the cube root switches to a line
_KAPPA = 24389.0 / 27.0


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


def soft_histogram(ab: torch.Tensor, bins: torch.Tensor, sigma: float = 5.0, chunk: int = 8192) -> torch.Tensor:
    """ab (N, 2) Lab units -> (Q,) their distribution over the bins (Q, 2), each colour shared among the
    bins near it by a Gaussian of `sigma` Lab units, so nearby colours count as alike. The one measure of
    a colour distribution: a reference photo's and the output's are compared with it (reference.py)."""
    total = torch.zeros(len(bins), dtype=torch.float32)
    for i in range(0, len(ab), chunk):  # (chunk, Q) at a time: a 256x256 photo is 65k colours
        d2 = torch.cdist(ab[i : i + chunk].float(), bins.float()) ** 2
        total += torch.softmax(-d2 / (2 * sigma**2), dim=1).sum(0)
    return total / max(1, len(ab))


# --- numpy / OpenCV side, used per frame by the pipeline ----------------------------------


def gray_to_lightness_lut() -> np.ndarray:
    """(256,) float32: Lab L of the neutral sRGB gray with each 8-bit value."""
    v = torch.arange(256, dtype=torch.float32).div(255.0).view(1, 1, 256).expand(3, 1, 256)
    return rgb_to_lab(v)[0, 0].numpy().astype(np.float32)


# BT.709 Y'CbCr, limited range: what the encoder is told the output is.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
FULL_TO_LIMITED_Y = np.clip(np.round(16.0 + np.arange(256) * 219.0 / 255.0), 0, 255).astype(np.uint8)


def chroma_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) float32 sRGB in [0, 1] -> limited-range BT.709 (Cb, Cr) planes, each (h, w) uint8."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = 128.0 + 224.0 * (b - y) / (2.0 * (1.0 - _KB))
    cr = 128.0 + 224.0 * (r - y) / (2.0 * (1.0 - _KR))
    return np.clip(cb + 0.5, 0, 255).astype(np.uint8), np.clip(cr + 0.5, 0, 255).astype(np.uint8)


def lab_planes_to_rgb(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """L (h, w) and ab (h, w, 2) float32 -> (h, w, 3) float32 sRGB in [0, 1]."""
    lab = np.dstack((L, ab)).astype(np.float32, copy=False)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)
