"""A reference photo's colours: the output of each shot moves toward its ab distribution.

Larsson et al. (seed 002, section 3.4, "energy minimization") match a target
histogram by adding one global bias per colour bin to the network's logits, so
every pixel keeps its own distribution and only the balance between colours
moves. Here the bias is log(target / shot), where `shot` is the mean posterior
over the frames of the shot so far (a running mean, reset at each cut), so the
correction is one per shot, steady within it, and needs no second network pass.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import VidcolorError

MAX_BIAS = 3.0  # log units: never more than ~20x up or down, so a colour absent from the photo can still appear
FLOOR = 0.1  # share of a uniform distribution mixed into the target, for the same reason


def reference_histogram(path: Path, bins: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """A colour photo -> its ab distribution over the network's bins (Q,), Gaussian-smoothed, floored."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VidcolorError(f"--reference {path}: not an image OpenCV can read. Give a JPEG or PNG photo")
    h, w = bgr.shape[:2]
    s = min(1.0, 256 / max(h, w))
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    ab = torch.from_numpy(lab[..., 1:].reshape(-1, 2))
    nearest = torch.cdist(ab, bins.float()).argmin(1)
    counts = torch.bincount(nearest, minlength=len(bins)).float()
    smooth = torch.exp(-(torch.cdist(bins.float(), bins.float()) ** 2) / (2 * sigma**2))
    t = smooth @ (counts / counts.sum())
    return (1 - FLOOR) * t / t.sum() + FLOOR / len(bins)


class ReferenceMatch:
    """decoding.Match: (B, Q) a frame's mean posterior -> (B, Q) the bias that moves its shot toward the target."""

    def __init__(self, target: torch.Tensor, memory: float = 0.9):
        self.log_target = torch.log(target)
        self.memory = memory  # weight of the shot so far against this frame in the running mean
        self.shot: torch.Tensor | None = None

    def reset(self) -> None:
        """A new shot: forget the last one's colours."""
        self.shot = None

    def __call__(self, hist: torch.Tensor) -> torch.Tensor:
        h = hist.float().mean(0)
        self.shot = h if self.shot is None else self.memory * self.shot + (1 - self.memory) * h
        bias = (self.log_target - torch.log(self.shot.clamp(min=1e-6))).clamp(-MAX_BIAS, MAX_BIAS)
        return bias[None].expand(hist.shape[0], -1)
