"""How much can blending per-frame predictions over time give? The causal blend, the same run backward, both.

    python benchmarks/smoothing.py                       # the dev clips (../shared/data/videos)
    python benchmarks/smoothing.py --held-out-clips --smoothing 1.5 --max-keep 0.99

At the working size, from one set of per-frame predictions per clip (no encoding,
so it is quick): PSNR against the truth (its lightness joined with each output's
ab) of per-frame prediction, of the temporal state's causal blend (what the tool
does), of the same blend run from the last frame back, and of the mean of the two
(a two-pass smoother, which a streaming tool could only approach with a delay);
and the ab CDC of the causal blend against the truth's. An upper bound on what
re-weighting the blend can give (issue 14 asks +0.2 dB over per-frame).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.color import gray_to_lightness_lut, lab_planes_to_rgb
from vidcolor.flow import Tracker
from vidcolor.inference import Colorizer
from vidcolor.pipeline import working_size
from vidcolor.temporal import TemporalOptions, TemporalState, gray_input
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.fit import TrainConfig
from vidcolor.train.metrics import chroma_cdc

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def to_rgb8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """L (h, w) and ab (h, w, 2) float32 Lab -> (h, w, 3) uint8 sRGB."""
    return (lab_planes_to_rgb(L, ab) * 255 + 0.5).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean()) / 255.0**2
    return 10 * np.log10(1 / max(mse, 1e-10))


def blend(
    order: list[int], grays: list[np.ndarray], preds: list, opt: TemporalOptions, col: Colorizer, lut: np.ndarray
) -> dict[int, np.ndarray]:
    """The temporal state over the frames in `order`, each frame's prediction given: -> ab per frame."""
    state, tracker = TemporalState(opt, lut), Tracker(lut, opt.flow_preset, opt.look_ahead > 0)
    return {i: state.step(grays[i], col.predict, link=tracker.link(grays[i]), predicted=preds[i]).copy() for i in order}


def measure(clip: Path, col: Colorizer, opt: TemporalOptions, long_side: int) -> dict[str, float]:
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    size = working_size(frames[0].shape[1], frames[0].shape[0], long_side)
    truth = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    L = [cv2.cvtColor(t.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0] for t in truth]
    grays = [cv2.cvtColor(t, cv2.COLOR_RGB2GRAY) for t in truth]
    preds = [col.predict(gray_input(g)) for g in grays]
    n = len(frames)
    lut = gray_to_lightness_lut()
    fwd = blend(list(range(n)), grays, preds, opt, col, lut)
    bwd = blend(list(range(n - 1, -1, -1)), grays, preds, opt, col, lut)
    outs = {
        "per frame": [preds[i][0][..., :2] for i in range(n)],
        "causal": [fwd[i] for i in range(n)],
        "backward": [bwd[i] for i in range(n)],
        "two-pass": [(fwd[i] + bwd[i]) / 2 for i in range(n)],
    }
    rgb = {k: [to_rgb8(L[i], v[i]) for i in range(n)] for k, v in outs.items()}
    row = {k: float(np.mean([psnr(o, t) for o, t in zip(v, truth, strict=True)])) for k, v in rgb.items()}
    row["ab CDC causal/truth"] = chroma_cdc(rgb["causal"]) / max(chroma_cdc(truth), 1e-9)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--held-out-clips", action="store_true", help="the clips training leaves out of ../shared/data/clips")
    ap.add_argument("--smoothing", type=float, default=TemporalOptions().smoothing)
    ap.add_argument("--max-keep", type=float, default=TemporalOptions().max_keep)
    ap.add_argument("--work-size", type=int, default=256)
    args = ap.parse_args()
    clips = args.clips or sorted(VIDEOS.glob("*.mp4"))
    if args.held_out_clips:
        clips = split_clips(list_clips(Path(TrainConfig.clip_dir)), TrainConfig.clip_holdout_permille)[1]
    col = Colorizer.load(args.model)
    opt = TemporalOptions(smoothing=args.smoothing, max_keep=args.max_keep).filled()  # a blend alone: no feedback
    print(f"smoothing {opt.smoothing}, max_keep {opt.max_keep}; PSNR (dB) at long side {args.work_size}, gains over per frame")
    print(f"{'clip':26s} {'per frame':>9s} {'causal':>7s} {'backward':>8s} {'two-pass':>8s} {'ab CDC causal/truth':>20s}")
    rows = []
    for clip in clips:
        r = measure(clip, col, opt, args.work_size)
        rows.append(r)
        report(clip.stem[:26], r)
    report("mean", {k: float(np.mean([r[k] for r in rows])) for k in rows[0]})


def report(name: str, r: dict[str, float]) -> None:
    p = r["per frame"]
    print(
        f"{name:26s} {p:9.2f} {r['causal'] - p:+7.3f} {r['backward'] - p:+8.3f} {r['two-pass'] - p:+8.3f} "
        f"{r['ab CDC causal/truth']:20.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
