"""Each option, through the CLI, moves the output the way its help says: a test here fails if the option
is ignored or works backwards."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.color import gray_to_lightness_lut
from vidcolor.keyframes import hex_ab
from vidcolor.temporal import TemporalOptions, TemporalState
from vidcolor.weights import load_model, save_model

from .conftest import make_video, read_video
from .test_keyframes import colour_export
from .test_temporal import gray

runner = CliRunner()


def run(*args) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


def ab(frames: list[np.ndarray]) -> np.ndarray:
    """RGB uint8 frames -> their Lab ab, (N, H, W, 2) float32."""
    return np.stack([cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:] for f in frames])


def chroma(frames: list[np.ndarray]) -> float:
    return float(np.hypot(*np.moveaxis(ab(frames), -1, 0)).mean())


def colorize(clip, tmp_path, name: str, *flags) -> list[np.ndarray]:
    out = tmp_path / f"{name}.mkv"
    run(clip, "-o", out, "--codec", "ffv1", *flags)
    return read_video(out)["rgb"]


@pytest.fixture(scope="module")
def rebalanced(tiny_model, tmp_path_factory):
    """The tiny network with class-rebalancing weights as training leaves them: the saturated bins, rarer,
    weigh more, which --saturation keeps a share of."""
    net, decode = load_model(tiny_model)
    bins = net.colors.bins
    net.colors.class_weights.copy_((bins.norm(dim=1) / 25.0).exp())
    path = tmp_path_factory.mktemp("rebalanced") / "r.safetensors"
    save_model(net, path, decode)
    return path


def test_more_saturation_is_more_colourful(gray_clip, rebalanced, tmp_path):
    vivid = colorize(gray_clip, tmp_path, "vivid", "--model", rebalanced, "--saturation", "0.9")
    muted = colorize(gray_clip, tmp_path, "muted", "--model", rebalanced, "--saturation", "0.1")
    assert chroma(vivid) > 1.2 * chroma(muted)


def test_a_lower_temperature_commits_to_the_likeliest_colour_and_is_more_colourful(gray_clip, tiny_model, tmp_path):
    sharp = colorize(gray_clip, tmp_path, "sharp", "--model", tiny_model, "--temperature", "0.2", "--no-temporal")
    soft = colorize(gray_clip, tmp_path, "soft", "--model", tiny_model, "--temperature", "1.0", "--no-temporal")
    assert chroma(sharp) > 1.1 * chroma(soft)


@pytest.mark.parametrize("low, high", [(0.0, 0.5), (0.5, 1.0)])
def test_more_smoothing_is_steadier(low, high):
    """A stand-in network that guesses a new colour every frame of a still shot: all its change is flicker,
    and --smoothing (TemporalOptions.smoothing, which the CLI sets) says how much of it the output keeps."""
    change = {}
    for s in (low, high):
        rng = np.random.default_rng(0)

        def flickering(rgb: np.ndarray, trusted: bool = False, rng=rng):
            h, w = rgb.shape[:2]
            guess = np.broadcast_to(rng.normal(0, 20, 2).astype(np.float32), (h, w, 2))
            return np.ascontiguousarray(guess), np.full((h, w), 0.5, np.float32)

        state = TemporalState(TemporalOptions(smoothing=s, feedback=False).filled(), gray_to_lightness_lut())
        outs = np.stack([state.step(gray(0, 3), flickering, None) for _ in range(12)])
        change[s] = float(np.abs(np.diff(outs, axis=0)).mean())
    assert change[high] < 0.6 * change[low]


def test_a_smaller_work_size_gives_smoother_colour(tiny_model, tmp_path):
    clip = make_video(tmp_path / "big.mp4", frames=3, size=(256, 160))
    detail = {}
    for size in ("64", "256"):
        a = ab(colorize(clip, tmp_path, f"w{size}", "--model", tiny_model, "--work-size", size, "--no-temporal"))[..., 0]
        detail[size] = float(np.abs(np.diff(a, axis=2)).mean())  # horizontal detail of the colour
    assert detail["64"] < 0.95 * detail["256"]  # the tiny network's colour is smooth at any size: a small margin


def test_a_higher_crf_makes_a_smaller_file(tiny_model, tmp_path):
    clip = make_video(tmp_path / "c.mp4", frames=24, size=(320, 240))
    sizes = {}
    for crf in ("10", "40"):
        out = tmp_path / f"crf{crf}.mp4"
        run(clip, "-o", out, "--model", tiny_model, "--crf", crf)
        sizes[crf] = out.stat().st_size
    assert sizes["40"] < 0.9 * sizes["10"]


def test_keyframe_reach_says_how_far_back_a_keyframes_colours_go(gray_clip, tiny_model, tmp_path):
    key = colour_export(gray_clip, tmp_path, 0.75, 50.0, 20.0)  # the frame at 0.75 s (frame 9 at 12 fps), painted
    plain = ab(colorize(gray_clip, tmp_path, "plain", "--model", tiny_model))
    a_before = {}
    for reach in ("0", "10"):
        out = ab(
            colorize(
                gray_clip, tmp_path, f"r{reach}", "--model", tiny_model, "--keyframe", f"0.75={key}", "--keyframe-reach", reach
            )
        )
        a_before[reach] = float(np.median(out[2][..., 0] - plain[2][..., 0]))  # half a second before it
        assert float(np.median(out[10][..., 0])) > 35  # after the keyframe both carry it on
    # Reached back with 10 s; with 0 only the look-ahead's 16 frames carry a little of it back.
    assert a_before["10"] > 15 and a_before["10"] > a_before["0"] + 10


def cut_back_film(path):
    """12 fps, gray: a scene (8 frames), another (8), the first again (8): a cut away and back."""
    import av

    from .conftest import scene

    frames = [scene(i, 96, 64) for i in range(8)] + [255 - scene(i, 96, 64, seed=7)[::-1] for i in range(8)]
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        for i, img in enumerate(frames + frames[:8]):
            g = np.repeat(img.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(g), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
    return path


def test_points_across_shots_colour_the_scene_cut_back_to(tiny_model, tmp_path):
    clip = cut_back_film(tmp_path / "film.mkv")
    point = {"t": 0.25, "x": 0.5, "y": 0.5, "colour": "#d02020", "size": 0.3}
    project = tmp_path / "film.vidcolor.json"
    project.write_text(json.dumps({"vidcolor_project": 1, "points": [point], "keyframes": []}))
    plain = ab(colorize(clip, tmp_path, "plain", "--model", tiny_model))
    within = ab(colorize(clip, tmp_path, "within", "--model", tiny_model, "--hints", project))
    across = ab(colorize(clip, tmp_path, "across", "--model", tiny_model, "--hints", project, "--points-across-shots"))
    red = hex_ab(point["colour"])

    def off(frames):  # mean distance from the point's colour, Lab units
        return float(np.abs(frames - red).sum(-1).mean())

    assert off(within[:8]) < off(plain[:8]) - 1 and off(across[:8]) < off(plain[:8]) - 1  # their own shot: both
    assert np.array_equal(within[16:], plain[16:])  # without the flag, nothing past the cut
    assert off(across[16:]) < off(plain[16:]) - 1  # with it, the scene cut back to
    # A range of the scene cut back to alone: the points before it still lend their correction.
    ranged = ab(
        colorize(clip, tmp_path, "ranged", "--model", tiny_model, "--hints", project, "--points-across-shots", "-ss", "1.3333")
    )
    assert len(ranged) == 8 and off(ranged) < off(plain[16:]) - 1
