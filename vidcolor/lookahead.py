"""Fixed-lag smoothing: frame t's colours also take the next frames' colours, carried back by flow.

The temporal state (temporal.py) only looks back: frame t's output blends its prediction with the
frames before it, so a colour lags behind a change and a flicker is averaged with the past alone.
`LookAhead` holds the outputs and walks back from the newest to the oldest:

    B = ab[n];  for m = n - 1 .. oldest:  B = ab[m] + w r_m (carry_m(B) - ab[m])

where carry_m lays frame m+1 onto frame m (the tracker's forward flow, flow.reversed_motion), r_m
is where that flow is trusted in [0, 1] and w is `weight` (WEIGHT); B at frame m is frame m's new colours. The
walk restarts at each cut or black frame: nothing crosses into another shot. A shot's first frame after a
cut keeps its colours, the network's own guess on it (the temporal state's too): issue 14 asks that it
equal the per-frame output, the check that nothing of the shot before reached it. The run's first frame
has no shot before it and is smoothed like the rest: kept, it stood out from the frame after it
(0.58 Lab units of mean change against 0.05 on drift-chicane).

A frame leaves once the frame `frames` after it (by its number in the film) is in, so every frame looks
exactly as far ahead, and one walk over the frames held serves it: the same filter for every frame.
Frames released in blocks had looked 12 to 23 frames ahead by their place in the block, and the change
of filter at each block's edge showed as a jump in colour there (dev02: 10x the ab histogram change of
the frames around it; docs/experiments.md). Numbered by the film, a segment's frames look as
far ahead as the one-pass run's.

The walk runs at the motions' resolution (an eighth of the working size, flow.LOOK_AHEAD_SCALE),
with bicubic carries: what it changes is the colours' coarse layout, which it adds to the colours at
their own size; bilinear carries blurred that layout a little at every step of the walk. No video I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import cv2
import numpy as np

from .flow import Motion

T = TypeVar("T")


class _Held(Generic[T]):
    __slots__ = ("ab", "back", "index", "item", "small", "starts", "weight")

    def __init__(self, item: T, ab: np.ndarray, index: int, starts: bool):
        self.item, self.ab, self.index = item, ab, index  # ab (H, W, 2) float32, Lab units, working size
        self.starts = starts  # the first frame of a shot after a cut: it keeps its colours
        self.back: Motion | None = None  # how the next frame lies on this one; None: a cut follows, or not yet
        self.weight: np.ndarray | None = None  # (h, w, 2) float32: w x back.reliability, for both channels
        self.small: np.ndarray | None = None  # (h, w, 2): ab at the motions' resolution, once a walk needs it

    def at(self, shape: tuple[int, int]) -> np.ndarray:
        if self.small is None:
            self.small = cv2.resize(self.ab, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return self.small


# Each step of the walk keeps this much of the later frame's colours where the flow is trusted: near 1, so that
# 16 frames all count (0.95^16 = 0.44), below it, so that the walk forgets what the flow gets wrong.
WEIGHT = 0.95


class LookAhead(Generic[T]):
    """Outputs in frame order; each leaves smoothed once `frames` more are in (see the module's docstring),
    or at flush."""

    def __init__(self, frames: int, weight: float = WEIGHT):
        self.frames, self.weight = frames, weight
        self._held: deque[_Held[T]] = deque()
        self._seen = False  # whether a frame came before: the run's first one has no shot before it

    def push(self, item: T, ab: np.ndarray, back: Motion | None, index: int) -> list[tuple[T, np.ndarray]]:
        """item: whatever goes with the frame (handed back with its ab); ab (H, W, 2) float32, upright, at
        the working resolution; back: how this frame lies on the one pushed before it (Link.back), None
        across a cut; index: its number in the film (rising) -> the frames that leave now, oldest first,
        each with its smoothed ab (H, W, 2)."""
        if self._held and back is not None:
            last = self._held[-1]
            last.back = back
            # Same-shape products are ~4x faster in numpy than broadcasting (h, w) over the last axis.
            last.weight = np.repeat((self.weight * back.reliability).astype(np.float32)[..., None], 2, axis=2)
        starts = back is None and self._seen  # a cut (or a black frame) just before it
        self._held.append(_Held(item, np.ascontiguousarray(ab, dtype=np.float32), index, starts))
        self._seen = True
        ready = sum(1 for h in self._held if h.index + self.frames <= index)  # `frames` after it are in
        return self._release(ready) if ready else []

    def flush(self) -> list[tuple[T, np.ndarray]]:
        """The frames still held (the end of the run), each smoothed with what follows it."""
        return self._release(len(self._held))

    def _release(self, count: int) -> list[tuple[T, np.ndarray]]:
        """Walk back over every frame held; the oldest `count` leave."""
        held = list(self._held)
        shape = next((h.back.reliability.shape for h in held if h.back is not None), None)
        out: list[tuple[T, np.ndarray]] = []
        b = None
        for m in range(len(held) - 1, -1, -1):
            h = held[m]
            if h.back is None or shape is None:
                b = None  # the last frame of its shot here: the walk starts again
                if m < count:
                    out.append((h.item, h.ab))
                if shape is not None:
                    b = h.at(shape)
                continue
            own = h.at(shape)
            b = own + h.weight * (h.back.carry(b, cv2.INTER_CUBIC) - own)
            if m < count and h.starts:
                out.append((h.item, h.ab))
            elif m < count:
                change = cv2.resize(b - own, (h.ab.shape[1], h.ab.shape[0]), interpolation=cv2.INTER_LINEAR)
                out.append((h.item, h.ab + change))
        for _ in range(count):
            self._held.popleft()
        return out[::-1]
