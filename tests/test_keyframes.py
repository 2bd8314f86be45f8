"""Coloured keyframes: forward and backward through the shot, never across a cut; errors are one line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.color import gray_to_lightness_lut, lab_planes_to_rgb
from vidcolor.errors import VidcolorError
from vidcolor.flow import Tracker
from vidcolor.keyframes import (
    Keyframes,
    KeyframeSpec,
    carry_back,
    check_keyframes,
    governing,
    hex_ab,
    moved_guess,
    painted_guide,
    parse_keyframe,
    points_guide,
    points_said,
    project_keyframes,
)
from vidcolor.model import HINT_CHROMA
from vidcolor.project import Point
from vidcolor.project import parse as parse_project
from vidcolor.stills import export_stills
from vidcolor.temporal import TemporalOptions, TemporalState

from .conftest import read_video
from .test_temporal import gray

LUT = gray_to_lightness_lut()


def follower(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in network that keeps its hint's colours and leaves the rest gray."""
    ab = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2Lab)[..., 1:]
    return np.ascontiguousarray(ab), np.full(rgb.shape[:2], 0.5, np.float32)


def gray_guess(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stand-in's colours on a gray input (gray) and features that tell dark cells from light ones."""
    h, w = rgb.shape[:2]
    light = cv2.resize(rgb[..., 0], (-(-w // 4), -(-h // 4)), interpolation=cv2.INTER_AREA)
    return np.zeros((h, w, 2), np.float32), np.stack([light, 1.0 - light]).astype(np.float32)


def painted(path, g, a, b):
    """Write the frame `g` coloured uniformly with (a, b), as a user would after `vidcolor frame`."""
    rgb = lab_planes_to_rgb(LUT[g], np.full(g.shape + (2,), (a, b), np.float32))
    cv2.imwrite(str(path), (rgb[..., ::-1] * 255 + 0.5).astype(np.uint8))
    return path


def film(shots=((0, 10), (7, 6)), rate=10.0):
    """(time, gray) for every frame: shot after shot (seed, length), cut between them."""
    frames = [gray(i, seed) for seed, n in shots for i in range(n)]
    return [(i / rate, g) for i, g in enumerate(frames)]


def run_forward(frames, keys, reach=10.0, sizes=None, predict=follower, states=None, options=TemporalOptions(), across=False):
    def window(start, key):
        out = []
        for t, g in frames:
            if t >= start - 5e-4:
                out.append((t, g))
                if t >= key - 5e-4:
                    break
        if sizes is not None:
            sizes.append(len(out))
        return out

    state = TemporalState(options.filled(), LUT)
    tracker = Tracker(LUT, options.flow_preset, options.look_ahead > 0)  # the links found first, as Colouring does
    guide = Keyframes(keys, window, predict, gray_guess, LUT, options, reach, across) if keys else None
    outs = []
    for t, g in frames:
        link = tracker.link(g)
        outs.append(state.step(g, predict, guide.guide(t, state, g, link.motion is None) if guide else None, link))
        if states is not None:
            states.append(state.prev_ab.copy())
        if guide is not None and sizes is not None:
            sizes.append(-len(guide.back))  # negative: the carried-back frames held at this point
    return outs


def a_of(ab):
    return float(np.median(ab[..., 0]))


def test_a_keyframe_colours_its_shot_both_ways_and_stops_at_the_cut(tmp_path):
    frames = film()
    key = painted(tmp_path / "k.png", frames[5][1], 40.0, 10.0)
    plain = run_forward(frames, [])
    keyed = run_forward(frames, [KeyframeSpec(0.5, key)])
    assert all(abs(a_of(o)) < 2 for o in plain)
    assert [round(a_of(o)) for o in keyed[:10]] == [40] * 10  # before it and after it
    assert np.abs(keyed[5] - np.float32([40.0, 10.0])).mean() < 3.0  # its own frame: the user's colours
    assert all(np.array_equal(p, k) for p, k in zip(plain[10:], keyed[10:], strict=True))  # the next shot: untouched


def test_colours_carried_from_a_keyframe_count_as_true_colours(tmp_path):
    frames = film(shots=((0, 8),))
    key = painted_guide(KeyframeSpec(0.7, painted(tmp_path / "k.png", frames[7][1], 40.0, 10.0)), frames[7][1], LUT)
    told: list[bool] = []

    def spy(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        told.append(trusted)
        return follower(rgb)

    carried = carry_back([g for _, g in frames], key, spy, LUT, TemporalOptions())
    assert all(c is not None for c in carried[:-1]) and len(told) == 8
    assert all(told)  # the keyframe's own frame, and every frame its colours reach going back


@pytest.mark.parametrize("index", [0, 9])
def test_a_keyframe_at_the_first_or_last_frame_of_the_shot(tmp_path, index):
    frames = film()
    key = painted(tmp_path / "k.png", frames[index][1], -30.0, 20.0)
    keyed = run_forward(frames, [KeyframeSpec(index / 10, key)])
    assert [round(a_of(o)) for o in keyed[:10]] == [-30] * 10


def test_two_keyframes_in_a_shot_blend_by_distance(tmp_path):
    frames = film(shots=((0, 12),))
    first = painted(tmp_path / "a.png", frames[2][1], 40.0, 0.0)
    second = painted(tmp_path / "b.png", frames[10][1], -40.0, 0.0)
    a = [a_of(o) for o in run_forward(frames, [KeyframeSpec(0.2, first), KeyframeSpec(1.0, second)])]
    assert round(a[2]) == 40 and a[10] < -33  # (this green is a little out of gamut on some pixels: the image holds less)
    assert a[3] > a[6] > a[9]  # from one towards the other
    assert abs(a[6]) < 12  # halfway: about even


def test_memory_stays_bounded_on_a_long_shot(tmp_path):
    frames = film(shots=((0, 120),), rate=30.0)
    key = painted(tmp_path / "k.png", frames[110][1], 30.0, 0.0)
    sizes: list[int] = []
    outs = run_forward(frames, [KeyframeSpec(110 / 30, key)], reach=1.0, sizes=sizes)
    assert max(sizes) <= 32 and max(-s for s in sizes) <= 32  # one second of frames, never the shot
    assert round(a_of(outs[85])) == 30 and abs(a_of(outs[70])) < 2  # within reach it arrives; beyond, not


def test_a_keyframe_of_another_frame_is_refused(tmp_path):
    other = painted(tmp_path / "k.png", gray(0, 7), 30.0, 0.0)
    with pytest.raises(VidcolorError, match="does not match the frame"):
        painted_guide(KeyframeSpec(0.5, other), gray(5, 0), LUT)


def test_left_gray_the_model_decides(tmp_path):
    g = gray(0, 0)
    rgb = lab_planes_to_rgb(LUT[g], np.zeros(g.shape + (2,), np.float32))
    rgb[:, :40] = lab_planes_to_rgb(LUT[g][:, :40], np.full((96, 40, 2), (0.0, 50.0), np.float32))
    path = tmp_path / "half.png"
    cv2.imwrite(str(path), (rgb[..., ::-1] * 255 + 0.5).astype(np.uint8))
    guide = painted_guide(KeyframeSpec(0.0, path), g, LUT)
    assert guide.weight[:, 45:].max() == 0 and guide.weight[:, :35].min() == 1


@pytest.mark.parametrize(
    "value, words", [("1.0", "TIME=IMAGE"), ("=k.png", "TIME=IMAGE"), ("x=k.png", "not a time"), ("1=none.png", "not found")]
)
def test_malformed_keyframes(tmp_path, monkeypatch, value, words):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("k.png", gray(0, 0))
    with pytest.raises(VidcolorError, match=words):
        parse_keyframe(value)


def test_keyframe_times_once_and_inside_the_range():
    k = [KeyframeSpec(1.0, "a.png"), KeyframeSpec(1.0, "b.png")]
    with pytest.raises(VidcolorError, match="twice"):
        check_keyframes(k, None, None, 5.0)
    with pytest.raises(VidcolorError, match="outside the range"):
        check_keyframes([KeyframeSpec(6.0, "a.png")], None, None, 5.0)
    with pytest.raises(VidcolorError, match="outside the range"):
        check_keyframes([KeyframeSpec(1.0, "a.png")], 2.0, 3.0, 5.0)


# --- end to end, through the CLI ---------------------------------------------------------------------

runner = CliRunner()


def colour_export(clip, tmp_path, t, a, b):
    still = export_stills(clip, tmp_path / f"f{t}.png", t, None, overwrite=True)[0].path
    g = cv2.imread(str(still), cv2.IMREAD_GRAYSCALE)
    return painted(tmp_path / f"k{t}.png", g, a, b)


def test_keyframe_end_to_end(gray_clip, tiny_model, tmp_path):
    key = colour_export(gray_clip, tmp_path, 0.5, 50.0, 20.0)
    base, out = tmp_path / "base.mkv", tmp_path / "key.mkv"
    common = ["--model", str(tiny_model), "--codec", "ffv1"]
    assert runner.invoke(app, [str(gray_clip), "-o", str(base), *common]).exit_code == 0
    res = runner.invoke(app, [str(gray_clip), "-o", str(out), "--keyframe", f"0.5={key}", *common])
    assert res.exit_code == 0, res.output
    lab = lambda f: cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)  # noqa: E731
    b, k = read_video(base)["rgb"], read_video(out)["rgb"]
    assert np.abs(lab(k[6])[..., 1:] - np.float32([50.0, 20.0])).mean() < 4.0  # the keyframe: the user's colours
    for i in (2, 10):  # before it and after it
        assert np.median(lab(k[i])[..., 1]) - np.median(lab(b[i])[..., 1]) > 15


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda clip, tmp: ["--keyframe", "0.5=missing.png"], "not found"),
        (lambda clip, tmp: ["--keyframe", "0.5"], "TIME=IMAGE"),
        (lambda clip, tmp: ["--keyframe", f"9={colour_export(clip, tmp, 0.5, 30, 0)}"], "outside the range"),
        (
            lambda clip, tmp: [
                "--keyframe",
                f"0.5={colour_export(clip, tmp, 0.5, 30, 0)}",
                "--keyframe",
                f"0.5={colour_export(clip, tmp, 0.5, 30, 0)}",
            ],
            "twice",
        ),
        (lambda clip, tmp: ["--keyframe", f"0.5={painted(tmp / 'o.png', 255 - gray(0, 7)[:48, :64], 30, 0)}"], "does not match"),
        (lambda clip, tmp: ["--no-temporal", "--keyframe", f"0.5={colour_export(clip, tmp, 0.5, 30, 0)}"], "--no-temporal"),
    ],
)
def test_bad_keyframes_get_one_line_and_no_output(gray_clip, tiny_model, tmp_path, make, words):
    out = tmp_path / "out.mp4"
    res = runner.invoke(app, [str(gray_clip), "-o", str(out), "--model", str(tiny_model), *make(gray_clip, tmp_path)])
    assert res.exit_code == 1, res.output
    assert words in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_keyframe_on_a_rotated_film(tmp_path, tiny_model):
    from .conftest import make_video

    clip = make_video(tmp_path / "rot.mp4", rotation=90, audio=False)
    key = colour_export(clip, tmp_path, 0.5, 50.0, 20.0)  # exported upright: 48 wide, 64 high
    out = tmp_path / "rot.mkv"
    res = runner.invoke(
        app, [str(clip), "-o", str(out), "--keyframe", f"0.5={key}", "--model", str(tiny_model), "--codec", "ffv1"]
    )
    assert res.exit_code == 0, res.output
    frame = read_video(out)["rgb"][6]
    lab = cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    assert np.abs(lab[..., 1:] - np.float32([50.0, 20.0])).mean() < 4.0


def test_points_colour_their_patch_exactly_and_steer_the_shot_both_ways_up_to_the_cut():
    frames = film()
    red = Point(t=0.5, x=0.5, y=0.5, colour="#c04040", size=0.1)
    a_red = float(hex_ab("#c04040")[0])
    plain = run_forward(frames, [])
    keyed = run_forward(frames, [KeyframeSpec(0.5, None, (red,))])
    h, w = frames[5][1].shape
    centre = keyed[5][h // 2, w // 2]
    assert np.abs(centre - hex_ab("#c04040")).max() < 0.5  # its own frame, on the patch: the user's colour
    # The stand-in network follows its hint: the spread point colours far more than its patch (1.4 % of the
    # frame), on its own frame and on those before and after it in the shot.
    reddish = [float((o[..., 0] > a_red / 2).mean()) for o in keyed]
    assert all(r > 0.1 for r in reddish[:10]) and max(float((o[..., 0] > a_red / 2).mean()) for o in plain) == 0
    assert all(np.array_equal(p, k) for p, k in zip(plain[10:], keyed[10:], strict=True))  # the next shot: untouched


def test_a_gray_point_is_the_networks_hint_over_its_region():
    # "#808080" is (a, b) = (0, 0), as the rest of a gray frame is: a point there once reached no network.
    g = gray(5, 0)
    guide = points_guide((Point(t=0.5, x=0.5, y=0.5, colour="#808080", size=0.05),), g, LUT)
    seen = np.abs(guide.hint).sum(-1) > HINT_CHROMA
    assert seen.mean() > 0.05 and seen[g.shape[0] // 2, g.shape[1] // 2]  # its region, beyond its own patch
    cells = cv2.resize(guide.hint, (g.shape[1] // 4, g.shape[0] // 4), interpolation=cv2.INTER_AREA)
    assert np.abs(cells[cv2.resize(seen.astype(np.float32), cells.shape[1::-1], interpolation=cv2.INTER_AREA) == 1]).max() < 1e-4


def blind(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in network that ignores its hint: gray everywhere, shown and fed back."""
    return np.zeros(rgb.shape[:2] + (4,), np.float32), np.full(rgb.shape[:2], 0.5, np.float32)


def test_points_move_the_guess_on_every_frame_of_their_shot_in_the_shown_colours_only():
    frames = film()
    red = Point(t=0.5, x=0.5, y=0.5, colour="#c04040", size=0.1)
    states = []  # each frame's output, shown then fed back, unblended (smoothing 0)
    keyed = run_forward(
        frames, [KeyframeSpec(0.5, None, (red,))], predict=blind, states=states, options=TemporalOptions(smoothing=0)
    )
    # The network shows nothing of its hint, so what colours the shot is the guess the point moved, on the
    # point's own frame and on each frame before and after it (gray_guess: the light cells, like the point's).
    assert all(float(np.percentile(o[..., 0], 90)) > 5.0 for o in keyed[:10])
    assert all(np.abs(o).max() == 0 for o in keyed[10:])  # the next shot: untouched
    # Fed back, the colours are the network's own after the point's frame (5): fed back frame after frame, a
    # guess moved the wrong way would pile up. On the point's own frame they take it too.
    fed = [float(np.abs(s[..., 2:]).max()) for s in states[:10]]
    assert fed[5] > 5.0 and fed[6:] == [0.0] * 4


def test_governing_names_the_keyframe_whose_points_move_each_frame_as_a_render_chooses_it():
    frames = film()  # shots [0, 1.0) and [1.0, 1.6)
    red, green = (Point(t=t, x=0.5, y=0.5, colour=c, size=0.1) for t, c in ((0.3, "#c04040"), (0.7, "#40c040")))
    specs = [KeyframeSpec(0.3, None, (red,)), KeyframeSpec(0.7, None, (green,))]
    shots = [(0.0, 1.0)] * 10 + [(1.0, 1.6)] * 6
    keys = [governing(specs, t, shot, reach=0.2) for (t, _), shot in zip(frames, shots, strict=True)]
    # Before the first: within reach only; from each on, until the next or the cut; none in the next shot.
    assert [k.time if k else None for k in keys] == [None] + [0.3] * 6 + [0.7] * 3 + [None] * 6
    # The render moves each frame from its keyframe on by that keyframe's points.
    state = TemporalState(TemporalOptions().filled(), LUT)
    render = Keyframes(
        specs,
        lambda start, key: [f for f in frames if start - 5e-4 <= f[0] <= key + 5e-4],
        follower,
        gray_guess,
        LUT,
        TemporalOptions(),
        0.2,
    )
    said = {k.time: points_said(k.points, frames[round(k.time * 10)][1], LUT, gray_guess) for k in specs}
    for (t, g), key in zip(frames, keys, strict=True):
        guide = render.guide(t, state, g)
        state.step(g, follower, guide)
        if t >= 0.3 - 5e-4 and key is not None and abs(t - key.time) > 5e-4:
            assert np.array_equal(guide.moved, moved_guess(said[key.time], g, LUT, gray_guess)[0])
        if key is None and t < 1.0:  # the next shot's first frame gets one, which the step drops at the cut
            assert guide is None or guide.moved is None


def test_points_across_shots_reach_a_shot_cut_back_to_and_not_an_unlike_one():
    scene_a = [gray(i, 0) for i in range(8)]
    flat = [np.full_like(scene_a[0], 40 + i) for i in range(6)]  # nothing like the points' cells
    frames = [(i / 10, g) for i, g in enumerate(scene_a + flat + scene_a)]  # the scene, another, the scene again
    red = Point(t=0.4, x=0.5, y=0.5, colour="#c04040", size=0.1)
    key = [KeyframeSpec(0.4, None, (red,))]
    smooth = TemporalOptions(smoothing=0)
    plain = run_forward(frames, [], predict=blind, options=smooth)
    within = run_forward(frames, key, predict=blind, options=smooth)
    told = []  # whether each of the network's inputs was said to carry true colours (a keyframe's, carried)

    def blind_told(rgb, trusted=False):
        told.append(trusted)
        return blind(rgb, trusted)

    across = run_forward(frames, key, predict=blind_told, options=smooth, across=True)
    reddish = [[float(np.percentile(o[..., 0], 90)) for o in run] for run in (plain, within, across)]
    # The network shows nothing of its hint (blind): only the points' moved guess colours any frame.
    assert all(r > 5.0 for r in reddish[1][:8] + reddish[2][:8])  # their own shot: both
    assert all(np.array_equal(p, w) for p, w in zip(plain[8:], within[8:], strict=True))  # in the shot only: nothing else
    assert all(np.array_equal(p, a) for p, a in zip(plain[8:14], across[8:14], strict=True))  # the unlike shot: nothing
    assert all(r > 5.0 for r in reddish[2][14:])  # the scene cut back to, from its first frame on
    assert not any(told[-8:])  # whose own colours, fed back, stay the network's guesses, not a keyframe's


def test_a_project_becomes_one_keyframe_per_frame_of_points_plus_its_images(tmp_path):
    g = film()[5][1]
    image = painted(tmp_path / "car.png", g, 30.0, 0.0)
    project = parse_project(
        '{"vidcolor_project": 1, "points": ['
        '{"t": 0.5, "x": 0.1, "y": 0.2, "colour": "#ff0000", "size": 0.02},'
        '{"t": 0.5, "x": 0.8, "y": 0.2, "colour": "#00ff00", "size": 0.02},'
        '{"t": 0.3, "x": 0.5, "y": 0.5, "colour": "#0000ff", "size": 0.02}],'
        '"keyframes": [{"t": 0.9, "image": "car.png"}]}'
    )
    specs = project_keyframes(project, tmp_path)
    assert [(s.time, len(s.points), s.image) for s in specs] == [(0.3, 1, None), (0.5, 2, None), (0.9, 0, image)]
    clash = parse_project(
        '{"vidcolor_project": 1, "points": [{"t": 0.9, "x": 0.1, "y": 0.2, "colour": "#ff0000"}], "keyframes": [{"t": 0.9, "image": "car.png"}]}'
    )
    with pytest.raises(VidcolorError, match="keep one"):
        project_keyframes(clash, tmp_path)


def test_hints_end_to_end_show_each_points_colour_at_the_point(gray_clip, tiny_model, tmp_path):
    project = tmp_path / "clip.vidcolor.json"
    point = {"t": 0.5, "x": 0.3, "y": 0.4, "colour": "#2060d0", "size": 0.08}
    project.write_text(json.dumps({"vidcolor_project": 1, "points": [point], "keyframes": []}))
    out = tmp_path / "hinted.mkv"
    res = runner.invoke(
        app, [str(gray_clip), "-o", str(out), "--hints", str(project), "--model", str(tiny_model), "--codec", "ffv1"]
    )
    assert res.exit_code == 0, res.output
    video = read_video(out)
    frame = video["rgb"][6]  # the frame at 0.5 s (12 fps)
    h, w = frame.shape[:2]
    lab = cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    assert np.abs(lab[round(0.4 * h), round(0.3 * w), 1:] - hex_ab("#2060d0")).max() < 6.0
    missing = runner.invoke(app, [str(gray_clip), "-o", str(tmp_path / "x.mkv"), "--hints", str(tmp_path / "none.json")])
    assert missing.exit_code != 0 and "not found" in missing.output and not (tmp_path / "x.mkv").exists()


def test_hints_on_a_range_use_the_points_inside_it_and_leave_the_rest(gray_clip, tiny_model, tmp_path):
    project = tmp_path / "clip.vidcolor.json"
    inside = {"t": 0.5, "x": 0.3, "y": 0.4, "colour": "#2060d0", "size": 0.08}
    outside = {**inside, "t": 0.1, "colour": "#d02020"}  # before the range: a project covers the whole film
    project.write_text(json.dumps({"vidcolor_project": 1, "points": [inside, outside], "keyframes": []}))
    out = tmp_path / "range.mkv"
    args = [str(gray_clip), "-o", str(out), "--hints", str(project), "-ss", "0.25", "--model", str(tiny_model)]
    res = runner.invoke(app, [*args, "--codec", "ffv1"])
    assert res.exit_code == 0, res.output
    frame = read_video(out)["rgb"][3]  # the frame at 0.5 s, 0.25 s into the range (12 fps)
    h, w = frame.shape[:2]
    lab = cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    assert np.abs(lab[round(0.4 * h), round(0.3 * w), 1:] - hex_ab("#2060d0")).max() < 6.0
    key = colour_export(gray_clip, tmp_path, 0.1, 50.0, 20.0)  # a --keyframe of its own outside it is still refused
    refused = runner.invoke(app, [*args, "-y", "--keyframe", f"0.1={key}"])
    assert refused.exit_code == 1 and "outside the range" in refused.output
