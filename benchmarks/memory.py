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
from pathlib import Path

from synthetic import pan_clip

W, H, RATE = 640, 360, 24


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
            clip = pan_clip(
                folder / f"clip{seconds}.mp4",
                W,
                H,
                seconds * RATE,
                RATE,
                bounce=10 * RATE,
                audio=True,
                preset="ultrafast",
                crf=23,
            )
            rss, wall = peak_rss_mb(clip, folder / "out.mp4")
            results[seconds] = rss
            print(f"{seconds:5d} s clip ({seconds * RATE} frames): peak RSS {rss:7.1f} MB, {wall:6.1f} s")
            clip.unlink()
        diff = results[args.long] - results[args.short]
        print(f"difference (long - short): {diff:+.1f} MB (bar < 50 MB)")


if __name__ == "__main__":
    main()
