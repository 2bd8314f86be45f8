"""More training photos: lay out a photo set from a public repository's snapshot as a training folder.

A snapshot is a bare git directory (the repository as fetched). `lay_out` extracts one folder of it with
`git archive`, keeps the colour photos of at least MIN_SIDE px on the short side that are not near-duplicates
of the reference photos (`../shared/data/train`, which holds the held-out split) or of each other, stores
them as `DEST/NAME/NNNNN.jpg` (short side 256, as `../shared`), and writes `DEST/NAME/MANIFEST.json` with the
repository, its commit, the terms and what was dropped. The photos stay outside the project.

    python -m vidcolor.train lay-out utkface --git-dir /path/to/repo --dest ../extra
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..lab import rgb_to_lab
from .data import fit_short_side, list_images, read_rgb

MIN_SIDE = 200  # px on the short side: smaller photos are thumbnails
MIN_CHROMA = 3.0  # mean Lab chroma under which a photo counts as gray or sepia (the rule of ../shared)
# Near-duplicates: both must agree (the rule of ../shared): 64-bit difference hashes within HASH_BITS bits, and
# 24x24 gray thumbnails within THUMB_DIFF mean absolute difference (8-bit levels).
HASH_BITS = 10
THUMB_DIFF = 18.0


@dataclass(frozen=True)
class Source:
    repo: str
    folder: str
    what: str
    terms: str


# The photo sets this project trains on beyond ../shared; the model card lists their counts.
SOURCES = {
    "utkface": Source(
        repo="Mohanish-5744/Major_Ensemble_Gender",
        folder="crop_part1",
        what="UTKFace cropped faces (part 1), 200x200: all ages, genders and skin tones",
        terms="UTKFace: for non-commercial research purposes only; the repository states no licence",
    ),
}


def dhash(img: np.ndarray) -> int:
    """64-bit difference hash of an RGB image: the sign of horizontal steps on a 9x8 gray thumbnail."""
    g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def thumb(img: np.ndarray) -> np.ndarray:
    """24x24 gray thumbnail, float32 levels."""
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def mean_chroma(img: np.ndarray) -> float:
    """Mean Lab chroma of an RGB uint8 image, on a 64 px thumbnail."""
    import torch

    small = fit_short_side(img, 64)
    lab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255)
    return float(lab[0, 1:].square().sum(0).sqrt().mean())


class Seen:
    """Hashes and thumbnails of the photos so far; `near` asks whether a new one is a near-duplicate."""

    def __init__(self):
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.thumbs = np.zeros((0, 24, 24), dtype=np.float32)

    def add(self, imgs: list[np.ndarray]) -> None:
        self.hashes = np.concatenate((self.hashes, np.array([dhash(i) for i in imgs], dtype=np.uint64)))
        self.thumbs = np.concatenate((self.thumbs, np.stack([thumb(i) for i in imgs]) if imgs else self.thumbs[:0]))

    def near(self, img: np.ndarray) -> bool:
        if not len(self.hashes):
            return False
        x = self.hashes ^ np.uint64(dhash(img))
        bits = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)
        close = np.nonzero(bits <= HASH_BITS)[0]
        return bool(close.size) and float(np.abs(self.thumbs[close] - thumb(img)).mean(axis=(1, 2)).min()) <= THUMB_DIFF


def commit_of(git_dir: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def extract(git_dir: Path, folder: str, into: Path) -> list[Path]:
    """`git archive HEAD folder`, unpacked under `into`: the image files."""
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "HEAD", folder], check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return list_images(into)


def lay_out(name: str, git_dir: Path, dest: Path, reference: list[Path], log=print) -> dict:
    """Lay the snapshot of SOURCES[name] out under dest/name; -> the manifest written beside the photos."""
    src = SOURCES[name]
    out = dest / name
    if (out / "MANIFEST.json").is_file():
        raise FileExistsError(f"{out} is laid out already; remove it to lay it out again")
    seen = Seen()
    for i in range(0, len(reference), 500):
        seen.add([read_rgb(p) for p in reference[i : i + 500]])
    log(f"{len(reference)} reference photos hashed")
    counts = {"read": 0, "unreadable": 0, "small": 0, "gray": 0, "duplicate": 0, "kept": 0}
    partial = dest / (name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for path in extract(git_dir, src.folder, Path(tmp)):
            counts["read"] += 1
            try:
                img = read_rgb(path)
            except ValueError:
                counts["unreadable"] += 1
                continue
            why = (
                "small"
                if min(img.shape[:2]) < MIN_SIDE
                else "gray"
                if mean_chroma(img) < MIN_CHROMA
                else "duplicate"
                if seen.near(img)
                else ""
            )
            if why:
                counts[why] += 1
                continue
            seen.add([img])
            small = fit_short_side(img, 256)
            cv2.imwrite(
                str(partial / f"{counts['kept']:05d}.jpg"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
            )
            counts["kept"] += 1
    manifest = {
        "name": name,
        "repo": src.repo,
        "commit": commit_of(git_dir),
        "folder": src.folder,
        "what": src.what,
        "terms": src.terms,
        **counts,
    }
    (partial / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(out)
    log(json.dumps(manifest))
    return manifest
