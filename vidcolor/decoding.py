"""From the network's bin logits to chroma: one owner for how logits become colours.

Annealed mean (Zhang et al.): the loss weighted bins by w, so the network learns
p(q) * w(q) (up to normalization). Subtracting (1 - saturation) * log w moves
the distribution back toward the true posterior: saturation 0 is the unbiased
posterior mean (cautious, muted), saturation 1 keeps all of the rebalancing
(vivid, and more wrong colours too). A temperature T < 1 then sharpens it
before taking the mean.

`DecodeConfig` (record.py) is stored beside the weights (the shipped decoding) and
the CLI may override it (--saturation, --temperature). The int8 engine decodes the
same way in numpy (int8.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from .color import soft_histogram
from .lab import gamut_bins
from .record import DecodeConfig
from .reference import Match


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits (B, Q, h, w), bins (Q, 2) ab centres -> ab (B, 2, h, w): the mean of the distribution
    sharpened by temperature T."""
    return _annealed_mean_last(logits.permute(0, 2, 3, 1), bins, temperature).permute(0, 3, 1, 2)


def _annealed_mean_last(z: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """The same with the bins last: z (B, h, w, Q) -> ab (B, h, w, 2)."""
    return torch.softmax(z / max(temperature, 1e-3), dim=-1) @ bins


class ColorDecoder(nn.Module):
    """The ab bins, the class-rebalancing weights training used, and the decoding of logits into ab.

    Its buffers stay fp32 whatever the network is cast to: bins are Lab units, and the weights' logs
    are subtracted from logits in fp32.
    """

    def __init__(self, bin_grid: float):
        super().__init__()
        self.register_buffer("bins", gamut_bins(bin_grid))  # (Q, 2) ab centres
        # (Q,) the class-rebalancing weights w the training loss used; decoding divides part of them out.
        self.register_buffer("class_weights", torch.ones(self.bins.shape[0]))

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        self.bins.data = self.bins.data.float()
        self.class_weights.data = self.class_weights.data.float()
        return self

    @property
    def num_bins(self) -> int:
        return self.bins.shape[0]

    def forward(self, logits: torch.Tensor, cfg: DecodeConfig, match: Match | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, Q, h, w) -> ab (B, 2, h, w) in Lab units, and confidence (B, 1, h, w) in [0, 1].

        Confidence is 1 - normalized entropy of the (saturation-corrected, untempered) distribution:
        1 where the network is sure of one colour, 0 where it has no idea. `match` (a reference photo,
        reference.py) adds one bias per bin, chosen from the colours the frame shows under it.
        """
        # Work with the bins last, (B, h, w, Q): a free view of channels_last logits, and a contiguous
        # softmax axis (over dim 1 of channels_last logits, softmax copies and strides: 18 ms a frame
        # against 6 here; AVX2, fp32, 2 threads, 256x160 input).
        z = logits.permute(0, 2, 3, 1).float() - (1.0 - cfg.saturation) * torch.log(self.class_weights)
        if match is not None:

            def shown(bias: np.ndarray) -> np.ndarray:
                ab = _annealed_mean_last(z + torch.from_numpy(bias).to(z.device), self.bins, cfg.temperature)
                return soft_histogram(ab.reshape(-1, 2).float().cpu().numpy(), self.bins.float().cpu().numpy())

            z = z + torch.from_numpy(match(shown)).to(z.device)
        ab, entropy = _mean_and_entropy(z, self.bins, cfg.temperature)
        conf = 1.0 - entropy / math.log(self.num_bins)
        return ab.permute(0, 3, 1, 2), conf[:, None]


def _mean_and_entropy(z: torch.Tensor, bins: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """z (B, h, w, Q) fp32 -> the annealed mean (B, h, w, 2) and the entropy of softmax(z) (B, h, w), from
    one exp over the bins: e = exp(z - max) gives softmax(z) = e / sum(e), logsumexp(z) = max + log sum(e),
    and at the shipped temperature 0.5 the sharpened softmax(2 z) = e^2 / sum(e^2). Two softmaxes and a
    logsumexp took 3.0-3.3 ms a frame, this 2.0-2.1 (2304 cells x 265 bins, fp32, one thread, held
    to AVX2, where a frame's forward pass takes about 35 ms)."""
    top = z.amax(-1, keepdim=True)
    e = torch.exp(z - top)
    total = e.sum(-1, keepdim=True)
    entropy = (top + total.log()).squeeze(-1) - (e * z).sum(-1) / total.squeeze(-1)
    t = max(temperature, 1e-3)
    sharp = e * e if t == 0.5 else torch.exp((z - top) / t)
    ab = (sharp @ bins) / sharp.sum(-1, keepdim=True)
    return ab, entropy
