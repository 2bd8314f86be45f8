"""Long films: memory, resume after SIGKILL, seams between segments, and workers side by side.

    python benchmarks/long.py                       # everything: 20-minute film, seams, --jobs/--ray
    python benchmarks/long.py --minutes 2 --fps 10  # a quick run
    python benchmarks/long.py --only seams jobs

Every run is the real command (`python -m vidcolor ...`) in a child process, so peak RSS is the
child's own (a wrapper reads getrusage for exactly one run) and SIGKILL is a real kill.

1. memory + resume: a synthetic 640x360 film of `--minutes` (synthetic.film: shots of 5-60 s with
   cuts, pans over photos, a tone track) and a 1-minute one. Peak RSS of each (bar: the long film's within 50 MB of the
   short one's). The long film uninterrupted, then again killed (SIGKILL) once about half its
   segments are finished and rerun: the rerun's time against the full run's (bar <= 0.6), the
   segments it reused, and whether its decoded frames equal the uninterrupted output's.
2. seams: a single 1-minute shot in 10 s segments. For each boundary, the ab change (mean |dab|
   of CIELAB a, b over the picture, frame t-1 -> t) across it against the median change between
   frames inside segments (bar <= 1.5x), with the one-pass output's change at the same frame beside.
3. jobs: `--jobs 1`, `--jobs 2` and `--ray auto` (if Ray is installed) on a 2-minute film, one run
   after the other: time, fps and the ratio to --jobs 1, and the largest pixel difference.

Work and outputs go to a temporary folder (or --work); nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
from speed import cpu_name
from synthetic import film as make_film


def vidcolor(*args: str) -> list[str]:
    return [sys.executable, "-m", "vidcolor", *map(str, args), "-y", "-q"]


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """-> (seconds, peak RSS in MB) of one run in a child process, which must succeed."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024.0


def frame_digests(path: Path) -> list[str]:
    with av.open(str(path)) as c:
        return [hashlib.sha1(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in c.decode(video=0)]


def memory_and_resume(work: Path, minutes: float, fps: int, segment: float) -> dict:
    short = make_film(work / "one-minute.mp4", 60, fps, seed=1)
    film = make_film(work / "film.mp4", minutes * 60, fps, seed=2)
    seg = ["--segment", segment]
    _, rss_short = run_measured(vidcolor(short, "-o", work / "short.color.mp4", *seg))
    full_s, rss_long = run_measured(vidcolor(film, "-o", work / "full.color.mp4", *seg))
    # The two films differ in content as well as length (and the long one runs in segments, the short one in
    # one pass): the long film's first minute alone, in one pass too, shares its content.
    _, rss_head = run_measured(vidcolor(film, "-o", work / "head.color.mp4", "--end", 60, *seg))
    print(
        f"peak RSS: 1-minute film {rss_short:.0f} MB, {minutes:g}-minute film {rss_long:.0f} MB: "
        f"{rss_long - rss_short:+.0f} MB (bar: within 50 MB); the {minutes:g}-minute film's first minute "
        f"alone {rss_head:.0f} MB ({rss_long - rss_head:+.0f} MB for the rest of its length, in segments)"
    )
    out = work / "resumed.color.mp4"
    parts = out.with_name(f".{out.name}.parts")
    proc = subprocess.Popen(vidcolor(film, "-o", out, *seg), stderr=subprocess.DEVNULL)
    total = None
    while proc.poll() is None:
        time.sleep(1.0)
        manifest = parts / "manifest.json"
        if total is None and manifest.exists():
            total = len(json.loads(manifest.read_text())["plan"])
        if total and len(list(parts.glob("part-*.json"))) >= total / 2:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            break
    reused = len(list(parts.glob("part-*.json")))
    left = [p.name for p in parts.iterdir() if "partial" in p.name]
    rerun_s, _ = run_measured(vidcolor(film, "-o", out, *seg))
    same = frame_digests(out) == frame_digests(work / "full.color.mp4")
    print(
        f"killed with {reused}/{total} segments finished (half-written left behind: {left or 'none'}); "
        f"rerun {rerun_s:.0f} s against the full run's {full_s:.0f} s: {rerun_s / full_s:.2f}x (bar <= 0.60); "
        f"frames identical to the uninterrupted output: {same}"
    )
    return {
        "rss_short_mb": rss_short,
        "rss_long_mb": rss_long,
        "rss_long_first_minute_mb": rss_head,
        "full_s": full_s,
        "rerun_s": rerun_s,
        "reused": reused,
        "segments": total,
        "identical": same,
    }


def ab_changes(path: Path) -> np.ndarray:
    """(frames - 1,) mean |delta ab| in CIELAB units between consecutive frames."""
    out, prev = [], None
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            lab = cv2.cvtColor(f.to_ndarray(format="rgb24").astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:]
            if prev is not None:
                out.append(float(np.abs(lab - prev).mean()))
            prev = lab
    return np.array(out)


def seams(work: Path, fps: int) -> dict:
    from vidcolor.segments import plan_segments
    from vidcolor.video import keyframe_times

    shot = make_film(work / "shot.mp4", 60, fps, seed=3, one_shot=True)
    run_measured(vidcolor(shot, "-o", work / "shot.seg.mp4", "--segment", 10))
    run_measured(vidcolor(shot, "-o", work / "shot.one.mp4", "--segment", 0))
    with av.open(str(shot)) as c:
        plan = plan_segments(keyframe_times(c, None, 60.0), None, 60.0, 10.0)
    starts = [round(s.start * fps) for s in plan[1:]]  # frame index of each segment's first frame
    seg, one = ab_changes(work / "shot.seg.mp4"), ab_changes(work / "shot.one.mp4")
    inside = np.median(np.delete(seg, [i - 1 for i in starts]))
    rows = [(i, seg[i - 1], seg[i - 1] / inside, one[i - 1]) for i in starts]
    print(f"seams, one 1-minute shot in {len(plan)} segments of 10 s; median ab change inside segments {inside:.3f}")
    print("| boundary frame | ab change across | x inside median (bar <= 1.5) | one-pass output there |")
    print("|---|---|---|---|")
    for i, d, r, o in rows:
        print(f"| {i} | {d:.3f} | {r:.2f} | {o:.3f} |")
    return {"inside": float(inside), "worst_ratio": float(max(r for _, _, r, _ in rows))}


def jobs(work: Path, fps: int) -> dict:
    film = make_film(work / "two-minutes.mp4", 120, fps, seed=4)
    n = int(120 * fps)
    runs = [("--jobs 1", ["--jobs", 1]), ("--jobs 2", ["--jobs", 2])]
    try:
        import ray  # noqa: F401

        runs.append(("--ray auto", ["--ray", "auto"]))
    except ImportError:
        print("(Ray not installed: pip install 'vidcolor[ray]' to measure --ray)")
    results, base_frames = {}, None
    for name, args in runs:
        out = work / f"jobs-{name.split()[-1]}.mp4"
        s, rss = run_measured(vidcolor(film, "-o", out, "--segment", 20, *args))
        frames = _frames(out)
        diff = (
            0
            if base_frames is None
            else max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(base_frames, frames, strict=False))
        )
        base_frames = base_frames or frames
        results[name] = s
        print(
            f"{name}: {s:.0f} s, {n / s:.1f} fps, {s / results['--jobs 1']:.2f}x --jobs 1's time, peak RSS {rss:.0f} MB, "
            f"largest pixel difference to --jobs 1: {diff}"
        )
    return results


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--fps", type=int, default=25, help="frame rate of the synthetic films")
    ap.add_argument("--segment", type=float, default=60.0)
    ap.add_argument("--only", nargs="*", choices=["resume", "seams", "jobs"], default=["resume", "seams", "jobs"])
    ap.add_argument("--work", type=Path, default=None, help="keep the films and outputs here")
    a = ap.parse_args()
    print(f"CPU: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores; films at {a.fps} fps, 640x360")
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "resume" in a.only:
            memory_and_resume(work, a.minutes, a.fps, a.segment)
        if "seams" in a.only:
            seams(work, a.fps)
        if "jobs" in a.only:
            jobs(work, a.fps)


if __name__ == "__main__":
    main()
