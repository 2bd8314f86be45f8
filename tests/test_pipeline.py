"""The pipeline's concurrency: frames predicted ahead on the model's own threads, with unchanged output."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import vidcolor.job as job
from vidcolor.inference import Ahead, Colorizer
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.temporal import TemporalOptions, TemporalState
from vidcolor.video import EncodeOptions

from .conftest import read_video


@pytest.fixture()
def predict_threads(monkeypatch) -> list[str]:
    """The name of the thread each prediction ran on."""
    names: list[str] = []
    original = Colorizer.predict

    def spy(self, rgb, match=None, trusted=False):
        names.append(threading.current_thread().name)
        return original(self, rgb, match, trusted)

    monkeypatch.setattr(Colorizer, "predict", spy)
    return names


def lossless(tiny_model, **kw) -> ColorizeOptions:
    return ColorizeOptions(model=tiny_model, encode=EncodeOptions(codec="ffv1"), **kw)


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

    def spy(self, rgb, match=None, trusted=False):
        seen.append(rgb)
        return original(self, rgb, match, trusted)

    monkeypatch.setattr(Colorizer, "predict", spy)
    lagged = TemporalOptions(feedback=True, feedback_lag=2)
    colorize_video(gray_clip, tmp_path / "ahead.mkv", lossless(tiny_model, threads=1, temporal_options=lagged))
    assert sum(np.ptp(x, axis=2).max() > 0.01 for x in seen) >= 8  # frames 2.. carry colours fed back
    monkeypatch.setattr(job, "_predicts_ahead", lambda options, temporal, match: None)  # each frame's own step
    colorize_video(gray_clip, tmp_path / "serial.mkv", lossless(tiny_model, threads=1, temporal_options=lagged))
    a, b = read_video(tmp_path / "ahead.mkv"), read_video(tmp_path / "serial.mkv")
    assert a["frames"] == b["frames"] == 12
    assert all(np.array_equal(x, y) for x, y in zip(a["rgb"], b["rgb"], strict=True))


def test_no_temporal_runs_neither_flow_nor_feedback(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.temporal as temporal

    calls: list[str] = []
    link, fed = temporal.Tracker.link, temporal.feedback_input
    monkeypatch.setattr(temporal.Tracker, "link", lambda self, gray: calls.append("flow") or link(self, gray))
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
    given: list[TemporalOptions] = []  # what the pipeline hands the state
    monkeypatch.setattr(job, "TemporalState", lambda opt, *a, **k: given.append(opt) or TemporalState(opt, *a, **k))
    chained = tmp_path / "chained.safetensors"
    set_feedback_file(tiny_model, chained, feedback=True, smooth_carried=False, gray_every=4, snap_radius=3)
    colorize_video(gray_clip, tmp_path / "a.mkv", lossless(chained))  # the record's settings
    assert fed and given[-1].feedback is True and given[-1].smooth_carried is False
    assert given[-1].gray_every == 4 and given[-1].snap_radius == 3
    fed.clear()
    told = TemporalOptions(feedback=False, smooth_carried=True)
    colorize_video(gray_clip, tmp_path / "b.mkv", lossless(chained, temporal_options=told))
    assert not fed and given[-1].feedback is False and given[-1].smooth_carried is True
    colorize_video(gray_clip, tmp_path / "c.mkv", lossless(tiny_model))  # a record that says nothing: off
    assert not fed and given[-1].feedback is False and given[-1].smooth_carried is True


def test_predicting_ahead_changes_no_pixel(gray_clip, tiny_model, tmp_path, monkeypatch):
    colorize_video(gray_clip, tmp_path / "ahead.mkv", lossless(tiny_model, threads=1))
    monkeypatch.setattr(job, "_predicts_ahead", lambda options, temporal, match: None)
    colorize_video(gray_clip, tmp_path / "serial.mkv", lossless(tiny_model, threads=1))
    a, b = read_video(tmp_path / "ahead.mkv"), read_video(tmp_path / "serial.mkv")
    assert a["frames"] == b["frames"] == 12
    assert all(np.array_equal(x, y) for x, y in zip(a["rgb"], b["rgb"], strict=True))


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
