"""Points on a clip: how far N points of the truth on one frame carry through their shot (`--hints`).

    python benchmarks/points.py                      # the dev clips of ../shared/data/videos and the held-out clips
    python benchmarks/points.py CLIP [CLIP ...] --points 10 --model runs/v3/best.safetensors

For each colour clip: the tool's own shots (editing.Film), the longest one, and its middle frame. N points are
placed there at random (seeded), each a square of 3 px at the working size coloured with the truth's mean
under it, written as a project file, and the clip is rendered with `--hints` and without. Printed: PSNR
over that shot's frames against the truth, with and without the points (the gain is the editor's bar), the
gain on the frames 1 s or more from the points' frame, and how many frames of the other shots changed at all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vidcolor.editing import Film
from vidcolor.keyframes import hex_ab, project_keyframes
from vidcolor.options import working_size
from vidcolor.pipeline import ColorizeOptions
from vidcolor.project import from_dict
from vidcolor.train.clipeval import colorize_to_frames, read_rgb_frames
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.fit import TrainConfig

HERE = Path(__file__).resolve().parents[1]
DEV_CLIPS = HERE.parent / "shared" / "data" / "videos"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) / 255.0**2
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def default_clips() -> list[Path]:
    """The development clips of ../shared/data/videos, then the held-out training clips."""
    return (
        sorted(DEV_CLIPS.glob("*.mp4"))
        + split_clips(list_clips(Path(TrainConfig.clip_dir)), TrainConfig.clip_holdout_permille)[1]
    )


def truth_points(frame: np.ndarray, t: float, n: int, work: int, rng: np.random.Generator) -> list[dict]:
    """n points on an RGB frame (H, W, 3) uint8: 3 px squares at the working size, in the truth's mean colour."""
    h, w = frame.shape[:2]
    side = 3 / working_size(w, h, work)[0]  # fraction of the width
    half = max(1, round(side * w / 2))
    points = []
    for _ in range(n):
        x, y = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)
        cx, cy = round(x * w), round(y * h)
        mean = frame[max(0, cy - half) : cy + half + 1, max(0, cx - half) : cx + half + 1].reshape(-1, 3).mean(0)
        colour = "#" + "".join(f"{int(round(c)):02x}" for c in mean)
        points.append({"t": t, "x": x, "y": y, "colour": colour, "size": side})
    return points


def run_clip(clip: Path, n: int, options: ColorizeOptions, seed: int) -> dict:
    truth = read_rgb_frames(clip)
    info = Film(clip).info
    start, end = max(info.shots, key=lambda s: s[1] - s[0])
    in_shot = [i for i, t in enumerate(info.times) if start - 5e-4 <= t < end - 5e-4]
    middle = in_shot[len(in_shot) // 2]
    points = truth_points(truth[middle], info.times[middle], n, options.work_size, np.random.default_rng(seed))
    project = from_dict({"vidcolor_project": 1, "points": points, "keyframes": []})
    keys = tuple(project_keyframes(project, clip.parent))
    with tempfile.TemporaryDirectory() as tmp:
        auto = colorize_to_frames(clip, options, Path(tmp), "auto")
        hinted = colorize_to_frames(clip, ColorizeOptions(**{**options.__dict__, "keyframes": keys}), Path(tmp), "hinted")
    others = [i for i in range(len(truth)) if i not in in_shot]
    # Each point's own frame shows its colour at the point: the largest |ab| gap there, Lab units.
    h, w = truth[middle].shape[:2]
    lab = cv2.cvtColor(hinted[middle].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    gaps = [
        float(np.abs(lab[min(h - 1, round(p.y * h)), min(w - 1, round(p.x * w)), 1:] - hex_ab(p.colour)).max())
        for p in project.points
    ]
    # The frames a second or more from the points' own: what only carrying the points through the shot reaches.
    far = [i for i in in_shot if abs(info.times[i] - info.times[middle]) >= 1.0]
    return {
        "clip": clip.stem,
        "shot_frames": len(in_shot),
        "far_frames": len(far),
        "far_gain_db": float(np.mean([psnr(hinted[i], truth[i]) - psnr(auto[i], truth[i]) for i in far])) if far else None,
        "auto_db": float(np.mean([psnr(auto[i], truth[i]) for i in in_shot])),
        "points_db": float(np.mean([psnr(hinted[i], truth[i]) for i in in_shot])),
        "frame_gain_db": psnr(hinted[middle], truth[middle]) - psnr(auto[middle], truth[middle]),
        "other_frames": len(others),
        "other_frames_changed": sum(int(not np.array_equal(auto[i], hinted[i])) for i in others),
        "point_ab_gap_max": max(gaps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    clips = args.clips or default_clips()
    options = ColorizeOptions(model=args.model, segment=0)
    rows = []
    print(f"{args.points} points of the truth on the middle frame of each clip's longest shot; PSNR over that shot")
    for clip in clips:
        r = run_clip(clip, args.points, options, args.seed)
        rows.append(r)
        print(
            f"{r['clip']:28s} shot of {r['shot_frames']:3d} frames: auto {r['auto_db']:.2f} dB, points {r['points_db']:.2f} dB "
            f"({r['points_db'] - r['auto_db']:+.2f}; its own frame {r['frame_gain_db']:+.2f}; 1 s or more from it "
            f"{'-' if r['far_gain_db'] is None else format(r['far_gain_db'], '+.2f')}) | other shots: "
            f"{r['other_frames_changed']} of {r['other_frames']} frames changed | at the points: ab within {r['point_ab_gap_max']:.1f}",
            flush=True,
        )
    gain = np.mean([r["points_db"] - r["auto_db"] for r in rows])
    worst = min(r["points_db"] - r["auto_db"] for r in rows)
    changed = sum(r["other_frames_changed"] for r in rows)
    gap = max(r["point_ab_gap_max"] for r in rows)
    far = [r["far_gain_db"] for r in rows if r["far_gain_db"] is not None]
    print(
        f"mean gain over the shot {gain:+.2f} dB, worst {worst:+.2f}; 1 s or more from the points' frame {np.mean(far):+.2f} dB "
        f"({len(far)} clips); frames of other shots changed: {changed}; at the points ab within {gap:.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
