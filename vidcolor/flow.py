"""Optical flow (OpenCV DIS) and warping, at the working resolution.

Conventions: images are (H, W) or (H, W, C) numpy arrays; a flow is (H, W, 2)
float32 in pixels, (dx, dy). `backward` flow maps each pixel of frame t to
where it was in frame t-1, so `warp(prev, backward)` lays frame t-1 onto t.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def make_dis(preset: str = "fast") -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(PRESETS[preset])


def retry_dis(preset: str) -> cv2.DISOpticalFlow | None:
    """The flow to try again with where `preset`'s loses track (temporal.track): DIS medium, whose finer
    search follows fast pans that fast and ultrafast lose; None for medium itself."""
    return make_dis("medium") if preset in ("ultrafast", "fast") else None


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (xs, ys), each (H, W) float32; cached, never written to."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


Points = tuple[np.ndarray, np.ndarray]  # where each pixel samples the other frame: (x, y), each (H, W) float32


def sample_points(flow: np.ndarray) -> Points:
    """(H, W, 2) flow -> (x + dx, y + dy): what `remap` and `inside` take. Build it once for every warp
    along one flow (`FlowPair.points`, `temporal.Motion`): a frame's motion is warped along 5-7 times."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    return xs + flow[..., 0], ys + flow[..., 1]


def remap(img: np.ndarray, at: Points, border: int = cv2.BORDER_REPLICATE, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample img at the points: (H, W[, C]) -> same shape, bilinear unless told otherwise."""
    return cv2.remap(img, at[0], at[1], interpolation, borderMode=border)


def warp(
    img: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Sample img at (x + flow): (H, W[, C]) -> same shape, bilinear unless told otherwise."""
    return remap(img, sample_points(flow), border, interpolation)


def inside(flow: np.ndarray, at: Points | None = None) -> np.ndarray:
    """(H, W) bool: the flow lands inside the other frame (at: its sample_points, if built already)."""
    h, w = flow.shape[:2]
    x, y = at if at is not None else sample_points(flow)
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def consistent(
    backward: np.ndarray, forward: np.ndarray, alpha: float = 0.01, beta: float = 0.5, at: Points | None = None
) -> np.ndarray:
    """Forward-backward check (Sundaram et al. 2010): (H, W) bool, True where
    following `backward` then `forward` returns to the start; False in
    occlusions and where the flow is unreliable. at: backward's sample_points, if built already."""
    at = at if at is not None else sample_points(backward)
    fwd_at = remap(forward, at)
    err = _norm2(backward + fwd_at)
    mag = _norm2(backward) + _norm2(fwd_at)
    return (err <= alpha * mag + beta) & inside(backward, at)


def _norm2(v: np.ndarray) -> np.ndarray:
    """(H, W, 2) -> (H, W) squared length; numpy's sum over a last axis of 2 is ten times slower."""
    x, y = v[..., 0], v[..., 1]
    return x * x + y * y


@dataclass
class FlowPair:
    backward: np.ndarray  # (H, W, 2): frame t -> t-1
    forward: np.ndarray  # (H, W, 2): frame t-1 -> t

    @cached_property
    def points(self) -> Points:
        """backward's sample_points, for every warp of frame t-1 onto t."""
        return sample_points(self.backward)

    def reliable(self) -> np.ndarray:
        return consistent(self.backward, self.forward, at=self.points)


def flow_pair(dis: cv2.DISOpticalFlow, prev: np.ndarray, cur: np.ndarray) -> FlowPair:
    """prev, cur: (H, W) uint8 gray -> both flows."""
    return FlowPair(backward=dis.calc(cur, prev, None), forward=dis.calc(prev, cur, None))
