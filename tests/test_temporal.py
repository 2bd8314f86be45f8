"""Flow, warping, cut detection and the temporal state on synthetic frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.color import gray_to_lightness_lut
from vidcolor.flow import consistent, flow_pair, make_dis, warp
from vidcolor.temporal import TemporalOptions, TemporalState

from .conftest import scene


def texture(h=96, w=128, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("dx,dy", [(3.0, -2.0), (0.5, 1.5), (-6.0, 0.0)])
def test_known_shift_is_recovered_and_warp_matches(dx, dy):
    prev = texture()
    cur = shifted(prev, dx, dy)
    pair = flow_pair(make_dis("fast"), prev, cur)
    inner = (slice(16, -16), slice(16, -16))
    med = np.median(pair.backward[inner].reshape(-1, 2), axis=0)
    assert med == pytest.approx([-dx, -dy], abs=0.3)
    back = warp(prev.astype(np.float32), pair.backward)
    assert np.abs(back - cur)[inner].mean() < 3.0
    assert np.abs(prev.astype(np.float32) - cur)[inner].mean() > 3 * np.abs(back - cur)[inner].mean()


def test_consistency_flags_inconsistent_flow():
    h, w = 40, 50
    backward = np.zeros((h, w, 2), np.float32)
    backward[..., 0] = 4.0
    forward = np.zeros_like(backward)
    forward[..., 0] = -4.0
    assert consistent(backward, forward)[:, : w - 5].all()
    forward[:, 20:30, 0] = 6.0  # disagreeing region
    ok = consistent(backward, forward)
    assert not ok[:, 17:25].any()


def make_state(**kw) -> TemporalState:
    return TemporalState(TemporalOptions(**kw), gray_to_lightness_lut())


def gray(i: int, seed: int) -> np.ndarray:
    return cv2.cvtColor(scene(i, 128, 96, seed=seed, shift=1), cv2.COLOR_RGB2GRAY)


def test_cuts_and_fades_are_detected_and_reset_the_state():
    state = make_state()
    frames = [gray(i, 0) for i in range(5)] + [gray(i, 7) for i in range(5)]  # hard cut at 5
    fade = [np.clip(gray(0, 3).astype(np.float32) * f, 0, 255).astype(np.uint8) for f in (0.5, 0.1, 0.0, 0.0)]
    frames += fade + [gray(i, 3) for i in range(4)]
    cuts = []
    ab = np.full((96, 128, 2), 20.0, np.float32)
    for i, g in enumerate(frames):
        inh = state.prepare(g)
        if inh.cut:
            cuts.append(i)
        state.blend(inh, ab)
    assert cuts[0] == 0 and 5 in cuts
    assert all(c not in cuts for c in (1, 2, 3, 4, 6, 7, 8, 9))  # no false cuts inside shots
    after_fade = len(frames) - 4
    assert any(c in cuts for c in range(after_fade - 3, after_fade + 1))  # the black frames reset it
    assert not state.prepare(gray(5, 3)).cut


def test_no_colour_crosses_a_cut():
    state = make_state(smoothing=1.0, feedback=True)
    red = np.zeros((96, 128, 2), np.float32)
    red[..., 0] = 60.0
    for i in range(4):
        state.blend(state.prepare(gray(i, 0)), red)
    inh = state.prepare(gray(0, 9))
    assert inh.cut and inh.ab is None and state.hint_ab(inh) is None
    blue = np.zeros_like(red)
    blue[..., 1] = -60.0
    assert np.array_equal(state.blend(inh, blue), blue)


def test_static_shot_keeps_a_constant_colour():
    """A still shot with a noisy per-frame prediction: the output converges and stays put."""
    state = make_state(smoothing=0.8)
    g = gray(0, 1)
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(30):
        pred = np.full((96, 128, 2), 25.0, np.float32) + rng.normal(0, 6, (1, 1, 2)).astype(np.float32)
        outs.append(state.blend(state.prepare(g), pred).mean(axis=(0, 1)))
    outs = np.array(outs[10:])
    assert np.abs(np.diff(outs, axis=0)).max() < 3.0  # raw predictions jump by ~8
    assert outs.mean(axis=0) == pytest.approx([25.0, 25.0], abs=3.0)  # no fade, no drift


def test_hint_is_gray_where_unreliable():
    state = make_state(feedback=True)
    ab = np.full((96, 128, 2), 30.0, np.float32)
    state.blend(state.prepare(gray(0, 0)), ab)
    inh = state.prepare(gray(1, 0))
    hint = state.hint_ab(inh)
    assert hint is not None
    reliable = inh.reliability > 0.5
    assert reliable.mean() > 0.5
    assert np.all(hint[~reliable] == 0)
    assert np.abs(hint[reliable] - 30.0).mean() < 3.0


def test_anchoring_matches_cast_and_spread_but_keeps_layout():
    from vidcolor.temporal import chroma_stats, match_stats

    rng = np.random.default_rng(0)
    ab = rng.normal(0, 10, (32, 32, 2)).astype(np.float32) + np.float32([30, 20])  # a warm, drifted frame
    target = (np.float32([5, -3]), 8.0)  # within the 0.5x..2x the matching allows
    out = match_stats(ab, target)
    mean, spread = chroma_stats(out)
    assert mean == pytest.approx(target[0], abs=1e-3) and spread == pytest.approx(8.0, rel=1e-3)
    assert np.corrcoef(out[..., 0].ravel(), ab[..., 0].ravel())[0, 1] > 0.999  # same regions, same order


def _after_two_frames(state, first_certainty: float, second_certainty: float) -> float:
    """Frame 0 predicts a = 40 with one certainty, frame 1 (same picture) a = 0 with another: -> output a."""
    g = gray(0, 1)
    full = lambda v: np.full((96, 128), v, np.float32)  # noqa: E731
    past = np.zeros((96, 128, 2), np.float32)
    past[..., 0] = 40.0
    state.blend(state.prepare(g), past, full(first_certainty))
    out = state.blend(state.prepare(g), np.zeros_like(past), full(second_certainty))
    return float(np.median(out[..., 0]))


def test_certainty_weighs_past_against_prediction():
    plain = _after_two_frames(make_state(smoothing=0.5, use_certainty=False), 0.5, 0.5)
    assert plain == pytest.approx(20.0, abs=1.0)  # smoothing 0.5 on reliable flow: halfway
    assert _after_two_frames(make_state(smoothing=0.5), 0.5, 0.5) == pytest.approx(plain, abs=1e-3)
    # An unsure new guess moves a sure past less; a sure new guess replaces an unsure past more.
    assert _after_two_frames(make_state(smoothing=0.5), 0.8, 0.2) > plain + 8.0
    assert _after_two_frames(make_state(smoothing=0.5), 0.2, 0.8) < plain - 8.0


def test_past_weight_is_capped():
    """Even at smoothing 1 with a much surer past, each frame lets some of its prediction in."""
    out = _after_two_frames(make_state(smoothing=1.0), 0.9, 0.1)
    assert 0.0 < 40.0 - out <= 40.0 * (1 - 0.97) + 0.5
