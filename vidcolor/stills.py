"""Single frames out of a film, for a user to colour by hand (`vidcolor frame`).

The frame "at" a time is the one the ranges start on: the first frame whose time
is at or after it (video.demux_range, the same seek and the same tolerance).
Frames are written as they are shown: gray, full resolution, upright (the
stream's display rotation applied), 8-bit PNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import VidcolorError
from .outfile import check_output
from .timecode import format_time
from .video import DecodeStats, demux_range, describe, file_start, open_input

STILL_SUFFIXES = {".png", ".tif", ".tiff"}  # lossless: a hand-coloured frame must match the film's lightness


@dataclass(frozen=True)
class Still:
    time: float  # seconds from the start of the file, as -ss counts
    path: Path


def upright_gray(frame: av.VideoFrame) -> np.ndarray:
    """-> the frame's gray (H, W) uint8 as displayed (rotation applied)."""
    gray = frame.to_ndarray(format="gray")
    k = (int(frame.rotation or 0) % 360) // 90
    return np.ascontiguousarray(np.rot90(gray, k)) if k else gray


def still_names(dst: Path, times: list[float]) -> list[Path]:
    """One name per time: dst itself for one frame, else dst's stem + the time in seconds (frame-t83.500.png)."""
    if len(times) == 1:
        return [dst]
    return [dst.with_name(f"{dst.stem}-t{t:.3f}{dst.suffix}") for t in times]


def spaced_times(start: float, end: float, count: int) -> list[float]:
    """count times evenly spaced over [start, end), the first at start."""
    return [start + i * (end - start) / count for i in range(count)]


def export_stills(
    src: Path, dst: Path, start: float | None, end: float | None, count: int = 1, overwrite: bool = False
) -> list[Still]:
    """Write the gray frame at `start` (count 1) or `count` frames evenly spaced over [start, end) to PNG.
    Times count from the start of the file; end defaults to the film's end."""
    if dst.suffix.lower() not in STILL_SUFFIXES:
        raise VidcolorError(f"{dst.name}: frames are written as .png or .tif (lossless), not {dst.suffix or 'no extension'}")
    if count < 1:
        raise VidcolorError(f"--count {count}: give 1 or more frames")
    container = open_input(src)
    try:
        info = describe(container)
        base = file_start(container)
        length = info.duration or (info.frames / float(info.rate) if info.frames and info.rate else 0.0)
        t0 = start or 0.0
        t1 = end if end is not None else length
        if length and t0 >= length:
            raise VidcolorError(f"the time {t0:g} s is past the end of {src.name} ({length:.2f} s long): choose an earlier one")
        if count > 1 and not t1 > t0:
            raise VidcolorError(f"--count {count} needs a range: give -to or -t, or a start before the end of {src.name}")
        times = [t0] if count == 1 else spaced_times(t0, t1, count)
        paths = still_names(dst, times)
        for path in paths:
            check_output(src, path)
            if path.exists() and not overwrite:
                raise VidcolorError(f"{path} already exists: pass -y to overwrite it, or choose another name with -o")
        stills = []
        for t, path in zip(times, paths, strict=True):
            frame = _frame_at(container, t + base)
            if frame is None:
                raise VidcolorError(f"no frame at {format_time(t)} in {src.name}: choose a time inside the video")
            _write_png(path, upright_gray(frame))
            stills.append(Still(float(frame.time) - base, path))
        return stills
    finally:
        container.close()


def _frame_at(container: av.container.InputContainer, t: float) -> av.VideoFrame | None:
    for item in demux_range(container, t, None, DecodeStats()):
        if isinstance(item, av.VideoFrame):
            return item
    return None


def _write_png(path: Path, gray: np.ndarray) -> None:
    """Written to a temporary name first, so an interrupted export leaves no half image."""
    tmp = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        if not cv2.imwrite(str(tmp), gray):
            raise VidcolorError(f"could not write {path}: check the folder exists and is writable")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
