"""Peak memory does not grow with the film: 1-minute vs 10-minute clip, side by side.

    python benchmarks/memory.py [--short 60] [--long 600]

Generates two synthetic 640x360 24 fps clips of the same content pattern (a
camera panning back and forth over a scikit-image photo, with a tone track),
colorizes each in a fresh process (`python -m vidcolor`, default settings) and
reports each run's peak RSS (from wait4) and the difference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

W, H, RATE = 640, 360, 24


def make_clip(path: Path, seconds: int) -> Path:
    photo = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (2 * W, 2 * W))
    period = 10 * RATE  # the pattern repeats every 10 s
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=RATE, options={"preset": "ultrafast", "crf": "23"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("aac", rate=22050, layout="mono")
        for i in range(seconds * RATE):
            u = (i % period) / period
            x = int(W * (1 - abs(2 * u - 1)))
            crop = np.ascontiguousarray(photo[H // 2 : H // 2 + H, x : x + W])
            f = av.VideoFrame.from_ndarray(crop, format="gray").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, RATE)
            c.mux(v.encode(f))
        c.mux(v.encode())
        t = np.arange(seconds * 22050) / 22050
        tone = (0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[i : i + 1024][None], format="fltp", layout="mono")
            af.sample_rate, af.pts = 22050, i
            c.mux(a.encode(af))
        c.mux(a.encode())
    return path


def peak_rss_mb(clip: Path, out: Path) -> tuple[float, float]:
    """Run the CLI in a child process -> (peak RSS in MB, wall seconds)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vidcolor", str(clip), "-o", str(out), "-y", "-q"])
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"vidcolor failed on {clip}")
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", type=int, default=60, help="seconds")
    ap.add_argument("--long", type=int, default=600, help="seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {}
        for seconds in (args.short, args.long):
            clip = make_clip(folder / f"clip{seconds}.mp4", seconds)
            rss, wall = peak_rss_mb(clip, folder / "out.mp4")
            results[seconds] = rss
            print(f"{seconds:5d} s clip ({seconds * RATE} frames): peak RSS {rss:7.1f} MB, {wall:6.1f} s")
            clip.unlink()
        diff = results[args.long] - results[args.short]
        print(f"difference (long - short): {diff:+.1f} MB (bar < 50 MB)")


if __name__ == "__main__":
    main()
