"""Run `vidcolor CLIP -o OUT -y` on every clip of a folder and check the output.

    python benchmarks/check_clips.py [FOLDER]      # default ../shared/data/videos

For each clip: same frame count, size and frame rate; the same number of audio
streams, with packets identical to the source's (copied, not re-encoded).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import av

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        out = {"frames": n, "size": (v.width, v.height), "rate": v.average_rate, "audio": len(c.streams.audio)}
    with av.open(str(path)) as c:
        out["audio_packets"] = [bytes(p) for s in c.streams.audio for p in c.demux(s) if p.size]
    return out


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for clip in sorted(folder.glob("*.mp4")) + sorted(folder.glob("*.mkv")):
            out = Path(tmp) / (clip.stem + ".color.mp4")
            proc = subprocess.run(
                [sys.executable, "-m", "vidcolor", str(clip), "-o", str(out), "-y"], capture_output=True, text=True
            )
            if proc.returncode != 0:
                print(f"FAIL {clip.name}: {proc.stderr.strip()}")
                failures += 1
                continue
            a, b = facts(clip), facts(out)
            same = {k: a[k] == b[k] for k in ("frames", "size", "rate", "audio", "audio_packets")}
            ok = all(same.values())
            failures += not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} {clip.name}: {b['frames']} frames {b['size'][0]}x{b['size'][1]} @ {b['rate']} fps, "
                f"{b['audio']} audio stream(s), {len(b['audio_packets'])} audio packets identical={same['audio_packets']} | "
                f"{proc.stderr.strip().splitlines()[-1]}"
            )
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
