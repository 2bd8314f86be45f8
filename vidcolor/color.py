"""Colour spaces per frame, in numpy and OpenCV: sRGB <-> CIE Lab (D65), BT.709 chroma, colour histograms.

The network's and training's colour math on torch tensors is lab.py's, from the same constants. This side
imports no torch: the int8 engine and the pipeline run without it.

Ranges at the boundary:
    sRGB:  float in [0, 1]
    Lab:   L in [0, 100], a and b roughly in [-110, 110]
"""

from __future__ import annotations

import cv2
import numpy as np

# D65 white point and the sRGB -> XYZ matrix (IEC 61966-2-1).
_RGB2XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE = (0.950456, 1.0, 1.088754)
_EPS = 216.0 / 24389.0  # (6/29)^3: where the cube root switches to a line
_KAPPA = 24389.0 / 27.0


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> (..., 3) Lab, float32: lab.rgb_to_lab's formula (not OpenCV's, whose float
    path rounds differently), so the int8 engine's hint gate reads what the torch gate reads."""
    x = rgb.astype(np.float32, copy=False)
    curve = np.exp(np.float32(2.4) * np.log((np.maximum(x, 0.04045) + np.float32(0.055)) / np.float32(1.055)))
    linear = np.where(x <= 0.04045, x / np.float32(12.92), curve)
    # XYZ / white; einsum, not `@`: numpy's BLAS would start threads of its own beside the pipeline's (int8.Head).
    t = np.einsum("...j,ij->...i", linear, np.asarray(_RGB2XYZ, np.float32) / np.asarray(_WHITE, np.float32)[:, None])
    cube = np.exp(np.log(np.maximum(t, np.float32(_EPS))) / np.float32(3.0))
    f = np.where(t > _EPS, cube, (np.float32(_KAPPA) * t + np.float32(16.0)) / np.float32(116.0))
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), axis=-1).astype(np.float32)


def soft_histogram(ab: np.ndarray, bins: np.ndarray, sigma: float = 5.0, chunk: int = 8192) -> np.ndarray:
    """ab (N, 2) Lab units -> (Q,) float32, their distribution over the bins (Q, 2), each colour shared among
    the bins near it by a Gaussian of `sigma` Lab units, so nearby colours count as alike. The one measure of
    a colour distribution: a reference photo's and the output's are compared with it (reference.py)."""
    bins = bins.astype(np.float32, copy=False)
    total = np.zeros(len(bins), np.float64)
    for i in range(0, len(ab), chunk):  # (chunk, Q) at a time: a 256x256 photo is 65k colours
        a = ab[i : i + chunk].astype(np.float32, copy=False)
        d2 = (a * a).sum(1, keepdims=True) - 2 * np.einsum("nk,qk->nq", a, bins) + (bins * bins).sum(1)
        z = -np.maximum(d2, 0) / np.float32(2 * sigma**2)
        e = np.exp(z - z.max(1, keepdims=True))
        total += (e / e.sum(1, keepdims=True)).sum(0)
    return (total / max(1, len(ab))).astype(np.float32)


# --- numpy / OpenCV side, used per frame by the pipeline ----------------------------------


def gray_to_lightness_lut() -> np.ndarray:
    """(256,) float32: Lab L of the neutral sRGB gray with each 8-bit value."""
    v = np.repeat(np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0), 3, axis=1)
    return rgb_to_lab_np(v)[:, 0]


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
