"""Held-out image quality (issue 3's figures), for one or more annealing temperatures.

    python benchmarks/quality.py [--model models/vidcolor-base.safetensors] [--temperatures 0.38 0.5 0.7]
    python benchmarks/quality.py --clips ../shared/data/videos   # also on frames of colour clips
    python benchmarks/quality.py --colour-weights 0.03 0.04 --temperatures 0.7   # auto colour strength

On the held-out split of the training folder (chosen by file hash, never
trained on), 256x256 centre crops: PSNR of the gray input and of the
colorization, colourfulness (Hasler & Suesstrunk M3) of the colorization and of
the ground truth, and PSNR with a degraded ground-truth hint (shifted up to
4 px, 30 % holes). Both heads are reported: the rebalanced classification
decoded by annealed mean (cls) and the plain regression (reg).

--prior-corrections sweeps fixed decodings, --colour-weights the per-image
choice of beta (vidcolor/decoding.py); with neither, the model's own default.

--clips adds the same per-frame figures on every 6th frame of each colour clip
in a folder, at 256x144 (the default working size of a 16:9 frame), per clip
and as the mean over clips: video frames are not photos, and a model can move
on one and not the other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.clipeval import read_rgb_frames
from vidcolor.data import cached, center_crops, list_images, split_images
from vidcolor.evaluate import Decoding, sweep_decodings
from vidcolor.model import ColorNet
from vidcolor.train import TrainConfig
from vidcolor.weights import default_model_path, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(TrainConfig.data_dir))
    ap.add_argument("--cache", type=Path, default=Path(TrainConfig.cache_dir))
    ap.add_argument("--temperatures", type=float, nargs="*", default=None)
    ap.add_argument("--prior-corrections", type=float, nargs="*", default=[])
    ap.add_argument("--colour-weights", type=float, nargs="*", default=[], help="auto decodings: beta chosen per image")
    ap.add_argument("--clips", type=Path, default=None, help="also evaluate on frames of the .mp4 clips in this folder")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N held-out images (0 = all)")
    args = ap.parse_args()
    model = load_model(args.model)
    _, held = split_images(list_images(args.data), TrainConfig.holdout_permille)
    images = center_crops(cached(held, args.cache, 256), 256)
    if args.limit:
        images = images[: args.limit]
    print(f"model {args.model or default_model_path()}; {len(images)} held-out images, 256x256 centre crops")
    own = Decoding.of(model)
    temps = args.temperatures or [own.temperature]
    decodings = [Decoding(beta, t) for beta in args.prior_corrections for t in temps]
    decodings += [Decoding(None, t, w) for w in args.colour_weights for t in temps]
    decodings = decodings or [own]
    for dec, figures in zip(decodings, sweep_decodings(model, images, decodings), strict=True):
        report(dec, figures)
    if args.clips:
        report_clips(model, sorted(args.clips.glob("*.mp4")), decodings)


def clip_frames(path: Path, every: int = 6) -> torch.Tensor:
    """Every `every`-th frame of a clip at 256x144: (N, 3, 144, 256) in [0, 1]."""
    frames = read_rgb_frames(path)[::every]
    x = torch.stack([torch.from_numpy(f) for f in frames]).permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x, size=(144, 256), mode="area")


def report_clips(model: ColorNet, clips: list[Path], decodings: list[Decoding]) -> None:
    per_clip = [sweep_decodings(model, clip_frames(c), decodings) for c in clips]
    print(f"frames of {len(clips)} clips (every 6th, 256x144): gain over gray per clip, mean, colour % of truth")
    for j, dec in enumerate(decodings):
        gains = [r[j]["psnr_cls"] - r[j]["psnr_gray"] for r in per_clip]
        colour = sum(r[j]["colour_cls"] / r[j]["colour_gt"] for r in per_clip) / len(clips)
        reg = sum(r[j]["psnr_reg"] - r[j]["psnr_gray"] for r in per_clip) / len(clips)
        print(f"{dec.label()}  " + " ".join(f"{g:+.2f}" for g in gains)
              + f" | mean {sum(gains) / len(gains):+.2f} dB, colour {100 * colour:.0f}% | reg {reg:+.2f} dB")


def report(dec: Decoding, f: dict[str, float]) -> None:
    gt = f["colour_gt"]
    chosen = f" (mean beta {f['beta']:.2f})" if dec.prior_correction is None else ""
    print(f"{dec.label()}{chosen}  gray {f['psnr_gray']:.2f} dB | cls {f['psnr_cls']:.2f} dB ({f['psnr_cls'] - f['psnr_gray']:+.2f}), "
          f"colour {f['colour_cls']:.1f} = {100 * f['colour_cls'] / gt:.0f}% of truth {gt:.1f} | "
          f"reg {f['psnr_reg']:.2f} dB ({f['psnr_reg'] - f['psnr_gray']:+.2f}), colour {100 * f['colour_reg'] / gt:.0f}% | "
          f"hint {f['psnr_hint']:.2f} dB ({f['psnr_hint'] - f['psnr_gray']:+.2f})")


if __name__ == "__main__":
    main()
