"""From the network's bin logits to chroma: annealed mean, and choosing how vivid each image gets.

Annealed mean (Zhang et al.): the loss weighted bins by w, so the network learns
p(q) * w(q) (up to normalization); subtracting beta * log w moves the
distribution back toward the true posterior (beta = 1) or keeps it vivid
(beta = 0); a temperature T < 1 then sharpens it before taking the mean.

Auto colour strength (`choose_prior_correction`): one fixed beta trades
accuracy for colour alike on every image, but what extra colour costs depends
on how sure the network is. Where it is sure, decodings hardly differ and the
error is small, so every bit of extra error shows (in dB, a log of the error);
where it is unsure, the cautious decoding washes out towards sepia and the
error is large already. So per image, among the betas in BETAS, it takes the
one that maximizes
    expected PSNR under the network's own posterior + colour_weight * colourfulness,
both computed from the prediction alone (no ground truth): with p the
posterior (beta = 1, T = 1) and R_q the RGB of bin q at each pixel's
lightness, E|RGB - R_hat|^2 = sum_q p_q |R_q|^2 - 2 R_hat . sum_q p_q R_q + |R_hat|^2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .color import join_lab
from .metrics import colourfulness

# The candidate prior corrections, cautious to vivid.
BETAS = tuple(round(1.0 - 0.1 * i, 1) for i in range(11))
# The choice is one number per image: a map pooled (by a whole factor) to about this many pixels
# decides it about as well as a finer one (held-out photos, colour weight 0.04: +0.98 dB at 60.5 % here,
# +0.99 dB at 60.1 % at 16x16 and at 32x32) for a fraction of the cost (1.8 ms against 6 ms a frame).
CHOICE_PIXELS = 10 * 10


def corrected_logits(logits: torch.Tensor, log_w: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """logits (B, Q, h, w), log_w (Q,) log class weights, beta a float or one per image (B,)
    -> logits - beta * log w (B, Q, h, w), fp32: beta = 1 undoes the rebalancing."""
    beta_b = torch.as_tensor(beta, dtype=torch.float32, device=logits.device).reshape(-1, 1, 1, 1)
    return logits.float() - beta_b * log_w[None, :, None, None]


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """(corrected) logits (B, Q, h, w), bins (Q, 2) ab centres -> ab (B, 2, h, w): the mean of the
    distribution sharpened by temperature T."""
    return torch.einsum("bqhw,qc->bchw", torch.softmax(logits / max(temperature, 1e-3), dim=1), bins)


def bin_rgb_table(bins: torch.Tensor, levels: int = 51) -> torch.Tensor:
    """bins (Q, 2) -> the RGB of every bin at `levels` lightness steps over [0, 100]: (levels, Q, 3).

    Depends on the bins alone, so the model builds it once (ColorNet.bin_rgb), not every frame.
    """
    q = bins.shape[0]
    steps = torch.linspace(0.0, 100.0, levels, device=bins.device)
    return join_lab(steps[:, None, None, None, None].expand(levels, q, 1, 1, 1),
                    bins[None, :, :, None, None].expand(levels, q, 2, 1, 1))[..., 0, 0]


def _bin_rgb(L: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """L (B, 1, h, w) in [0, 100], table (levels, Q, 3) from bin_rgb_table -> the RGB of every bin at
    every pixel (B, Q, 3, h, w), interpolated in lightness: converting Q colours at every pixel would
    cost more than the network's forward pass."""
    levels = table.shape[0]
    pos = L[:, 0].clamp(0.0, 100.0) * ((levels - 1) / 100.0)  # (B, h, w)
    lo = pos.floor().long().clamp(max=levels - 2)
    frac = (pos - lo)[..., None, None]
    rgb = table[lo] * (1 - frac) + table[lo + 1] * frac  # (B, h, w, Q, 3)
    return rgb.permute(0, 3, 4, 1, 2)


def choose_prior_correction(logits: torch.Tensor, log_w: torch.Tensor, bins: torch.Tensor, table: torch.Tensor,
                            L: torch.Tensor, temperature: float, colour_weight: float) -> torch.Tensor:
    """logits (B, Q, h, w); table = bin_rgb_table(bins); L (B, 1, H, W) the input's lightness, any size
    -> beta per image (B,), from BETAS."""
    pool = math.ceil(math.sqrt(logits.shape[-2] * logits.shape[-1] / CHOICE_PIXELS))
    logits = F.avg_pool2d(logits.float(), pool, ceil_mode=True) if pool > 1 else logits.float()
    b, q, h, w = logits.shape
    L = F.interpolate(L.float(), size=(h, w), mode="area")
    rq = _bin_rgb(L, table.float())
    posterior = torch.softmax(corrected_logits(logits, log_w, 1.0), dim=1)
    m1 = (posterior[:, :, None] * rq).sum(1)  # (B, 3, h, w) the posterior's mean RGB
    m2 = (posterior * (rq**2).sum(2)).sum(1)  # (B, h, w) its mean squared norm
    # Every candidate at once: image i, candidate k at row i * K + k.
    k = len(BETAS)
    betas = torch.tensor(BETAS, device=logits.device)
    ab = annealed_mean(corrected_logits(logits.repeat_interleave(k, 0), log_w, betas.repeat(b)), bins, temperature)
    rgb = join_lab(L.repeat_interleave(k, 0), ab).reshape(b, k, 3, h, w)
    mse = (m2[:, None] - 2 * (m1[:, None] * rgb).sum(2) + (rgb**2).sum(2)).mean((2, 3)) / 3
    score = -10 * torch.log10(mse.clamp(min=1e-8)) + colour_weight * colourfulness(rgb)
    return betas[score.argmax(1)]
