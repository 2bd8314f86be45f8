"""Drift over a long shot: colorfulness of the first and last 5 seconds of a 1-minute single shot.

    python benchmarks/drift.py [CLIP] [--model M] [--feedback] [--seconds 60]
    # default clip: ../shared/data/videos/dev01_juggling_park.mp4

The dev clips are at most 250 frames, so the shot is made long by playing the
clip forward, then backward, then forward... (no cut anywhere) until it lasts
`--seconds`, re-encoded losslessly in a temp folder. It is whole round trips
and ends on the frame it starts with, so the first 5 s and the last 5 s show the
same frames (the last in reverse) and any difference between them is drift. Colorized with default settings (or --feedback); the bar: within 10 %.
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
from vidcolor.temporal import TemporalOptions
from vidcolor.train.clipeval import add_record_overrides, read_rgb_frames, record_overrides
from vidcolor.train.metrics import colorfulness
from vidcolor.video import EncodeOptions

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "dev01_juggling_park.mp4"


def ping_pong(src: Path, dst: Path, seconds: float) -> float:
    """Write src played forward and backward in turn, whole round trips, for at least `seconds`; -> its rate."""
    frames = read_rgb_frames(src)
    with av.open(str(src)) as c:
        rate = c.streams.video[0].average_rate
    trip = frames + frames[-2:0:-1]  # forward, then back to frame 1: the next trip starts on frame 0
    seq = list(trip)
    while len(seq) < seconds * float(rate):
        seq += trip
    seq.append(frames[0])
    with av.open(str(dst), "w") as c:
        v = c.add_stream("ffv1", rate=rate)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, f in enumerate(seq):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1) / rate
            c.mux(v.encode(vf))
        c.mux(v.encode())
    return float(rate)


FEEDBACK_SHOWN = {True: "on", False: "off", None: "as the weights' record says"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path, nargs="?", default=DEFAULT)
    ap.add_argument("--model", type=Path, default=None, help="weights (default: the shipped ones)")
    add_record_overrides(ap)
    ap.add_argument("--anchor", type=float, default=TemporalOptions().anchor, help="TemporalOptions.anchor (0: none)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=5.0, help="seconds compared at each end")
    args = ap.parse_args()
    src = args.clip
    with tempfile.TemporaryDirectory() as tmp:
        long_shot = Path(tmp) / "long.mkv"
        rate = ping_pong(src, long_shot, args.seconds)
        out = Path(tmp) / "out.mkv"
        temporal = TemporalOptions(anchor=args.anchor, **record_overrides(args))
        opts = ColorizeOptions(model=args.model, temporal_options=temporal, encode=EncodeOptions(codec="ffv1"))
        colorize_video(long_shot, out, opts)
        frames = read_rgb_frames(out)
    n = int(round(rate * args.window))
    cf = [colorfulness(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255).item() for f in frames]
    first, last = float(np.mean(cf[:n])), float(np.mean(cf[-n:]))
    print(
        f"{src.name} as a {len(frames)}-frame ({len(frames) / rate:.0f} s) single shot, feedback "
        f"{FEEDBACK_SHOWN[args.feedback]}: colorfulness first {args.window:g} s {first:.2f}, "
        f"last {args.window:g} s {last:.2f} ({(last - first) / first * 100:+.1f} %, bar within 10 %)"
    )


if __name__ == "__main__":
    main()
