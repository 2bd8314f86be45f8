"""Points across shots (`--points-across-shots`): does a frame's correction help a scene cut back to, and
leave other scenes alone?

    python benchmarks/across.py                      # the dev clips of ../shared/data/videos and the held-out clips
    python benchmarks/across.py CLIP [CLIP ...] --points 1 3 10

Each colour clip is rendered without points. N points of the truth (3 px squares at the working size, as
points.py places them) go on the frame a quarter of the way in. Its second half stands for the same scene
after a cut, and 8 frames of every other clip for other scenes; each such frame shows the render's colours
with `keyframes.across_shots`'s share of the guess the points move there, as a render with the flag shows a
shot without points (before what the motion carries). Printed, at the working size against the truth: the
gain over the render without points on the scene's later frames (mean over clips), and on other scenes'
frames (mean, 1st percentile, the share of frames that lose more than 0.5 dB); and the share the points
take on a black and on a flat gray frame.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from points import default_clips, psnr, truth_points

from vidcolor.color import gray_to_lightness_lut, lab_planes_to_rgb
from vidcolor.inference import Colorizer
from vidcolor.keyframes import across_shots, points_said
from vidcolor.options import working_size
from vidcolor.pipeline import ColorizeOptions
from vidcolor.project import from_dict
from vidcolor.train.clipeval import colorize_to_frames, read_rgb_frames

LUT = gray_to_lightness_lut()


def load(clip: Path, options: ColorizeOptions) -> dict:
    """A clip's truth and its render without points, RGB uint8 at the working size, with their grays."""
    truth = read_rgb_frames(clip)
    with tempfile.TemporaryDirectory() as tmp:
        auto = colorize_to_frames(clip, options, Path(tmp), "auto")
    size = working_size(truth[0].shape[1], truth[0].shape[0], options.work_size)
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in truth]
    return {
        "truth": small,
        "gray": [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small],
        "ab": [
            cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:]
            for f in auto
        ],
    }


def shown(gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
    return (np.clip(lab_planes_to_rgb(LUT[gray], ab), 0, 1) * 255 + 0.5).astype(np.uint8)


def gain(colorizer: Colorizer, said, clip: dict, i: int) -> float:
    """dB over the render without points on frame i, with the points' share across shots."""
    gray, ab = clip["gray"][i], clip["ab"][i]
    moved, share, _ = across_shots([said], gray, LUT, colorizer.guess)
    if moved is None:
        return 0.0
    mixed = (1 - share) * ab + share * moved
    return psnr(shown(gray, mixed), clip["truth"][i]) - psnr(shown(gray, ab), clip["truth"][i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--points", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    paths = args.clips or default_clips()
    options = ColorizeOptions(model=args.model, segment=0)
    colorizer = Colorizer.load(args.model)
    clips = {p.stem: load(p, options) for p in paths}
    for n in args.points:
        later, others, blank = [], [], []
        for name, clip in clips.items():
            frames = len(clip["truth"])
            key = frames // 4
            points = truth_points(clip["truth"][key], 0.0, n, options.work_size, np.random.default_rng(0))
            project = from_dict({"vidcolor_project": 1, "points": points, "keyframes": []})
            said = points_said(tuple(project.points), clip["gray"][key], LUT, colorizer.guess)
            later.append(np.mean([gain(colorizer, said, clip, i) for i in range(frames // 2, frames, 3)]))
            for other_name, other in clips.items():
                if other_name != name:
                    picks = np.linspace(0, len(other["truth"]) - 1, 8).astype(int)
                    others += [gain(colorizer, said, other, int(i)) for i in picks]
            for level in (0, 128):
                blank.append(across_shots([said], np.full_like(clip["gray"][key], level), LUT, colorizer.guess)[1])
        others = np.array(others)
        print(
            f"{n:2d} points: the scene's later frames {np.mean(later):+.2f} dB (worst clip {min(later):+.2f}) | other scenes' "
            f"frames {others.mean():+.3f} dB, 1st percentile {np.percentile(others, 1):+.2f}, {100 * (others < -0.5).mean():.1f} % "
            f"lose > 0.5 dB | black and flat frames: share at most {max(blank):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
