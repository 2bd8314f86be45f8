"""Small pieces on their own: time parsing, the working size, Y'CbCr packing, the contact-sheet sampler."""

from __future__ import annotations

import numpy as np
import pytest

from vidcolor.compose import Composer
from vidcolor.errors import VidcolorError
from vidcolor.pipeline import working_size
from vidcolor.sheet import SheetSampler
from vidcolor.timecode import format_time, parse_time


@pytest.mark.parametrize(
    "text,seconds",
    [("90", 90.0), ("1:30", 90.0), ("00:01:30.5", 90.5), (".5", 0.5), ("2.", 2.0), (" 7 ", 7.0), ("1:00:00", 3600.0)],
)
def test_parse_time_forms(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text,words",
    [
        ("-1", "negative"),
        ("1:60", "seconds"),
        ("1:60:00", "minutes"),
        ("abc", "not a time"),
        ("1::2", "not a time"),
        ("", "not a time"),
    ],
)
def test_parse_time_refuses(text, words):
    with pytest.raises(VidcolorError, match=words):
        parse_time(text, "start")


def test_format_time_roundtrips():
    assert format_time(3723.25) == "01:02:03.250"
    assert parse_time(format_time(3723.25)) == pytest.approx(3723.25)


@pytest.mark.parametrize(
    "w,h,long_side,expected",
    [
        (640, 360, 256, (256, 144)),
        (1920, 1080, 256, (256, 144)),
        (360, 640, 256, (144, 256)),
        (200, 100, 256, (200, 100)),
        (63, 47, 256, (64, 48)),
        (4000, 10, 256, (256, 16)),
    ],
)
def test_working_size_keeps_aspect_never_upscales_even_sides(w, h, long_side, expected):
    assert working_size(w, h, long_side) == expected


def test_420_packing_puts_y_then_quarter_size_cb_cr():
    comp = Composer(6, 4, "yuv420p")
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    ab = np.zeros((2, 3, 2), np.float32)
    ab[..., 0] = 40.0  # red-ish: Cr above neutral, everywhere
    frame = comp.frame(gray, ab)
    planes = [np.frombuffer(p, np.uint8) for p in frame.planes]
    y = planes[0].reshape(4, -1)[:, :6]
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (6, 4)
    assert np.array_equal(y, np.clip(np.round(16 + gray.astype(float) * 219 / 255), 0, 255).astype(np.uint8))
    cb, cr = (p.reshape(2, -1)[:, :3] for p in planes[1:])
    assert (cr > 140).all() and (np.abs(cb.astype(int) - 128) < 40).all()


def test_sheet_sampler_stays_small_and_even():
    sampler = SheetSampler(6)
    for i in range(1000):
        sampler.add((np.array([i]), np.array([i])) if sampler.wants() else None)
    assert len(sampler.kept) < 12  # at most 2n renderings held, whatever the length
    kept = [int(s[0][0]) for s in sampler.kept]
    assert kept[0] == 0 and len(set(np.diff(kept))) == 1  # evenly spaced from the first frame
    assert kept[-1] > 1000 - 2 * (kept[1] - kept[0])  # and reaching the end
