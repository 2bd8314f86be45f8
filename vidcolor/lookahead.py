"""Fixed-lag smoothing: frame t's colours also take the next frames' colours, carried back by flow.

The temporal state (temporal.py) only looks back: frame t's output blends its prediction with the
frames before it, so a colour lags behind a change and a flicker is averaged with the past alone.
`LookAhead` holds each output until `frames` more are in, then walks back from the newest to frame t:

    B = ab[t + n];  for m = t + n - 1 .. t:  B = ab[m] + w r_m (carry_m(B) - ab[m])

where carry_m lays frame m+1 onto frame m (the tracker's forward flow, temporal.reversed_motion), r_m
is where that flow is trusted (H, W) in [0, 1] and w is `weight`. The walk stops at a cut or a black
frame: nothing crosses into another shot. It imports nothing from video I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import numpy as np

from .temporal import Motion

T = TypeVar("T")


class _Held(Generic[T]):
    __slots__ = ("ab", "back", "item", "weight")

    def __init__(self, item: T, ab: np.ndarray):
        self.item, self.ab = item, ab  # ab (H, W, 2) float32, Lab units, at the working resolution
        self.back: Motion | None = None  # how the next frame lies on this one; None: a cut follows, or not yet
        self.weight: np.ndarray | None = None  # (H, W, 2) float32: w x back.reliability, for both channels


class LookAhead(Generic[T]):
    """Outputs in frame order; each leaves, smoothed, once `frames` later ones are in (or at flush)."""

    def __init__(self, frames: int, weight: float):
        self.frames, self.weight = frames, weight
        self._held: deque[_Held[T]] = deque()

    def push(self, item: T, ab: np.ndarray, back: Motion | None) -> list[tuple[T, np.ndarray]]:
        """item: whatever goes with the frame (handed back with its ab); ab (H, W, 2) float32, upright, at
        the working resolution; back: how this frame lies on the one pushed before it (Link.back), None
        across a cut -> the frames that leave now, oldest first, each with its smoothed ab (H, W, 2)."""
        if self._held and back is not None:
            last = self._held[-1]
            last.back = back
            # Same-shape products are ~4x faster in numpy than broadcasting (H, W) over the last axis.
            r = (self.weight * back.reliability).astype(np.float32)
            last.weight = np.repeat(r[..., None], 2, axis=2)
        self._held.append(_Held(item, np.ascontiguousarray(ab, dtype=np.float32)))
        out = []
        while len(self._held) > self.frames:
            out.append(self._release())
        return out

    def flush(self) -> list[tuple[T, np.ndarray]]:
        """The frames still held (the end of the run), each smoothed with what follows it."""
        return [self._release() for _ in range(len(self._held))]

    def _release(self) -> tuple[T, np.ndarray]:
        held = self._held
        end = 0
        while end < len(held) - 1 and held[end].back is not None:
            end += 1  # the walk starts at the last frame of frame t's shot among those held
        b = held[end].ab
        for m in range(end - 1, -1, -1):
            h = held[m]
            b = h.ab + h.weight * (h.back.carry(b) - h.ab)
        first = held.popleft()
        return first.item, b
