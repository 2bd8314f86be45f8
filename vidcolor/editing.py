"""What the editor does, without HTTP and without threads: a film's frames and shots, one frame coloured
with a user's points, and the colours the network suggests at a pixel.

A frame with points is coloured as a render colours a keyframe's own frame (keyframes.points_guide): the
points, spread over their regions, are the network's hint, and their patches show their colour exactly; a
frame coloured by hand shows as painted. The
other frames of their shot show the network's colours with the guess the points move there
(keyframes.moved_guess), as a render shows them less what the motion carries from frame to frame; with
--points-across-shots, a shot without points shows the same from the pointed frame it shows most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np

from .color import gray_to_lightness_lut, lab_planes_to_rgb
from .colouring import colour_frames, upright
from .errors import VidcolorError
from .flow import CUT_THRESHOLD, histogram, shot_distance
from .inference import Colorizer
from .keyframes import KeyframeSpec, across_shots, moved_guess, painted_full, points_guide, points_said
from .options import ColorizeOptions, working_size
from .project import Point
from .stills import upright_gray
from .temporal import feedback_input, gray_input, with_moved
from .video import DecodeStats, demux_range, describe, file_start, open_input

if TYPE_CHECKING:
    from .hints import Corrections

VIEW_WIDTH = 960  # px: the widest frame the editor is sent
SUGGESTIONS = 8
MODE_RADIUS = 15.0  # Lab units: suggestions at least this far apart
MIN_SHARE = 1e-3  # a bin this much less likely than the likeliest is no suggestion
SAID_CACHE = 64  # pointed frames whose points' say is kept (a network pass each)


@dataclass(frozen=True)
class FilmInfo:
    duration: float  # seconds
    fps: float
    frames: int
    width: int  # upright, as displayed
    height: int
    shots: list[tuple[float, float]]  # [start, end) seconds of each shot, as -ss counts
    times: list[float]  # every frame's time, seconds, as -ss counts

    def to_dict(self) -> dict:
        return {
            "duration": self.duration,
            "fps": self.fps,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "shots": [list(s) for s in self.shots],
        }


class Film:
    """A film's frames, upright and gray, by time; its shots found once with the run time's cut test."""

    def __init__(self, path, cache: int = 32):
        self.path = path
        self._cache: OrderedDict[float, tuple[float, np.ndarray]] = OrderedDict()
        self._size = cache
        self.info = self._scan()

    def _scan(self) -> FilmInfo:
        with open_input(self.path) as container:
            meta = describe(container)
            self.base = file_start(container)
            times, shots, prev, size = [], [], None, (meta.width, meta.height)
            for frame in demux_range(container, None, None, DecodeStats()):
                if not isinstance(frame, av.VideoFrame):
                    continue
                gray = upright_gray(frame)
                size = gray.shape[1], gray.shape[0]
                hist = histogram(cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA))
                t = float(frame.time) - self.base
                if prev is None or shot_distance(hist, prev) > CUT_THRESHOLD:
                    shots.append([t, t])
                times.append(t)
                prev = hist
        if not times:
            raise VidcolorError(f"{self.path} has no frames to show: give a film with a picture")
        step = 1.0 / float(meta.rate) if meta.rate else 0.04
        ends = [s[0] for s in shots[1:]] + [times[-1] + step]
        return FilmInfo(
            duration=times[-1] + step,
            fps=float(meta.rate),
            frames=len(times),
            width=size[0],
            height=size[1],
            shots=[(s[0], e) for s, e in zip(shots, ends, strict=True)],
            times=times,
        )

    def frame_time(self, t: float) -> float:
        """The time of the frame at or after t (the rule of -ss and of --keyframe); the last frame past it."""
        i = int(np.searchsorted(np.asarray(self.info.times), t - 5e-4))
        return self.info.times[min(i, len(self.info.times) - 1)]

    def shot(self, t: float) -> tuple[float, float]:
        """The [start, end) seconds of the shot the frame at or after t lies in."""
        t = self.frame_time(t)
        return next((s for s in self.info.shots if s[0] - 5e-4 <= t < s[1]), self.info.shots[-1])

    def gray(self, t: float) -> tuple[float, np.ndarray]:
        """-> (the frame's time, its upright gray (H, W) uint8) for the frame at or after t."""
        key = round(self.frame_time(t), 4)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with open_input(self.path) as container:
            frames = (f for f in demux_range(container, key + self.base, None, DecodeStats()) if isinstance(f, av.VideoFrame))
            frame = next(frames, None)
            if frame is not None:
                found = (float(frame.time) - self.base, upright_gray(frame))
            else:
                raise VidcolorError(f"no frame at {t:g} s: choose a time inside the film")
        self._cache[key] = found
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return found


@dataclass(frozen=True)
class ShotPoints:
    """A user's points on another frame of a frame's shot: the points a render carries to it (keyframes.governing)."""

    time: float  # seconds: their frame's
    points: tuple[Point, ...]
    gray: Callable[[], np.ndarray]  # -> their frame, (H, W) uint8 upright: read only where what they say is not kept


@dataclass
class Coloured:
    rgb: np.ndarray  # (H, W, 3) float32 sRGB in [0, 1] at the view size
    uncertainty: np.ndarray  # (H, W) float32 in [0, 1]: 1 - the network's confidence
    gray: np.ndarray  # (H, W) uint8 at the view size
    points_from: float | None = None  # seconds: the other frame whose points moved its guess, if one did


class FrameColourer:
    """One frame with a user's points -> its colours, as a render shows that frame without the shot around it."""

    def __init__(self, colorizer: Colorizer, work_size: int = 256):
        self.colorizer, self.work_size = colorizer, work_size
        self.lut = gray_to_lightness_lut()
        # What the points of pointed frames said (keyframes.points_said): a network pass each, kept for the
        # scrub through their shot and, with --points-across-shots, every frame. Keyed by time and points.
        self._said: OrderedDict[tuple[float, tuple[Point, ...]], Corrections | None] = OrderedDict()

    def said(self, shot: ShotPoints) -> Corrections | None:
        """What `shot`'s points say about the network's guess on their frame, remembered for the next frames."""
        key = (round(shot.time, 4), shot.points)
        if key not in self._said:
            small = self.small(shot.gray())
            self._said[key] = points_said(shot.points, small, self.lut, self.colorizer.guess)
            while len(self._said) > SAID_CACHE:
                self._said.popitem(last=False)
        self._said.move_to_end(key)
        return self._said[key]

    def small(self, gray: np.ndarray) -> np.ndarray:
        """gray (H, W) uint8, upright -> (h, w) uint8 at the working size."""
        return upright(gray, working_size(gray.shape[1], gray.shape[0], self.work_size), 0)

    def network_input(self, gray: np.ndarray, points: tuple[Point, ...]):
        """gray (H, W) uint8 -> the working-size gray, the network's input (h, w, 3) and the points' Guide
        (without their moved guess: the input is all that the suggestions read)."""
        small = self.small(gray)
        if not points:
            return small, gray_input(small), None
        guide = points_guide(points, small, self.lut)
        has = np.abs(guide.hint).sum(-1) > 0
        ab = np.where(guide.weight[..., None] > 0, guide.ab, guide.hint)
        rel = np.maximum(guide.weight, has.astype(np.float32))
        return small, feedback_input(self.lut[small], ab, rel), guide

    def colour(
        self,
        gray: np.ndarray,
        key: KeyframeSpec | None = None,
        shot: ShotPoints | None = None,
        lenders: Sequence[ShotPoints] = (),
    ) -> Coloured:
        """gray (H, W) uint8, upright -> the frame at the view size, coloured by the colouring core as a
        render colours a frame that is this keyframe (a user's points, or a frame coloured by hand), with no
        frames around it. Without one, `shot`'s points (on another frame of its shot) move its guess, by the
        share a render gives them; without those, the points of `lenders` (other shots', with
        --points-across-shots) as keyframes.across_shots picks them."""
        small = self.small(gray)
        keys = (replace(key, time=0.0),) if key is not None else ()
        options = ColorizeOptions(work_size=self.work_size, keyframes=keys)
        ((ab, unc),) = colour_frames(self.colorizer, options, [(0.0, gray)], window=lambda start, key: [(0.0, small)])
        points_from = None
        if key is None and shot is not None:
            said = self.said(shot)
            if said is not None:
                ab, points_from = with_moved(ab, *moved_guess(said, small, self.lut, self.colorizer.guess)), shot.time
        elif key is None and lenders:
            said = [self.said(lender) for lender in lenders]
            pointed = [i for i, s in enumerate(said) if s is not None]
            moved, share, best = across_shots([said[i] for i in pointed], small, self.lut, self.colorizer.guess)
            if moved is not None:
                ab, points_from = with_moved(ab, moved, share), lenders[pointed[best]].time
        h, w = view_size(gray.shape)
        view = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
        if key is not None:  # what the user gave, as drawn at this size, not as it survives the working size
            exact = painted_full(key, h, w)
            ab = exact.weight[..., None] * exact.ab + (1 - exact.weight[..., None]) * ab
        unc = cv2.resize(unc, (w, h), interpolation=cv2.INTER_LINEAR)
        return Coloured(lab_planes_to_rgb(self.lut[view], ab), np.clip(unc, 0, 1), view, points_from)

    def suggest(self, gray: np.ndarray, x: float, y: float, points: tuple[Point, ...] = ()) -> list[str]:
        """Up to SUGGESTIONS colours for the pixel at (x, y) (fractions of the frame): the modes of the
        network's colour distribution there, likeliest first, each brought into gamut at the pixel's lightness."""
        small, inp, guide = self.network_input(gray, points)
        dist = self.colorizer.distribution(inp, trusted=guide is not None)
        h, w = small.shape
        p = dist[:, min(int(y * h) // 4, dist.shape[1] - 1), min(int(x * w) // 4, dist.shape[2] - 1)]
        bins = self.colorizer.bins
        # Greedy: the likeliest bin, then the likeliest one at least MODE_RADIUS from those taken, and so on.
        taken: list[int] = []
        for i in np.argsort(-p, kind="stable").tolist():
            if float(p[i]) < MIN_SHARE * float(p.max()) or len(taken) == SUGGESTIONS:
                break
            if all(float(np.linalg.norm(bins[i] - bins[j])) >= MODE_RADIUS for j in taken):
                taken.append(i)
        modes = taken
        L = float(self.lut[small[min(int(y * h), h - 1), min(int(x * w), w - 1)]])
        out: list[str] = []
        for i in modes:
            colour = in_gamut_hex(L, bins[i])
            if colour not in out:
                out.append(colour)
            if len(out) == SUGGESTIONS:
                break
        return out


def view_size(shape: tuple[int, int], width: int = VIEW_WIDTH) -> tuple[int, int]:
    """(H, W) -> the size the editor is sent, at most `width` wide: (h, w)."""
    h, w = shape
    s = min(1.0, width / w)
    return max(1, round(h * s)), max(1, round(w * s))


def in_gamut_hex(L: float, ab: np.ndarray) -> str:
    """Lab (L, ab) -> '#rrggbb': ab scaled toward gray until the colour is inside sRGB at lightness L."""
    for scale in np.linspace(1.0, 0.0, 21):
        lab = np.array([[[L, *(ab * scale)]]], np.float32)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0]
        if (rgb >= -1e-3).all() and (rgb <= 1 + 1e-3).all():
            break
    r, g, b = (int(round(float(v) * 255)) for v in np.clip(rgb, 0, 1))
    return f"#{r:02x}{g:02x}{b:02x}"


def encode_jpeg(rgb: np.ndarray, quality: int = 88) -> bytes:
    """(H, W, 3) float32 sRGB in [0, 1] or (H, W) uint8 gray -> JPEG bytes."""
    img = rgb if rgb.dtype == np.uint8 else (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    img = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VidcolorError("could not encode the frame as JPEG")
    return data.tobytes()


def heat_map(unc: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) float32 RGB: bright where the network is unsure."""
    bgr = cv2.applyColorMap((np.clip(unc, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
