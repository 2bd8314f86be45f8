"""Build output pictures: the source's own full-resolution luminance + predicted chroma.

Only the chroma planes are computed, at chroma resolution (a quarter of the
pixels for 4:2:0): the predicted ab (working resolution) is upsampled there,
joined with the lightness of the source downsampled there, and turned into
BT.709 Cb/Cr. The Y plane is the source's luma, only moved to limited range.
"""

from __future__ import annotations

import av
import cv2
import numpy as np

from .color import FULL_TO_LIMITED_Y, chroma_planes, gray_to_lightness_lut, lab_planes_to_rgb


class Composer:
    def __init__(self, width: int, height: int, pix_fmt: str, side_by_side: bool = False):
        self.w, self.h = width, height
        self.pix_fmt = pix_fmt
        self.sub = 2 if pix_fmt == "yuv420p" else 1
        self.cw, self.ch = -(-width // self.sub), -(-height // self.sub)
        self.side_by_side = side_by_side
        self.lut = gray_to_lightness_lut()

    def chroma(self, gray: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """gray (H, W) uint8 full range, ab (h, w, 2) float32 -> Cb, Cr at chroma size, uint8."""
        g = cv2.resize(gray, (self.cw, self.ch), interpolation=cv2.INTER_AREA) if self.sub > 1 else gray
        ab_c = cv2.resize(ab, (self.cw, self.ch), interpolation=cv2.INTER_LINEAR)
        return chroma_planes(lab_planes_to_rgb(self.lut[g], ab_c))

    def frame(self, gray: np.ndarray, ab: np.ndarray) -> av.VideoFrame:
        """-> a VideoFrame in pix_fmt; (gray | colour) side by side when asked."""
        y = FULL_TO_LIMITED_Y[gray]
        cb, cr = self.chroma(gray, ab)
        if self.side_by_side:
            neutral = np.full_like(cb, 128)
            y = np.hstack((y, y))
            cb, cr = np.hstack((neutral, cb)), np.hstack((neutral, cr))
        if self.sub == 1:
            return av.VideoFrame.from_ndarray(np.stack((y, cb, cr)), format="yuv444p", channel_last=False)
        hh, ww = y.shape
        packed = np.concatenate((y.reshape(-1), cb.reshape(-1), cr.reshape(-1))).reshape(hh * 3 // 2, ww)
        return av.VideoFrame.from_ndarray(packed, format="yuv420p")

    def rgb(self, gray: np.ndarray, ab: np.ndarray, width: int) -> np.ndarray:
        """A small sRGB uint8 rendering (H', width, 3) for contact sheets."""
        h = max(1, round(gray.shape[0] * width / gray.shape[1]))
        g = cv2.resize(gray, (width, h), interpolation=cv2.INTER_AREA)
        ab_s = cv2.resize(ab, (width, h), interpolation=cv2.INTER_LINEAR)
        return (lab_planes_to_rgb(self.lut[g], ab_s) * 255.0 + 0.5).astype(np.uint8)
