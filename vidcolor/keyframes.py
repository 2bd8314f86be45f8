"""Coloured keyframes: a user's colours for one frame, steering its whole shot.

The user exports a frame (`vidcolor frame`), colours it, and passes it back with
`--keyframe TIME=IMAGE`. At that frame its ab is the network's hint and, where
the user painted (chroma above PAINTED_CHROMA), the output; where the picture
was left gray the network decides. The temporal path then carries it:
- forward, as any frame's colours are carried (feedback and blend), until a cut;
- backward: before the forward pass reaches the keyframe, the frames of the
  `reach` seconds before it are run through a second TemporalState in reverse,
  starting from the keyframe, until a cut or the previous keyframe. Their
  results guide the forward pass on those frames, so the colours arrive before
  the keyframe too. Memory stays bounded: one window of working-size frames.
Between two keyframes of one shot the colours move from one to the other linearly in time.
A keyframe of points (a project's clicks) also moves the network's guess, on its own frame and, in both
directions, on each frame of its shot (`moved_guess`, hints.py); with --points-across-shots, on the frames
of shots without keyframes that show what its points landed on (`across_shots`).

This module sees only working-size upright arrays; the pipeline supplies the
frames (`Window`) and the network (`temporal.Predict`, `Guess`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import VidcolorError
from .project import Point, Project
from .temporal import MOVED_SHARE, Guide, Predict, TemporalOptions, TemporalState, gray_input
from .timecode import EPS, parse_time

if TYPE_CHECKING:  # hints loads torch, which a run without points never does
    from .hints import Corrections

PAINTED_CHROMA = 4.0  # Lab units: below, the user left the pixel gray and the network decides
MAX_LIGHTNESS_GAP = 12.0  # mean |L image - L frame| (Lab units) above which the image is not this frame

# (start time, key time) -> the upright working-size gray (h, w) uint8 of every frame from the first at or
# after start up to and including the first at or after the key time, with their times (seconds).
Window = Callable[[float, float], list[tuple[float, np.ndarray]]]
# The network on a gray frame's input (H, W, 3) -> its colours (H, W, 2) and its decoder's features
# (c, H/4, W/4): inference.Colorizer.guess, what a keyframe's points move (hints.move_guess).
Guess = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class KeyframeSpec:
    time: float  # seconds from the start of the file, as -ss counts
    image: Path | None  # a frame coloured by hand, or None for points alone
    points: tuple[Point, ...] = ()  # a user's clicks on this frame (project.py), when image is None


def parse_keyframe(text: str) -> KeyframeSpec:
    """'1:23.5=frame.png' -> KeyframeSpec; a malformed value or an unreadable image is a VidcolorError."""
    when, sep, image = text.partition("=")
    if not sep or not when.strip() or not image.strip():
        raise VidcolorError(f"--keyframe {text!r}: give TIME=IMAGE, e.g. --keyframe 1:23.5=frame_coloured.png")
    path = Path(image.strip())
    if not path.is_file():
        raise VidcolorError(f"--keyframe {text!r}: {path} not found. Check the image's path")
    if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
        raise VidcolorError(f"--keyframe {text!r}: {path} is not an image OpenCV can read: save it as PNG")
    return KeyframeSpec(parse_time(when, "keyframe time"), path)


def project_keyframes(project: Project, folder: Path) -> list[KeyframeSpec]:
    """A project's points (one keyframe per frame time) and keyframe images (relative to `folder`, the
    project file's) as keyframes; an image and points at one time is a VidcolorError."""
    specs = [KeyframeSpec(t, None, points) for t, points in project.frames().items()]
    for k in project.keyframes:
        spec = parse_keyframe(f"{k.t}={folder / k.image}")
        if any(abs(s.time - spec.time) < EPS for s in specs):
            raise VidcolorError(
                f"the project has points and the image {k.image} at {k.t:g} s: keep one of the two for that frame"
            )
        specs.append(spec)
    return specs


def check_keyframes(
    specs: list[KeyframeSpec], start: float | None, end: float | None, length: float, sources: bool = False
) -> None:
    """Each time once, inside the range being colorized (start/end/length in file seconds; 0 = unknown). With
    sources (--points-across-shots), points elsewhere in the file are allowed: they lend their correction to
    the range's shots without points (`in_range`, Keyframes' sources)."""
    seen = set()
    for k in specs:
        key = round(k.time, 3)
        if key in seen:
            raise VidcolorError(f"--keyframe at {k.time:g} s is given twice: give one image per time")
        seen.add(key)
        lo, hi = start or 0.0, end if end is not None else (length or float("inf"))
        if lo - EPS <= k.time < hi or (sources and k.image is None and k.time < (length or float("inf"))):
            continue
        raise VidcolorError(
            f"--keyframe at {k.time:g} s is outside the range being colorized ({lo:g} s to {hi:g} s): choose a time inside it"
        )


def for_range(specs: list[KeyframeSpec], start: float | None, end: float | None, across: bool) -> list[KeyframeSpec]:
    """A project's keyframes for a render of [start, end) (seconds; None: the film's own ends): those inside
    it, and with across (--points-across-shots) the points outside it, which lend their correction there."""
    inside, outside = in_range(specs, start, end)
    return inside + [k for k in outside if across and k.points]


def in_range(specs: list[KeyframeSpec], start: float | None, end: float | None) -> tuple[list[KeyframeSpec], list[KeyframeSpec]]:
    """Keyframes (file seconds) -> those inside [start, end) (None: the file's own end), and the others."""
    inside = [k for k in specs if (start is None or k.time >= start - EPS) and (end is None or k.time < end)]
    return inside, [k for k in specs if k not in inside]


def painted_guide(spec: KeyframeSpec, gray: np.ndarray, lut: np.ndarray) -> Guide:
    """The user's colours for a frame whose upright working-size gray is `gray` (h, w) uint8 -> Guide:
    ab (h, w, 2) and weight 1 where painted, 0 where left gray. The image may be of any size (it is
    resized); its lightness must match the frame's, or it is another frame."""
    lab = _image_lab(spec, *gray.shape)
    gap = float(np.abs(lab[..., 0] - lut[gray]).mean())
    if gap > MAX_LIGHTNESS_GAP:
        raise VidcolorError(
            f"--keyframe {spec.image.name} does not match the frame at {spec.time:g} s (lightness differs by "
            f"{gap:.0f} of 100 on average): colour the frame `vidcolor frame` exported for that time"
        )
    return _painted(lab)


def painted_full(spec: KeyframeSpec, height: int, width: int) -> Guide:
    """The user's colours at the frame's full (upright) size, for the keyframe's own output frame: what they
    painted is shown as painted, not as it survives the working resolution."""
    if spec.image is None:
        return _patches(spec.points, height, width)
    return _painted(_image_lab(spec, height, width))


def hex_ab(colour: str) -> np.ndarray:
    """'#rrggbb' (sRGB) -> its Lab ab (2,) float32."""
    rgb = np.array([[[int(colour[i : i + 2], 16) for i in (1, 3, 5)]]], np.float32) / 255.0
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0, 1:]


def _patches(points: tuple[Point, ...], height: int, width: int) -> Guide:
    """Points drawn at a frame of (height, width): each a square of its colour's ab, weight 1 on it."""
    ab = np.zeros((height, width, 2), np.float32)
    weight = np.zeros((height, width), np.float32)
    for p in points:
        side = max(1, round(p.size * width))
        x0 = min(max(0, round(p.x * width - side / 2)), width - 1)
        y0 = min(max(0, round(p.y * height - side / 2)), height - 1)
        ab[y0 : y0 + side, x0 : x0 + side] = hex_ab(p.colour)
        weight[y0 : y0 + side, x0 : x0 + side] = 1.0
    return Guide(ab, weight)


def points_guide(points: tuple[Point, ...], gray: np.ndarray, lut: np.ndarray) -> Guide:
    """A user's points on a frame whose upright working-size gray is `gray` (h, w) uint8 -> Guide: their
    colours exactly on their patches, and spread over the regions they land on as the network's hint
    (without their moved guess: Keyframes adds it)."""
    import torch  # points only: a run without them never loads torch

    from .hints import point_hint

    patches = _patches(points, *gray.shape)
    ab = torch.from_numpy(patches.ab).permute(2, 0, 1)[None]
    L = torch.from_numpy(lut[gray].astype(np.float32))[None, None]
    on = torch.from_numpy(patches.weight > 0)[None, None]  # a gray point's colour is 0 too
    spread = point_hint(ab, L, on)[0].permute(1, 2, 0).numpy()
    return Guide(patches.ab, patches.weight, np.ascontiguousarray(spread, dtype=np.float32))


def points_said(points: tuple[Point, ...], gray: np.ndarray, lut: np.ndarray, guess: Guess) -> Corrections | None:
    """What a user's points on a frame (its upright working-size gray (h, w) uint8) say about the network's
    guess there (hints.corrections), for that frame and the others of its shot."""
    from .hints import corrections

    patches = _patches(points, *gray.shape)
    return corrections(*guess(gray_input(gray)), patches.ab, patches.weight, lut[gray])


def moved_guess(said: Corrections | None, gray: np.ndarray, lut: np.ndarray, guess: Guess) -> tuple[np.ndarray, float]:
    """The network's colours on a frame (its upright working-size gray (h, w) uint8) without points, moved by
    what points of its shot said (hints.move_guess) -> (h, w, 2) float32 Lab units, and the share of them
    the frame shows: temporal.MOVED_SHARE on the points' own frame, less on a frame unlike it."""
    from .hints import move_guess

    moved, likeness = move_guess(*guess(gray_input(gray)), said, lut[gray])
    return moved, MOVED_SHARE * likeness


def governing(specs: list[KeyframeSpec], time: float, shot: tuple[float, float], reach: float) -> KeyframeSpec | None:
    """The keyframe whose points move the network's guess on the frame at `time` (seconds) in a render, as
    `Keyframes.guide` chooses it: the last one at or before it in its shot ([start, end) seconds), else the
    first one after it in the shot and no more than `reach` seconds away; None where there is none."""
    start, end = shot
    here = sorted((k for k in specs if start - EPS <= k.time < end - EPS), key=lambda k: k.time)
    before = [k for k in here if k.time <= time + EPS]
    if before:
        return before[-1]
    return next((k for k in here if k.time - reach <= time + EPS), None)


def across_shots(
    said: list[Corrections], gray: np.ndarray, lut: np.ndarray, guess: Guess
) -> tuple[np.ndarray | None, float, int]:
    """A frame of a shot without points (its upright working-size gray (h, w) uint8) and what the film's
    pointed frames said (points_said, one each) -> the network's guess there moved by the points of the
    pointed frame whose points are most found in it, the share of it the frame shows (MOVED_SHARE x
    hints.move_likest's), and which pointed frame that is: (h, w, 2) float32; (None, 0, -1) where none is."""
    from .hints import move_likest

    if not said:
        return None, 0.0, -1
    moved, share, best = move_likest(*guess(gray_input(gray)), said, lut[gray])
    return moved, MOVED_SHARE * share, best


def _image_lab(spec: KeyframeSpec, height: int, width: int) -> np.ndarray:
    """The keyframe image resized to (height, width) -> Lab (height, width, 3) float32."""
    bgr = cv2.imread(str(spec.image), cv2.IMREAD_COLOR)
    shrink = bgr.shape[0] * bgr.shape[1] > height * width
    resized = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _painted(lab: np.ndarray) -> Guide:
    ab = np.ascontiguousarray(lab[..., 1:])
    return Guide(ab, (np.hypot(ab[..., 0], ab[..., 1]) > PAINTED_CHROMA).astype(np.float32))


# Changes no colour; only makes the state feed the past back, as the keyframe's true colours (temporal.Guide).
CARRY_ON = Guide(None, None)


def carry_back(
    frames: list[np.ndarray],
    key: Guide,
    predict: Predict,
    lut: np.ndarray,
    options: TemporalOptions,
    moved: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None,
) -> list[np.ndarray | None]:
    """frames: upright working-size grays, in time order, the last one the keyframe's -> for each earlier
    frame the colours carried back to it from the keyframe ((h, w, 2) float16), None from a cut back.
    moved: a frame's gray -> the network's guess there moved by the keyframe's points (moved_guess)."""
    state = TemporalState(replace(options.filled(), feedback=True), lut)  # filled: a no-op on a run's own
    out: list[np.ndarray | None] = [None] * len(frames)
    state.step(frames[-1], predict, key)
    cuts = state.cuts
    for i in range(len(frames) - 2, -1, -1):
        ab = state.step(
            frames[i], predict, CARRY_ON if moved is None else Guide(None, None, None, *moved(frames[i]), feed_moved=False)
        )
        if state.cuts > cuts:
            break
        out[i] = ab.astype(np.float16)
    return out


class Keyframes:
    """The forward pass's keyframe guide: `guide(time, state)` for each frame, in order."""

    def __init__(
        self,
        specs: list[KeyframeSpec],
        window: Window,
        predict: Predict,
        guess: Guess,
        lut: np.ndarray,
        options: TemporalOptions,
        reach: float,
        across: bool = False,
        sources: list[KeyframeSpec] | None = None,
    ):
        """across: the shots without keyframes take the correction of the pointed frame they are likest to
        (across_shots), among these keyframes' and those of `sources` (points outside the range being
        coloured, read through `window` too); else nothing reaches them."""
        self.specs = sorted(specs, key=lambda k: k.time)
        self.window, self.predict, self.guess, self.lut, self.opt = window, predict, guess, lut, options
        self.reach = reach
        # Checked before any frame is written; with each, what its points say (hints.corrections), or None.
        self.keys, self.said = zip(*(self._load(k) for k in self.specs), strict=True) if self.specs else ((), ())
        lent = [points_said(k.points, self._gray(k), lut, guess) for k in sources or () if k.points] if across else []
        self.pointed = [s for s in (*self.said, *lent) if s is not None] if across else []
        self.next = 0  # the first keyframe not yet reached
        self.back: dict[int, tuple[np.ndarray | None, int]] = {}  # ms -> (carried-back ab, frames to the key)
        self.since_key: int | None = None  # frames since the last keyframe, in this shot
        self.cuts_at_key: int | None = None
        self.carried: int | None = None  # the keyframe whose frames before it are in self.back
        self.at_key: KeyframeSpec | None = None  # set by guide() on a keyframe's own frame

    def _gray(self, spec: KeyframeSpec) -> np.ndarray:
        """The keyframe's frame, its upright working-size gray (h, w) uint8."""
        frames = self.window(spec.time, spec.time)
        if not frames or frames[-1][0] < spec.time - EPS:
            raise VidcolorError(f"--keyframe at {spec.time:g} s: the video has no frame there. Choose a time inside it")
        return frames[-1][1]

    def _load(self, spec: KeyframeSpec) -> tuple[Guide, Corrections | None]:
        gray = self._gray(spec)
        if spec.image is None:
            said = points_said(spec.points, gray, self.lut, self.guess)
            moved, share = moved_guess(said, gray, self.lut, self.guess)
            return replace(points_guide(spec.points, gray, self.lut), moved=moved, share=share), said
        return painted_guide(spec, gray, self.lut), None

    def _moved(self, key: int, gray: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """The network's guess on this frame moved by keyframe `key`'s points and its share (moved_guess), or
        (None, 0) (no points, or no gray)."""
        if gray is None or self.said[key] is None:
            return None, 0.0
        return moved_guess(self.said[key], gray, self.lut, self.guess)

    def guide(self, time: float, state: TemporalState, gray: np.ndarray | None = None, cut: bool = False) -> Guide | None:
        """This frame's guide, or None; call before state.step on the frame at `time` (seconds), whose
        upright working-size gray is `gray` (h, w) uint8 (without it, points move only their own frame).
        cut: the frame starts a shot (its flow.Link has no motion); else the state tells after its step."""
        self.at_key = None
        if self.since_key is not None:
            if self.cuts_at_key is None:  # the state as the keyframe's own step left it
                self.cuts_at_key = state.cuts
            self.since_key = None if cut or state.cuts > self.cuts_at_key else self.since_key + 1
        if self.next >= len(self.specs):  # past the last keyframe
            return self._across(gray) if self.since_key is None else self._carry_on(gray)
        spec = self.specs[self.next]
        if time >= spec.time - EPS:
            self.at_key = spec
            self.next += 1
            self.back.clear()
            self.since_key, self.cuts_at_key = 0, None
            return self.keys[self.next - 1]
        if time >= spec.time - self.reach - EPS and self.carried != self.next:
            self._carry_back(time, spec)
        ab, to_key = self.back.pop(round(time * 1000), (None, 0))
        if ab is None:  # after a keyframe, in its shot: nothing to add, but the shot feeds its colours on
            return self._across(gray) if self.since_key is None else self._carry_on(gray)
        # Between two keyframes: each frame's output is carried on to the next, so taking 1/(n+1) of the
        # later keyframe's colours n frames before it moves the mix linearly in time from one to the other.
        weight = 1.0 if self.since_key is None else 1.0 / (to_key + 1)
        moved, share = (None, 0.0) if self.since_key is None else self._moved(self.next - 1, gray)
        return Guide(ab.astype(np.float32), np.full(ab.shape[:2], weight, np.float32), None, moved, share, feed_moved=False)

    def _across(self, gray: np.ndarray | None) -> Guide | None:
        """A frame of a shot without keyframes: with `across`, the correction of the pointed frame it is
        likest to (across_shots), shown only; else None."""
        if not self.pointed or gray is None:
            return None
        moved, share, _ = across_shots(self.pointed, gray, self.lut, self.guess)
        return None if moved is None else Guide(None, None, None, moved, share, feed_moved=False, any_shot=True)

    def _carry_on(self, gray: np.ndarray | None) -> Guide:
        """A frame after a keyframe, in its shot: the shot feeds its colours on, and the keyframe's points
        move the network's guess here too."""
        moved, share = self._moved(self.next - 1, gray)
        return CARRY_ON if moved is None else Guide(None, None, None, moved, share, feed_moved=False)

    def _carry_back(self, time: float, spec: KeyframeSpec) -> None:
        frames = self.window(time, spec.time)
        key = self.next
        moved = None if self.said[key] is None else (lambda gray: moved_guess(self.said[key], gray, self.lut, self.guess))
        carried = carry_back([g for _, g in frames], self.keys[key], self.predict, self.lut, self.opt, moved)
        n = len(frames)
        self.back = {round(t * 1000): (ab, n - 1 - i) for i, ((t, _), ab) in enumerate(zip(frames, carried, strict=True))}
        self.carried = self.next
