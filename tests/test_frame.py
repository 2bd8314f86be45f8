"""`vidcolor frame`: gray frames out of a film, full resolution, at the times the ranges use."""

from __future__ import annotations

import sys

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor import cli

from .conftest import make_video

runner = CliRunner()


def run(*args):
    return runner.invoke(cli.frame_app, [str(a) for a in args])


def gray_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def test_the_frame_at_a_time_is_written_gray_at_full_size(gray_clip, tmp_path):
    out = tmp_path / "f.png"
    res = run(gray_clip, "-ss", "0.5", "-o", out)
    assert res.exit_code == 0, res.output
    assert "00:00:00.500" in res.output
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.shape == (48, 64) and img.dtype == np.uint8
    frames = gray_frames(gray_clip)
    assert np.array_equal(img, frames[6])  # 0.5 s at 12 fps: frame 6 exactly, not a neighbour
    assert not np.array_equal(img, frames[5])


def test_n_frames_evenly_spaced_named_by_time(gray_clip, tmp_path):
    res = run(gray_clip, "-ss", "0.25", "-t", "0.5", "--count", "3", "-o", tmp_path / "f.png")
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.glob("f-t*.png"))
    assert names == ["f-t0.250.png", "f-t0.417.png", "f-t0.583.png"]
    frames = gray_frames(gray_clip)
    for name, index in zip(names, (3, 5, 7), strict=True):
        assert np.array_equal(cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED), frames[index])


def test_a_rotated_film_gives_an_upright_frame(tmp_path):
    clip = make_video(tmp_path / "rot.mp4", rotation=90, audio=False)
    out = tmp_path / "r.png"
    assert run(clip, "-o", out).exit_code == 0
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (64, 48)


@pytest.mark.parametrize(
    "args, words",
    [
        (["-ss", "5"], "past the end"),
        (["-ss", "x"], "not a time"),
        (["-o", "{tmp}/f.jpg"], "lossless"),
        (["--count", "3", "-ss", "0.5", "-to", "0.5"], "needs a range"),
    ],
)
def test_bad_requests_get_one_line_and_write_nothing(gray_clip, tmp_path, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "f.png")]
    res = run(gray_clip, *args)
    assert res.exit_code == 1
    assert words in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not list(tmp_path.glob("f*"))


def test_an_existing_image_needs_yes(gray_clip, tmp_path):
    out = tmp_path / "f.png"
    out.write_bytes(b"mine")
    res = run(gray_clip, "-o", out)
    assert res.exit_code == 1 and "-y" in res.output and out.read_bytes() == b"mine"
    assert run(gray_clip, "-o", out, "-y").exit_code == 0 and out.read_bytes() != b"mine"


def test_the_vidcolor_command_routes_frame_to_it(gray_clip, tmp_path, monkeypatch):
    out = tmp_path / "f.png"
    monkeypatch.setattr(sys, "argv", ["vidcolor", "frame", str(gray_clip), "-o", str(out)])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 0 and out.is_file()


def test_dash_n_is_never_a_count_in_frame_it_means_no_overwrite_only_in_the_main_command(gray_clip, tmp_path):
    res = run(gray_clip, "-n", "3", "-o", tmp_path / "f.png")
    assert res.exit_code != 0 and not (tmp_path / "f.png").exists()
