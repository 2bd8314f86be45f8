"""Flow, warping, cut detection and the temporal state on synthetic frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.color import gray_to_lightness_lut
from vidcolor.flow import Tracker, consistent, flow_pair, make_dis, warp
from vidcolor.record import FeedbackRecord
from vidcolor.temporal import MOVED_SHARE, Guide, TemporalOptions, TemporalState

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


def test_a_motion_carries_as_a_warp_along_its_flow_every_time():
    """Motion and FlowPair build their flow's sample points once; what they warp is flow.warp's."""
    from vidcolor.flow import FlowPair, Motion

    rng = np.random.default_rng(0)
    backward = rng.normal(0, 3, (20, 30, 2)).astype(np.float32)
    forward = rng.normal(0, 3, (20, 30, 2)).astype(np.float32)
    img = rng.random((20, 30, 2)).astype(np.float32)
    motion = Motion(backward, np.ones((20, 30), np.float32))
    for interpolation in (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LINEAR):
        assert np.array_equal(motion.carry(img, interpolation), warp(img, backward, interpolation=interpolation))
    pair = FlowPair(backward, forward)
    assert np.array_equal(pair.reliable(), consistent(backward, forward))
    assert pair.reliable().any() and not pair.reliable().all()


def make_state(enabled: bool = True, **kw) -> TemporalState:
    return TemporalState(TemporalOptions(**kw).filled(), gray_to_lightness_lut(), enabled=enabled)


def gray(i: int, seed: int) -> np.ndarray:
    return cv2.cvtColor(scene(i, 128, 96, seed=seed, shift=1), cv2.COLOR_RGB2GRAY)


def constant(a: float, b: float = 0.0, confidence: float = 0.5, seen: list | None = None, told: list | None = None):
    """A stand-in network predicting one colour everywhere; records its inputs in `seen`, and whether it was
    told they are true colours in `told`."""

    def predict(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if seen is not None:
            seen.append(rgb)
        if told is not None:
            told.append(trusted)
        h, w = rgb.shape[:2]
        return np.full((h, w, 2), (a, b), np.float32), np.full((h, w), confidence, np.float32)

    return predict


def test_cuts_and_fades_are_detected_and_reset_the_state():
    state = make_state()
    frames = [gray(i, 0) for i in range(5)] + [gray(i, 7) for i in range(5)]  # hard cut at 5
    fade = [np.clip(gray(0, 3).astype(np.float32) * f, 0, 255).astype(np.uint8) for f in (0.5, 0.1, 0.0, 0.0)]
    frames += fade + [gray(i, 3) for i in range(4)]
    cuts = []
    for i, g in enumerate(frames):
        before = state.cuts
        state.step(g, constant(20.0))
        if state.cuts > before:
            cuts.append(i)
    assert cuts[0] == 0 and 5 in cuts
    assert all(c not in cuts for c in (1, 2, 3, 4, 6, 7, 8, 9))  # no false cuts inside shots
    after_fade = len(frames) - 4
    assert any(c in cuts for c in range(after_fade - 3, after_fade + 1))  # the black frames reset it


def test_a_cut_between_shots_of_the_same_tones_is_found_and_a_small_move_is_not_one():
    """Same histogram on both sides, so only the flow can tell: smooth noise turned over or moved far is
    another shot; moved by a few pixels, the same one."""
    rng = np.random.default_rng(0)
    for _ in range(3):
        noise = cv2.GaussianBlur(rng.uniform(0, 255, (96, 128)).astype(np.float32), (0, 0), 3)
        a = cv2.normalize(noise, None, 20, 235, cv2.NORM_MINMAX).astype(np.uint8)
        for b, cut in ((a[::-1, ::-1], True), (np.roll(a, (40, 50), (0, 1)), True), (np.roll(a, (2, 3), (0, 1)), False)):
            tracker = Tracker(gray_to_lightness_lut())
            tracker.link(a)
            assert (tracker.link(np.ascontiguousarray(b)).motion is None) == cut


def test_a_pan_the_fast_flow_loses_is_followed_by_the_retry_and_a_cut_stays_a_cut():
    """flow.track tries its retry flow where the first finds too little: a pair the first one loses
    (here a flow that finds no motion at all) keeps its link, two different shots stay apart."""
    from vidcolor.flow import track

    class Lost:  # a DIS that never finds the motion: its flow leaves the frame everywhere
        def calc(self, a: np.ndarray, b: np.ndarray, flow: None) -> np.ndarray:
            return np.full((*a.shape, 2), 1000.0, np.float32)

    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (96, 128)).astype(np.float32), (0, 0), 3)
    a = cv2.normalize(noise, None, 20, 235, cv2.NORM_MINMAX).astype(np.uint8)
    moved = np.ascontiguousarray(np.roll(a, (6, 8), (0, 1)))
    lut = gray_to_lightness_lut()
    assert track(Lost(), a, moved, lut) is None
    motion = track(Lost(), a, moved, lut, retry=make_dis("medium"))
    assert motion is not None and float(motion.reliability.mean()) > 0.5
    assert track(Lost(), a, np.ascontiguousarray(a[::-1, ::-1]), lut, retry=make_dis("medium")) is None


def test_no_color_crosses_a_cut():
    state = make_state(smoothing=1.0, feedback=True)
    for i in range(4):
        state.step(gray(i, 0), constant(60.0))
    seen: list = []
    out = state.step(gray(0, 9), constant(0.0, -60.0, seen=seen))
    assert np.array_equal(out, np.full_like(out, (0.0, -60.0)))
    assert np.ptp(seen[0], axis=2).max() < 1e-6  # the network saw a gray frame, no inherited hint


def test_static_shot_keeps_a_constant_color():
    """A still shot with a noisy per-frame prediction: the output converges and stays put."""
    state = make_state(smoothing=0.8)
    g = gray(0, 1)
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(30):
        a, b = 25.0 + rng.normal(0, 6, 2)
        outs.append(state.step(g, constant(a, b)).mean(axis=(0, 1)))
    outs = np.array(outs[10:])
    assert np.abs(np.diff(outs, axis=0)).max() < 3.0  # raw predictions jump by ~8
    assert outs.mean(axis=0) == pytest.approx([25.0, 25.0], abs=3.0)  # no fade, no drift


def test_per_frame_mode_computes_no_flow(monkeypatch):
    import vidcolor.flow as flow

    def no_flow(*args, **kwargs):
        raise AssertionError("per-frame mode computed optical flow")

    monkeypatch.setattr(flow, "flow_pair", no_flow)
    state = make_state(enabled=False)
    assert state.tracker is None
    outs = [state.step(gray(i, 0), constant(10.0 * i)) for i in range(3)]
    assert [float(o[..., 0].mean()) for o in outs] == [0.0, 10.0, 20.0]  # each frame its own prediction


def test_feedback_input_is_gray_where_unreliable():
    from vidcolor.temporal import feedback_input

    lut = gray_to_lightness_lut()
    L = lut[gray(0, 0)]
    ab = np.full((96, 128, 2), 30.0, np.float32)
    reliability = np.zeros((96, 128), np.float32)
    reliability[:, :64] = 1.0
    rgb = feedback_input(L, ab, reliability)
    assert np.ptp(rgb[:, 64:], axis=2).max() < 1e-5  # gray where the flow is not trusted
    assert np.ptp(rgb[:, :64], axis=2).mean() > 0.05  # coloured where it is


def test_feedback_gives_the_network_the_warped_past():
    state = make_state(feedback=True, feedback_lag=1)
    seen: list = []
    told: list = []
    state.step(gray(0, 0), constant(30.0, 30.0, seen=seen, told=told))
    state.step(gray(1, 0), constant(30.0, 30.0, seen=seen, told=told))
    assert np.ptp(seen[0], axis=2).max() < 1e-6  # first frame: gray only
    assert np.ptp(seen[1], axis=2).mean() > 0.05  # then: the previous colours as a hint
    assert told == [False, False]  # the network's own guesses, not true colours


def test_feedback_lag_2_feeds_frame_t_the_output_of_frame_t_minus_2():
    seen: list = []
    state = make_state(feedback=True, feedback_lag=2, smoothing=0.0)
    for i, colour in enumerate((10.0, 40.0, 20.0, 30.0)):  # each frame's prediction its own colour
        state.step(gray(i, 0), constant(colour, 0.0, seen=seen))
    assert np.ptp(seen[0], axis=2).max() < 1e-6 and np.ptp(seen[1], axis=2).max() < 1e-6  # no t-2 yet: gray
    assert _hint_chroma(seen[2]) == pytest.approx(10.0, abs=1.5)  # frame 0's colour, not frame 1's 40
    assert _hint_chroma(seen[3]) == pytest.approx(40.0, abs=1.5)  # frame 1's
    cut = [gray(i, 7) for i in range(2)]  # a new shot starts gray again for two frames
    for g in cut:
        state.step(g, constant(25.0, 0.0, seen=seen))
    assert all(np.ptp(x, axis=2).max() < 1e-6 for x in seen[4:6])


def _hint_chroma(rgb: np.ndarray) -> float:
    lab = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2Lab)
    return float(np.median(np.hypot(lab[..., 1], lab[..., 2])))


def test_the_networks_own_colours_are_fed_back_damped_and_a_keyframes_are_not():
    seen: list = []
    state = make_state(feedback=True, feedback_lag=1, feedback_gain=0.5, smoothing=0.0)
    for i in range(2):
        state.step(gray(i, 0), constant(30.0, 30.0, seen=seen))
    assert _hint_chroma(seen[1]) == pytest.approx(0.5 * np.hypot(30.0, 30.0), rel=0.1)
    guided = make_state(feedback=True, feedback_lag=1, feedback_gain=0.5, smoothing=0.0)
    guided.step(gray(0, 0), constant(30.0, 30.0))
    guided.step(gray(1, 0), constant(30.0, 30.0, seen=seen), Guide(None, None))
    assert _hint_chroma(seen[2]) == pytest.approx(np.hypot(30.0, 30.0), rel=0.1)
    unset = make_state(feedback=True, feedback_lag=1, smoothing=0.0)  # no gain filled in (the pipeline fills the weights'): 1
    for i in range(2):
        unset.step(gray(i, 0), constant(30.0, 30.0, seen=seen))
    assert _hint_chroma(seen[4]) == pytest.approx(np.hypot(30.0, 30.0), rel=0.1)


def test_smooth_carried_off_feeds_back_the_networks_own_colours_and_still_smooths_the_shown_ones():
    def run(smooth_carried: bool) -> tuple[float, np.ndarray]:
        seen: list = []
        state = make_state(feedback=True, feedback_lag=1, feedback_gain=1.0, smooth_carried=smooth_carried)
        shown = []
        for a in (10.0, 40.0, 40.0):  # a still shot whose prediction jumps after frame 0

            def predict(rgb: np.ndarray, trusted: bool = False, a: float = a) -> tuple[np.ndarray, np.ndarray]:
                seen.append(rgb)
                h, w = rgb.shape[:2]
                return np.full((h, w, 4), (a, 0.0, a, 0.0), np.float32), np.full((h, w), 0.5, np.float32)

            shown.append(state.step(gray(0, 0), predict))
        return _hint_chroma(seen[2]), shown[1]

    own, shown_own = run(False)
    blended, shown_blended = run(True)
    assert own == pytest.approx(40.0, abs=1.5)  # frame 1's own colours, as it gave them
    assert blended < 20.0  # frame 1's blended with frame 0's 10, as the shown ones are
    np.testing.assert_array_equal(shown_own, shown_blended)  # the shown colours are smoothed either way
    assert np.median(shown_own[..., 0]) < 20.0


def test_a_keyframes_shot_carries_blended_colours_even_where_the_networks_own_are_fed_back():
    """smooth_carried off (chain-trained weights) feeds back the network's own colours; in a keyframe's shot
    the carried colours stay the blend that holds the keyframe's, or its reach fades frame by frame."""

    def gray_network(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        seen.append(rgb)
        h, w = rgb.shape[:2]
        return np.zeros((h, w, 4), np.float32), np.full((h, w), 0.5, np.float32)  # shown and regressed: gray

    seen: list = []
    state = make_state(feedback=True, feedback_lag=1, feedback_gain=1.0, smooth_carried=False)
    key = Guide(np.full((96, 128, 2), (40.0, 10.0), np.float32), np.ones((96, 128), np.float32))
    state.step(gray(0, 0), gray_network, key)
    state.step(gray(1, 0), gray_network, Guide(None, None))
    state.step(gray(2, 0), gray_network, Guide(None, None))
    assert _hint_chroma(seen[2]) > 10.0  # frame 1's carried colours: the keyframe's, blended on, not gray
    unguided: list = []
    seen = unguided
    state = make_state(feedback=True, feedback_lag=1, feedback_gain=1.0, smooth_carried=False)
    for i in range(3):
        state.step(gray(i, 0), gray_network)
    assert _hint_chroma(unguided[2]) < 1.0  # outside a keyframe's shot the network's own: gray


def test_a_guided_frames_hint_counts_as_true_colours():
    state = make_state()
    told: list = []
    state.step(gray(0, 0), constant(30.0, 30.0, told=told))
    guide = Guide(np.full((96, 128, 2), (40.0, 10.0), np.float32), np.ones((96, 128), np.float32))
    state.step(gray(1, 0), constant(30.0, 30.0, told=told), guide)
    state.step(gray(2, 0), constant(30.0, 30.0, told=told), Guide(None, None))  # the shot after a keyframe
    assert told == [False, True, True]


def test_a_guided_frame_with_a_moved_guess_shows_its_share_of_it_and_feeds_it_back():
    moved = np.full((96, 128, 2), (-20.0, 40.0), np.float32)
    none = np.zeros((96, 128), np.float32)  # no patch of its own: the network's colours, and the guess's
    state = make_state()
    first = state.step(gray(0, 0), constant(30.0, 30.0), Guide(np.zeros_like(moved), none, None, moved))
    expected = (1 - MOVED_SHARE) * np.float32([30.0, 30.0]) + MOVED_SHARE * moved[0, 0]
    assert np.abs(np.median(first.reshape(-1, 2), 0) - expected).max() < 0.5
    plain = make_state().step(gray(0, 0), constant(30.0, 30.0), Guide(np.zeros_like(moved), none))
    assert np.abs(np.median(plain.reshape(-1, 2), 0) - (30.0, 30.0)).max() < 0.5
    seen: list = []  # the next frame of the shot is given the mixed colours, not the network's alone
    state.step(gray(1, 0), constant(30.0, 30.0, seen=seen), Guide(None, None))
    lab = cv2.cvtColor(seen[0].astype(np.float32), cv2.COLOR_RGB2Lab)
    assert np.median(lab[..., 1]) < 20.0 and np.median(lab[..., 2]) > 30.0


def test_without_feedback_the_network_sees_gray_every_frame():
    assert TemporalOptions().filled().feedback is False  # off where no weights' record turns it on
    state = make_state(feedback=False)
    seen: list = []
    for i in range(3):
        state.step(gray(i, 0), constant(30.0, 30.0, seen=seen))
    assert len(seen) == 3 and all(np.ptp(x, axis=2).max() < 1e-6 for x in seen)


def _after_two_frames(state, first_confidence: float, second_confidence: float) -> float:
    """Frame 0 predicts a = 40 with one confidence, frame 1 (same picture) a = 0 with another: -> output a."""
    g = gray(0, 1)
    state.step(g, constant(40.0, confidence=first_confidence))
    out = state.step(g, constant(0.0, confidence=second_confidence))
    return float(np.median(out[..., 0]))


def test_confidence_weighs_past_against_prediction():
    plain = _after_two_frames(make_state(smoothing=0.5, use_confidence=False), 0.5, 0.5)
    assert plain == pytest.approx(20.0, abs=1.0)  # smoothing 0.5 on reliable flow: halfway
    assert _after_two_frames(make_state(smoothing=0.5), 0.5, 0.5) == pytest.approx(plain, abs=1e-3)
    # An unsure new guess moves a sure past less; a sure new guess replaces an unsure past more.
    assert _after_two_frames(make_state(smoothing=0.5), 0.8, 0.2) > plain + 8.0
    assert _after_two_frames(make_state(smoothing=0.5), 0.2, 0.8) < plain - 8.0


def test_past_weight_is_capped():
    """Even at smoothing 1 with a much surer past, each frame lets some of its prediction in."""
    out = _after_two_frames(make_state(smoothing=1.0), 0.9, 0.1)
    assert 0.0 < 40.0 - out <= 40.0 * (1 - 0.97) + 0.5


def test_a_prediction_made_ahead_serves_an_input_that_does_not_wait_for_the_frame_before():
    ahead = (np.full((96, 128, 2), 40.0, np.float32), np.full((96, 128), 0.5, np.float32))
    seen: list = []
    state = make_state(smoothing=0.0)
    out = state.step(gray(0, 0), constant(-40.0, seen=seen), predicted=ahead)
    assert seen == [] and float(out[..., 0].mean()) == 40.0  # the network was not run again
    fed = make_state(smoothing=0.0, feedback=True, feedback_lag=1)
    fed.step(gray(0, 0), constant(-40.0, seen=seen), predicted=ahead)
    out = fed.step(gray(1, 0), constant(-40.0, seen=seen), predicted=ahead)
    assert len(seen) == 1 and float(out[..., 0].mean()) == -40.0  # a hinted input needs the network
    lagged = make_state(smoothing=0.0, feedback=True, feedback_lag=2)  # its input does not wait for t-1
    lagged.step(gray(0, 0), constant(-40.0, seen=seen), predicted=ahead)
    out = lagged.step(gray(1, 0), constant(-40.0, seen=seen), predicted=ahead)
    assert len(seen) == 1 and float(out[..., 0].mean()) == 40.0


@pytest.mark.parametrize("lag", [1, 2])
def test_gray_every_gives_every_nth_fed_back_input_its_gray_alone(lag):
    def gray_inputs(gray_every: int) -> list[int]:
        state = make_state(feedback=True, feedback_lag=lag, feedback_gain=1.0, gray_every=gray_every)
        seen: list = []
        for i in range(9):
            state.step(gray(i, 0), constant(30.0, 30.0, seen=seen))
        return [i for i, x in enumerate(seen) if np.ptp(x, axis=2).max() < 1e-6]

    first = [0] if lag == 1 else [0, 1]  # frames with nothing to feed back yet
    assert gray_inputs(0) == first
    assert gray_inputs(3) == first + [lag + 2, lag + 5]  # the 3rd and 6th input that would carry colours


def warming(per_frame_b: float = 10.0, rise: float = 4.0):
    """A stand-in network whose answer to its own colours drifts: on a gray input it guesses b =
    per_frame_b everywhere, fed colours it gives back their mean b raised by `rise`."""

    def predict(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        if np.ptp(rgb, axis=2).max() < 1e-6:
            b = per_frame_b
        else:
            lab = cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2Lab)
            coloured = np.hypot(lab[..., 1], lab[..., 2]) > 1.0  # the trusted part of the hint
            b = float(lab[..., 2][coloured].mean()) + rise
        return np.full((h, w, 2), (0.0, b), np.float32), np.full((h, w), 0.5, np.float32)

    return predict


def fed_back_b(lag: int, anchor: float, frames: int = 24) -> list[float]:
    """Each frame's output b with the warming network fed back, every 3rd fed input gray; with lag 2 in
    the pipeline's order (frame t+1's input made by lagged_input before frame t is stepped)."""
    opts = TemporalOptions(feedback=True, feedback_lag=lag, feedback_gain=1.0, gray_every=3, smoothing=0.0, anchor=anchor)
    state = TemporalState(opts.filled(), gray_to_lightness_lut())
    net, grays = warming(), [gray(i, 0) for i in range(frames)]
    if lag == 1:
        return [float(state.step(g, net)[..., 1].mean()) for g in grays]
    tracker = Tracker(state.lut)
    links = [tracker.link(g) for g in grays]
    held: list[tuple[int, np.ndarray]] = []
    out = []
    for i, g in enumerate(grays + [None, None]):
        if len(held) == 2 or (g is None and held):
            j, x = held.pop(0)
            out.append(float(state.step(grays[j], net, link=links[j], predicted=net(x))[..., 1].mean()))
        if g is not None:
            before = links[held[-1][0]] if held else None
            held.append((i, state.lagged_input(g, before, links[i])))
    return out


@pytest.mark.parametrize("lag", [1, 2])
def test_the_anchor_takes_the_drift_its_gray_inputs_measure_off_the_fed_back_colours(lag):
    free, anchored = fed_back_b(lag, anchor=0.0), fed_back_b(lag, anchor=0.5)
    assert len(free) == len(anchored) == 24
    assert anchored[:3] == pytest.approx(free[:3])  # nothing measured yet: the same frames
    # Unanchored, the fed-back colours climb 4 a frame from the per-frame guess (10) between gray inputs.
    assert np.mean(free[-9:]) > 10.0 + 3.0
    # Anchored, the gray inputs measure the climb and later fed-back predictions lose it.
    assert abs(np.mean(anchored[-9:]) - 10.0) < 0.5 * (np.mean(free[-9:]) - 10.0)
    assert max(free[-9:]) > 10.0 + 2 * 3.5  # at 0 nothing is taken off: two rises in a row still show


def test_the_anchor_needs_feedback_and_starts_over_at_a_cut():
    opts = dict(feedback_lag=1, feedback_gain=1.0, gray_every=3, smoothing=0.0, anchor=0.5)
    plain = TemporalState(TemporalOptions(feedback=False, **opts).filled(), gray_to_lightness_lut())
    assert [float(plain.step(gray(i, 0), warming())[..., 1].mean()) for i in range(12)] == [10.0] * 12

    def shot_b(before: int) -> list[float]:
        """The output b of a second shot's 7 frames, after `before` frames of another shot."""
        state = TemporalState(TemporalOptions(feedback=True, **opts).filled(), gray_to_lightness_lut())
        for i in range(before):
            state.step(gray(i, 0), warming())
        return [float(state.step(gray(i, 7), warming())[..., 1].mean()) for i in range(7)]

    fresh = shot_b(0)
    assert max(fresh[4:]) < max(fresh[:4]) - 3.0  # it climbs, then is anchored
    assert shot_b(12) == pytest.approx(fresh, abs=1e-3)  # the first shot's offset does not cross the cut


@pytest.mark.parametrize("lag", [1, 2])
def test_gray_every_counts_from_each_shots_start(lag):
    """A shot's gray inputs fall where they would if it were the film's first: so a keyframe, which changes
    how many inputs of its shot carry fed-back colours, changes nothing past the cut."""

    def gray_inputs(before: int) -> list[int]:
        state = make_state(feedback=True, feedback_lag=lag, feedback_gain=1.0, gray_every=3)
        frames = [gray(i, 0) for i in range(before)] + [gray(i, 7) for i in range(8)]  # a cut after `before`
        seen: list = []
        for f in frames:
            state.step(f, constant(30.0, 30.0, seen=seen))
        return [i - before for i, x in enumerate(seen) if i >= before and np.ptp(x, axis=2).max() < 1e-6]

    assert gray_inputs(4) == gray_inputs(5) == gray_inputs(0)


@pytest.mark.parametrize("lag", [1, 2])
def test_given_the_frames_numbers_gray_every_takes_its_turns_on_them(lag):
    """A segment's warm-up that starts mid-shot gives the one-pass run's frames their gray alone."""

    def gray_inputs(first: int, numbered: bool) -> list[int]:
        state = make_state(feedback=True, feedback_lag=lag, feedback_gain=1.0, gray_every=3)
        seen: list = []
        for i in range(first, 14):
            state.step(gray(i, 0), constant(30.0, 30.0, seen=seen), index=i if numbered else None)
        return [first + k for k, x in enumerate(seen) if k >= lag and np.ptp(x, axis=2).max() < 1e-6]

    assert gray_inputs(0, True) == [3, 6, 9, 12]
    assert gray_inputs(4, True) == [6, 9, 12]  # the same frames from a start mid-shot
    assert gray_inputs(4, False)[:2] == [4 + lag + 2, 4 + lag + 5]  # counted from the start instead


def test_snap_to_edges_moves_a_drifted_colour_edge_back_onto_the_frames_edge():
    from vidcolor.temporal import feedback_input, snap_to_edges

    L = np.full((64, 96), 30.0, np.float32)
    L[:, 48:] = 70.0  # the frame's edge at column 48
    ab = np.zeros((64, 96, 2), np.float32)
    ab[:, 42:, 0] = 40.0  # the colour smeared 6 px onto the dark side
    snapped = snap_to_edges(L, ab, 8)
    assert snapped[:, 42:48, 0].mean() < 0.65 * 40.0  # a guided filter takes back part of the smear
    assert snapped[:, 52:, 0].mean() > 33.0  # the coloured side keeps most of its colour
    assert np.abs(snapped[:, :20]).max() < 0.5  # far from either edge nothing changes
    assert snapped[:, 48, 0].mean() - snapped[:, 47, 0].mean() > 10.0  # a sharp step at the frame's edge
    reliable = np.ones((64, 96), np.float32)
    assert not np.allclose(feedback_input(L, ab, reliable, snap=8), feedback_input(L, ab, reliable))
    np.testing.assert_allclose(feedback_input(L, ab, reliable, snap=0), feedback_input(L, ab, reliable))


def test_snap_radius_snaps_the_networks_own_colours_and_not_a_keyframes():
    def inputs(snap_radius: int, keyframe: bool) -> np.ndarray:
        state = make_state(feedback=True, feedback_lag=1, feedback_gain=1.0, snap_radius=snap_radius)
        seen: list = []
        half = np.zeros((96, 128, 2), np.float32)
        half[:, 40:] = 30.0  # a colour edge that is not the frame's

        def predict(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
            seen.append(rgb)
            return half, np.full((96, 128), 0.5, np.float32)

        guide = Guide(half, np.full((96, 128), 0.5, np.float32)) if keyframe else None
        state.step(gray(0, 0), predict, guide)
        state.step(gray(1, 0), predict, guide)
        return seen[1]

    assert not np.allclose(inputs(8, keyframe=False), inputs(0, keyframe=False))
    np.testing.assert_array_equal(inputs(8, keyframe=True), inputs(0, keyframe=True))


def test_a_state_built_without_the_weights_record_is_refused_not_quietly_unfed():
    with pytest.raises(ValueError, match="filled"):
        TemporalState(TemporalOptions(), gray_to_lightness_lut())
    fed = TemporalState(TemporalOptions(feedback=True).filled(), gray_to_lightness_lut())
    assert fed.opt.feedback is True
    record = FeedbackRecord(feedback=True, gray_every=8)
    assert TemporalState(TemporalOptions().filled(record), gray_to_lightness_lut()).opt.gray_every == 8
