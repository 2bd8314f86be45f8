"""Build output pictures: the source's own full-resolution luminance + predicted chroma.

Only the chroma planes are computed, at chroma resolution (a quarter of the
pixels for 4:2:0): the predicted ab (working resolution) is upsampled there,
joined with the lightness of the source downsampled there, and turned into
BT.709 Cb/Cr. The Y plane is the source's luma, only moved to limited range.

yuv420p and yuv444p are built directly; any other output format (FFV1 keeping a
source's 4:2:2 or 10-bit) is built as 16-bit 4:4:4 from the source's luma at its
own depth and converted by swscale, so no luma detail is lost to 8 bits.
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
        self.native = pix_fmt in ("yuv420p", "yuv444p")
        self.sub = 2 if pix_fmt == "yuv420p" else 1
        self.cw, self.ch = -(-width // self.sub), -(-height // self.sub)
        self.side_by_side = side_by_side
        self.lut = gray_to_lightness_lut()

    def chroma(self, gray: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """gray (H, W) uint8 full range, ab (h, w, 2) float32 -> Cb, Cr at chroma size, uint8."""
        g = cv2.resize(gray, (self.cw, self.ch), interpolation=cv2.INTER_AREA) if self.sub > 1 else gray
        ab_c = cv2.resize(ab, (self.cw, self.ch), interpolation=cv2.INTER_LINEAR)
        return chroma_planes(lab_planes_to_rgb(self.lut[g], ab_c))

    def frame(self, gray: np.ndarray, ab: np.ndarray, gray16: np.ndarray | None = None) -> av.VideoFrame:
        """gray (H, W) uint8, ab (h, w, 2) float32, gray16 (H, W) uint16 the source's luma at full depth
        (or None) -> a VideoFrame in pix_fmt; (gray | colour) side by side when asked."""
        if not self.native:
            return self._deep_frame(gray, ab, gray16)
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

    def _deep_frame(self, gray: np.ndarray, ab: np.ndarray, gray16: np.ndarray | None) -> av.VideoFrame:
        """16-bit 4:4:4, limited range, converted to pix_fmt by swscale."""
        g16 = gray16.astype(np.float32) if gray16 is not None else gray.astype(np.float32) * 257.0
        y = (4096.0 + g16 * (219.0 * 256.0 / 65535.0) + 0.5).astype(np.uint16)
        cb, cr = (c.astype(np.uint16) * 256 for c in self.chroma(gray, ab))
        if self.side_by_side:
            neutral = np.full_like(cb, 32768)
            y, cb, cr = np.hstack((y, y)), np.hstack((neutral, cb)), np.hstack((neutral, cr))
        frame = av.VideoFrame.from_ndarray(np.dstack((y, cb, cr)), format="yuv444p16le")
        return frame.reformat(format=self.pix_fmt)

    def rgb(self, gray: np.ndarray, ab: np.ndarray, width: int) -> np.ndarray:
        """A small sRGB uint8 rendering (H', width, 3) for contact sheets."""
        h = max(1, round(gray.shape[0] * width / gray.shape[1]))
        g = cv2.resize(gray, (width, h), interpolation=cv2.INTER_AREA)
        ab_s = cv2.resize(ab, (width, h), interpolation=cv2.INTER_LINEAR)
        return (lab_planes_to_rgb(self.lut[g], ab_s) * 255.0 + 0.5).astype(np.uint8)
