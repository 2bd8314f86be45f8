"""Optical flow (OpenCV DIS), warping, and the motion from frame to frame: where it is trusted, where shots start
(Tracker), at the working resolution.

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
    """The flow to try again with where `preset`'s loses track (track): DIS medium, whose finer
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
    along one flow (`FlowPair.points`, `Motion`): a frame's motion is warped along 5-7 times."""
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


# Where shots start and which motion to trust. Tuned on the development and training clips
# (docs/experiments.md); nothing sets them per run.
CUT_THRESHOLD = 0.45  # gray-histogram distance (shot_distance) above which two frames belong to different shots
# Below this fraction of trustworthy flow, t-1 and t are different shots: cuts between shots of alike tones
# leave 0.00-0.08 and same-histogram noise 0.19 at most; a fast pan inside a shot 0.30, which 0.3 reset.
MIN_RELIABLE = 0.2
BLACK_LEVEL = 12.0  # mean 8-bit gray below which a frame counts as black (fades): it links to nothing
LIGHTNESS_TOLERANCE = 10.0  # Lab L units: a warped pixel whose lightness is further off is not trusted


def histogram(gray: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([gray], [0], None, [32], [0, 256]).ravel()
    return h / max(1.0, h.sum())


def shot_distance(h1: np.ndarray, h2: np.ndarray) -> float:
    """Bhattacharyya distance between two gray histograms: 0 = same, 1 = disjoint."""
    return float(cv2.compareHist(h1.astype(np.float32), h2.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


@dataclass
class Motion:
    """How frame t-1 lies on frame t (working resolution)."""

    backward: np.ndarray  # (H, W, 2) flow, frame t -> t-1 (flow.warp convention)
    reliability: np.ndarray  # (H, W) float32 in [0, 1], softened at occlusion edges
    forward: np.ndarray | None = None  # (H, W, 2) flow, frame t-1 -> t, where it was found (track)

    @cached_property
    def _points(self) -> Points:
        # Built once: a working-size motion carries 4-5 things a frame, a look-ahead one 16 walk steps.
        return sample_points(self.backward)

    def carry(self, img: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Something of frame t-1, (H, W[, C]), laid onto frame t."""
        return remap(img, self._points, interpolation=interpolation)


RETRY_MARGIN = 2.0  # how much more than MIN_RELIABLE a retried flow must trust (track)


def track(
    dis: cv2.DISOpticalFlow,
    prev_gray: np.ndarray,
    gray: np.ndarray,
    lut: np.ndarray,
    retry: cv2.DISOpticalFlow | None = None,
) -> Motion | None:
    """prev_gray, gray (H, W) uint8 -> the motion between them, or None when too little of it is
    trustworthy (a cut between shots of similar tones). Trusted: forward-backward consistent, inside
    the frame, and the lightness matches after warping. The one place this is decided: run time and
    sequence training (train.sequences) both call it.

    retry: a slower flow (flow.retry_dis) tried where `dis` finds too little: DIS fast loses some fast
    pans that DIS medium follows, and a shot reset mid-pan starts its colours over. The retry counts only
    where it trusts RETRY_MARGIN x MIN_RELIABLE: it does on 4 of the 5 frame pairs that fast lost inside a
    shot across all 56 clips (43-68 %; mallard-fly, drift-straight), not on dev04's four cuts of alike tones
    (0-9 %) nor on smooth noise turned over, which its finer search matches by chance up to 25 % (tests;
    docs/experiments.md). Sequence training passes none: a chain restarts from gray where fast
    loses track, as at a cut."""
    pair = flow_pair(dis, prev_gray, gray)
    ok = _trusted(pair, prev_gray, gray, lut)
    if ok.mean() < MIN_RELIABLE and retry is not None:
        again = flow_pair(retry, prev_gray, gray)
        ok_again = _trusted(again, prev_gray, gray, lut)
        if ok_again.mean() >= RETRY_MARGIN * MIN_RELIABLE:
            pair, ok = again, ok_again
    if ok.mean() < MIN_RELIABLE:
        return None
    return Motion(pair.backward, _softened(ok), pair.forward)


def _softened(ok: np.ndarray) -> np.ndarray:
    """(H, W) bool -> float32 in [0, 1]: softened so a blend has no hard seams at occlusion edges."""
    return cv2.GaussianBlur(ok.astype(np.float32), (0, 0), 1.5)


LOOK_AHEAD_SCALE = 0.125  # of the working size (reversed_motion)


def reversed_motion(
    motion: Motion,
    prev_gray: np.ndarray,
    gray: np.ndarray,
    lut: np.ndarray,
    scale: float = LOOK_AHEAD_SCALE,
) -> Motion:
    """How frame t lies on frame t-1 (the look-ahead carries later colours back, lookahead.py) at `scale` x
    the working size, from the flows track found, no new ones: the forward flow, trusted where the same
    three checks hold from frame t-1's side. An eighth of the working size (32 x 18 px for a 16:9 film):
    the look-ahead then moves the colours' coarse layout along the motion and leaves their detail to each
    frame. On the 13 evaluation clips (anchor 0.25) the ab CDC fell from 1.51x / 1.42x the truth's at half
    the size to 1.45x / 1.30x (development / held-out clips) at the same dPSNR, and the walk costs a few carries of
    a 32 x 18 image a frame (docs/experiments.md)."""
    h, w = gray.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def small(x: np.ndarray) -> np.ndarray:
        return cv2.resize(x, size, interpolation=cv2.INTER_AREA)

    forward, backward = small(motion.forward) * scale, small(motion.backward) * scale
    ok = _trusted(FlowPair(backward=forward, forward=backward), small(gray), small(prev_gray), lut)
    return Motion(forward, _softened(ok), backward)


def _trusted(pair: FlowPair, prev_gray: np.ndarray, gray: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W) bool: where the flow is forward-backward consistent, inside the frame, and the lightness
    matches after warping (within LIGHTNESS_TOLERANCE L units)."""
    return pair.reliable() & (np.abs(lut[gray] - remap(lut[prev_gray], pair.points)) < LIGHTNESS_TOLERANCE)


@dataclass
class Link:
    """How frame t follows frame t-1, found from the two gray frames alone (Tracker.link)."""

    motion: Motion | None  # None: frame t inherits nothing (the first frame, a cut, a black frame)
    black: bool = False  # a black frame leaves no state behind: nothing crosses a fade
    back: Motion | None = None  # how frame t lies on frame t-1, for the look-ahead (else None)


class Tracker:
    """The motion between consecutive gray frames (H, W) uint8, and where shots start.

    It needs no prediction, so the pipeline runs it on the decoder's thread, a few frames ahead of the
    network (while the network works on frame t, the flow for t+1 is computed beside it)."""

    def __init__(self, lightness_lut: np.ndarray, flow_preset: str = "fast", look_ahead: bool = True):
        """lightness_lut (256,): Lab L of each gray level; look_ahead: also find how each frame lies on the
        one before (Link.back), for the look-ahead."""
        self.lut, self.look_ahead = lightness_lut, look_ahead
        self.dis = make_dis(flow_preset)
        self.retry = retry_dis(flow_preset)
        self.prev_gray: np.ndarray | None = None
        self.prev_hist: np.ndarray | None = None

    def link(self, gray: np.ndarray) -> Link:
        if float(gray.mean()) < BLACK_LEVEL:
            self.prev_gray = self.prev_hist = None
            return Link(None, black=True)
        hist = histogram(gray)
        prev_gray, prev_hist = self.prev_gray, self.prev_hist
        self.prev_gray, self.prev_hist = gray, hist
        if prev_gray is None or shot_distance(hist, prev_hist) > CUT_THRESHOLD:
            return Link(None)
        motion = track(self.dis, prev_gray, gray, self.lut, self.retry)  # None: a cut of similar tones
        if motion is None or not self.look_ahead:
            return Link(motion)
        return Link(motion, back=reversed_motion(motion, prev_gray, gray, self.lut))
