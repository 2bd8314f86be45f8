"""Keyframes: how much one frame's true colours, given as --keyframe, help its shot.

    python benchmarks/keyframes.py                     # every clip of ../shared/data/videos
    python benchmarks/keyframes.py --held-out-clips    # and the clips training leaves out
    python benchmarks/keyframes.py CLIP [CLIP ...] [--model M] [--engine fp32]

Per clip: the keyframe is the middle frame of the clip's longest shot (shots found
on the truth, independently of the tool), its image the truth's own colours, as a
user who knew them would paint them. The clip is colorized three ways (lossless):
per frame (--no-temporal), default, and default with the keyframe. Printed: PSNR
over the keyframe's shot and over the 2 s around the keyframe (per frame / default
/ keyed), the keyframe's own Lab ab error where the truth has colour (chroma > 4),
and the largest change the keyframe made outside its shot (0 = none crosses a cut).
Bars (issue 15): shot >= per frame + 2 dB, 2 s >= + 4 dB, own ab error <= 3.

Reference: a truth frame 5-10 s from the keyframe (clips shorter than that are
skipped) is given as --reference; PSNR and colourfulness over the whole clip
against per frame and the truth. Bar: PSNR >= per frame + 0.5 dB, colourfulness
closer to the truth's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidcolor.inference import ENGINES
from vidcolor.keyframes import KeyframeSpec
from vidcolor.pipeline import ColorizeOptions
from vidcolor.train.clipeval import colorize_to_frames, read_rgb_frames, shot_starts
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.fit import TrainConfig
from vidcolor.train.metrics import colorfulness, psnr

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
TRAIN_CLIPS = VIDEOS.parent / "clips"


def frame_times(clip: Path) -> list[float]:
    """Each frame's time from the start of the file, as -ss counts."""
    with av.open(str(clip)) as c:
        base = max(0.0, (c.start_time or 0) / av.time_base)
        return [float(f.time) - base for f in c.decode(video=0)]


def longest_shot(n: int, starts: list[int]) -> tuple[int, int]:
    bounds = [0, *starts, n]
    return max(zip(bounds[:-1], bounds[1:], strict=True), key=lambda s: s[1] - s[0])


def mean_psnr(frames: list[np.ndarray], gt: list[np.ndarray], idx: range) -> float:
    to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    return float(np.mean([psnr(to_t(frames[i]), to_t(gt[i])).item() for i in idx]))


def ab(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 1:]


def measure(clip: Path, options: ColorizeOptions) -> dict:
    gt = read_rgb_frames(clip)
    times = frame_times(clip)
    a, b = longest_shot(len(gt), shot_starts(gt))
    k = (a + b) // 2
    rate = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
    near = range(max(a, k - int(rate)), min(b, k + int(rate) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = folder / "key.png"
        cv2.imwrite(str(image), gt[k][..., ::-1])
        single = colorize_to_frames(clip, replace(options, temporal=False), folder, "single")
        plain = colorize_to_frames(clip, options, folder, "plain")
        keyed = colorize_to_frames(clip, replace(options, keyframes=(KeyframeSpec(times[k], image),)), folder, "keyed")
        reference = reference_run(clip, options, gt, times, k, folder)
    painted = np.hypot(*np.moveaxis(ab(gt[k]), -1, 0)) > 4.0
    own = float(np.linalg.norm(ab(keyed[k]) - ab(gt[k]), axis=-1)[painted].mean()) if painted.any() else 0.0
    outside = [i for i in range(len(gt)) if not a <= i < b]
    crossed = max((int(np.abs(plain[i].astype(int) - keyed[i].astype(int)).max()) for i in outside), default=0)
    shot = range(a, b)
    return {
        "shot": (a, b),
        "key": k,
        "shot_psnr": [mean_psnr(x, gt, shot) for x in (single, plain, keyed)],
        "near_psnr": [mean_psnr(x, gt, near) for x in (single, plain, keyed)],
        "own_ab_error": own,
        "outside_max_change": crossed,
        "reference": reference,
        "single_all": clip_figures(single, gt),
        "plain_all": clip_figures(plain, gt),
    }


def clip_figures(frames: list[np.ndarray], gt: list[np.ndarray]) -> tuple[float, float]:
    """(mean PSNR, mean colourfulness) over the clip."""
    to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    return mean_psnr(frames, gt, range(len(gt))), float(np.mean([colorfulness(to_t(f)).item() for f in frames]))


def reference_run(clip: Path, options: ColorizeOptions, gt, times, k: int, folder: Path) -> dict | None:
    """The truth frame 5-10 s from frame k as --reference -> figures over the clip, or None (too short)."""
    away = [i for i, t in enumerate(times) if 5.0 <= abs(t - times[k]) <= 10.0]
    if not away:
        return None
    r = away[len(away) // 2]
    photo = folder / "reference.png"
    cv2.imwrite(str(photo), gt[r][..., ::-1])
    frames = colorize_to_frames(clip, replace(options, reference=photo), folder, "reference")
    return {"frame": r, "figures": clip_figures(frames, gt), "truth": clip_figures(gt, gt)[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--held-out-clips", action="store_true", help="also the clips training leaves out of ../shared/data/clips")
    ap.add_argument("--engine", default="auto", choices=ENGINES, help="vidcolor's --engine")
    args = ap.parse_args()
    clips = args.clips or sorted(VIDEOS.glob("*.mp4"))
    if args.held_out_clips:
        clips += split_clips(list_clips(TRAIN_CLIPS), TrainConfig.clip_holdout_permille)[1]
    if not clips:
        sys.exit(f"no clips given and none in {VIDEOS}")
    options = ColorizeOptions(model=args.model, engine=args.engine)
    print(
        f"{'clip':28s} {'shot':>9s} {'key':>4s}  shot PSNR p / t / keyed (gain)   2 s PSNR p / t / keyed (gain)  own ab  outside"
    )
    rows = []
    for clip in clips:
        r = measure(clip, options)
        rows.append(r)
        sp, np_ = r["shot_psnr"], r["near_psnr"]
        print(
            f"{clip.stem[:28]:28s} {r['shot'][0]:4d}-{r['shot'][1]:<4d} {r['key']:4d}  "
            f"{sp[0]:5.2f} / {sp[1]:5.2f} / {sp[2]:5.2f} ({sp[2] - sp[0]:+5.2f})   "
            f"{np_[0]:5.2f} / {np_[1]:5.2f} / {np_[2]:5.2f} ({np_[2] - np_[0]:+5.2f})  {r['own_ab_error']:5.2f}  {r['outside_max_change']:4d}",
            flush=True,
        )
    refs = [r for r in rows if r["reference"] is not None]
    for clip, r in zip(clips, rows, strict=True):
        if r["reference"] is None:
            continue
        (rp, rc), (sp, sc), (tp, tc) = r["reference"]["figures"], r["single_all"], r["plain_all"]
        print(
            f"reference {clip.stem[:24]} (frame {r['reference']['frame']}): PSNR per frame {sp:.2f} / default {tp:.2f} / "
            f"with it {rp:.2f} ({rp - sp:+.2f}); colourfulness {sc:.1f} / {tc:.1f} / {rc:.1f}, truth {r['reference']['truth']:.1f}"
        )
    if refs:
        gain = np.mean([r["reference"]["figures"][0] - r["single_all"][0] for r in refs])
        truth = [r["reference"]["truth"] for r in refs]
        closer = sum(
            abs(r["reference"]["figures"][1] - t) < abs(r["single_all"][1] - t) for r, t in zip(refs, truth, strict=True)
        )
        print(
            f"reference over {len(refs)} clips: PSNR {gain:+.2f} dB over per frame (bar >= +0.5), "
            f"colourfulness closer to the truth's on {closer} of {len(refs)}"
        )
    shot_gain = np.mean([r["shot_psnr"][2] - r["shot_psnr"][0] for r in rows])
    near_gain = np.mean([r["near_psnr"][2] - r["near_psnr"][0] for r in rows])
    own = np.mean([r["own_ab_error"] for r in rows])
    crossed = max(r["outside_max_change"] for r in rows)
    print(
        f"mean over {len(rows)} clips: shot {shot_gain:+.2f} dB over per frame (bar >= +2), 2 s around the keyframe "
        f"{near_gain:+.2f} dB (bar >= +4), own ab error {own:.2f} (bar <= 3), largest change outside the shot {crossed}"
    )


if __name__ == "__main__":
    main()
