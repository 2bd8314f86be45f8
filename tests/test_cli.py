"""The tool end to end, through Typer's runner, on synthetic clips."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.errors import VidcolorError
from vidcolor.pipeline import ColorizeOptions, colorize_video

from .conftest import make_video, read_video

runner = CliRunner()


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ np.array([0.2126, 0.7152, 0.0722])


def nearest_source_frame(src: dict, rgb: np.ndarray) -> int:
    """Index of the source frame whose luma is closest to this output frame's."""
    return int(np.argmin([np.abs(luma(f) - luma(rgb)).mean() for f in src["rgb"]]))


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_default_output_keeps_frames_size_rate_audio(gray_clip, tiny_model):
    before = digest(gray_clip)
    res = run(gray_clip, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    out = gray_clip.with_name("clip.color.mp4")
    src, dst = read_video(gray_clip), read_video(out)
    assert (dst["width"], dst["height"], dst["frames"]) == (src["width"], src["height"], src["frames"])
    assert dst["rate"] == src["rate"]
    assert dst["times"] == pytest.approx(src["times"])
    assert dst["audio_packets"] == src["audio_packets"]  # copied packet for packet
    assert digest(gray_clip) == before
    assert "frames" in res.output and "fps" in res.output  # the one-line summary
    assert out.stat().st_mode & 0o044  # readable by others, like any file the user makes (umask permitting)


def test_output_is_colored_and_keeps_luma(gray_clip, tiny_model, tmp_path):
    out = tmp_path / "o.mkv"
    assert run(gray_clip, "-o", out, "--model", tiny_model).exit_code == 0
    src, dst = read_video(gray_clip), read_video(out)
    a, b = src["rgb"][3].astype(float), dst["rgb"][3].astype(float)
    assert np.abs(luma(a) - luma(b)).mean() < 6.0
    assert np.abs(b[..., 0] - b[..., 2]).mean() > 0.5  # no longer gray


def test_the_cli_defaults_are_the_options_defaults():
    """One knob, one default: each flag's default is the field's it sets (a CLI still at look-ahead 12
    after the options moved to 16 ran other colours than the benchmarks measured)."""
    import inspect

    from vidcolor.cli import colorize
    from vidcolor.pipeline import ColorizeOptions
    from vidcolor.temporal import TemporalOptions
    from vidcolor.video import EncodeOptions

    flags = {name: p.default.default for name, p in inspect.signature(colorize).parameters.items()}
    fields = {
        **{k: getattr(TemporalOptions(), k) for k in ("smoothing", "look_ahead")},
        **{
            k: getattr(ColorizeOptions(), k)
            for k in ("work_size", "keyframe_reach", "points_across_shots", "segment", "fresh", "jobs", "threads")
        },
        **{k: getattr(EncodeOptions(), k) for k in ("codec", "crf", "preset")},
    }
    assert {k: flags[k] for k in fields} == fields


@pytest.mark.parametrize(
    "mode",
    [
        ["--feedback"],
        ["--no-temporal"],
        ["--smoothing", "0"],
        ["--look-ahead", "0"],
        ["--saturation", "1", "--temperature", "0.3"],
    ],
)
def test_temporal_modes_run_end_to_end_and_take_effect(gray_clip, tiny_model, tmp_path, mode):
    base = tmp_path / "base.mkv"
    assert run(gray_clip, "-o", base, "--model", tiny_model, "--codec", "ffv1").exit_code == 0
    out = tmp_path / "m.mkv"
    res = run(gray_clip, "-o", out, "--model", tiny_model, "--codec", "ffv1", *mode)
    assert res.exit_code == 0, res.output
    a, b = read_video(base), read_video(out)
    assert b["frames"] == 12
    # The option changed the colours (the default run is the comparison), and left the luma alone.
    assert max(np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(a["rgb"][1:], b["rgb"][1:], strict=True)) > 0
    assert np.abs(luma(a["rgb"][5]) - luma(b["rgb"][5])).mean() < 3.0


def test_feedback_follows_the_weights_record_unless_a_flag_says_otherwise(gray_clip, tiny_model, tmp_path):
    from vidcolor.train.calibrate import set_feedback_file

    chained = tmp_path / "chained.safetensors"
    set_feedback_file(tiny_model, chained, feedback=True)
    outs = {}
    for name, flags in (("record", []), ("on", ["--feedback"]), ("off", ["--no-feedback"])):
        outs[name] = tmp_path / f"{name}.mkv"
        res = run(gray_clip, "-o", outs[name], "--model", chained, "--codec", "ffv1", *flags)
        assert res.exit_code == 0, res.output
    record, on, off = (read_video(outs[k])["rgb"] for k in ("record", "on", "off"))
    assert all(np.array_equal(x, y) for x, y in zip(record, on, strict=True))  # the record turned it on
    assert any(not np.array_equal(x, y) for x, y in zip(record, off, strict=True))  # the flag turned it off


@pytest.mark.parametrize("size", [(63, 47), (50, 36)])
def test_odd_and_small_sizes(tmp_path, tiny_model, size):
    clip = make_video(tmp_path / "odd.mkv", size=size, frames=5)
    out = tmp_path / "odd.out.mkv"
    res = run(clip, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    dst = read_video(out)
    assert (dst["width"], dst["height"], dst["frames"]) == (*size, 5)


def test_variable_frame_rate_stays_variable(tmp_path, tiny_model):
    pts = [0, 1000, 2000, 4500, 5000, 8000, 8500, 9000]
    clip = make_video(tmp_path / "vfr.mp4", frames=len(pts), pts=pts, time_base=Fraction(1, 12000), audio=False)
    out = tmp_path / "vfr.out.mp4"
    assert run(clip, "-o", out, "--model", tiny_model).exit_code == 0
    assert read_video(out)["times"] == pytest.approx(read_video(clip)["times"], abs=1e-3)


@pytest.mark.parametrize("ext", [".mkv", ".mov", ".avi", ".ts", ".webm"])
def test_containers_in(tmp_path, tiny_model, ext):
    codec = {"webm": "libvpx-vp9"}.get(ext[1:], "libx264" if ext != ".avi" else "mpeg4")
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg")
    clip = make_video(tmp_path / f"in{ext}", frames=6, codec=codec, audio=ext not in (".webm", ".avi"))
    out = tmp_path / "out.mp4"
    res = run(clip, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    src, dst = read_video(clip), read_video(out)
    assert dst["frames"] == 6
    # It read this container's pictures: every output frame has its source frame's luma.
    assert all(np.abs(luma(s) - luma(d)).mean() < 4.0 for s, d in zip(src["rgb"], dst["rgb"], strict=True))


def test_ten_bit_input_keeps_its_detail(tmp_path, tiny_model):
    clip = make_video(tmp_path / "ten.mkv", frames=4, pix_fmt="yuv420p10le", audio=False)
    out = tmp_path / "ten.out.mkv"
    assert run(clip, "-o", out, "--model", tiny_model, "--codec", "ffv1").exit_code == 0
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
        ya, yb = (np.frombuffer(next(c.decode(video=0)).planes[0], np.uint16).reshape(48, -1)[:, :64] for c in (a, b))
    assert np.abs(ya.astype(int) - yb.astype(int)).max() <= 1  # the 10-bit luma, not an 8-bit copy
    assert len(np.unique(yb)) > len(np.unique(ya >> 2))


def test_rotation_is_carried_over(tmp_path, tiny_model):
    clip = make_video(tmp_path / "rot.mp4", frames=4, rotation=90, audio=False)
    out = tmp_path / "rot.out.mp4"
    assert run(clip, "-o", out, "--model", tiny_model).exit_code == 0
    assert read_video(out)["rotation"] == read_video(clip)["rotation"] == 90


@pytest.mark.parametrize("codec,ext,stored", [("libx265", ".mp4", "hevc"), ("ffv1", ".mkv", "ffv1"), ("libx264", ".mov", "h264")])
def test_codecs(gray_clip, tiny_model, tmp_path, codec, ext, stored):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg")
    out = tmp_path / f"c{ext}"
    res = run(gray_clip, "-o", out, "--codec", codec, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == stored  # the codec asked for
    assert read_video(out)["frames"] == 12


def test_range_is_frame_accurate_with_audio_cut(tmp_path, tiny_model):
    clip = make_video(tmp_path / "long.mp4", frames=48, rate=12)
    out = tmp_path / "cut.mp4"
    res = run(clip, "-o", out, "-ss", "1.5", "-t", "2", "--model", tiny_model)
    assert res.exit_code == 0, res.output
    src, dst = read_video(clip), read_video(out)
    assert dst["frames"] == 24
    # The first output frame is the source frame at 1.5 s (same picture, same luma).
    assert nearest_source_frame(src, dst["rgb"][0]) == src["times"].index(1.5)
    assert dst["times"][0] == pytest.approx(0.0, abs=1e-3)
    with av.open(str(out)) as c:
        audio_seconds = sum(p.duration for p in c.demux(audio=0) if p.size) * c.streams.audio[0].time_base
    assert float(audio_seconds) == pytest.approx(2.0, abs=1 / 12 + 0.05)


def test_range_counts_from_the_file_start_in_mpegts(tmp_path, tiny_model):
    clip = make_video(tmp_path / "r.ts", frames=36, rate=12, audio=False)  # MPEG-TS timestamps start near 1.4 s
    out = tmp_path / "r.mp4"
    assert run(clip, "-o", out, "-ss", "1", "-t", "1", "--model", tiny_model).exit_code == 0
    src, dst = read_video(clip), read_video(out)
    assert dst["frames"] == 12
    assert nearest_source_frame(src, dst["rgb"][0]) == 12  # 1 s after the first frame, at 12 fps


def test_end_option_and_mmss_format(tmp_path, tiny_model):
    clip = make_video(tmp_path / "long.mp4", frames=36, rate=12, audio=False)
    out = tmp_path / "cut.mp4"
    assert run(clip, "-o", out, "-ss", "0:01", "-to", "00:00:02.5", "--model", tiny_model).exit_code == 0
    assert read_video(out)["frames"] == 18


def test_preview_writes_side_by_side_and_sheet(tmp_path, tiny_model):
    clip = make_video(tmp_path / "p.mp4", frames=36, rate=12)
    res = run(clip, "--preview", "-t", "1", "--model", tiny_model)
    assert res.exit_code == 0, res.output
    side = tmp_path / "p.color.preview.mp4"
    sheet = tmp_path / "p.color.preview.png"
    info = read_video(side)
    assert (info["width"], info["height"], info["frames"]) == (128, 48, 12)
    import cv2

    img = cv2.imread(str(sheet))
    # Six frames 240 px wide, each 180 px high (48/64): rows gray, colour, uncertainty.
    assert img is not None and img.shape[:2] == (3 * 180, 6 * 240)
    gray_row, heat_row = img[:180], img[360:]
    assert np.ptp(gray_row.astype(int), axis=2).max() <= 2  # the first row is the gray source
    assert np.ptp(heat_row.astype(int), axis=2).mean() > 10  # the third is a coloured heat map
    assert not (tmp_path / "p.color.mp4").exists()


def test_uncertainty_writes_a_heat_map_video_beside_an_unchanged_output(gray_clip, tiny_model, tmp_path):
    base, out, heat = tmp_path / "base.mkv", tmp_path / "o.mkv", tmp_path / "unsure.mp4"
    assert run(gray_clip, "-o", base, "--model", tiny_model, "--codec", "ffv1").exit_code == 0
    res = run(gray_clip, "-o", out, "--model", tiny_model, "--codec", "ffv1", "--uncertainty", heat)
    assert res.exit_code == 0, res.output
    h = read_video(heat)
    assert (h["width"], h["height"], h["frames"]) == (64, 48, 12) and h["times"] == read_video(gray_clip)["times"]
    with av.open(str(heat)) as c:
        assert not c.streams.audio  # the map alone
    assert np.ptp(h["rgb"][4].astype(int), axis=2).mean() > 10  # a heat map, not gray
    assert all(np.array_equal(x, y) for x, y in zip(read_video(base)["rgb"], read_video(out)["rgb"], strict=True))
    res = run(gray_clip, "-o", tmp_path / "x.mp4", "--model", tiny_model, "--uncertainty", tmp_path / "x.mp4", "-y")
    assert res.exit_code == 1 and "own name" in res.output
    res = run(gray_clip, "-o", tmp_path / "y.mp4", "--model", tiny_model, "--uncertainty", heat)
    assert res.exit_code == 1 and "-y" in res.output and not (tmp_path / "y.mp4").exists()


def test_overwrite_rules(gray_clip, tiny_model, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    res = run(gray_clip, "-o", out, "--model", tiny_model)
    assert res.exit_code != 0 and "-y" in res.output and out.read_bytes() == b"keep me"
    res = run(gray_clip, "-o", out, "-n", "--model", tiny_model)
    assert res.exit_code == 0 and out.read_bytes() == b"keep me"
    res = run(gray_clip, "-o", out, "-y", "-n", "--model", tiny_model)
    assert res.exit_code == 1 and "not both" in res.output and out.read_bytes() == b"keep me"
    res = run(gray_clip, "-o", out, "-y", "--model", tiny_model)
    assert res.exit_code == 0 and read_video(out)["frames"] == 12


def test_preview_sheet_follows_the_overwrite_rules(tmp_path, tiny_model):
    clip = make_video(tmp_path / "p.mp4", frames=12, rate=12)
    sheet = tmp_path / "p.color.preview.png"
    sheet.write_bytes(b"my sheet")
    res = run(clip, "--preview", "--model", tiny_model)
    assert res.exit_code == 1 and "p.color.preview.png" in res.output and sheet.read_bytes() == b"my sheet"
    res = run(clip, "--preview", "-n", "--model", tiny_model)
    assert res.exit_code == 0 and sheet.read_bytes() == b"my sheet"
    assert not (tmp_path / "p.color.preview.mp4").exists()
    res = run(clip, "--preview", "-y", "--model", tiny_model)
    assert res.exit_code == 0 and sheet.read_bytes()[:4] == b"\x89PNG"


def test_output_equal_to_input_is_refused(gray_clip, tiny_model):
    before = digest(gray_clip)
    for extra in ([], ["-y"]):
        res = run(gray_clip, "-o", gray_clip, *extra, "--model", tiny_model)
        assert res.exit_code == 1 and "is the input" in res.output
        assert "pass -y" not in res.output  # -y would not help: never suggest it
    assert digest(gray_clip) == before


def test_output_that_is_a_directory_is_refused_before_any_work(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.pipeline as pipeline

    monkeypatch.setattr(pipeline, "open_input", lambda *a: pytest.fail("decoding started"))
    (tmp_path / "folder").mkdir()
    res = run(gray_clip, "-o", tmp_path / "folder", "-y", "--model", tiny_model)
    assert res.exit_code == 1 and "is a directory" in res.output


def test_long_output_names_fit_with_the_partial_file(gray_clip, tiny_model, tmp_path):
    out = tmp_path / ("x" * 240 + ".mp4")  # 244 bytes: the partial file's name must still fit in 255
    res = run(gray_clip, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    assert read_video(out)["frames"] == 12
    res = run(gray_clip, "-o", tmp_path / ("y" * 260 + ".mp4"), "--model", tiny_model)
    assert res.exit_code == 1 and "name" in res.output and "Traceback" not in res.output


def test_stale_partial_file_of_a_killed_run_is_removed_with_a_notice(gray_clip, tiny_model, tmp_path):
    stale = tmp_path / ".o.vidcolor-999999999.partial.mp4"  # no such process
    stale.write_bytes(b"half a film")
    res = run(gray_clip, "-o", tmp_path / "o.mp4", "--model", tiny_model)
    assert res.exit_code == 0 and "killed" in res.output
    assert not stale.exists() and only_files(tmp_path) == {"clip.mp4", "o.mp4"}


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", frames=1000, rate=25, audio=False)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_signals_stop_cleanly_and_leave_no_partial_file(tmp_path, tiny_model, long_clip, sig, code):
    import signal
    import subprocess
    import sys
    import time

    clip = long_clip
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", str(clip), "-o", str(out_dir / "o.mp4"), "--model", str(tiny_model)],
        stderr=subprocess.PIPE,
        text=True,
        # As a terminal's foreground job: a shell running these tests in the background (`... &` in a
        # script) starts them with SIGINT ignored, which the child would inherit and rightly keep.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and time.monotonic() < deadline:  # the partial file exists: it is working
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "no output was written" in err
    assert only_files(out_dir) == set()


def test_interrupted_run_leaves_nothing(gray_clip, tiny_model, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = digest(gray_clip)

    def interrupt(p):
        if p.frames == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(gray_clip, out_dir / "x.mp4", ColorizeOptions(model=tiny_model), progress=interrupt)
    assert only_files(out_dir) == set()
    assert digest(gray_clip) == before


def test_color_input_warns(tmp_path, tiny_model):
    clip = make_video(tmp_path / "colour.mp4", color=True, frames=4)
    res = run(clip, "--model", tiny_model)
    assert res.exit_code == 0
    assert "already has colour" in res.output


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=22050, layout="mono")
        for i in range(0, 22050, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 22050, i
            c.mux(a.encode(af))
        c.mux(a.encode())
    return path


def zero_frames(path: Path, audio: bool = False) -> Path:
    """A video stream without a single frame; with `audio`, beside a second of sound."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=10)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        a = c.add_stream("aac", rate=48000) if audio else None
        c.start_encoding()  # header written, not a single frame
        for i in range(47 if audio else 0):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i * 1024
            c.mux(a.encode(af))
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.mp4", "not found"),
    "directory": (lambda d: d, "directory"),
    "text named mp4": (lambda d: (d / "t.mp4").write_text("hello, not a video\n" * 20) and d / "t.mp4", "not a video"),
    "audio only": (lambda d: audio_only(d / "a.m4a"), "no video stream"),
    "zero frames": (lambda d: zero_frames(d / "z.mkv"), "no frames"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_cleanly(tmp_path, tiny_model, case):
    make, words = BAD_INPUTS[case]
    src = make(tmp_path)
    before = set(tmp_path.rglob("*"))
    res = run(src, "-o", tmp_path / "out.mp4", "--model", tiny_model)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error:"), res.output
    assert words in lines[0]
    assert "Traceback" not in res.output
    assert set(tmp_path.rglob("*")) == before  # no output, no temp file


@pytest.mark.parametrize("args", [["-ss", "0.1"], ["--preview"], ["--segment", "1", "--jobs", "2"]])
def test_a_video_with_no_frames_says_so_whatever_the_options(tmp_path, tiny_model, args):
    src = zero_frames(tmp_path / "z.mkv", audio=True)
    res = run(src, "-o", tmp_path / "out.mp4", "--model", tiny_model, *args)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "no frames" in lines[0] and "Operation not permitted" not in lines[0], res.output
    assert sorted(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize(
    "args,words",
    [
        (["-ss", "100"], "past the end"),
        (["-ss", "2", "-to", "1"], "not after the start"),
        (["-ss", "-1"], "negative"),
        (["-t", "-2"], "negative"),
        (["-ss", "1:99"], "seconds"),
        (["--codec", "h263x"], "unknown codec"),
        (["--preset", "fastest"], "unknown preset"),
        (["--points-across-shots"], "--hints FILM.vidcolor.json"),
    ],
)
def test_bad_options_fail_cleanly(gray_clip, tiny_model, tmp_path, args, words):
    res = run(gray_clip, "-o", tmp_path / "out.mp4", *args, "--model", tiny_model)
    assert res.exit_code == 1, res.output
    assert words in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out.mp4").exists()


def test_unwritable_output_folder(gray_clip, tiny_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        res = run(gray_clip, "-o", locked / "o.mp4", "--model", tiny_model)
        import os

        if os.access(locked, os.W_OK):  # root ignores permissions: use a missing folder instead
            res = run(gray_clip, "-o", tmp_path / "missing" / "o.mp4", "--model", tiny_model)
            assert "does not exist" in res.output
        else:
            assert "cannot write" in res.output
        assert res.exit_code == 1
    finally:
        locked.chmod(0o700)


def test_unknown_output_extension(gray_clip, tiny_model, tmp_path):
    res = run(gray_clip, "-o", tmp_path / "o.xyz", "--model", tiny_model)
    assert res.exit_code == 1 and ".mp4, .mkv or .mov" in res.output


@pytest.mark.parametrize("ext", [".ts", ".mkv"])
def test_truncated_file_colorizes_what_decodes_and_says_so(tmp_path, tiny_model, ext):
    clip = make_video(tmp_path / f"t{ext}", frames=80, codec="libx264", audio=False, size=(64, 48))
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "t.out.mp4"
    res = run(clip, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    assert 0 < read_video(out)["frames"] < 80
    assert "truncated" in res.output


def test_complete_file_gets_no_truncation_notice(gray_clip, tiny_model, tmp_path):
    res = run(gray_clip, "-o", tmp_path / "o.mp4", "--model", tiny_model)
    assert res.exit_code == 0 and "truncated" not in res.output


def test_truncated_mp4_fails_clearly(tmp_path, tiny_model):
    clip = make_video(tmp_path / "t.mp4", frames=20)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    res = run(clip, "-o", tmp_path / "o.mp4", "--model", tiny_model)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "t.mp4" in res.output and ("cut short" in res.output or "complete video file" in res.output)
    assert not (tmp_path / "o.mp4").exists()


def test_small_things_a_user_tries_first(gray_clip, tiny_model):
    res = run()
    assert "Usage" in res.output and "--preview" in res.output  # no arguments: the help
    res = run("--version")
    assert res.exit_code == 0 and res.output.startswith("vidcolor ")
    res = run("-", "--model", tiny_model)
    assert res.exit_code == 1 and "standard input" in res.output
    res = run("--help")
    assert "-y, --yes " in res.output and "<bool>" not in res.output  # flags take no value
    assert "Examples" in res.output


def test_progress_without_a_terminal_prints_a_stats_line(capsys):
    from vidcolor.cli import _Progress
    from vidcolor.pipeline import Progress

    progress = _Progress(True, every=0.0)
    progress.tty = False
    progress(Progress(frames=48, total=240, elapsed=2.0))
    err = capsys.readouterr().err
    assert "frame=48/240" in err and "fps=24.0" in err


def test_public_function_raises_domain_errors(tmp_path, tiny_model):
    with pytest.raises(VidcolorError):
        colorize_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", ColorizeOptions(model=tiny_model))


def test_python_dash_m_entry_point(gray_clip, tiny_model, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "vidcolor", str(gray_clip), "-o", str(out), "--model", str(tiny_model), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_video(out)["frames"] == 12


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU here")
def test_cuda_device_gives_the_same_kind_of_output(gray_clip, tiny_model, tmp_path):
    out = tmp_path / "cuda.mp4"
    assert run(gray_clip, "-o", out, "--device", "cuda", "--model", tiny_model).exit_code == 0
    assert read_video(out)["frames"] == 12


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_asked_without_gpu_is_a_clean_error(gray_clip, tiny_model, tmp_path):
    res = run(gray_clip, "-o", tmp_path / "o.mp4", "--device", "cuda", "--model", tiny_model)
    assert res.exit_code == 1 and "no CUDA GPU" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.mp4").exists()


def test_audio_the_container_refuses_is_transcoded_with_a_notice(tmp_path, tiny_model):
    src = tmp_path / "pcm.mkv"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_u8", rate=22050, layout="mono")
        for i in range(12):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
        for i in range(0, 22050, 1024):
            af = av.AudioFrame.from_ndarray(np.full((1, 1024), 128 + (i // 1024) % 50, np.uint8), format="u8", layout="mono")
            af.sample_rate, af.pts = 22050, i
            c.mux(a.encode(af))
        c.mux(a.encode())
    out = tmp_path / "pcm.out.mp4"
    res = run(src, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    assert "transcoded to AAC" in res.output
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        seconds = float(sum(p.duration for p in c.demux(audio=0) if p.size) * c.streams.audio[0].time_base)
    assert seconds == pytest.approx(1.0, abs=0.1)


def test_subtitles_copied_where_the_container_allows(tmp_path, tiny_model):
    src = tmp_path / "sub.mkv"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = c.add_mux_stream("subrip")
        s.time_base = Fraction(1, 1000)
        for i in range(12):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
        for i, text in enumerate([b"Hello", b"World"]):
            p = av.Packet(text)
            p.stream, p.pts, p.dts, p.duration, p.time_base = s, i * 500, i * 500, 400, Fraction(1, 1000)
            c.mux(p)
    mkv, mp4 = tmp_path / "o.mkv", tmp_path / "o.mp4"
    assert run(src, "-o", mkv, "--model", tiny_model).exit_code == 0
    with av.open(str(mkv)) as c:
        assert [bytes(p) for p in c.demux(subtitles=0) if p.size] == [b"Hello", b"World"]
    res = run(src, "-o", mp4, "--model", tiny_model)
    assert res.exit_code == 0 and "subtitle stream 1" in res.output and "left out" in res.output


def test_preview_defaults_to_five_seconds_from_the_middle(tmp_path, tiny_model):
    clip = tmp_path / "long.mkv"  # 10 s at 12 fps; frame i is uniformly 2 * i gray, so its luma names it
    with av.open(str(clip), "w") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(120):
            f = av.VideoFrame.from_ndarray(np.full((48, 64), 2 * i, np.uint8), format="gray").reformat(format="yuv420p")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
    res = run(clip, "--preview", "--model", tiny_model)
    assert res.exit_code == 0, res.output
    side = read_video(tmp_path / "long.color.preview.mp4")
    assert side["frames"] == 60
    assert luma(side["rgb"][0][:, :64]).mean() / 2 == pytest.approx(30, abs=0.6)  # the frame at 2.5 s


@pytest.mark.parametrize("kind", ["random bytes", "other shapes"])
def test_a_corrupt_or_mismatched_model_is_one_line(gray_clip, tiny_model, tmp_path, kind):
    import shutil

    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    if kind == "random bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    else:
        save_file({"x": torch.zeros(3)}, str(bad))
    shutil.copy(tiny_model.with_suffix(".json"), bad.with_suffix(".json"))
    out = tmp_path / "o.mp4"
    res = runner.invoke(app, [str(gray_clip), "-o", str(out), "--model", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output and not out.exists()
    assert len(res.output.strip().splitlines()) == 1 and str(bad) in res.output


def test_an_input_name_whose_output_name_is_too_long_says_choose_a_shorter_one(tmp_path, tiny_model):
    from .conftest import make_video

    src = make_video(tmp_path / ("b" * 248 + ".mp4"))  # 252 bytes; its output's name would take 258
    res = runner.invoke(app, [str(src), "--model", str(tiny_model)])
    assert res.exit_code == 1 and "choose a shorter name with -o" in res.output
    assert len(res.output.strip().splitlines()) == 1 and len(res.output) < 200


def test_a_long_input_name_whose_output_name_fits_is_colorized(tmp_path, tiny_model):
    """Nothing the run writes beside the output (its partial file, its lock) needs a longer name than it."""
    from .conftest import make_video

    src = make_video(tmp_path / ("b" * 240 + ".mp4"))
    res = runner.invoke(app, [str(src), "--model", str(tiny_model), "-q"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, "b" * 240 + ".color.mp4"])


def test_a_film_named_like_a_command_is_coloured_and_the_command_still_takes_it(gray_clip, tmp_path, monkeypatch):
    import shutil
    import sys

    from vidcolor.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(gray_clip, tmp_path / "frame")

    def vidcolor(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["vidcolor", *args])
        try:
            main()
        except SystemExit as e:
            return int(e.code or 0)
        return 0

    assert vidcolor("frame", "-o", "out.mp4", "-q") == 0  # the film called frame, coloured
    assert read_video(tmp_path / "out.mp4")["frames"] == 12
    assert vidcolor("frame", "frame", "-o", "still.png") == 0  # `vidcolor frame` taking that film
    assert (tmp_path / "still.png").is_file()
