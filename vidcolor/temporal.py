"""Temporal state: what frame t inherits from frame t-1, and when it inherits nothing.

Per frame, at the working resolution (all arrays (H, W[, C]) numpy):
1. `prepare(gray)`: flow between t-1 and t; the previous *output* chroma
   warped onto t; a per-pixel reliability (forward-backward consistency,
   lightness match after warping, inside the frame). On a scene cut or a black
   frame the state is reset and nothing is inherited.
2. The caller feeds the model L_t joined with the warped chroma (gray where
   unreliable) and gets a prediction.
3. `blend(pred_ab, conf)`: mix prediction and warped previous output by
   reliability x smoothing, store the result as the new previous output.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .flow import flow_pair, make_dis, warp


@dataclass(frozen=True)
class TemporalOptions:
    smoothing: float = 0.9  # 0 = no blending with the past, 1 = strong (README: Temporal stability)
    flow_preset: str = "fast"
    # Give the model the warped previous colours as a hint. Off by default: with
    # the current weights it costs 0.5-0.9 dB and raises CDC (README).
    feedback: bool = False
    cut_threshold: float = 0.45  # histogram distance above which frames belong to different shots
    min_reliable: float = 0.3  # below this fraction of trustworthy flow, t-1 and t are different shots
    black_level: float = 12.0  # mean 8-bit gray below which a frame counts as black (fades)
    lightness_tolerance: float = 10.0  # L units; a warped pixel further off is not trusted
    anchor_every: int = 4  # frames between memoryless (gray-input) passes that anchor global colour


@dataclass
class Inherited:
    """What frame t gets from t-1 (all at the working resolution)."""

    ab: np.ndarray | None  # (H, W, 2) float32 warped previous output, or None after a reset
    reliability: np.ndarray | None  # (H, W) float32 in [0, 1]
    cut: bool  # True when this frame starts a new shot


def chroma_stats(ab: np.ndarray) -> tuple[np.ndarray, float]:
    """ab (H, W, 2) -> (mean ab (2,), mean distance from that mean): a frame's overall cast and spread."""
    mean = ab.reshape(-1, 2).mean(axis=0)
    spread = float(np.sqrt(((ab - mean) ** 2).sum(-1)).mean())
    return mean, spread


def match_stats(ab: np.ndarray, target: tuple[np.ndarray, float]) -> np.ndarray:
    """Shift and scale ab so its overall cast and spread are the target's; local choices are kept.

    Why: fed back frame after frame, any bias of the hinted model (a warm cast,
    a little extra saturation) compounds into drift. Anchoring the global
    statistics to a prediction made without memory stops that, while the
    feedback still decides *which* colour each region keeps.
    """
    mean, spread = chroma_stats(ab)
    t_mean, t_spread = target
    scale = float(np.clip(t_spread / max(spread, 1e-3), 0.5, 2.0))
    return ((ab - mean) * scale + t_mean).astype(np.float32)


def histogram(gray: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([gray], [0], None, [32], [0, 256]).ravel()
    return h / max(1.0, h.sum())


def shot_distance(h1: np.ndarray, h2: np.ndarray) -> float:
    """Bhattacharyya distance between two gray histograms: 0 = same, 1 = disjoint."""
    return float(cv2.compareHist(h1.astype(np.float32), h2.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


class TemporalState:
    def __init__(self, options: TemporalOptions, lightness_lut: np.ndarray):
        self.opt = options
        self.lut = lightness_lut
        self.dis = make_dis(options.flow_preset)
        self.reset()
        self.cuts = 0

    def reset(self) -> None:
        self.anchor: tuple[np.ndarray, float] | None = None  # see match_stats
        self.since_anchor = 0
        self.prev_gray: np.ndarray | None = None
        self.prev_hist: np.ndarray | None = None
        self.prev_ab: np.ndarray | None = None

    def prepare(self, gray: np.ndarray) -> Inherited:
        """gray: (H, W) uint8 at the working resolution."""
        hist = histogram(gray)
        black = float(gray.mean()) < self.opt.black_level
        first = self.prev_gray is None
        if black or first or shot_distance(hist, self.prev_hist) > self.opt.cut_threshold:
            return self._restart(gray, None if black else hist)
        pair = flow_pair(self.dis, self.prev_gray, gray)
        ok = pair.reliable()
        L_now = self.lut[gray]
        L_then = warp(self.lut[self.prev_gray], pair.backward)
        ok &= np.abs(L_now - L_then) < self.opt.lightness_tolerance
        if ok.mean() < self.opt.min_reliable:  # a cut between shots of similar tones
            return self._restart(gray, hist)
        # Soften the mask so the blend has no hard seams at occlusion edges.
        rel = cv2.GaussianBlur(ok.astype(np.float32), (0, 0), 1.5)
        ab = warp(self.prev_ab, pair.backward)
        self._pending = (gray, hist)
        return Inherited(ab, rel, cut=False)

    def needs_anchor(self) -> bool:
        """True every anchor_every frames (and whenever there is no anchor yet)."""
        self.since_anchor += 1
        if self.anchor is None or self.since_anchor >= self.opt.anchor_every:
            self.since_anchor = 0
            return True
        return False

    def _restart(self, gray: np.ndarray, hist: np.ndarray | None) -> Inherited:
        self.cuts += 1
        self.reset()
        self._pending = (gray, hist)
        return Inherited(None, None, cut=True)

    def blend(self, inherited: Inherited, pred_ab: np.ndarray) -> np.ndarray:
        """pred_ab (H, W, 2) float32 -> output ab (H, W, 2); remembers it for the next frame."""
        if inherited.ab is None or self.opt.smoothing <= 0:
            out = pred_ab
        else:
            a = (self.opt.smoothing * inherited.reliability)[..., None]
            out = a * inherited.ab + (1.0 - a) * pred_ab
        gray, hist = self._pending
        if hist is not None:  # a black frame leaves no state: nothing crosses a fade
            self.prev_gray, self.prev_hist, self.prev_ab = gray, hist, out
        return out

    def hint_ab(self, inherited: Inherited) -> np.ndarray | None:
        """The chroma to feed the model: warped previous output where reliable, 0 (gray) elsewhere."""
        if inherited.ab is None or not self.opt.feedback:
            return None
        return inherited.ab * (inherited.reliability > 0.5)[..., None]
