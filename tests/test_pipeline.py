"""The pipeline's concurrency: frames predicted ahead on the model's own threads, with unchanged output."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import torch

from vidcolor.colouring import Colouring, colour_frames
from vidcolor.compose import Composer
from vidcolor.flow import Tracker
from vidcolor.inference import Ahead, Colorizer
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.precision import run_threads
from vidcolor.temporal import TemporalOptions
from vidcolor.video import EncodeOptions


@pytest.fixture()
def predict_threads(monkeypatch) -> list[str]:
    """The name of the thread each prediction ran on."""
    names: list[str] = []
    original = Colorizer.predict

    def spy(self, rgb, match=None, trusted=False, threads=0):
        names.append(threading.current_thread().name)
        return original(self, rgb, match, trusted, threads)

    monkeypatch.setattr(Colorizer, "predict", spy)
    return names


def lossless(tiny_model, **kw) -> ColorizeOptions:
    return ColorizeOptions(model=tiny_model, encode=EncodeOptions(codec="ffv1"), **kw)


def assert_same_as_the_core(clip, output, options: ColorizeOptions) -> None:
    """The pipeline's lossless output holds, frame for frame, the colouring core's own colours for the clip
    composed onto its gray: the core without threads, each input predicted in turn, nothing ahead."""
    colorizer = Colorizer.load(options.model, "cpu", options.temperature, options.saturation)
    with av.open(str(clip)) as c:
        frames = [(float(f.time), f.to_ndarray(format="gray")) for f in c.decode(video=0)]
    with run_threads(options.threads):
        colours = colour_frames(colorizer, options, frames)
    with av.open(str(output)) as c:
        out = list(c.decode(video=0))
    assert len(out) == len(frames) == 12
    h, w = frames[0][1].shape
    composer = Composer(w, h, out[0].format.name)
    for (_, gray), (ab, _), got in zip(frames, colours, out, strict=True):
        want = composer.frame(gray, ab)
        assert np.array_equal(want.to_ndarray(), got.to_ndarray())  # the Y, U and V planes


@pytest.mark.parametrize("temporal", [True, False])
def test_gray_frames_are_predicted_ahead_on_the_model_threads(gray_clip, tiny_model, tmp_path, predict_threads, temporal):
    colorize_video(gray_clip, tmp_path / "out.mkv", lossless(tiny_model, threads=2, temporal=temporal))
    assert len(predict_threads) == 12
    assert all(n.startswith("vidcolor-model") for n in predict_threads)


def test_feedback_lag_1_predicts_in_order_on_the_main_thread(gray_clip, tiny_model, tmp_path, predict_threads):
    # Each frame's input holds the frame before's colours: nothing can be predicted ahead.
    fed = TemporalOptions(feedback=True, feedback_lag=1)
    colorize_video(gray_clip, tmp_path / "out.mkv", lossless(tiny_model, temporal_options=fed))
    assert predict_threads == ["MainThread"] * 12


def test_lagged_feedback_predicts_two_frames_at_once_on_the_model_threads(gray_clip, tiny_model, tmp_path, predict_threads):
    lagged = TemporalOptions(feedback=True)  # by default frame t's input holds frame t-2's output
    colorize_video(gray_clip, tmp_path / "out.mkv", lossless(tiny_model, threads=2, temporal_options=lagged))
    # On the model workers, not in order on the main thread as frame t-1's colours need (the test above);
    # how many workers a tiny network keeps busy is the thread pool's business.
    assert len(predict_threads) == 12 and all(n.startswith("vidcolor-model") for n in predict_threads)


def test_lagged_feedback_ahead_changes_no_pixel(gray_clip, tiny_model, tmp_path, monkeypatch):
    seen: list[np.ndarray] = []
    original = Colorizer.predict

    def spy(self, rgb, match=None, trusted=False, threads=0):
        seen.append(rgb)
        return original(self, rgb, match, trusted, threads)

    monkeypatch.setattr(Colorizer, "predict", spy)
    lagged = TemporalOptions(feedback=True, feedback_lag=2)
    colorize_video(gray_clip, tmp_path / "ahead.mkv", lossless(tiny_model, threads=1, temporal_options=lagged))
    assert sum(np.ptp(x, axis=2).max() > 0.01 for x in seen) >= 8  # frames 2.. carry colours fed back
    assert_same_as_the_core(gray_clip, tmp_path / "ahead.mkv", lossless(tiny_model, threads=1, temporal_options=lagged))


def test_no_temporal_runs_neither_flow_nor_feedback(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.temporal as temporal

    calls: list[str] = []
    link, fed = Tracker.link, temporal.feedback_input
    monkeypatch.setattr(Tracker, "link", lambda self, gray: calls.append("flow") or link(self, gray))
    monkeypatch.setattr(temporal, "feedback_input", lambda *a, **k: calls.append("feedback") or fed(*a, **k))
    feedback = TemporalOptions(feedback=True)
    colorize_video(gray_clip, tmp_path / "fed.mkv", lossless(tiny_model, temporal_options=feedback))
    assert calls.count("flow") == 12 and calls.count("feedback") >= 9  # from frame 3 on (frame t-2's colours)
    calls.clear()
    colorize_video(gray_clip, tmp_path / "per-frame.mkv", lossless(tiny_model, temporal=False, temporal_options=feedback))
    assert calls == []


def test_feedback_damps_by_the_weights_own_gain_unless_told_otherwise(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.temporal as temporal
    from vidcolor.train.calibrate import set_feedback_file

    gains: list[float] = []
    original = temporal.feedback_input

    def spy(L, ab, reliability, gain=1.0, snap=0):
        gains.append(gain)
        return original(L, ab, reliability, gain, snap)

    monkeypatch.setattr(temporal, "feedback_input", spy)
    damped = tmp_path / "damped.safetensors"
    set_feedback_file(tiny_model, damped, feedback_gain=0.5)
    feedback = TemporalOptions(feedback=True)
    colorize_video(gray_clip, tmp_path / "a.mkv", lossless(damped, temporal_options=feedback))
    assert gains and set(gains) == {0.5}
    gains.clear()
    colorize_video(gray_clip, tmp_path / "b.mkv", lossless(tiny_model, temporal_options=feedback))
    assert gains and set(gains) == {1.0}  # weights whose record says nothing: undamped
    gains.clear()
    told = TemporalOptions(feedback=True, feedback_gain=0.8)
    colorize_video(gray_clip, tmp_path / "c.mkv", lossless(damped, temporal_options=told))
    assert gains and set(gains) == {0.8}


def test_weights_trained_on_chains_are_fed_back_by_default_unless_told_otherwise(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.temporal as temporal
    from vidcolor.train.calibrate import set_feedback_file

    fed: list[float] = []
    original = temporal.feedback_input
    monkeypatch.setattr(
        temporal, "feedback_input", lambda L, ab, rel, gain=1.0, snap=0: fed.append(gain) or original(L, ab, rel, gain, snap)
    )
    chained = tmp_path / "chained.safetensors"
    set_feedback_file(tiny_model, chained, feedback=True, smooth_carried=False, gray_every=4, snap_radius=3)

    def settings(model, options: ColorizeOptions) -> TemporalOptions:  # what the colouring core runs with
        return Colouring(Colorizer.load(model, "cpu"), options, (48, 64)).state.opt

    colorize_video(gray_clip, tmp_path / "a.mkv", lossless(chained))  # the record's settings
    given = settings(chained, lossless(chained))
    assert fed and given.feedback is True and given.smooth_carried is False
    assert given.gray_every == 4 and given.snap_radius == 3
    fed.clear()
    told = TemporalOptions(feedback=False, smooth_carried=True)
    colorize_video(gray_clip, tmp_path / "b.mkv", lossless(chained, temporal_options=told))
    given = settings(chained, lossless(chained, temporal_options=told))
    assert not fed and given.feedback is False and given.smooth_carried is True
    colorize_video(gray_clip, tmp_path / "c.mkv", lossless(tiny_model))  # a record that says nothing: off
    given = settings(tiny_model, lossless(tiny_model))
    assert not fed and given.feedback is False and given.smooth_carried is True


@pytest.mark.parametrize("temporal", [True, False])
def test_predicting_ahead_changes_no_pixel(gray_clip, tiny_model, tmp_path, temporal):
    options = lossless(tiny_model, threads=1, temporal=temporal)
    colorize_video(gray_clip, tmp_path / "ahead.mkv", options)
    assert_same_as_the_core(gray_clip, tmp_path / "ahead.mkv", options)


@pytest.mark.parametrize("threads,workers,each", [(1, 1, 1), (2, 2, 1), (4, 2, 2)])
def test_ahead_shares_the_threads_out(tiny_model, threads, workers, each):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ahead = Ahead(Colorizer.load(tiny_model, "cpu"), lambda t: None)
    finally:
        torch.set_num_threads(before)
    try:
        assert (ahead.workers, ahead.threads) == (workers, each)
        out, confidence = ahead.submit(np.full((32, 48, 3), 0.5, np.float32)).result()
        assert out.shape == (32, 48, 4) and confidence.shape == (32, 48)
    finally:
        ahead.close()


def test_a_run_reports_its_look_ahead_apart_and_how_long_the_main_thread_waited(gray_clip, tiny_model, tmp_path):
    temporal = colorize_video(gray_clip, tmp_path / "t.mkv", lossless(tiny_model)).stages.seconds
    assert temporal["look-ahead"] > 0 and temporal["wait decoder"] > 0 and temporal["wait encoder"] > 0
    assert temporal["wait model"] > 0  # gray frames predicted ahead on the model's workers (no feedback)
    alone = colorize_video(gray_clip, tmp_path / "p.mkv", lossless(tiny_model, temporal=False)).stages.seconds
    assert alone["look-ahead"] == 0
