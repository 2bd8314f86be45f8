"""Held-out image quality (issue 3's figures), for one or more annealing temperatures.

    python benchmarks/quality.py [--model models/vidcolor-base.safetensors] [--temperatures 0.38 0.5 0.7]

On the held-out split of the training folder (chosen by file hash, never
trained on), 256x256 centre crops: PSNR of the gray input and of the
colorization, colourfulness (Hasler & Suesstrunk M3) of the colorization and of
the ground truth, and PSNR with a degraded ground-truth hint (shifted up to
4 px, 30 % holes). Both heads are reported: the rebalanced classification
decoded by annealed mean (cls) and the plain regression (reg).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidcolor.data import cached, center_crops, list_images, split_images
from vidcolor.evaluate import sweep_decodings
from vidcolor.train import TrainConfig
from vidcolor.weights import default_model_path, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(TrainConfig.data_dir))
    ap.add_argument("--cache", type=Path, default=Path(TrainConfig.cache_dir))
    ap.add_argument("--temperatures", type=float, nargs="*", default=None)
    ap.add_argument("--prior-corrections", type=float, nargs="*", default=None)
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N held-out images (0 = all)")
    args = ap.parse_args()
    model = load_model(args.model)
    betas = args.prior_corrections or [model.cfg.prior_correction]
    _, held = split_images(list_images(args.data), TrainConfig.holdout_permille)
    images = center_crops(cached(held, args.cache, 256), 256)
    if args.limit:
        images = images[: args.limit]
    print(f"model {args.model or default_model_path()}; {len(images)} held-out images, 256x256 centre crops")
    temps = args.temperatures or [model.cfg.temperature]
    decodings = [(beta, t) for beta in betas for t in temps]
    for (beta, t), figures in zip(decodings, sweep_decodings(model, images, decodings), strict=True):
        report(beta, t, figures)


def report(beta: float, t: float, f: dict[str, float]) -> None:
    gt = f["colour_gt"]
    print(f"beta={beta:.2f} T={t:.2f}  gray {f['psnr_gray']:.2f} dB | cls {f['psnr_cls']:.2f} dB ({f['psnr_cls'] - f['psnr_gray']:+.2f}), "
          f"colour {f['colour_cls']:.1f} = {100 * f['colour_cls'] / gt:.0f}% of truth {gt:.1f} | "
          f"reg {f['psnr_reg']:.2f} dB ({f['psnr_reg'] - f['psnr_gray']:+.2f}), colour {100 * f['colour_reg'] / gt:.0f}% | "
          f"hint {f['psnr_hint']:.2f} dB ({f['psnr_hint'] - f['psnr_gray']:+.2f})")


if __name__ == "__main__":
    main()
