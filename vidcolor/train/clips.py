"""Training clips: real colour footage, held out by clip, decoded once into a frame cache.

Frames of video differ from photos (motion blur, compression, framing), so the
network trains on frames sampled from `../shared/data/clips` as well. The
held-out split is by clip name (a clip's frames are near-duplicates of each
other, so a split by frame would leak), decided by a hash of the name so it
never changes as clips are added.

The photo folder `davis2016-frames` holds every 10th frame of some of the same
DAVIS sequences under numbered names; `overlapping_photos` finds the ones that
show a held-out clip, so they can be kept out of training too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from .data import ImageCache, fit_short_side, read_rgb

CLIP_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}


def list_clips(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*") if p.suffix.lower() in CLIP_SUFFIXES and p.is_file())


def is_held_out_clip(path: Path, permille: int) -> bool:
    """Held out iff the hash of the clip's name (its sequence) falls in the first `permille` of 1000 buckets."""
    return int(hashlib.sha1(path.stem.encode()).hexdigest()[:8], 16) % 1000 < permille


def split_clips(paths: list[Path], permille: int) -> tuple[list[Path], list[Path]]:
    """-> (train, held_out), by clip name."""
    held = [p for p in paths if is_held_out_clip(p, permille)]
    return [p for p in paths if p not in held], held


def read_frames(path: Path, short_side: int = 256, every: int = 1) -> list[np.ndarray]:
    """Every `every`-th frame of a clip as (H, W, 3) uint8 RGB, short side fitted to `short_side`."""
    try:
        import av
    except ImportError:  # a lent GPU's image has OpenCV but no PyAV: a pack's clips are read with OpenCV there
        return _read_frames_cv2(path, short_side, every)
    frames = []
    with av.open(str(path)) as box:
        for i, frame in enumerate(box.decode(video=0)):
            if i % every == 0:
                frames.append(fit_short_side(frame.to_ndarray(format="rgb24"), short_side))
    return frames


def _read_frames_cv2(path: Path, short_side: int, every: int) -> list[np.ndarray]:
    frames, capture, i = [], cv2.VideoCapture(str(path)), 0
    ok, bgr = capture.read()
    while ok:
        if i % every == 0:
            frames.append(fit_short_side(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), short_side))
        ok, bgr = capture.read()
        i += 1
    capture.release()
    if not frames:
        raise ValueError(f"cannot read video {path}")
    return frames


def clip_cache(paths: list[Path], cache_root: Path, short_side: int = 256) -> tuple[ImageCache, list[tuple[str, int, int]]]:
    """All frames of these clips in one ImageCache (in order), and each clip's (name, first, count)."""
    key = hashlib.sha1(
        json.dumps(["clips", short_side] + [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]).encode()
    ).hexdigest()[:16]
    folder = cache_root / key
    if not (folder / "spans.json").exists():
        frames, spans = [], []
        for p in paths:
            clip = read_frames(p, short_side)
            spans.append((p.stem, len(frames), len(clip)))
            frames += clip
        tmp = cache_root / (key + ".partial")
        ImageCache.from_arrays(frames).save(tmp)
        (tmp / "spans.json").write_text(json.dumps(spans))
        tmp.rename(folder)
    spans = [tuple(s) for s in json.loads((folder / "spans.json").read_text())]
    return ImageCache.load(folder), spans


def _thumb(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (48, 27), interpolation=cv2.INTER_AREA).astype(np.float32)


def overlapping_photos(photos: list[Path], clips: list[Path], max_diff: float = 8.0) -> list[Path]:
    """The photos that are frames of these clips: a 48x27 gray thumbnail within `max_diff` (mean absolute
    difference, 8-bit levels) of some frame's."""
    thumbs = np.stack([_thumb(f) for c in clips for f in read_frames(c, 256)])
    found = []
    for p in photos:
        t = _thumb(read_rgb(p))
        if np.abs(thumbs - t).mean(axis=(1, 2)).min() <= max_diff:
            found.append(p)
    return found
