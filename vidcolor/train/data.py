"""Training images: listing, the held-out split, a decoded cache, and batch sampling.

The cache keeps every image decoded (uint8 RGB, as stored) in one flat array
so the cores train instead of decoding JPEGs; the split is decided by each
file's content hash, so it never changes when files are added or renamed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def is_held_out(digest: str, permille: int) -> bool:
    """A fixed split: the image is held out iff its hash falls in the first `permille` of 1000 buckets."""
    return int(digest[:8], 16) % 1000 < permille


def split_images(paths: list[Path], holdout_permille: int = 60) -> tuple[list[Path], list[Path]]:
    """-> (train, held_out), by content hash."""
    train, held = [], []
    for p in paths:
        (held if is_held_out(file_digest(p), holdout_permille) else train).append(p)
    return train, held


def read_rgb(path: Path) -> np.ndarray:
    """-> (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fit_short_side(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    if abs(s - 1.0) < 1e-6:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


@dataclass
class ImageCache:
    """All images in one flat uint8 buffer; image i is pixels[offsets[i]:offsets[i+1]] shaped shapes[i]."""

    pixels: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray

    def __len__(self) -> int:
        return len(self.shapes)

    def image(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.pixels[self.offsets[i] : self.offsets[i + 1]].reshape(h, w, 3)

    @classmethod
    def build(cls, paths: list[Path], short_side: int) -> ImageCache:
        return cls.from_arrays([fit_short_side(read_rgb(p), short_side) for p in paths])

    @classmethod
    def from_arrays(cls, imgs: list[np.ndarray]) -> ImageCache:
        sizes = [im.size for im in imgs]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        pixels = np.empty(offsets[-1], dtype=np.uint8)
        for im, a, b in zip(imgs, offsets[:-1], offsets[1:], strict=True):
            pixels[a:b] = im.reshape(-1)
        return cls(pixels, offsets, np.array([im.shape[:2] for im in imgs], dtype=np.int64))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "pixels.npy", self.pixels)
        np.save(folder / "offsets.npy", self.offsets)
        np.save(folder / "shapes.npy", self.shapes)

    @classmethod
    def load(cls, folder: Path) -> ImageCache:
        return cls(
            np.load(folder / "pixels.npy", mmap_mode="r"),
            np.load(folder / "offsets.npy"),
            np.load(folder / "shapes.npy"),
        )


def cached(paths: list[Path], cache_root: Path, short_side: int) -> ImageCache:
    """Load the cache for exactly these files, building it on first use."""
    key = hashlib.sha1(
        json.dumps([short_side] + [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]).encode()
    ).hexdigest()[:16]
    folder = cache_root / key
    if not (folder / "shapes.npy").exists():
        tmp = cache_root / (key + ".partial")
        ImageCache.build(paths, short_side).save(tmp)
        tmp.rename(folder)
    return ImageCache.load(folder)


def random_crops(
    cache: ImageCache, batch: int, size: int, rng: np.random.Generator, scale: tuple[float, float] = (0.55, 1.0)
) -> torch.Tensor:
    """A batch of random crops, randomly rescaled and flipped: (B, 3, size, size) float in [0, 1].

    Rescaling down to ~half size puts objects at the scale they have in a
    video frame at the working resolution.
    """
    out = np.empty((batch, size, size, 3), dtype=np.uint8)
    for k in range(batch):
        img = cache.image(int(rng.integers(len(cache))))
        h, w = img.shape[:2]
        s = max(rng.uniform(*scale), (size + 1) / min(h, w))
        ch, cw = min(h, int(size / s)), min(w, int(size / s))
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        crop = cv2.resize(np.ascontiguousarray(img[y : y + ch, x : x + cw]), (size, size), interpolation=cv2.INTER_AREA)
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def center_crops(cache: ImageCache, size: int) -> torch.Tensor:
    """Every image's centre crop (after fitting the short side to `size`): (N, 3, size, size) in [0, 1]."""
    out = np.empty((len(cache), size, size, 3), dtype=np.uint8)
    for i in range(len(cache)):
        out[i] = center_crop(cache.image(i), size)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    img = fit_short_side(img, size) if min(img.shape[:2]) < size else img
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y : y + size, x : x + size])
