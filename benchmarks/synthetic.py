"""The benchmarks' synthetic clips: a camera panning over scikit-image's photos, in gray.

`pan_clip`: one photo, one shot (speed.py). `film`: shots of 5-60 s over different photos with cuts
between them (long.py). `python benchmarks/X.py` puts this folder on sys.path.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data


def pan_clip(
    path: Path,
    width: int,
    height: int,
    frames: int,
    rate: int = 24,
    bounce: int = 0,
    audio: bool = False,
    preset: str = "veryfast",
    crf: int = 18,
) -> Path:
    """Write `frames` frames panning once across the astronaut photo (or, with bounce = N frames, back and
    forth every N frames, so a long clip repeats its pattern), optionally with a 330 Hz tone track."""
    photo = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (2 * width, 2 * width))
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = c.add_stream("aac", rate=22050, layout="mono") if audio else None  # every stream before the first packet
        for i in range(frames):
            u = (i % bounce) / bounce if bounce else i / frames
            x = int(width * (1 - abs(2 * u - 1))) if bounce else int(width * u)
            crop = np.ascontiguousarray(photo[height // 2 : height // 2 + height, x : x + width])
            f = av.VideoFrame.from_ndarray(crop, format="gray").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, rate)
            c.mux(v.encode(f))
        c.mux(v.encode())
        if a is not None:
            _tone(c, a, frames / rate)
    return path


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry")


def film(path: Path, seconds: float, rate: int, seed: int, one_shot: bool = False, gop: int = 0) -> Path:
    """A 640x360 gray film with a 330 Hz tone: shots of 5-60 s (one shot if one_shot), each panning back
    and forth over one of the PHOTOS, a cut between shots; a keyframe every `gop` frames (0: x264's own,
    at most every 250 frames and at cuts)."""
    rng = np.random.default_rng(seed)
    width, height, frames = 640, 360, int(seconds * rate)
    photos = [cv2.resize(_gray(getattr(data, name)()), (2 * width, 2 * width)) for name in PHOTOS]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate, options={"crf": "23", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        if gop:
            v.codec_context.gop_size = gop
        a = c.add_stream("aac", rate=22050, layout="mono")
        i = 0
        while i < frames:
            shot = frames - i if one_shot else min(frames - i, int(rng.uniform(5, 60) * rate))
            photo, y, bounce = (
                photos[int(rng.integers(len(photos)))],
                int(rng.integers(0, height)),
                int(rng.uniform(8, 20) * rate),
            )
            for k in range(shot):
                u = (k % bounce) / bounce
                x = int(width * (1 - abs(2 * u - 1)))
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y : y + height, x : x + width]), format="gray")
                f.pts, f.time_base = i + k, Fraction(1, rate)
                c.mux(v.encode(f.reformat(format="yuv420p")))
            i += shot
        c.mux(v.encode())
        _tone(c, a, frames / rate)
    return path


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2GRAY)


def _tone(c, a, seconds: float) -> None:
    """One frame for the whole track: PyAV's encoder cuts it into AAC's 1,024-sample frames."""
    tone = (0.1 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * 22050)) / 22050)).astype(np.float32)
    track = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
    track.sample_rate, track.pts = 22050, 0
    c.mux(a.encode(track))
    c.mux(a.encode())
