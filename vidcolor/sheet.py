"""The preview's contact sheet: a few evenly spaced frames; rows: gray, colour, the network's uncertainty.

Memory stays flat however long the range: `SheetSampler` keeps at most 2n
renderings, and when full drops every other one and doubles its stride, so what
it holds stays evenly spaced over everything seen so far.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import VidcolorError


def heat_map(uncertainty: np.ndarray, width: int, height: int) -> np.ndarray:
    """uncertainty (h, w) float32 in [0, 1] -> (height, width, 3) uint8 RGB, dark = sure, bright = unsure
    (OpenCV's inferno map): where a keyframe would pay."""
    small = cv2.resize(uncertainty, (width, height), interpolation=cv2.INTER_LINEAR)
    levels = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


SHEET_FRAMES = 6  # frames a preview's contact sheet shows: one row of them fits a screen at 240 px each


class SheetSampler:
    def __init__(self, n: int):
        self.n = n
        self.stride = 1
        self.seen = 0
        self.kept: list[tuple[np.ndarray, ...]] = []  # (gray, colour, uncertainty) renderings, (h, w, 3) uint8

    def wants(self) -> bool:
        """Whether the next frame will be kept (so only those are rendered)."""
        return self.seen % self.stride == 0

    def add(self, shot: tuple[np.ndarray, ...] | None) -> None:
        """The next frame's renderings, or None for a frame wants() turned down."""
        if self.seen % self.stride == 0 and shot is not None:
            self.kept.append(shot)
            if len(self.kept) >= 2 * self.n:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1

    def write(self, path: Path) -> None:
        """n evenly spaced frames as one PNG, written beside path and renamed into place."""
        if not self.kept:
            return
        idx = np.linspace(0, len(self.kept) - 1, min(self.n, len(self.kept))).round().astype(int)
        rows = [np.hstack([self.kept[i][r] for i in idx]) for r in range(len(self.kept[0]))]
        img = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
        tmp = path.with_name(f".{path.stem}.vidcolor-{os.getpid()}.partial.png")
        if not cv2.imwrite(str(tmp), img):
            raise VidcolorError(f"cannot write the contact sheet {path}")
        os.replace(tmp, path)
