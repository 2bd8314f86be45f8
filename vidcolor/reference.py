"""A reference photo's colours: the output of each shot moves toward its ab distribution.

Larsson et al. (seed 002, section 3.4, "energy minimization") match a target
histogram by adding one global bias per colour bin to the network's logits, so
every pixel keeps its own distribution and only the balance between colours
moves. What is matched is the distribution of the colours shown (the decoded
ab, color.soft_histogram), not the mean posterior: the annealed mean of a
spread-out posterior is grayer than the posterior's bins, so matching the
posterior left the output at half the photo's colourfulness (docs/experiments.md).
The bias has no closed form for that, so it is found by feedback: each frame
nudges it by `rate` x log(target / shown), a few times on a shot's first frame
and once a frame after that, so it settles within the shot and stays steady.
Reset at each cut; no second network pass (only the decoding is repeated).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .color import soft_histogram
from .errors import VidcolorError

MAX_BIAS = 3.0  # log units: never more than ~20x up or down, so a colour absent from the photo can still appear
FLOOR = 0.1  # share of a uniform distribution mixed into both histograms, for the same reason


def floored(hist: np.ndarray) -> np.ndarray:
    """(Q,) a distribution -> the same with FLOOR of a uniform one mixed in (no bin at 0: finite logs), float32."""
    return ((1 - FLOOR) * hist / max(float(hist.sum()), 1e-12) + FLOOR / len(hist)).astype(np.float32)


MIN_CHROMA = 3.0  # Lab units: a photo with less mean chroma is gray or sepia, and would only take colour away


def reference_histogram(path: Path, bins: np.ndarray) -> np.ndarray:
    """A colour photo -> its ab distribution over the network's bins (Q,), floored."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VidcolorError(f"--reference {path}: not an image OpenCV can read. Give a JPEG or PNG photo")
    h, w = bgr.shape[:2]
    s = min(1.0, 256 / max(h, w))
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    chroma = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    if chroma < MIN_CHROMA:
        raise VidcolorError(
            f"--reference {path.name} has almost no colour (mean chroma {chroma:.1f}): it would mute the film. Give a colour photo"
        )
    return floored(soft_histogram(lab[..., 1:].reshape(-1, 2), bins))


# Given shown(bias): the histogram (Q,) of the colours a frame shows with a bias (Q,) added to its logits,
# -> the bias (Q,) to add; all float32 numpy (ReferenceMatch). Both engines' decodings take one.
Match = Callable[[Callable[[np.ndarray], np.ndarray]], np.ndarray]


class ReferenceMatch:
    """A Match: given shown(bias), the histogram (Q,) of the colours a frame shows with a bias (Q,) added
    to its logits, -> the bias (Q,) to use for this frame."""

    def __init__(self, target: np.ndarray, rate: float = 0.3, settle: int = 3):
        self.log_target = np.log(target).astype(np.float32)
        self.rate = rate  # share of the remaining log-ratio corrected per step (1 overshoots: bins interact)
        self.settle = settle  # steps on a shot's first frame
        self.bias: np.ndarray | None = None

    def reset(self) -> None:
        """A new shot: forget the last one's correction."""
        self.bias = None

    def __call__(self, shown: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        first = self.bias is None
        bias = np.zeros_like(self.log_target) if first else self.bias
        for _ in range(self.settle if first else 1):
            step = self.log_target - np.log(floored(shown(bias)))
            bias = np.clip(bias + np.float32(self.rate) * step, -MAX_BIAS, MAX_BIAS).astype(np.float32)
        self.bias = bias
        return bias
