"""The benchmarks' synthetic clip: a camera panning over one of scikit-image's photos, in gray.

Shared by speed.py and memory.py (`python benchmarks/X.py` puts this folder on sys.path).
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
        if a is not None:  # one frame for the whole track: PyAV's encoder cuts it into AAC's 1,024-sample frames
            tone = (0.1 * np.sin(2 * np.pi * 330 * np.arange(int(frames / rate * 22050)) / 22050)).astype(np.float32)
            track = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            track.sample_rate, track.pts = 22050, 0
            c.mux(a.encode(track))
            c.mux(a.encode())
    return path
