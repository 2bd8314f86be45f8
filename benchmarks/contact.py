"""A contact sheet of held-out pictures: truth | weights A | weights B, one row each, to judge by eye.

    python benchmarks/contact.py --models OLD.safetensors models/vidcolor-base.safetensors --out runs/contact.jpg

Rows: the first held-out photos (by path) of faces and of people (hands, clothes), photos spread over the
other folders, then the middle frame of each held-out training clip; 256x256 centre crops, each
colorized from its gray alone at the weights' own decoding, joined with the truth's lightness. The sheet
shows data from ../shared: keep it out of the repository (runs/ is ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vidcolor.color import lab_planes_to_rgb
from vidcolor.inference import Colorizer
from vidcolor.train.clipeval import read_rgb_frames
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.data import center_crop, fit_short_side, list_images, read_rgb, split_images
from vidcolor.train.fit import TrainConfig


def pictures(photos: int, clips: int) -> list[tuple[str, np.ndarray]]:
    """(label, RGB uint8 256x256) of held-out photos (half of them of people) and held-out clip frames."""
    _, held = split_images(list_images(Path(TrainConfig.data_dir)), TrainConfig.holdout_permille)
    n = photos // 3
    faces = sorted(p for p in held if p.parent.name == "faces-nomask")[:n]
    people = sorted(p for p in held if p.parent.name == "people-clothing")[:n]
    others = sorted(p for p in held if p not in faces and p not in people and p.parent.name != "people-clothing")
    chosen = faces + people + others[:: max(1, len(others) // (photos - 2 * n))][: photos - 2 * n]
    out = [(f"{p.parent.name}/{p.name}", center_crop(fit_short_side(read_rgb(p), 256), 256)) for p in chosen]
    held_clips = split_clips(list_clips(Path(TrainConfig.clip_dir)), TrainConfig.clip_holdout_permille)[1]
    for clip in held_clips[:clips]:
        frames = read_rgb_frames(clip)
        out.append((clip.stem, center_crop(fit_short_side(frames[len(frames) // 2], 256), 256)))
    return out


def colorize(col: Colorizer, rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> its colorization from gray, RGB uint8, with the truth's own lightness."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    gray = cv2.cvtColor(lab_planes_to_rgb(lab[..., 0], np.zeros_like(lab[..., 1:])), cv2.COLOR_RGB2GRAY)
    ab = col.predict(np.repeat(gray[..., None], 3, axis=2))[0][..., :2]
    return (lab_planes_to_rgb(lab[..., 0], ab) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, nargs=2, required=True, help="the weights before and after")
    ap.add_argument("--out", type=Path, default=Path("runs/contact.jpg"))
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--clips", type=int, default=2)
    args = ap.parse_args()
    cols = [Colorizer.load(m, "cpu") for m in args.models]
    rows = []
    for name, rgb in pictures(args.photos, args.clips):
        rows.append(np.hstack([rgb, *(colorize(c, rgb) for c in cols)]))
        print(name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{len(rows)} rows (truth | {args.models[0].name} | {args.models[1].name}) -> {args.out}")


if __name__ == "__main__":
    main()
