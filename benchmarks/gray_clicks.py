"""Gray clicks: a user takes colour back off what the network painted on a nearly neutral photo.

    python benchmarks/gray_clicks.py                     # the held-out photos whose truth is nearly neutral
    python benchmarks/gray_clicks.py --model runs/v3/best.safetensors --clicks 1 3 5

On each held-out photo whose true mean chroma is under quality.py's NEUTRAL (a gray road, a white jug, a
stormy sky), the automatic output is made as a render makes it, and then again with N points of "#808080"
(a=b=0) where its colour is strongest (the peaks of its chroma, blurred, 24 px apart), as a user would click
them in the editor. Printed: the mean Lab chroma of the output (the truth's beside it) and its PSNR against
the truth, for each N. `--sheet out.png` writes truth | automatic | each N for the first 8 photos, the
clicks circled: the 8 on which the network invented the most colour.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcolor.colouring import colour_frames
from vidcolor.inference import ENGINES, Colorizer
from vidcolor.keyframes import KeyframeSpec
from vidcolor.lab import join_lab, rgb_to_lab
from vidcolor.pipeline import ColorizeOptions
from vidcolor.project import Point
from vidcolor.train.data import cached, center_crops, list_images, split_images
from vidcolor.train.evaluate import NEUTRAL
from vidcolor.train.fit import TrainConfig
from vidcolor.train.metrics import psnr

SIZE = 256  # px: quality.py's centre crops
APART = 24  # px between clicks
GRAY = "#808080"


def render(col: Colorizer, gray: np.ndarray, points: list[Point]) -> np.ndarray:
    """gray (H, W) uint8 -> ab (H, W, 2) as a render colours it as a one-frame film, with these points."""
    keys = (KeyframeSpec(0.0, None, tuple(points)),) if points else ()
    ((ab, _),) = colour_frames(col, ColorizeOptions(keyframes=keys), [(0.0, gray)], window=lambda start, key: [(0.0, gray)])
    return cv2.resize(ab, gray.shape[::-1], interpolation=cv2.INTER_LINEAR)


def clicks(ab: np.ndarray, n: int) -> list[Point]:
    """n gray points where ab (H, W, 2) is most colourful, APART px from each other."""
    h, w = ab.shape[:2]
    strength = cv2.GaussianBlur(np.sqrt((ab**2).sum(-1)), (0, 0), 6)
    out = []
    for _ in range(n):
        y, x = np.unravel_index(np.argmax(strength), strength.shape)
        out.append(Point(0.0, (x + 0.5) / w, (y + 0.5) / h, GRAY))
        strength[max(0, y - APART) : y + APART, max(0, x - APART) : x + APART] = -np.inf
    return out


def to_rgb(L: torch.Tensor, ab: np.ndarray) -> torch.Tensor:
    """L (1, 1, H, W), ab (H, W, 2) -> RGB (1, 3, H, W) in [0, 1]."""
    return join_lab(L, torch.from_numpy(ab).permute(2, 0, 1)[None]).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--engine", default="auto", choices=ENGINES)
    ap.add_argument("--clicks", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--data", type=Path, default=Path(TrainConfig.data_dir))
    ap.add_argument("--cache", type=Path, default=Path(TrainConfig.cache_dir))
    ap.add_argument("--sheet", type=Path, default=None)
    args = ap.parse_args()
    col = Colorizer.load(args.model, "cpu", engine=args.engine)
    _, held = split_images(list_images(args.data), TrainConfig.holdout_permille)
    images = center_crops(cached(held, args.cache, SIZE), SIZE)
    lab = rgb_to_lab(images)
    chroma = lambda ab: float(np.sqrt((ab**2).sum(-1)).mean())  # noqa: E731
    neutral = [i for i in range(len(images)) if chroma(lab[i, 1:].permute(1, 2, 0).numpy()) < NEUTRAL]
    print(f"{len(neutral)} of {len(images)} held-out photos nearly neutral (true chroma < {NEUTRAL:g}); engine {col.engine}")
    rows, tiles = [], []
    for i in neutral:
        rgb = (images[i].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        L = lab[i : i + 1, :1]
        auto = render(col, gray, [])
        where = clicks(auto, max(args.clicks))
        outs = [auto] + [render(col, gray, where[:n]) for n in args.clicks]
        rows.append(
            [chroma(lab[i, 1:].permute(1, 2, 0).numpy())]
            + [v for ab in outs for v in (chroma(ab), float(psnr(to_rgb(L, ab), images[i : i + 1])[0]))]
        )
        if args.sheet:
            shown = [images[i : i + 1]] + [to_rgb(L, ab) for ab in outs]
            shown = [np.ascontiguousarray((s[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)) for s in shown]
            for tile, n in zip(shown[2:], args.clicks, strict=True):
                for p in where[:n]:
                    cv2.circle(tile, (int(p.x * SIZE), int(p.y * SIZE)), 5, (255, 0, 0), 1)
            tiles.append((-rows[-1][1], len(tiles), np.hstack(shown)))
    m = np.mean(rows, 0)
    print(f"truth: chroma {m[0]:.2f}")
    for k, name in enumerate(["automatic"] + [f"{n} gray click{'s' if n > 1 else ''}" for n in args.clicks]):
        print(f"{name:14s} chroma {m[1 + 2 * k]:.2f}  PSNR {m[2 + 2 * k]:.2f} dB")
    if args.sheet:
        most = [tile for *_, tile in sorted(tiles)[:8]]
        cv2.imwrite(str(args.sheet), cv2.cvtColor(np.vstack(most), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.sheet}: truth | automatic | " + " | ".join(f"{n} clicks" for n in args.clicks))


if __name__ == "__main__":
    main()
