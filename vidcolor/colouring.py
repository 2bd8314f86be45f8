"""The colouring core: a film's gray frames in, in order, each with its colours out. No threads, no files.

    core = Colouring(colorizer, options, shape=(H, W))
    tracker = Tracker(core.temporal_options, core.lut)
    for item, gray, t in frames:                         # gray (H, W) uint8 as stored; t in seconds
        small = core.upright(gray)
        for item, ab, unc in core.push(item, small, tracker.link(small), t):
            ...                                          # ab (h, w, 2) Lab units, as stored
    for item, ab, unc in core.flush():
        ...

It owns what a frame's colours depend on: the working size and the rotation, the temporal state
(feedback, blend, anchor), the keyframes and points, the reference photo's match, and the look-ahead,
which holds each frame until the frames after it are in. `item` is the caller's, handed back with its
frame's colours. Job (job.py) runs it between its decoder and encoder threads; the editor (editing.py)
colours one frame with it. The motion between frames (`Tracker.link`) is the caller's to find, so that it
can be found on another thread, as Job does.
"""

from __future__ import annotations

import time as clock
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

import cv2
import numpy as np

from .color import gray_to_lightness_lut
from .flow import Link, Tracker
from .inference import Colorizer
from .keyframes import Keyframes, KeyframeSpec, Window, painted_full
from .lookahead import LookAhead
from .options import ColorizeOptions, StageTimes, working_size
from .reference import ReferenceMatch
from .temporal import Guide, TemporalOptions, TemporalState

T = TypeVar("T")
Prediction = tuple[np.ndarray, np.ndarray]  # the network's ab (h, w, C) and confidence (h, w)
Submit = Callable[[np.ndarray], "Future[Prediction]"]  # the network's output on an input, under way


class AheadMode(Enum):
    """Which network inputs can be predicted before the frame before them is finished (inference.Ahead)."""

    NONE = "none"  # each input waits for frame t-1's output (feedback_lag 1, keyframes, a reference photo)
    GRAY = "gray"  # each input is its gray frame alone (no feedback): predicted as soon as it is decoded
    LAGGED = "lagged"  # each input holds frame t-2's output (feedback_lag 2): two frames at once


def ahead_mode(options: ColorizeOptions, temporal: TemporalOptions, has_reference: bool) -> AheadMode:
    """Keyframes' colours are the input, and a reference photo's bias follows the shot's frames so far:
    both wait for frame t-1."""
    if options.keyframes or has_reference:
        return AheadMode.NONE
    if not temporal.feedback or not options.temporal:
        return AheadMode.GRAY
    return AheadMode.LAGGED if temporal.feedback_lag == 2 else AheadMode.NONE


def upright(gray: np.ndarray, size: tuple[int, int], rotation: int) -> np.ndarray:
    """gray (H, W) uint8 as stored -> (h, w) uint8 at the working size `size` ((w, h) as stored), turned
    upright by `rotation` degrees."""
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    k = rotation // 90
    return np.ascontiguousarray(np.rot90(small, k)) if k else small


class ShotMatch:
    """A ReferenceMatch that forgets the shot whenever the temporal state counts a cut."""

    def __init__(self, match: ReferenceMatch):
        self.match, self.cuts = match, 0

    def current(self, state: TemporalState) -> ReferenceMatch:
        if state.cuts != self.cuts:
            self.cuts = state.cuts
            self.match.reset()
        return self.match


@dataclass
class _Frame(Generic[T]):
    """A frame on its way through the core."""

    item: T
    small: np.ndarray  # (h, w) uint8, upright, at the working size
    link: Link | None  # how it follows the frame before (None without temporal)
    time: float  # seconds
    index: int | None  # its number in the film (TemporalState.step), or None: counted in the shot
    number: int  # its number in this run: the look-ahead's order where the film's is not given
    ahead: Future | None  # the network's output on its input, under way, or None
    unc: np.ndarray | None = None  # (h, w) float32 in [0, 1], upright: the network's uncertainty, once stepped
    at_key: KeyframeSpec | None = None  # the keyframe painted on this frame, if it is one


class Colouring(Generic[T]):
    """One run's colouring, frame by frame (see the module's docstring)."""

    def __init__(
        self,
        colorizer: Colorizer,
        options: ColorizeOptions,
        shape: tuple[int, int],
        rotation: int = 0,
        keyframes: list[KeyframeSpec] | None = None,
        window: Window | None = None,
        sources: list[KeyframeSpec] | None = None,
        match: ShotMatch | None = None,
        submit: Submit | None = None,
        times: StageTimes | None = None,
    ):
        """shape: (H, W) of the frames as stored; rotation: degrees the display turns them (0, 90, 180,
        270); keyframes: at their times in the file (KeyframeSpec.time plus the file's start), read through
        `window` (I/O: the caller's); sources: points outside the range that lend their correction with
        points_across_shots (Keyframes); submit: predicts inputs ahead (inference.Ahead.submit) where
        `mode` allows, else every input is predicted in turn; times: where model and blend time go."""
        self.colorizer, self.options, self.match = colorizer, options, match
        self.shape, self.rotation = shape, rotation % 360
        self.temporal_options = options.temporal_options.filled(colorizer.feedback)  # the weights' own where unset
        self.lut = gray_to_lightness_lut()  # (256,) Lab L of each gray level
        self.size = working_size(shape[1], shape[0], options.work_size)  # (w, h) as stored
        self.mode = ahead_mode(options, self.temporal_options, match is not None)
        self.submit = submit if self.mode is AheadMode.LAGGED else None
        self.times = times if times is not None else StageTimes()
        self.state = TemporalState(self.temporal_options, self.lut, enabled=options.temporal)
        look = self.temporal_options.look_ahead if options.temporal else 0
        self.look: LookAhead[_Frame[T]] | None = LookAhead(look) if look else None
        self.keyframes = (
            Keyframes(
                keyframes,
                window,
                colorizer.predict,
                colorizer.guess,
                self.lut,
                self.temporal_options,
                options.keyframe_reach,
                options.points_across_shots,
                sources,
            )
            if keyframes or sources
            else None
        )
        self._held: deque[_Frame[T]] = deque()  # with feedback_lag 2: the frames whose prediction is under way
        self._pushed = 0

    def upright(self, gray: np.ndarray) -> np.ndarray:
        """A frame's gray (H, W) uint8 as stored -> (h, w) uint8 at the working size, upright: what the
        network and the tracker see."""
        return upright(gray, self.size, self.rotation)

    def push(
        self,
        item: T,
        small: np.ndarray,
        link: Link | None,
        time: float,
        index: int | None = None,
        ahead: Future | None = None,
    ) -> list[tuple[T, np.ndarray, np.ndarray]]:
        """The next frame: small (h, w) uint8 from upright(); link: how it follows the frame pushed before
        (Tracker.link; None without temporal); time in seconds; index: its number in the film (where the
        gray inputs' turns fall; None: counted in the shot); ahead: the network's output on its gray frame,
        under way (mode GRAY only) -> the frames finished now, oldest first: (item, ab (h, w, 2) float32 in
        Lab units, uncertainty (h, w) float32 in [0, 1]), both as stored (not upright); a keyframe's own
        frame has its ab at the stored (H, W), the user's colours exactly where they painted."""
        frame = _Frame(item, small, link, time, index, self._pushed, ahead if self.mode is AheadMode.GRAY else None)
        self._pushed += 1
        if self.submit is None:
            return self._hand_on(self._step(frame))
        # Frame t's input holds frame t-2's output: step t-2, predict t beside t-1, then hand t-2 on.
        stepped = self._step(self._held.popleft()) if len(self._held) == 2 else None
        before = self._held[-1].link if self._held else None
        frame.ahead = self.submit(self.state.lagged_input(small, before, link, index))
        self._held.append(frame)
        return self._hand_on(stepped) if stepped is not None else []

    def flush(self) -> list[tuple[T, np.ndarray, np.ndarray]]:
        """The frames still held (the end of the run), finished."""
        out = []
        while self._held:
            out += self._hand_on(self._step(self._held.popleft()))
        if self.look is not None:
            out += [self._as_stored(frame, ab) for frame, ab in self.look.flush()]
        return out

    def _step(self, frame: _Frame[T]) -> tuple[_Frame[T], np.ndarray]:
        """One frame through the temporal state -> it, with its upright ab (h, w, 2)."""
        cut = frame.link is not None and frame.link.motion is None
        guide = self.keyframes.guide(frame.time, self.state, frame.small, cut) if self.keyframes else None
        frame.at_key = self.keyframes.at_key if self.keyframes else None
        t = clock.perf_counter()
        predicted = frame.ahead.result() if frame.ahead is not None else None
        self.times.add("wait model", t)
        frame.ahead = None
        ab, frame.unc = self._colour(frame, guide, predicted)
        return frame, ab

    def _colour(self, frame: _Frame[T], guide: Guide | None, predicted: Prediction | None) -> tuple[np.ndarray, np.ndarray]:
        """-> ab (h, w, 2) float32 and the network's uncertainty (h, w) float32 in [0, 1] (the normalized
        entropy of its colour distribution). Model time is what the network took here; "blend" is the
        rest of the step (warps, the network's input, the blend)."""
        t = clock.perf_counter()
        in_model = [0.0]  # seconds in the network here (Ahead's workers add their own)
        confidence: list[np.ndarray] = [] if predicted is None else [predicted[1]]

        def predict(rgb: np.ndarray, trusted: bool = False) -> Prediction:
            t_model = clock.perf_counter()
            out = self.colorizer.predict(rgb, self.match.current(self.state) if self.match is not None else None, trusted)
            in_model[0] += self.times.add("model", t_model) - t_model
            confidence.append(out[1])
            return out

        ab = self.state.step(frame.small, predict, guide, frame.link, predicted, frame.index)
        self.times.add("blend", t + in_model[0])
        return ab, 1.0 - confidence[-1]

    def _hand_on(self, stepped: tuple[_Frame[T], np.ndarray]) -> list[tuple[T, np.ndarray, np.ndarray]]:
        """A stepped frame into the look-ahead -> the frames that leave it."""
        frame, ab = stepped
        if self.look is None:
            return [self._as_stored(frame, ab)]
        t = clock.perf_counter()
        back = frame.link.back if frame.link is not None else None
        leaving = self.look.push(frame, ab, back, frame.index if frame.index is not None else frame.number)
        self.times.add("look-ahead", t)
        return [self._as_stored(f, smoothed) for f, smoothed in leaving]

    def _as_stored(self, frame: _Frame[T], ab: np.ndarray) -> tuple[T, np.ndarray, np.ndarray]:
        """Upright ab and uncertainty -> as the frame is stored; a keyframe's own frame at its full size."""
        k = self.rotation // 90
        unc = frame.unc
        if k:
            ab, unc = np.rot90(ab, -k), np.rot90(unc, -k)
        ab, unc = np.ascontiguousarray(ab), np.ascontiguousarray(unc)
        if frame.at_key is not None:
            ab = self._painted_at_full_size(ab, frame.at_key)
        return frame.item, ab, unc

    def _painted_at_full_size(self, ab: np.ndarray, spec: KeyframeSpec) -> np.ndarray:
        """A keyframe's own frame: ab (h, w, 2) at the working size, as stored -> (H, W, 2) at the frame's
        stored size, the user's colours exactly where they painted (the composer takes ab of any size)."""
        k = self.rotation // 90
        h, w = self.shape if k % 2 == 0 else self.shape[::-1]
        painted = painted_full(spec, h, w)
        user, weight = (np.rot90(painted.ab, -k), np.rot90(painted.weight, -k)) if k else (painted.ab, painted.weight)
        full = cv2.resize(ab, (self.shape[1], self.shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(weight[..., None] * user + (1.0 - weight[..., None]) * full, dtype=np.float32)


def colour_frames(
    colorizer: Colorizer, options: ColorizeOptions, frames: list[tuple[float, np.ndarray]], window: Window | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames (time in seconds, gray (H, W) uint8 upright), in order -> each one's (ab (h, w, 2), uncertainty
    (h, w)) at the working size: the core without threads, for tests, the editor and scripts."""
    if not frames:
        return []
    core: Colouring[int] = Colouring(colorizer, options, frames[0][1].shape, keyframes=list(options.keyframes), window=window)
    opt = core.temporal_options
    tracker = Tracker(core.lut, opt.flow_preset, opt.look_ahead > 0) if options.temporal else None
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, (t, gray) in enumerate(frames):
        small = core.upright(gray)
        for n, ab, unc in core.push(i, small, tracker.link(small) if tracker else None, t, i):
            out[n] = (ab, unc)
    for n, ab, unc in core.flush():
        out[n] = (ab, unc)
    return [out[i] for i in range(len(frames))]
