"""Sequence samples: frame t's input carries the network's own colours of frame t-1, warped by flow.

This is what the network sees at run time with feedback on, so it is built by the
run-time functions themselves: `temporal.track` (DIS flow, forward-backward and
lightness checks, softened reliability) and `temporal.feedback_input` (the hinted
RGB input). A window of K frames (K = 2..max_frames, every `skip`-th frame of one
training clip, the same crop in each) is run as a chain without gradients: the
first frame from gray (or from its own degraded hint), each next one from the
previous prediction carried onto it; the last frame's input is the training
sample and its true ab the target. Where the flow finds a cut, the frame gets the
gray input, as at run time.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from ..color import lab_planes_to_rgb, rgb_to_lab
from ..temporal import TemporalOptions, feedback_input, gray_input, track
from .augment import degrade_hint
from .data import ImageCache

# A batch of network inputs (B, H, W, 3) float32 RGB in [0, 1] -> ab (B, H, W, 2) float32, Lab units, at input size.
PredictBatch = Callable[[np.ndarray], np.ndarray]


def window_crops(
    cache: ImageCache,
    spans: list[tuple[str, int, int]],
    n: int,
    frames: int,
    size: int,
    rng: np.random.Generator,
    max_skip: int = 3,
    scale: tuple[float, float] = (0.55, 1.0),
) -> np.ndarray:
    """n windows of `frames` frames, each from one clip, every skip-th frame (skip 1..max_skip), the
    same random crop (rescaled, maybe flipped) in each: (n, frames, size, size, 3) uint8 RGB."""
    out = np.empty((n, frames, size, size, 3), dtype=np.uint8)
    longest = max(s[2] for s in spans)
    if longest < frames:
        raise ValueError(f"no training clip has {frames} frames")
    for k in range(n):
        skip = int(rng.integers(1, min(max_skip, (longest - 1) // (frames - 1)) + 1))
        usable = [s for s in spans if s[2] > (frames - 1) * skip]
        _, first, count = usable[int(rng.integers(len(usable)))]
        start = first + int(rng.integers(count - (frames - 1) * skip))
        h, w = cache.shapes[start]
        s = max(rng.uniform(*scale), (size + 1) / min(h, w))
        ch, cw = min(h, int(size / s)), min(w, int(size / s))
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        flip = rng.random() < 0.5
        for j in range(frames):
            img = cache.image(start + j * skip)[y : y + ch, x : x + cw]
            crop = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA)
            out[k, j] = crop[:, ::-1] if flip else crop
    return out


def sequence_samples(
    windows: np.ndarray,
    predict: PredictBatch,
    dis: cv2.DISOpticalFlow,
    lut: np.ndarray,
    opt: TemporalOptions,
    g: torch.Generator,
    own_hint_prob: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """windows (n, K, S, S, 3) uint8 RGB -> (the last frames' inputs (n, 3, S, S) in [0, 1], their true
    ab (n, 2, S, S)). The gray frames are the frames' luma, as a decoded video's are."""
    n, k = windows.shape[:2]
    grays = np.stack([[cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in w] for w in windows])  # (n, K, S, S) uint8
    truth = rgb_to_lab(torch.from_numpy(windows[:, 0]).permute(0, 3, 1, 2).float() / 255.0)[:, 1:]
    own = degrade_hint(truth, g).permute(0, 2, 3, 1).numpy()
    use_own = (torch.rand(n, generator=g) < own_hint_prob).tolist()
    x = np.stack([lab_planes_to_rgb(lut[grays[i, 0]], own[i]) if use_own[i] else gray_input(grays[i, 0]) for i in range(n)])
    for j in range(1, k):
        pred = predict(x)
        x = np.stack([_next_input(dis, grays[i, j - 1], grays[i, j], pred[i], lut, opt) for i in range(n)])
    last = torch.from_numpy(windows[:, -1]).permute(0, 3, 1, 2).float() / 255.0
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), rgb_to_lab(last)[:, 1:]


def _next_input(
    dis: cv2.DISOpticalFlow, prev_gray: np.ndarray, gray: np.ndarray, prev_ab: np.ndarray, lut: np.ndarray, opt: TemporalOptions
) -> np.ndarray:
    motion = track(dis, prev_gray, gray, lut, opt)
    if motion is None:
        return gray_input(gray)
    return feedback_input(lut[gray], motion.carry(prev_ab), motion.reliability, opt.own_colour_gain())
