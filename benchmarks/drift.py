"""Drift over a long shot: colorfulness of the first and last second of a 300+-frame single shot.

    python benchmarks/drift.py [CLIP] [--model M]   # default ../shared/data/videos/dev01_juggling_park.mp4

The dev clips are at most 250 frames, so the shot is made long by playing the
clip forward then backward (no cut anywhere), re-encoded losslessly in a temp
folder. It ends on the frame it starts with, so the first and last second show
the same content and any difference between them is drift. Colorized with
default settings; the bar: within 15 %.
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.train.clipeval import read_rgb_frames
from vidcolor.train.metrics import colorfulness
from vidcolor.video import EncodeOptions

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "dev01_juggling_park.mp4"


def ping_pong(src: Path, dst: Path, min_frames: int = 300) -> float:
    frames = read_rgb_frames(src)
    with av.open(str(src)) as c:
        rate = c.streams.video[0].average_rate
    seq = frames + frames[-2::-1]
    while len(seq) < min_frames:
        seq += seq[1:]
    with av.open(str(dst), "w") as c:
        v = c.add_stream("ffv1", rate=rate)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, f in enumerate(seq):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1) / rate
            c.mux(v.encode(vf))
        c.mux(v.encode())
    return float(rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path, nargs="?", default=DEFAULT)
    ap.add_argument("--model", type=Path, default=None, help="weights (default: the shipped ones)")
    args = ap.parse_args()
    src = args.clip
    with tempfile.TemporaryDirectory() as tmp:
        long_shot = Path(tmp) / "long.mkv"
        rate = ping_pong(src, long_shot)
        out = Path(tmp) / "out.mkv"
        colorize_video(long_shot, out, ColorizeOptions(model=args.model, encode=EncodeOptions(codec="ffv1")))
        frames = read_rgb_frames(out)
    n = int(round(rate))
    cf = [colorfulness(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255).item() for f in frames]
    first, last = float(np.mean(cf[:n])), float(np.mean(cf[-n:]))
    print(
        f"{src.name} as a {len(frames)}-frame single shot: colorfulness first second {first:.2f}, "
        f"last second {last:.2f} ({(last - first) / first * 100:+.1f} %, bar within 15 %)"
    )


if __name__ == "__main__":
    main()
