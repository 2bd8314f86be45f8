"""Quality and stability figures: PSNR, colorfulness, warp error, CDC.

Images are torch tensors (..., 3, H, W) in [0, 1] unless said otherwise.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB over RGB in [0, 1]: (B, 3, H, W) x2 -> (B,)."""
    mse = ((x.float() - y.float()) ** 2).mean(dim=(-3, -2, -1)).clamp(min=1e-10)
    return 10.0 * torch.log10(1.0 / mse)


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) M3 on 0..255 RGB: (B, 3, H, W) in [0, 1] -> (B,)."""
    x = rgb.float() * 255.0
    r, g, b = x.unbind(-3)
    rg = r - g
    yb = 0.5 * (r + g) - b
    dims = (-2, -1)
    std = torch.sqrt(rg.var(dim=dims, unbiased=False) + yb.var(dim=dims, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=dims) ** 2 + yb.mean(dim=dims) ** 2)
    return std + 0.3 * mean


def warp_error(frame: np.ndarray, next_warped: np.ndarray, mask: np.ndarray) -> float:
    """Lai et al. (2018): mean squared RGB difference over non-occluded pixels.

    frame, next_warped: (H, W, 3) float in [0, 1]; mask: (H, W) bool, True = valid.
    """
    n = mask.sum()
    if n == 0:
        return 0.0
    d = ((frame - next_warped) ** 2).sum(axis=2)
    return float(d[mask].sum() / (n * 3))


def _histograms(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (C, 256) normalized per-channel histograms."""
    h = np.stack([np.bincount(frame[..., c].reshape(-1), minlength=256) for c in range(frame.shape[-1])]).astype(np.float64)
    return h / h.sum(axis=1, keepdims=True)


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        nz = a > 0
        return np.where(nz, a * np.log(np.where(nz, a, 1) / np.where(nz, b, 1)), 0).sum(axis=-1)

    return float(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)))


def cdc(frames: list[np.ndarray], gaps: tuple[int, ...] = (1, 2, 4)) -> float:
    """Colour distribution consistency (Liu et al.): JS divergence of per-channel
    256-bin histograms between frames i and i+d, averaged over i and d in `gaps`.

    frames: list of (H, W, C) uint8 (RGB for the README's figure; see chroma_cdc).
    """
    hists = [_histograms(f) for f in frames]
    per_gap = []
    for d in gaps:
        if len(hists) > d:
            per_gap.append(np.mean([_js_divergence(hists[i], hists[i + d]) for i in range(len(hists) - d)]))
    return float(np.mean(per_gap)) if per_gap else 0.0


def chroma_cdc(frames: list[np.ndarray], gaps: tuple[int, ...] = (1, 2, 4)) -> float:
    """CDC on the a and b channels of 8-bit Lab only: colour flicker without the luminance
    changes that dominate the RGB figure (a colourless clip scores 0 here). frames: (H, W, 3) uint8 RGB."""
    return cdc([cv2.cvtColor(f, cv2.COLOR_RGB2Lab)[..., 1:] for f in frames], gaps)
