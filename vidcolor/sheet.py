"""The preview's contact sheet: a few evenly spaced frames, gray row above, colour row below.

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


class SheetSampler:
    def __init__(self, n: int):
        self.n = n
        self.stride = 1
        self.seen = 0
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []  # (gray, colour) renderings, (h, w, 3) uint8

    def wants(self) -> bool:
        """Whether the next frame will be kept (so only those are rendered)."""
        return self.seen % self.stride == 0

    def add(self, shot: tuple[np.ndarray, np.ndarray] | None) -> None:
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
        top = np.hstack([self.kept[i][0] for i in idx])
        bottom = np.hstack([self.kept[i][1] for i in idx])
        img = cv2.cvtColor(np.vstack((top, bottom)), cv2.COLOR_RGB2BGR)
        tmp = path.with_name(f".{path.stem}.vidcolor-{os.getpid()}.partial.png")
        if not cv2.imwrite(str(tmp), img):
            raise VidcolorError(f"cannot write the contact sheet {path}")
        os.replace(tmp, path)
