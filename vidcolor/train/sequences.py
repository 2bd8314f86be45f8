"""Sequence samples: frame t's input carries the network's own colours of frame t-1, warped by flow.

This is what the network sees at run time with feedback on, so it is built by the
run-time functions themselves: `flow.track` (DIS flow, forward-backward and
lightness checks, softened reliability) and `temporal.feedback_input` (the hinted
RGB input). A window of K frames (K = 2..max_frames, every `skip`-th frame of one
training clip, the same crop in each) is run as a chain without gradients: the
first frame from gray (or from its own degraded hint), each next one from the
previous prediction carried onto it; the last frame's input is the training
sample and its true ab the target. Where the flow finds a cut, the frame gets the
gray input, as at run time.

`Chains` makes the same samples from chains that run on across training steps
(each step carries every chain one frame on), so the network also learns from
inputs that have been through its own loop for tens of frames, as at run time
over a long shot, at the cost of one forward pass a step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..color import lab_planes_to_rgb
from ..flow import Motion, track
from ..lab import rgb_to_lab
from ..temporal import TemporalOptions, feedback_input, gray_input, gray_turn
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
        box = _random_box(cache.shapes[start], size, rng, scale)
        for j in range(frames):
            out[k, j] = _crop(cache.image(start + j * skip), box, size)
    return out


# A crop: (y, x, height, width, mirrored).
Box = tuple[int, int, int, int, bool]


def _random_box(shape: tuple[int, int], size: int, rng: np.random.Generator, scale: tuple[float, float]) -> Box:
    h, w = shape
    s = max(rng.uniform(*scale), (size + 1) / min(h, w))
    ch, cw = min(h, int(size / s)), min(w, int(size / s))
    return int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1)), ch, cw, bool(rng.random() < 0.5)


def _crop(img: np.ndarray, box: Box, size: int) -> np.ndarray:
    y, x, ch, cw, flip = box
    crop = cv2.resize(np.ascontiguousarray(img[y : y + ch, x : x + cw]), (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if flip else crop


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
    x = _start_inputs(windows[:, 0], grays[:, 0], lut, g, own_hint_prob)
    for j in range(1, k):
        pred = predict(x)
        x = np.stack([_next_input(dis, grays[i, j - 1], grays[i, j], pred[i], lut, opt) for i in range(n)])
    return _as_batch(x), _true_ab(windows[:, -1])


def _true_ab(frames: np.ndarray) -> torch.Tensor:
    """(n, S, S, 3) uint8 RGB -> (n, 2, S, S) Lab ab."""
    return rgb_to_lab(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0)[:, 1:]


def _as_batch(x: np.ndarray) -> torch.Tensor:
    """(n, S, S, 3) network inputs -> (n, 3, S, S)."""
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def _start_inputs(frames: np.ndarray, grays: np.ndarray, lut: np.ndarray, g: torch.Generator, own_hint_prob: float) -> np.ndarray:
    """A chain's first inputs: frames (n, S, S, 3) uint8 RGB, grays (n, S, S) uint8 -> (n, S, S, 3) float32,
    gray or (own_hint_prob of them) carrying a degraded hint of their own colours."""
    own = degrade_hint(_true_ab(frames), g).permute(0, 2, 3, 1).numpy()
    use_own = (torch.rand(len(frames), generator=g) < own_hint_prob).tolist()
    return np.stack(
        [lab_planes_to_rgb(lut[gr], o) if u else gray_input(gr) for gr, o, u in zip(grays, own, use_own, strict=True)]
    )


@dataclass
class _Chain:
    first: int  # the clip's first frame in the cache
    count: int  # its frames
    box: Box
    step: int  # frames advanced a training step: +-1..max_skip; the sign turns at the clip's ends
    index: int  # the frame within the clip
    gray: np.ndarray | None = None  # (S, S) uint8: the frame last used
    ab: np.ndarray | None = None  # (S, S, 2) float32: the network's colours of it, what is carried on
    fed: int = 0  # inputs that would have carried fed-back colours so far (for gray_every)


class Chains:
    """`n` chains of frames of the training clips, each carried one frame on per training step (every
    1..max_skip-th frame, turning back at the clip's ends), the network's colours of the frame before
    warped onto each frame as at run time. A chain starts over, on a new clip and crop, from gray or its
    own degraded hint, with chance 1/chain_frames a step, so chains run chain_frames frames on average."""

    def __init__(
        self,
        cache: ImageCache,
        spans: list[tuple[str, int, int]],
        n: int,
        size: int,
        chain_frames: float,
        max_skip: int = 3,
        scale: tuple[float, float] = (0.55, 1.0),
    ):
        self.cache, self.spans, self.size, self.chain_frames = cache, spans, size, chain_frames
        self.max_skip, self.scale = max_skip, scale
        self.chains: list[_Chain | None] = [None] * n

    def samples(
        self,
        predict: PredictBatch,
        dis: cv2.DISOpticalFlow,
        lut: np.ndarray,
        opt: TemporalOptions,
        rng: np.random.Generator,
        g: torch.Generator,
        own_hint_prob: float = 0.5,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every chain one frame on -> (their inputs (n, 3, S, S) in [0, 1], true ab (n, 2, S, S)); the
        network's colours of these inputs (predict) are what the next call carries on."""
        for i, chain in enumerate(self.chains):
            if chain is None or rng.random() < 1.0 / self.chain_frames:
                self.chains[i] = self._new_chain(rng)
            else:
                _advance(chain)
        frames = np.stack([_crop(self.cache.image(c.first + c.index), c.box, self.size) for c in self.chains])
        grays = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
        fresh = [i for i, c in enumerate(self.chains) if c.ab is None]
        x = np.empty(frames.shape, dtype=np.float32)
        if fresh:
            x[fresh] = _start_inputs(frames[fresh], grays[fresh], lut, g, own_hint_prob)
        for i, c in enumerate(self.chains):
            if c.ab is not None:
                x[i] = _chain_input(dis, c, grays[i], lut, opt)
        pred = predict(x)
        for i, c in enumerate(self.chains):
            c.gray, c.ab = grays[i], pred[i]
        return _as_batch(x), _true_ab(frames)

    def _new_chain(self, rng: np.random.Generator) -> _Chain:
        _, first, count = self.spans[int(rng.integers(len(self.spans)))]
        box = _random_box(self.cache.shapes[first], self.size, rng, self.scale)
        step = int(rng.integers(1, self.max_skip + 1)) * (1 if rng.random() < 0.5 else -1)
        return _Chain(first, count, box, step, int(rng.integers(count)))


def _advance(c: _Chain) -> None:
    """One step on; at the clip's end the chain turns back, as a shot played forward and backward."""
    if not 0 <= c.index + c.step < c.count:
        c.step = -c.step
    c.index = min(max(c.index + c.step, 0), c.count - 1)


def _next_input(
    dis: cv2.DISOpticalFlow, prev_gray: np.ndarray, gray: np.ndarray, prev_ab: np.ndarray, lut: np.ndarray, opt: TemporalOptions
) -> np.ndarray:
    """prev_ab (S, S, 2) carried from prev_gray onto gray (S, S) uint8 -> the network's input (S, S, 3)."""
    return _carried_input(track(dis, prev_gray, gray, lut), gray, prev_ab, lut, opt)


def _chain_input(dis: cv2.DISOpticalFlow, c: _Chain, gray: np.ndarray, lut: np.ndarray, opt: TemporalOptions) -> np.ndarray:
    """A chain's next input, as `temporal.TemporalState` makes it: every gray_every-th input that would carry
    colours is the gray frame alone (a cut restarts the count, as a shot does at run time)."""
    motion = track(dis, c.gray, gray, lut)
    c.fed = 0 if motion is None else c.fed + 1
    if gray_turn(c.fed, opt.filled().gray_every):
        return gray_input(gray)
    return _carried_input(motion, gray, c.ab, lut, opt)


def _carried_input(
    motion: Motion | None, gray: np.ndarray, prev_ab: np.ndarray, lut: np.ndarray, opt: TemporalOptions
) -> np.ndarray:
    """The frame's input with prev_ab carried on by `motion`; its gray alone at a cut (motion None)."""
    if motion is None:
        return gray_input(gray)
    opt = opt.filled()
    return feedback_input(lut[gray], motion.carry(prev_ab), motion.reliability, opt.feedback_gain, opt.snap_radius)
