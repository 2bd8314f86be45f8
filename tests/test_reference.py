"""--reference: one bias per colour bin moves each shot's colours toward a photo's; reset at cuts."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.color import soft_histogram
from vidcolor.colouring import ShotMatch
from vidcolor.decoding import ColorDecoder
from vidcolor.lab import gamut_bins
from vidcolor.record import DecodeConfig
from vidcolor.reference import ReferenceMatch, floored, reference_histogram

from .conftest import read_video

BINS = gamut_bins(10.0)
BINS_NP = BINS.numpy()


def solid(path, rgb):
    cv2.imwrite(str(path), np.full((40, 60, 3), rgb[::-1], np.uint8))
    return path


def test_the_histogram_of_a_photo_peaks_at_its_colour(tmp_path):
    t = reference_histogram(solid(tmp_path / "blue.png", (40, 60, 200)), BINS_NP)
    assert t.shape == (len(BINS),) and abs(float(t.sum()) - 1) < 1e-5 and (t > 0).all()
    lab = cv2.cvtColor(np.float32([[[40, 60, 200]]]) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    assert np.linalg.norm(BINS_NP[t.argmax()] - lab[1:]) < 10


def test_matching_moves_the_decoded_colours_toward_the_reference(tmp_path):
    decoder = ColorDecoder(10.0)
    logits = torch.randn(1, len(BINS), 8, 8) * 0.5
    plain, _ = decoder(logits, DecodeConfig())
    target = reference_histogram(solid(tmp_path / "red.png", (200, 30, 30)), BINS_NP)
    matched, conf = decoder(logits, DecodeConfig(), ReferenceMatch(target))
    assert matched[:, 0].mean() > plain[:, 0].mean() + 15  # redder
    assert torch.isfinite(matched).all() and ((conf >= 0) & (conf <= 1 + 1e-6)).all()


def test_the_shown_colours_settle_on_the_reference_within_a_shot(tmp_path):
    # The same frame again and again (a still shot): the shown colours' histogram approaches the
    # photo's frame after frame, and the output's chroma lands near the photo's, not at half of it.
    decoder, cfg = ColorDecoder(10.0), DecodeConfig()
    logits = torch.randn(1, len(BINS), 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    target = reference_histogram(solid(tmp_path / "teal.png", (40, 160, 150)), BINS_NP)
    match = ReferenceMatch(target)
    shown = lambda ab: soft_histogram(ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy(), BINS_NP)  # noqa: E731
    gaps = [float(np.abs(shown(decoder(logits, cfg, match)[0]) - target).sum()) for _ in range(12)]
    assert gaps[-1] < gaps[0] < float(np.abs(shown(decoder(logits, cfg)[0]) - target).sum())
    chroma = lambda ab: float(ab.norm(dim=1).mean())  # noqa: E731
    lab = cv2.cvtColor(np.float32([[[40, 160, 150]]]) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    assert chroma(decoder(logits, cfg, match)[0]) > 0.6 * float(np.hypot(lab[1], lab[2]))


def test_a_gray_reference_would_take_colour_away_so_the_cli_refuses_one(tmp_path):
    decoder, cfg = ColorDecoder(10.0), DecodeConfig(saturation=1.0)
    logits = torch.randn(1, len(BINS), 8, 8, generator=torch.Generator().manual_seed(0))
    match = ReferenceMatch(floored(soft_histogram(np.zeros((64, 2), np.float32), BINS_NP)))  # a gray photo's colours
    chroma = lambda ab: float(ab.norm(dim=1).mean())  # noqa: E731
    shown = [chroma(decoder(logits, cfg, match)[0]) for _ in range(8)]  # a still shot of 8 frames
    assert shown[-1] < shown[0] < chroma(decoder(logits, cfg)[0])
    assert shown[-1] < 0.5 * chroma(decoder(logits, cfg)[0])


def test_the_shot_correction_resets_at_a_cut():
    class State:
        cuts = 1

    match = ShotMatch(ReferenceMatch(np.full(len(BINS), 1 / len(BINS), np.float32)))
    state = State()
    match.current(state)(lambda bias: np.random.default_rng(0).random(len(BINS), dtype=np.float32))
    assert match.match.bias is not None
    assert match.current(state).bias is not None  # same shot: kept
    state.cuts = 2
    assert match.current(state).bias is None  # a cut: forgotten


runner = CliRunner()


def test_reference_end_to_end(gray_clip, tiny_model, tmp_path):
    base, out = tmp_path / "base.mkv", tmp_path / "ref.mkv"
    common = [str(gray_clip), "--model", str(tiny_model), "--codec", "ffv1"]
    assert runner.invoke(app, [*common, "-o", str(base)]).exit_code == 0
    red = solid(tmp_path / "red.png", (200, 30, 30))
    res = runner.invoke(app, [*common, "-o", str(out), "--reference", str(red)])
    assert res.exit_code == 0, res.output
    a = lambda f: cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1].mean()  # noqa: E731
    b, r = read_video(base)["rgb"], read_video(out)["rgb"]
    assert np.mean([a(f) for f in r]) > np.mean([a(f) for f in b]) + 5


def test_a_bad_reference_is_one_line_and_writes_nothing(gray_clip, tiny_model, tmp_path):
    bad = tmp_path / "notaphoto.jpg"
    bad.write_text("hello")
    gray = solid(tmp_path / "gray.png", (128, 128, 128))
    for ref, words in ((tmp_path / "missing.jpg", "not found"), (bad, "not an image"), (gray, "almost no colour")):
        out = tmp_path / "o.mp4"
        res = runner.invoke(app, [str(gray_clip), "-o", str(out), "--model", str(tiny_model), "--reference", str(ref)])
        assert res.exit_code == 1 and words in res.output and len(res.output.strip().splitlines()) == 1
        assert not out.exists() and not list(tmp_path.glob(".o*"))
