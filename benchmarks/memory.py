"""Peak memory of a whole `vidcolor` run on each engine, side by side in one run.

    python benchmarks/memory.py [CLIP] [--repeats 3]

Runs `python -m vidcolor CLIP` (default samples/sample.mp4, 640x360) in a fresh process per engine (int8,
torch, fp32, where each can run here), and a plain PyAV transcode of the same clip in a fresh process, the
floor: the interpreter with numpy, PyAV and OpenCV, the decoder and x264. Prints each one's peak resident
set size (the kernel's maxrss for that process alone, from os.wait4), the smallest of `repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vidcolor.precision import cpu_flags

HERE = Path(__file__).resolve().parent

TRANSCODE = """
import sys, av, cv2, numpy
with av.open(sys.argv[1]) as i, av.open(sys.argv[2], "w") as o:
    iv = i.streams.video[0]
    ov = o.add_stream("libx264", rate=iv.average_rate, options={"crf": "18", "preset": "medium"})
    ov.width, ov.height, ov.pix_fmt = iv.width, iv.height, "yuv420p"
    for frame in i.decode(iv):
        frame.pict_type = 0
        o.mux(ov.encode(frame))
    o.mux(ov.encode())
"""


def peak_mb(cmd: list[str]) -> float:
    """Run cmd to the end -> its peak RSS in MB (its own, not its children's)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed: {proc.stderr.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path, nargs="?", default=HERE.parent / "samples" / "sample.mp4")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx")))
    print(f"{args.clip.name}; CPU flags: {' '.join(flags)}; smallest peak RSS of {args.repeats} runs each")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        runs = {"plain transcode": [sys.executable, "-c", TRANSCODE, str(args.clip), str(out)]}
        for engine in ("int8", "torch", "fp32"):
            runs[f"vidcolor --engine {engine}"] = [
                sys.executable,
                "-m",
                "vidcolor",
                str(args.clip),
                "-o",
                str(out),
                "-y",
                "-q",
                "--engine",
                engine,
            ]
        for name, cmd in runs.items():
            try:
                mb = min(peak_mb(cmd) for _ in range(args.repeats))
            except SystemExit as e:
                print(f"{name:26s} cannot run here ({str(e).splitlines()[-1][:120]})")
                continue
            print(f"{name:26s} {mb:6.0f} MB")


if __name__ == "__main__":
    main()
