"""The colouring core (colouring.py): gray frames in, colours out, with no threads, no PyAV and no files."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vidcolor.colouring import Colouring, colour_frames, upright
from vidcolor.flow import Tracker
from vidcolor.inference import Colorizer
from vidcolor.keyframes import KeyframeSpec, hex_ab
from vidcolor.options import ColorizeOptions
from vidcolor.project import Point
from vidcolor.temporal import TemporalOptions

from .test_temporal import gray

FRAMES = [gray(i, seed=3) for i in range(10)]  # (96, 128) uint8, a scene moving 1 px a frame


@pytest.fixture(scope="module")
def colorizer(tiny_model) -> Colorizer:
    return Colorizer.load(tiny_model, "cpu")


def run(core: Colouring, frames: list[np.ndarray]) -> tuple[list[list[int]], list]:
    """Push every frame -> which frames each push handed back, and everything handed back in order."""
    tracker = Tracker(core.lut, look_ahead=core.look is not None)
    released, out = [], []
    for i, g in enumerate(frames):
        small = core.upright(g)
        got = core.push(i, small, tracker.link(small), i / 25, i)
        released.append([n for n, _, _ in got])
        out += got
    return released, out + core.flush()


def test_the_look_ahead_holds_each_frame_until_the_frames_after_it_are_in(colorizer):
    options = ColorizeOptions(work_size=64, temporal_options=TemporalOptions(look_ahead=3))
    released, out = run(Colouring(colorizer, options, FRAMES[0].shape), FRAMES)
    assert released == [[], [], [], [0], [1], [2], [3], [4], [5], [6]]
    assert [n for n, _, _ in out] == list(range(10))  # the rest at flush, in order
    released, _ = run(Colouring(colorizer, ColorizeOptions(work_size=64, temporal=False), FRAMES[0].shape), FRAMES)
    assert released == [[i] for i in range(10)]  # per frame: nothing waits


def test_it_starts_no_thread_and_gives_colours_and_uncertainty_at_the_working_size(colorizer):
    before = set(threading.enumerate())
    _, out = run(Colouring(colorizer, ColorizeOptions(work_size=64), FRAMES[0].shape), FRAMES)
    assert set(threading.enumerate()) == before
    for _, ab, unc in out:
        assert ab.shape == (48, 64, 2) and ab.dtype == np.float32 and np.abs(ab).max() > 1.0
        assert unc.shape == (48, 64) and 0.0 <= unc.min() and unc.max() <= 1.0


def test_a_turned_film_is_coloured_upright_and_handed_back_as_stored(colorizer):
    stored = [np.ascontiguousarray(np.rot90(g, -1)) for g in FRAMES]  # shown turned 90 degrees: upright again
    options = ColorizeOptions(work_size=64, temporal=False)
    turned = Colouring(colorizer, options, stored[0].shape, rotation=90)
    assert turned.upright(stored[0]).shape == (48, 64)  # the network sees the picture upright
    _, out = run(turned, stored)
    _, upright = run(Colouring(colorizer, options, FRAMES[0].shape), FRAMES)
    for (_, ab, unc), (_, ab_up, unc_up) in zip(out, upright, strict=True):
        assert ab.shape == (64, 48, 2) and unc.shape == (64, 48)
        np.testing.assert_allclose(np.rot90(ab, 1), ab_up, atol=1e-4)
        np.testing.assert_allclose(np.rot90(unc, 1), unc_up, atol=1e-4)


def test_points_colour_their_frame_exactly_at_full_size_and_steer_the_frames_around_it(colorizer):
    red = Point(t=4 / 25, x=0.5, y=0.5, colour="#c03020", size=0.1)
    key = KeyframeSpec(time=red.t, image=None, points=(red,))
    times = [(i / 25, g) for i, g in enumerate(FRAMES)]
    plain = colour_frames(colorizer, ColorizeOptions(work_size=64), times)

    def window(start: float, until: float) -> list[tuple[float, np.ndarray]]:
        return [(t, upright(g, (64, 48), 0)) for t, g in times if start - 1e-6 <= t < until + 1e-6]  # working size

    steered = colour_frames(colorizer, ColorizeOptions(work_size=64, keyframes=(key,)), times, window)
    ab_key = steered[4][0]
    assert ab_key.shape == (96, 128, 2)  # its own frame at the stored size, the user's colours exact
    np.testing.assert_allclose(ab_key[48, 64], hex_ab("#c03020"), atol=1.0)
    red_ab = hex_ab("#c03020")

    def toward_red(ab: np.ndarray) -> float:
        return float(ab[20:28, 28:36].reshape(-1, 2).mean(0) @ red_ab)

    for i in (3, 5):  # before it and after it, the shot goes redder at the point than without it
        assert toward_red(steered[i][0]) > toward_red(plain[i][0]) + 5.0
