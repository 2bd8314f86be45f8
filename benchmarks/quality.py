"""Held-out quality: photos and video frames the network never trained on.

    python benchmarks/quality.py                          # the shipped model, its own decoding
    python benchmarks/quality.py --model runs/mnv2/best.safetensors --saturations 0.3 0.4 0.5
    python benchmarks/quality.py --clips ../shared/data/videos   # also per frame on colour clips
    python benchmarks/quality.py --held-out-clips         # also on the held-out training clips
    python benchmarks/quality.py --engine fp32            # the network in torch fp32 (default: as vidcolor runs it)

Photos: the held-out split of the training folder (chosen by file hash, never
trained on), 256x256 centre crops: PSNR of the gray input and of the
colorization, colorfulness (Hasler & Suesstrunk M3) of the colorization and of
the ground truth, and PSNR with a degraded ground-truth hint (shifted up to
4 px, 30 % holes). Both heads are reported: the rebalanced classification
decoded by annealed mean (cls) and the plain regression (reg).

Frames (--clips DIR, --held-out-clips): every 6th frame of each colour clip, at
the working size of its aspect (long side 256), per clip and as the mean over
clips. The held-out clips are the ones training leaves out by name
(vidcolor.train.clips); the photos showing them are left out of training too.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.inference import ENGINES, Colorizer
from vidcolor.int8 import Int8Net
from vidcolor.model import ColorNet
from vidcolor.precision import compute_threads
from vidcolor.record import DecodeConfig, default_model_path
from vidcolor.torchnet import TorchNet
from vidcolor.train.clipeval import read_rgb_frames
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.data import cached, center_crops, list_images, split_images
from vidcolor.train.evaluate import NEUTRAL, label, sweep_decodings
from vidcolor.train.fit import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(TrainConfig.data_dir))
    ap.add_argument("--cache", type=Path, default=Path(TrainConfig.cache_dir))
    ap.add_argument("--temperatures", type=float, nargs="*", default=None)
    ap.add_argument("--saturations", type=float, nargs="*", default=None)
    ap.add_argument("--clips", type=Path, default=None, help="also evaluate on frames of the clips in this folder")
    ap.add_argument("--held-out-clips", action="store_true", help="also on the held-out clips of ../shared/data/clips")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N held-out images (0 = all)")
    ap.add_argument("--points", type=int, nargs="*", default=[], help="also with N points of the truth (3x3 px) as hints")
    ap.add_argument("--engine", default="auto", choices=ENGINES, help="as vidcolor's --engine (the network on the CPU)")
    args = ap.parse_args()
    col = Colorizer.load(args.model, "cpu", engine=args.engine)
    model, run = torch_network(col, args.model or default_model_path())
    own = col.decode
    _, held = split_images(list_images(args.data), TrainConfig.holdout_permille)
    images = center_crops(cached(held, args.cache, 256), 256)
    if args.limit:
        images = images[: args.limit]
    shown = Path(os.path.relpath(args.model or default_model_path()))  # relative: the figures go into docs
    print(f"model {shown}, engine {col.engine}; {len(images)} held-out images, 256x256 centre crops")
    decodings = [
        replace(own, temperature=t, saturation=s)
        for s in (args.saturations or [own.saturation])
        for t in (args.temperatures or [own.temperature])
    ]
    for dec, figures in zip(decodings, sweep_decodings(model, images, decodings, points=args.points, **run), strict=True):
        report(dec, figures, args.points)
    if args.clips:
        report_clips(model, list_clips(args.clips), decodings, args.points, run)
    if args.held_out_clips:
        held_clips = split_clips(list_clips(Path(TrainConfig.clip_dir)), TrainConfig.clip_holdout_permille)[1]
        report_clips(model, held_clips, decodings, args.points, run)


def torch_network(col: Colorizer, weights: Path) -> tuple[ColorNet, dict]:
    """The network the evaluation (train.evaluate, in torch) runs, and sweep_decodings' body and dtype for
    `col`'s engine: for int8 its ONNX body under the torch network's hint gate and decoding, whose outputs
    are int8.Head's within 2e-3 Lab units (tests/test_int8.py)."""
    if isinstance(col.net, Int8Net):
        model = TorchNet.load(weights, "cpu", fp32=True).model

        def body(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(torch.from_numpy(t) for t in col.net.body(x.float().numpy(), compute_threads()))

        return model, {"body": body, "dtype": torch.float32}
    return col.net.model, {"body": None, "dtype": col.net.dtype}


def clip_frames(path: Path, every: int = 6, long_side: int = 256) -> torch.Tensor:
    """Every `every`-th frame of a clip, long side fitted to long_side (sides multiples of 4): (N, 3, h, w) in [0, 1]."""
    frames = read_rgb_frames(path)[::every]
    x = torch.stack([torch.from_numpy(f) for f in frames]).permute(0, 3, 1, 2).float() / 255
    h, w = x.shape[-2:]
    s = long_side / max(h, w)
    return F.interpolate(x, size=(4 * round(h * s / 4), 4 * round(w * s / 4)), mode="area")


def report_clips(model: ColorNet, clips: list[Path], decodings: list[DecodeConfig], points: list[int], run: dict) -> None:
    """run: sweep_decodings' body and dtype (the engine's)."""
    per_clip = [sweep_decodings(model, clip_frames(c), decodings, points=points, **run) for c in clips]
    print(f"frames of {len(clips)} clips (every 6th, long side 256): gain over gray per clip, mean, colour % of truth")
    print("  " + " ".join(c.stem for c in clips))
    for j, dec in enumerate(decodings):
        gains = [r[j]["psnr_cls"] - r[j]["psnr_gray"] for r in per_clip]
        colour = sum(r[j]["color_cls"] / r[j]["color_gt"] for r in per_clip) / len(clips)
        reg = sum(r[j]["psnr_reg"] - r[j]["psnr_gray"] for r in per_clip) / len(clips)
        hints = [r[j]["psnr_hint"] - r[j]["psnr_gray"] for r in per_clip]
        print(
            f"{label(dec)}  "
            + " ".join(f"{g:+.2f}" for g in gains)
            + f" | mean {sum(gains) / len(gains):+.2f} dB, worst {min(gains):+.2f}, colour {100 * colour:.0f}% | "
            f"reg {reg:+.2f} dB | hint {sum(hints) / len(hints):+.2f} dB"
        )
        print(f"{'':{len(label(dec))}}  hint per clip: " + " ".join(f"{h:+.2f}" for h in hints))
        report_extras(dec, mean_figures([r[j] for r in per_clip]), points)


def mean_figures(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """The mean over clips of each figure (the neutral sums stay sums of shares, so their ratios still hold)."""
    return {k: sum(r[k] for r in per_clip) / len(per_clip) for k in per_clip[0]}


def report_extras(dec: DecodeConfig, f: dict[str, float], points: list[int]) -> None:
    """Points over the automatic output, and the colour invented on nearly neutral truths."""
    line = [f"points {n}: {f[f'psnr_points{n}'] - f['psnr_cls']:+.2f} dB over automatic" for n in points]
    if f["neutral"]:
        line.append(
            f"nearly neutral ({100 * f['neutral']:.1f}% of them, true chroma < {NEUTRAL:g}): chroma "
            f"{f['neutral_chroma_cls'] / f['neutral']:.2f} against the truth's {f['neutral_chroma_gt'] / f['neutral']:.2f}"
        )
    else:
        line.append("nearly neutral: none")
    line.append(f"chroma {f['chroma_cls']:.2f} against the truth's {f['chroma_gt']:.2f}")
    print(f"{'':{len(label(dec))}}  " + " | ".join(line))


def report(dec: DecodeConfig, f: dict[str, float], points: list[int]) -> None:
    gt = f["color_gt"]
    print(
        f"{label(dec)}  gray {f['psnr_gray']:.2f} dB | cls {f['psnr_cls']:.2f} dB ({f['psnr_cls'] - f['psnr_gray']:+.2f}), "
        f"colour {f['color_cls']:.1f} = {100 * f['color_cls'] / gt:.0f}% of truth {gt:.1f} | "
        f"reg {f['psnr_reg']:.2f} dB ({f['psnr_reg'] - f['psnr_gray']:+.2f}), colour {100 * f['color_reg'] / gt:.0f}% | "
        f"hint {f['psnr_hint']:.2f} dB ({f['psnr_hint'] - f['psnr_gray']:+.2f})"
    )
    report_extras(dec, f, points)


if __name__ == "__main__":
    main()
