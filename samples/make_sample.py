"""Build samples/sample.mp4: a short black-and-white clip with a sound track.

Made here, from photos that ship inside scikit-image (skimage.data), so the
project owns every byte: two shots (a slow zoom on the astronaut photo, a pan
over the coffee cup) joined by a hard cut, turned gray, with a generated chord
that changes at the cut. Run: python samples/make_sample.py
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

W, H, FPS, SECONDS_PER_SHOT, RATE = 640, 360, 24, 3, 44100


def camera(photo: np.ndarray, t: np.ndarray, zoom: tuple[float, float], pan: tuple[float, float]) -> list[np.ndarray]:
    """Frames of a virtual camera moving over a gray photo: zoom and horizontal pan over time t in [0, 1]."""
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    frames = []
    for u in t:
        z = zoom[0] + (zoom[1] - zoom[0]) * u
        cw, ch = w / z, w / z * H / W
        ch = min(ch, h)
        cx = (w - cw) * (pan[0] + (pan[1] - pan[0]) * u) + cw / 2
        cy = h / 2
        m = np.float32([[W / cw, 0, W / 2 - cx * W / cw], [0, H / ch, H / 2 - cy * H / ch]])
        frames.append(cv2.warpAffine(gray, m, (W, H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return frames


def chord(freqs: tuple[float, ...], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.05)
    return (0.3 * wave * fade).astype(np.float32)


def main(out: Path) -> None:
    n = SECONDS_PER_SHOT * FPS
    t = np.linspace(0.0, 1.0, n)
    frames = camera(data.astronaut(), t, (1.0, 1.25), (0.5, 0.5)) + camera(data.coffee(), t, (1.3, 1.3), (0.0, 1.0))
    sound = np.concatenate((chord((220.0, 277.2, 329.6), SECONDS_PER_SHOT), chord((196.0, 246.9, 293.7), SECONDS_PER_SHOT)))
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "26", "preset": "slow"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = container.add_stream("aac", rate=RATE, layout="mono")
        for i, gray in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
        for i in range(0, len(sound), 1024):
            chunk = sound[i : i + 1024][None]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, i
            container.mux(audio.encode(frame))
        container.mux(video.encode())
        container.mux(audio.encode())


if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "sample.mp4")
