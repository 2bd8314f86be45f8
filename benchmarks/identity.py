"""Every output frame's sha1, to show that a change of structure leaves the pixels as they were.

    python benchmarks/identity.py --write before.json          # on the commit before the change
    python benchmarks/identity.py --compare before.json        # after it: every frame the same, or which differ

Colours the sample and every clip of ../shared/data/videos (or the CLIPs given) losslessly (FFV1) three
ways: in one pass, in 3 s segments, and in 3 s segments with --jobs 2; then hashes each decoded frame's
YUV planes. The same weights and options on both sides, so the only change is the code's. Torch uses 2
threads in every run (the results depend on the thread count: precision.py). Runs `python -m vidcolor`
from the current folder: run it from a worktree of the commit before to get that commit's hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
CLIPS = [ROOT / "samples" / "sample.mp4", *sorted((ROOT.parent / "shared" / "data" / "videos").glob("*.mp4"))]
MODES = {
    "one pass": ["--segment", "0", "--threads", "2"],
    "segments": ["--segment", "3", "--jobs", "1", "--threads", "2"],
    "segments, --jobs 2": ["--segment", "3", "--jobs", "2", "--threads", "2"],
}


def frame_hashes(path: Path) -> list[str]:
    with av.open(str(path)) as c:
        return [hashlib.sha1(b"".join(bytes(p) for p in f.planes)).hexdigest() for f in c.decode(video=0)]


def digest(frames: list[str]) -> str:
    """One short hash for a list of frame hashes, to quote."""
    return hashlib.sha1("".join(frames).encode()).hexdigest()[:12]


def hashes(clips: list[Path], modes: list[str]) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            for mode in modes:
                dst = Path(tmp) / f"{clip.stem}.mkv"
                cmd = [sys.executable, "-m", "vidcolor", str(clip), "-o", str(dst), "-y", "-q", "--codec", "ffv1", *MODES[mode]]
                subprocess.run(cmd, check=True, cwd=Path.cwd())
                out.setdefault(clip.name, {})[mode] = frame_hashes(dst)
                frames = out[clip.name][mode]
                print(f"{clip.name:32s} {mode:20s} {len(frames):4d} frames, sha1 of their sha1s {digest(frames)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--mode", action="append", choices=list(MODES), help="one of the ways (default: all three)")
    side = ap.add_mutually_exclusive_group(required=True)
    side.add_argument("--write", type=Path, help="save the hashes here")
    side.add_argument("--compare", type=Path, help="compare with hashes saved before")
    args = ap.parse_args()
    clips = args.clips or [c for c in CLIPS if c.is_file()]
    now = hashes(clips, args.mode or list(MODES))
    if args.write:
        args.write.write_text(json.dumps(now, indent=1) + "\n")
        return
    before = json.loads(args.compare.read_text())
    differ = 0
    for clip, modes in now.items():
        for mode, frames in modes.items():
            old = before.get(clip, {}).get(mode)
            if old is None:
                print(f"{clip:32s} {mode:20s} not in {args.compare}")
                differ += 1
                continue
            bad = [i for i, (a, b) in enumerate(zip(old, frames, strict=False)) if a != b]
            bad += list(range(min(len(old), len(frames)), max(len(old), len(frames))))  # frames only one side has
            differ += bool(bad)
            print(
                f"{clip:32s} {mode:20s} {len(frames):4d} frames: "
                + (f"{len(bad)} differ (first {bad[0]})" if bad else "identical")
            )
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
