"""Figures used by the evaluations."""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.train.metrics import cdc, chroma_cdc, colorfulness, psnr, warp_error


def test_psnr():
    x = torch.zeros(1, 3, 4, 4)
    y = torch.full((1, 3, 4, 4), 0.1)
    assert torch.isclose(psnr(x, y), torch.tensor([20.0]))


def test_colorfulness_zero_for_gray_and_higher_for_vivid():
    gray = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8)
    assert colorfulness(gray).item() < 1e-3
    vivid = torch.rand(1, 3, 8, 8)
    assert colorfulness(vivid).item() > 10


def test_cdc_zero_for_identical_frames_and_positive_for_changes():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert cdc([f] * 6) == 0.0
    g = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert cdc([f, g, f, g, f, g]) > 0.05


def test_chroma_cdc_ignores_lightness_changes_and_sees_color_changes():
    rng = np.random.default_rng(0)
    gray_a = np.repeat(rng.integers(0, 128, (32, 32, 1), dtype=np.uint8), 3, axis=2)  # dark frame
    gray_b = np.repeat(rng.integers(128, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)  # bright frame
    assert cdc([gray_a, gray_b] * 3) > 0.05  # RGB CDC sees the lightness change
    assert chroma_cdc([gray_a, gray_b] * 3) == 0.0  # both are colourless
    red, green = np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200
    green[..., 1] = 200
    assert chroma_cdc([red, green] * 3) > 0.1


def test_warp_error_masks_pixels():
    a = np.zeros((4, 4, 3))
    b = np.ones((4, 4, 3))
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    assert warp_error(a, b, mask) == 1.0
    assert warp_error(a, b, np.zeros((4, 4), bool)) == 0.0


def test_clip_evaluation_end_to_end(tmp_path, tiny_model):
    from vidcolor.pipeline import ColorizeOptions
    from vidcolor.train.clipeval import evaluate_clip, shot_starts

    from .conftest import make_video

    clip = make_video(tmp_path / "c.mp4", frames=8, color=True, audio=False)
    r = evaluate_clip(clip, ColorizeOptions(model=tiny_model))
    assert r["frames"] == 8
    assert r["truth"]["psnr"] == 100.0 and r["truth"]["chroma_warp_error"] > 0  # the clip moves
    for mode in ("temporal", "single"):
        f = r[mode]
        assert all(np.isfinite(v) for v in f.values())
        assert 5 < f["psnr"] < 60
    assert r["gray"]["colorfulness"] < 1.0 < r["truth"]["colorfulness"]  # the luma floor has no colour
    assert shot_starts([np.zeros((8, 8, 3), np.uint8)] * 3 + [np.full((8, 8, 3), 200, np.uint8)] * 3) == [3]


def test_the_benchmarks_override_each_record_setting_they_are_given_and_leave_the_rest_to_the_weights():
    import argparse

    from vidcolor.record import FeedbackRecord
    from vidcolor.temporal import TemporalOptions
    from vidcolor.train.clipeval import add_record_overrides, record_overrides

    ap = argparse.ArgumentParser()
    add_record_overrides(ap)
    told = record_overrides(ap.parse_args(["--no-feedback", "--gray-every", "8", "--feedback-gain", "0.9"]))
    assert told == {"feedback": False, "feedback_gain": 0.9, "smooth_carried": None, "gray_every": 8, "snap_radius": None}
    filled = TemporalOptions(**told).filled(FeedbackRecord(True, 0.95, False, 0, 8))
    assert (filled.feedback, filled.feedback_gain, filled.smooth_carried, filled.gray_every, filled.snap_radius) == (
        False,
        0.9,
        False,
        8,
        8,
    )
    assert set(record_overrides(ap.parse_args([])).values()) == {None}
