"""The look-ahead (fixed-lag smoothing back in time) on plain arrays: blocks, the walk back, cuts, motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.color import gray_to_lightness_lut
from vidcolor.flow import Motion, Tracker
from vidcolor.lookahead import LookAhead

H, W = 24, 32


def still(reliability: float = 1.0) -> Motion:
    """A frame lying on the one before it without moving."""
    return Motion(np.zeros((H, W, 2), np.float32), np.full((H, W), reliability, np.float32))


def flat(a: float) -> np.ndarray:
    return np.full((H, W, 2), a, np.float32)


def run(look: LookAhead, frames: list[tuple[np.ndarray, Motion | None]]) -> list[tuple[int, np.ndarray]]:
    out = []
    for i, (ab, back) in enumerate(frames):
        out += look.push(i, ab, back, i)
    return out + look.flush()


@pytest.mark.parametrize("first", [0, 4])
def test_each_frame_leaves_once_the_frames_it_looks_ahead_to_are_in(first):
    """Looking 3 ahead, by the frames' numbers: frame i leaves with frame i + 3, whether the run starts at
    frame 0 or at frame 4 (a segment), so each frame looks as far ahead in both."""
    look = LookAhead(3, 0.9)
    left = {i: [j for j, _ in look.push(i, flat(0.0), still() if i > first else None, i)] for i in range(first, 11)}
    assert all(left[i] == ([i - 3] if i - 3 >= first else []) for i in left)
    assert [j for j, _ in look.flush()] == [8, 9, 10]


def test_every_frame_looks_exactly_as_far_ahead():
    """A flicker 3 frames on reaches a frame looking 3 ahead, 4 frames on it does not: the same filter for
    every frame, wherever it lies (frames released in blocks looked further ahead the earlier they lay)."""
    frames = [(flat(10.0 if i == 7 else 0.0), still() if i else None) for i in range(12)]
    out = dict(run(LookAhead(3, 0.9), frames))
    assert out[4][0, 0, 0] > 0.0 and out[3][0, 0, 0] == 0.0
    # Frame 7 is where frame 4's walk starts: its colours whole, times 0.9 at each step back.
    assert out[4][0, 0, 0] == pytest.approx(0.9**3 * 10.0, abs=1e-4)


def test_a_flicker_is_averaged_with_the_frames_after_it():
    frames = [(flat(10.0 if i == 2 else 0.0), still() if i else None) for i in range(8)]
    out = dict(run(LookAhead(2, 0.9), frames))
    assert out[2][0, 0, 0] == pytest.approx(10.0 * 0.1, abs=1e-4)  # 0.1 of its own, 0.9 of what follows
    assert out[1][0, 0, 0] == pytest.approx(0.9 * 0.1 * 10.0, abs=1e-4)  # the frame before sees it coming
    assert out[3][0, 0, 0] == 0.0  # nothing flows forward in time: that is the temporal state's
    assert np.array_equal(dict(run(LookAhead(2, 0.0), frames))[2], frames[2][0])  # weight 0: untouched


def test_untrusted_flow_takes_nothing_from_later_frames():
    frames = [(flat(float(i)), still(0.0) if i else None) for i in range(6)]
    assert all(np.array_equal(ab, frames[i][0]) for i, ab in run(LookAhead(3, 0.95), frames))


def test_nothing_crosses_a_cut_and_a_shots_first_frame_after_it_keeps_its_colours():
    frames = [(flat(0.0), still() if i else None) for i in range(3)] + [(flat(50.0), None), (flat(80.0), still())]
    out = dict(run(LookAhead(4, 0.95), frames))
    assert all(np.array_equal(out[i], flat(0.0)) for i in range(3))  # the shot before the cut keeps its colours
    assert np.array_equal(out[3], flat(50.0))  # the first frame after the cut: the network's own guess
    assert np.array_equal(out[4], flat(80.0))  # the last frame: nothing after it
    # The run's first frame has no shot before it: it takes from the frames after it like any other.
    flicker = dict(run(LookAhead(4, 0.95), [(flat(10.0 * (i == 1)), still() if i else None) for i in range(4)]))
    assert flicker[0][0, 0, 0] == pytest.approx(0.95 * 0.05 * 10.0, abs=1e-4)


def test_later_colours_are_carried_back_along_the_motion():
    """A textured picture moving 8 px right a frame: frame 2's patch, carried back, lands on frame 1's (the
    walk runs at an eighth of this size: 1 px a frame, a 6 x 6 px patch)."""
    tracker = Tracker(gray_to_lightness_lut(), look_ahead=True)
    h, w = 192, 256
    noise = np.random.default_rng(0).random((h, w + 16)).astype(np.float32)
    texture = (cv2.GaussianBlur(noise, (0, 0), 2.0) * 255 * 4 - 400).clip(10, 245).astype(np.uint8)
    grays = [np.ascontiguousarray(texture[:, 16 - 8 * i : 16 - 8 * i + w]) for i in range(3)]
    backs = [tracker.link(g).back for g in grays]
    assert backs[2] is not None and backs[2].reliability[4:-4, 4:-4].mean() > 0.9
    ab = [np.zeros((h, w, 2), np.float32) for _ in range(3)]
    ab[1][72:120, 96:144] = 20.0  # frame 1's patch
    ab[2][72:120, 104:152] = 40.0  # the same place in frame 2, 8 px on
    out = dict(run(LookAhead(1, 1.0), list(zip(ab, backs, strict=True))))
    assert out[1][84:108, 108:132].mean() == pytest.approx(40.0, abs=2.0)  # frame 2's colour, back in place
    assert np.abs(out[1][:, 176:]).max() < 1.0 and np.abs(out[1][:, :64]).max() < 1.0  # and not beside it


def test_a_tracker_without_look_ahead_finds_no_backward_motion():
    tracker = Tracker(gray_to_lightness_lut(), look_ahead=False)
    g = (np.random.default_rng(1).random((H, W)) * 200).astype(np.uint8)
    assert tracker.link(g).back is None and tracker.link(g).back is None
