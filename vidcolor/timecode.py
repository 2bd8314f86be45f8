"""ffmpeg-style time parsing: SS[.ms], MM:SS[.ms], HH:MM:SS[.ms]."""

from __future__ import annotations

import re

from .errors import VidcolorError

# A frame or packet counts as "at" a time if it starts within half a millisecond of it (seconds).
EPS = 5e-4

_PATTERN = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)$")


def parse_time(text: str, what: str = "time") -> float:
    """'90', '1:30', '00:01:30.5' -> seconds. Negative or malformed values raise VidcolorError."""
    s = text.strip()
    if s.startswith("-"):
        raise VidcolorError(f"{what} {text!r} is negative: times count from the start of the video, use 0 or more")
    m = _PATTERN.match(s)
    if not m:
        raise VidcolorError(f"{what} {text!r} is not a time: use SS[.ms], MM:SS or HH:MM:SS[.ms], e.g. 90, 1:30 or 00:01:30.5")
    hours, minutes, seconds = m.group(1), m.group(2), m.group(3)
    if minutes is not None and hours is not None and int(minutes) >= 60:
        raise VidcolorError(f"{what} {text!r} has {minutes} minutes: use 0-59 in HH:MM:SS")
    if minutes is not None and float(seconds) >= 60:
        raise VidcolorError(f"{what} {text!r} has {seconds} seconds: use 0-59 in MM:SS")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def format_time(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h:02d}:{m:02d}:{s:06.3f}"
