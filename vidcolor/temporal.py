"""Temporal state: what frame t inherits from frame t-1, and when it inherits nothing.

One call per frame, `TemporalState.step(gray, predict)`, owns the whole
exchange (all arrays numpy, at the working resolution, (H, W[, C])):
1. Flow between t-1 and t (`Tracker.link`, from the gray frames alone, so the
   pipeline finds it on another thread and passes it in); the previous *output*
   chroma warped onto t; a per-pixel reliability (forward-backward consistency,
   lightness match after warping, inside the frame). On a scene cut or a black
   frame the state is reset and nothing is inherited.
2. The network's input: the gray frame, or with `feedback` its lightness joined
   with the warped chroma (gray where unreliable; snapped to the frame's edges
   with `snap_radius`), built by `feedback_input`, the one function training
   uses too; with `gray_every`, every n-th such input is the gray frame alone,
   where the drift of the shot's colours from the network's per-frame guess is
   measured and then taken off its later predictions (`anchor`).
3. The blend: prediction and warped previous output mixed by reliability x
   smoothing x relative confidence; the result (and its confidence) becomes the
   previous output.
Per frame (`enabled=False`) it is the prediction on the gray frame alone: no flow.
It imports nothing from video I/O, so it is tested on plain arrays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from .color import lab_planes_to_rgb
from .flow import Link, Motion, Tracker
from .record import FeedbackRecord


class Predict(Protocol):
    """The network as the temporal state sees it: RGB (H, W, 3) float32 in [0, 1] -> ab (H, W, 2) float32
    in Lab units and confidence (H, W) float32 in [0, 1]. The ab may have 4 channels: the colours to show,
    then the colours to feed back (see TemporalState.step); with 2, the shown ones are fed back.
    trusted: the input's colours are true ones (a keyframe's shot), not only the network's own fed back."""

    def __call__(self, rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class TemporalOptions:
    smoothing: float = 1.0  # 0 = no blending with the past, 1 = strong; max_keep still caps it (README: Temporal stability)
    flow_preset: str = "fast"
    # Give the network the warped earlier colours (the regression head's) as its input, as sequence
    # training does (train.sequences). None: what the weights' record says (FeedbackRecord, filled in by
    # the pipeline): on for weights trained on chains of their own colours (the shipped ones); off where
    # nothing fills it in, and for weights trained without chains, with which it cost some clips up to
    # 0.6 dB against per-frame and faded colour within some shots (docs/experiments.md).
    feedback: bool | None = None
    # The network's own colours are fed back times this. It belongs to the weights: one trained on hints
    # paler than their truth boosts a hint, and fed back undamped the shipped network's colours grew 1.87x
    # over 40 frames of a still shot (docs/experiments.md). None: the weights' own
    # (FeedbackRecord, filled in by the pipeline), 1 where nothing fills it in. Colours carried
    # from a keyframe are true ones: never damped.
    feedback_gain: float | None = None
    # Which earlier output feedback carries to frame t: 2 = frame t-2's (carried by both frames' motion), so
    # that two frames are predicted at once: 1.36-1.45x the frames a second of frame t-1's (1), and on the
    # development clips +0.06 dB over per-frame against +0.04 (sequence training saw skips of 1-3 frames).
    feedback_lag: int = 2
    # Whether the colours carried to the next frame's input (the regression head's; under feedback, or in a
    # keyframe's shot) are blended with the warped past like the shown ones. Off, they are the network's own
    # as it gave them, as sequence chains train it (train.sequences). Blended, the loop settles on its
    # steady colours 1/(1 - keep) times slower, which chain-trained weights read as drift; the shipped
    # weights, not trained on chains, lose a little unblended (docs/experiments.md). None: the weights'
    # record's, as for feedback; blended where nothing fills it in.
    smooth_carried: bool | None = None
    # With feedback, every gray_every-th frame whose input would carry fed-back colours gets its gray alone
    # (0: never): the loop starts again from the network's own per-frame guess, with no second forward
    # pass, and the blend still carries the shown colours across. Fed back for long, chain-trained weights
    # spread colours where the flow smears them (dev03: a face's orange over the hair beside it); every 8th
    # frame gray cut the worst clip's loss by a quarter of a dB on both clip sets, at the cost of the ab CDC
    # (docs/experiments.md). None: the weights' record's, as for feedback; 0 where nothing
    # fills it in.
    gray_every: int | None = None
    # Before they are fed back, the network's own colours are guided-filtered (He et al. 2010) by the frame's
    # lightness over this radius (px at the working size; 0: not), so that colour edges follow the frame's
    # edges again instead of the smear that warping them frame after frame leaves (docs/experiments.md).
    # A keyframe's colours are carried as they are. None: the weights' record's; 0 where
    # nothing fills it in.
    snap_radius: int | None = None
    # With feedback and gray_every, how much of the drift each gray input measures is taken off the shot's
    # later fed-back predictions (0: none). Fed its own colours, the network can move a whole scene's colour
    # where the frame does not support it (breakdance-flare: grey asphalt turns warm, b +3 against its
    # per-frame +2 and the truth's -1), and the gray inputs alone do not stop it: the blend carries it on.
    # At a gray input the shot's mean colour offset between the warped past and the network's per-frame
    # guess is measured on the trusted pixels and integrated, times this, into an offset that is taken off
    # each fed-back prediction after it (docs/experiments.md). 0.2 with the look-ahead below: the
    # worst clip -0.05 and -0.09 dB against per-frame on the two clip sets (0.1: -0.21, 0.25: -0.08 at a
    # higher ab CDC). A warm-up measures where the one-pass run does (the gray inputs fall by
    # frame number), so the seams hold. Run time only: training chains (train.sequences) carry
    # the network's colours unanchored.
    anchor: float = 0.2
    # Each frame also takes the colours of the next look_ahead frames (0: none), carried back onto it by
    # flow (lookahead.py): walking back from the newest, each frame's colours become lookahead.WEIGHT x
    # the next one's (where the flow is trusted) and the rest its own. The loop alone only looks back, so
    # a colour is averaged with the frames before it and lags behind a change; this averages it with the
    # frames after it too (benchmarks/temporal.py --look-ahead 0 for the figures without it). 16 frames,
    # at an eighth of the working size (docs/experiments.md).
    look_ahead: int = 16
    # Weigh past and prediction by the model's confidence in each (see TemporalState._keep_weight).
    use_confidence: bool = True
    max_keep: float = 0.97  # the past's weight never reaches 1: every frame lets a little of its prediction in

    def filled(self, record: FeedbackRecord = FeedbackRecord()) -> TemporalOptions:
        """These options with the feedback settings they leave unset (None) taken from a weights' record;
        from a record that says nothing (no feedback, undamped, carried colours blended) by default."""
        return replace(
            self,
            feedback=record.feedback if self.feedback is None else self.feedback,
            feedback_gain=record.feedback_gain if self.feedback_gain is None else self.feedback_gain,
            smooth_carried=record.smooth_carried if self.smooth_carried is None else self.smooth_carried,
            gray_every=record.gray_every if self.gray_every is None else self.gray_every,
            snap_radius=record.snap_radius if self.snap_radius is None else self.snap_radius,
        )


# A frame with points: the share of their moved guess (Guide.moved) in its colours, the rest the network's
# with the points as its hint; the two err apart, so their mean beats both (docs/experiments.md).
MOVED_SHARE = 0.5


@dataclass(frozen=True)
class Guide:
    """Colours from outside the network for one frame: a user's keyframe, or colours carried back from one
    (keyframes.py). They are the network's hint there, and the output where weight is 1. A guided frame
    also gets the warped past as its hint (feedback), so the colours travel with the shot."""

    # None, None: no colours of its own, only "feed the past back" (a keyframe's shot after the keyframe).
    ab: np.ndarray | None  # (H, W, 2) float32, Lab units, at the working resolution
    weight: np.ndarray | None  # (H, W) float32 in [0, 1]: 1 = these colours, 0 = the network's and the past's
    # (H, W, 2) float32: colours for the network's input alone where not 0 (a user's points spread over their
    # regions, hints.py), over the past's; the output is the network's there.
    hint: np.ndarray | None = None
    # (H, W, 2) float32: the network's guess without the points, moved toward them (hints.move_guess); the
    # network's output on this frame is averaged with it, `share` of it, before the blend.
    moved: np.ndarray | None = None
    share: float = MOVED_SHARE  # in [0, 1]
    # Whether the colours fed back take that share too (the points' own frame), or only the shown ones (the
    # other frames of its shot: fed back frame after frame, a guess moved the wrong way would pile up).
    feed_moved: bool = True
    # Whether `moved` was chosen for this frame itself (keyframes.across_shots), not for the shot the guide
    # believed it in: then it holds on a shot's first frame too.
    any_shot: bool = False


def with_moved(pred: np.ndarray, moved: np.ndarray, share: float = MOVED_SHARE) -> np.ndarray:
    """The network's colours on a frame with points (..., C) and their moved guess (..., 2), C a multiple of
    2 (shown, then fed back), channels last -> (..., C): `share` of the guess in every pair."""
    reps = (1,) * (moved.ndim - 1) + (pred.shape[-1] // moved.shape[-1],)
    return (1.0 - share) * pred + share * np.tile(moved, reps)


@dataclass
class Inherited:
    """What frame t gets from t-1 (all at the working resolution)."""

    ab: np.ndarray | None  # (H, W, 2) float32 warped previous output, or None after a reset
    reliability: np.ndarray | None  # (H, W) float32 in [0, 1]
    cut: bool  # True when this frame starts a new shot
    confidence: np.ndarray | None = None  # (H, W) float32 in [0, 1]: the warped previous output's confidence
    # With feedback_lag 2: frame t-2's output (H, W, 4), the motion t-2 -> t-1 and the motion t-1 -> t, or
    # None. Carried (_lagged_hint) only when the frame's input is made here: the pipeline makes it ahead.
    lagged: tuple[np.ndarray, Motion, Motion] | None = None


def gray_input(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) float32 in [0, 1] with R = G = B: the network's gray-only input."""
    return np.repeat((gray.astype(np.float32) / 255.0)[..., None], 3, axis=2)


def gray_turn(fed: int, gray_every: int) -> bool:
    """Whether a shot's fed-th input (from 1) that would carry fed-back colours gets its gray alone: every
    gray_every-th; never with 0. The run time (TemporalState) and the training chains (train.sequences)
    both ask here, so their restarts fall on the same frames."""
    return gray_every > 0 and fed > 0 and fed % gray_every == 0


def feedback_input(L: np.ndarray, ab: np.ndarray, reliability: np.ndarray, gain: float = 1.0, snap: int = 0) -> np.ndarray:
    """L (H, W) float32 in [0, 100], warped ab (H, W, 2), reliability (H, W) in [0, 1] -> the network's
    hinted input (H, W, 3) float32 RGB in [0, 1]: the colours (snapped to L's edges over `snap` px, see
    snap_to_edges) times gain where the flow is trusted, gray elsewhere. The one place this input is made:
    run time and sequence training both call it."""
    if snap > 0:
        ab = snap_to_edges(L, ab, snap)
    return lab_planes_to_rgb(L, ab * (gain * (reliability > 0.5))[..., None])


def snap_to_edges(L: np.ndarray, ab: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """A guided filter (He et al. 2010) of ab (H, W, 2) with lightness L (H, W) in [0, 100] as the guide:
    within each (2 radius + 1)^2 window the colours become a linear function of the lightness, so a colour
    edge that has drifted off the frame's edge moves back onto it. eps (in (L / 100)^2) sets how strong an
    edge must be to hold colours apart: 1e-3 is a lightness step of about 3."""

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    guide = (L / 100.0).astype(np.float32)
    mean_g = box(guide)
    var_g = box(guide * guide) - mean_g * mean_g
    out = np.empty(ab.shape, np.float32)
    for c in range(ab.shape[-1]):
        p = np.ascontiguousarray(ab[..., c], dtype=np.float32)
        mean_p = box(p)
        a = (box(guide * p) - mean_g * mean_p) / (var_g + eps)
        out[..., c] = box(a) * guide + box(mean_p - a * mean_g)
    return out


def _lagged_hint(ab: np.ndarray, before: Motion | None, motion: Motion | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Frame t-2's output ab (H, W, 2 or 4), carried by the motion t-2 -> t-1 (before), then t-1 -> t ->
    (the colours it feeds back (H, W, 2), their reliability (H, W)) on frame t; None across a cut."""
    if before is None or motion is None:
        return None
    carried = motion.carry(before.carry(np.ascontiguousarray(ab[..., -2:])))
    return carried, motion.reliability * motion.carry(before.reliability)


def _guided_hint(hint: tuple[np.ndarray, np.ndarray] | None, guide: Guide) -> tuple[np.ndarray, np.ndarray]:
    """The network's hint (ab (H, W, 2), reliability (H, W)) with a guide's colours mixed in by its weight."""
    w = guide.weight
    if hint is None:
        return guide.ab, w
    ab, rel = hint
    return w[..., None] * guide.ab + (1.0 - w[..., None]) * ab, np.maximum(w, rel)


def _spread_hint(hint: tuple[np.ndarray, np.ndarray] | None, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's hint (ab (H, W, 2), reliability (H, W)) with spread points' colours (H, W, 2) over it."""
    has = np.abs(spread).sum(-1) > 0
    if hint is None:
        return spread, has.astype(np.float32)
    ab, rel = hint
    return np.where(has[..., None], spread, ab), np.where(has, 1.0, rel).astype(np.float32)


class TemporalState:
    def __init__(self, options: TemporalOptions, lightness_lut: np.ndarray, enabled: bool = True):
        """options: filled in (TemporalOptions.filled, with the weights' record); lightness_lut (256,) float32:
        Lab L of each 8-bit gray level (color.gray_to_lightness_lut)."""
        unset = [
            f for f in ("feedback", "feedback_gain", "smooth_carried", "gray_every", "snap_radius") if getattr(options, f) is None
        ]
        if unset:  # left to a default here, feedback would be off whatever the weights were trained for
            raise ValueError(f"TemporalState needs TemporalOptions.filled(record) first: {', '.join(unset)} unset")
        self.opt = options
        self.lut = lightness_lut
        self.enabled = enabled
        self.tracker = Tracker(lightness_lut, options.flow_preset, options.look_ahead > 0) if enabled else None
        self.reset()
        self.cuts = 0
        self._keep = False
        # Whether each input lagged_input made was the gray frame alone, in frame order, for step to pair
        # with the prediction made on it (the pipeline makes frame t+1's before frame t is stepped).
        self._made: deque[bool] = deque()

    def reset(self) -> None:
        self.prev_ab: np.ndarray | None = None
        self.prev_confidence: np.ndarray | None = None
        self._two_back: tuple[np.ndarray, Motion] | None = None  # frame t-2's output, how it lies on t-1
        # With gray_every: the inputs of this shot so far that would carry fed-back colours. Counted per shot,
        # so that where a shot's gray inputs fall does not depend on the shots before it: a keyframe changes
        # nothing past its shot's cuts. Where the caller gives each frame's number in the film, that decides
        # instead (_turn).
        self._fed = 0
        self._drift: np.ndarray | float = 0.0  # the shot's anchored offset, (C,) Lab units (see `anchor`)

    def step(
        self,
        gray: np.ndarray,
        predict: Predict,
        guide: Guide | None = None,
        link: Link | None = None,
        predicted: tuple[np.ndarray, np.ndarray] | None = None,
        index: int | None = None,
    ) -> np.ndarray:
        """gray (H, W) uint8, upright, at the working resolution -> this frame's ab (H, W, 2) float32.
        link: this frame's Link when a Tracker of its own already found it (the pipeline's decoder
        thread); else the state's tracker finds it here. predicted: the network's output on this frame's
        input, computed ahead (inference.Ahead): on its gray, or with feedback_lag 2 on lagged_input's;
        ignored where the input needs frame t-1's output (feedback_lag 1, a guide). index: the frame's
        number in the film, where gray_every's turns fall (None: counted in the shot; see _turn)."""
        if not self.enabled:
            return (predicted if predicted is not None else predict(gray_input(gray)))[0][..., :2]
        inherited = self._inherit(link if link is not None else self.tracker.link(gray))
        # A guide of a keyframe's shot steers it: its colours carried on are true colours. One chosen for this
        # frame alone (any_shot) only mixes in its moved guess; the shot stays the network's own.
        mix = guide if guide is not None and guide.moved is not None else None
        guide = None if guide is not None and guide.any_shot else guide
        # An input that does not wait for frame t-1's output can be predicted ahead: the gray one, or
        # with feedback_lag 2 lagged_input's.
        ahead = guide is None and (not self.opt.feedback or self.opt.feedback_lag == 2)
        fed_before = self._fed
        hint = None if predicted is not None and ahead else self._hint(inherited, guide, index)
        turned = self._took_turn(fed_before, index)  # its input is gray on its turn (gray_every): the per-frame guess
        if predicted is not None and ahead and self._made:
            turned = self._made.popleft()
        if predicted is not None and (ahead or hint is None):
            pred, confidence = predicted
        else:
            # In a guided shot the hint is a keyframe's colours, carried: true colours, which the network
            # may follow further than its own guesses (model.HintGate.trusted_offset).
            gain, snap = (1.0, 0) if guide is not None else (self.opt.feedback_gain, self.opt.snap_radius)
            x = gray_input(gray) if hint is None else feedback_input(self.lut[gray], *hint, gain, snap)
            pred, confidence = predict(x, trusted=guide is not None)
        if guide is None:
            pred = self._anchored(inherited, pred, turned)
        # The points' other frames (feed_moved off) end at a cut, which the guide may learn of only after this step.
        if mix is not None and (mix.feed_moved or mix.any_shot or not inherited.cut):
            mixed = pred if mix.feed_moved else pred[..., :2]
            pred = np.concatenate([with_moved(mixed, mix.moved, mix.share), pred[..., mixed.shape[-1] :]], -1).astype(np.float32)
        return self._blend(inherited, pred, confidence, guide)[..., :2]

    def _anchored(self, inherited: Inherited, pred: np.ndarray, turned: bool) -> np.ndarray:
        """pred (H, W, C) ab as the network gave it -> with the shot's drift taken off (TemporalOptions.anchor).
        On a gray input's turn (the network's per-frame guess) it measures the drift instead: the mean
        offset, over the trusted pixels, of the warped past from this guess; the past is already anchored,
        so what remains is added on, times `anchor`."""
        if not self.opt.feedback or self.opt.anchor <= 0 or inherited.ab is None:
            return pred
        if not turned:
            # Nothing to take off before a shot's first measurement (or with gray_every 0): skip the
            # (H, W, C) subtraction, 0.14-0.19 ms a frame at the working size.
            return pred - self._drift if np.any(self._drift) else pred
        trusted = inherited.reliability > 0.5
        if trusted.mean() >= 0.1 and inherited.ab.shape[-1] == pred.shape[-1]:
            offset = (inherited.ab[trusted] - pred[trusted]).mean(0)
            self._drift = (self._drift + self.opt.anchor * offset).astype(np.float32)
        return pred

    def _hint(self, inherited: Inherited, guide: Guide | None, index: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """The colours frame t's input carries (H, W, 2) and their reliability (H, W), or None (its gray)."""
        hint = None
        if guide is not None or (self.opt.feedback and self.opt.feedback_lag == 1):
            if inherited.ab is not None:  # frame t-1's colours (a guided shot always feeds them back)
                hint = (inherited.ab[..., -2:], inherited.reliability)
                hint = hint if guide is not None else self._fed_back(hint, index)
        elif self.opt.feedback and inherited.lagged is not None:
            hint = self._fed_back(_lagged_hint(*inherited.lagged), index)
        if guide is not None and guide.hint is not None:
            hint = _spread_hint(hint, guide.hint)
        if guide is not None and guide.weight is not None:
            hint = _guided_hint(hint, guide)
        return hint

    def lagged_input(self, gray: np.ndarray, before: Link | None, link: Link, index: int | None = None) -> np.ndarray:
        """With feedback_lag 2, frame t's network input while frame t-1 is not finished yet: its gray
        (H, W) uint8 with the last finished frame's output (frame t-2's) carried over `before` (the link
        t-2 -> t-1) and `link` (t-1 -> t) -> RGB (H, W, 3) float32 in [0, 1]; the gray alone across a cut.
        The same input step() makes when it predicts frame t itself; pass the output as its `predicted`
        (and the same index: the frame's number in the film, or None)."""
        fed_before, hint = self._fed, None
        if self.prev_ab is not None and before is not None:
            hint = self._fed_back(_lagged_hint(self.prev_ab, before.motion, link.motion), index)
        self._made.append(self._took_turn(fed_before, index))
        if hint is None:
            return gray_input(gray)
        return feedback_input(self.lut[gray], *hint, self.opt.feedback_gain, self.opt.snap_radius)

    def _fed_back(self, hint: tuple[np.ndarray, np.ndarray] | None, index: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """The network's own colours a frame's input would carry (ab (H, W, 2), reliability (H, W)), or
        None (its gray) where gray_every says this one goes without. Called once per such input, in order."""
        if hint is None:
            return hint
        self._fed += 1
        return None if self._turn(index) else hint

    def _turn(self, index: int | None) -> bool:
        """Whether the input just counted is gray on its turn (gray_every). By the frame's number in the film
        where the caller knows it: a segment's warm-up then takes its turns on the one-pass run's frames, so
        its loop and its anchor settle on the one-pass run's colours (benchmarks/long.py --only seams). Else
        by the input's count in the shot."""
        if index is None:
            return gray_turn(self._fed, self.opt.gray_every)
        return self.opt.gray_every > 0 and index % self.opt.gray_every == 0

    def _took_turn(self, fed_before: int, index: int | None) -> bool:
        """Whether the input made since the count stood at `fed_before` is gray on its turn (gray_every)."""
        return self._fed != fed_before and self._turn(index)

    def _inherit(self, link: Link) -> Inherited:
        """What this frame gets from the previous one's output, along the link's motion."""
        self._keep = not link.black
        motion = link.motion
        if motion is None or self.prev_ab is None:
            self.cuts += 1
            self.reset()
            return Inherited(None, None, cut=True)
        confidence = None if self.prev_confidence is None else motion.carry(self.prev_confidence)
        lagged = None
        if self.opt.feedback and self.opt.feedback_lag == 2:
            lagged = (*self._two_back, motion) if self._two_back is not None else None
            self._two_back = (self.prev_ab, motion)  # for frame t+1: frame t-1's output, and how it lies on t
        return Inherited(motion.carry(self.prev_ab), motion.reliability, cut=False, confidence=confidence, lagged=lagged)

    def _blend(self, inherited: Inherited, pred_ab: np.ndarray, confidence: np.ndarray, guide: Guide | None = None) -> np.ndarray:
        """pred_ab (H, W, 2) float32, the model's confidence (H, W) in [0, 1] -> output ab (H, W, 2);
        remembers it (and its confidence) for the next frame. A guide's colours replace it by their weight,
        and count as sure."""
        keep, out_confidence = self._keep_weight(inherited, confidence)
        out = pred_ab if keep is None else keep[..., None] * inherited.ab + (1.0 - keep[..., None]) * pred_ab
        if not self.opt.smooth_carried and guide is None and keep is not None and out.shape[-1] == 4:
            # Shown colours smoothed, carried ones the network's own. Not in a keyframe's shot: there the
            # carried colours are the keyframe's, blended on, or its reach would fade with each frame.
            out[..., 2:] = pred_ab[..., 2:]
        if guide is not None and guide.weight is not None:
            w = guide.weight
            g = np.tile(guide.ab, (1, 1, out.shape[-1] // 2))
            out = w[..., None] * g + (1.0 - w[..., None]) * out
            out_confidence = None if out_confidence is None else w + (1.0 - w) * out_confidence
        if self._keep:  # a black frame leaves no state: nothing crosses a fade
            self.prev_ab, self.prev_confidence = out, out_confidence
        return out

    def _keep_weight(self, inherited: Inherited, confidence: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per pixel, how much of the warped past to keep: (H, W) in [0, max_keep] (None = none),
        and the confidence of the blended result.

        smoothing x flow reliability, scaled by 2 c_past / (c_past + c_new): 1 where the
        network is as sure now as it was, up to 2 where the past was surer (the new
        guess is the likelier flicker), down to 0 where only the new one is sure.
        """
        use = self.opt.use_confidence
        if inherited.ab is None or self.opt.smoothing <= 0:
            return None, confidence if use else None
        keep = self.opt.smoothing * inherited.reliability
        if not use or inherited.confidence is None:
            return np.minimum(keep, self.opt.max_keep), confidence if use else None
        past = inherited.confidence
        keep = np.minimum(keep * 2.0 * past / np.maximum(past + confidence, 1e-6), self.opt.max_keep)
        return keep, keep * past + (1.0 - keep) * confidence
