"""Long films as segments: the plan, the join (frames, timestamps, audio), resume, invalidation, the lock,
worker processes, several inputs and Ray; on synthetic clips with a keyframe every half second."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.errors import VidcolorError
from vidcolor.outfile import output_lock
from vidcolor.pipeline import ColorizeOptions, Progress, colorize_video
from vidcolor.segments import PartInfo, WorkFolder, encoder_cuts, plan_segments
from vidcolor.video import EncodeOptions

from .conftest import make_video, read_video, scene

runner = CliRunner()


def run(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def parts_folder(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.parts")


# Frame-exact comparisons go through a lossless encoder: on frames this small libx264 does not always give
# the same bytes for the same frames (64x48: 5 different files in 6 encodes, 160x96: 2, 640x360: 1; seen on
# an AMD EPYC with AVX-512, with FFmpeg's default threads and with one).
LOSSLESS = EncodeOptions(codec="ffv1")


def same_frames(a: Path, b: Path) -> bool:
    x, y = read_video(a), read_video(b)
    return x["pts"] == y["pts"] and all(np.array_equal(p, q) for p, q in zip(x["rgb"], y["rgb"], strict=True))


@pytest.fixture()
def film(tmp_path) -> Path:
    """4 s at 12 fps, a keyframe every 0.5 s, with audio: 4 segments of 1 s."""
    return make_video(tmp_path / "film.mp4", frames=48, rate=12, gop=6)


def test_plan_cuts_at_the_keyframe_nearest_each_length():
    plan = plan_segments([float(t) for t in range(1, 320)], None, 320.0, 60.0)
    assert [(s.start, s.end) for s in plan] == [(0, 60), (60, 120), (120, 180), (180, 240), (240, 320)]
    uneven = plan_segments([10.0, 55.0, 70.0, 200.0], None, 300.0, 60.0)
    assert [s.start for s in uneven] == [0.0, 55.0, 200.0]  # nearest keyframe to 60, then to 115 (only 200 fits)
    assert len(plan_segments([], None, 300.0, 60.0)) == 1  # no keyframe: one segment
    assert len(plan_segments([1.0, 2.0], None, 3.0, 60.0)) == 1  # shorter than a segment


def test_plan_prefers_the_keyframes_an_encoder_put_at_cuts():
    def stream(cuts: list[float], end: float = 300.0) -> list[float]:
        """Keyframes as x264 places them: every 10 s, and at each cut, counting 10 s again from there."""
        keys, t = [], 0.0
        while t < end:
            nxt = min([c for c in cuts if t < c < t + 10.0] or [t + 10.0])
            keys.append(nxt)
            t = nxt
        return [k for k in keys if k < end]

    keys = stream([43.0, 97.0, 131.0])
    assert encoder_cuts(keys) == [43.0, 97.0, 131.0]
    plan = plan_segments(keys, None, 300.0, 60.0)
    assert [s.start for s in plan[1:3]] == [43.0, 97.0]  # the cuts, though keyframes lie nearer 60 s
    assert encoder_cuts(stream([])) == []  # evenly spaced: no cut


def test_segment_warm_start_never_precedes_the_range():
    seg = plan_segments([1.0, 2.0, 3.0], 0.5, 4.0, 1.0)[1]
    assert seg.warm_start(2.0, 0.5) == 0.5 and seg.warm_start(0.25, 0.5) == pytest.approx(seg.start - 0.25)


@pytest.mark.parametrize(
    "kind",
    ["mp4", "mkv", "range", "vfr", "mpegts", "rotated"],
)
@pytest.mark.slow
def test_segments_keep_frames_timestamps_and_audio(tmp_path, tiny_model, kind):
    """The joined output has the one-pass output's frame count, rate, timestamps and audio packets."""
    args, ext = [], ".mp4"
    if kind == "vfr":
        pts = [i * 1000 + (500 if i % 3 == 2 else 0) for i in range(40)]
        clip = make_video(tmp_path / "v.mp4", frames=40, pts=pts, time_base=Fraction(1, 12000), gop=6)
    elif kind == "mpegts":
        clip = make_video(tmp_path / "v.ts", frames=48, rate=12, gop=6, audio=False)
    elif kind == "rotated":
        clip = make_video(tmp_path / "v.mp4", frames=36, rate=12, gop=6, rotation=90, audio=False)
    else:
        clip = make_video(tmp_path / "v.mp4", frames=48, rate=12, gop=6)
        ext = ".mkv" if kind == "mkv" else ".mp4"
        args = ["-ss", "0.75", "-t", "2.5"] if kind == "range" else []
    one, seg = tmp_path / f"one{ext}", tmp_path / f"seg{ext}"
    assert run(clip, "-o", one, "--segment", "0", "--model", tiny_model, *args).exit_code == 0
    res = run(clip, "-o", seg, "--segment", "1", "--model", tiny_model, *args)
    assert res.exit_code == 0, res.output
    a, b = read_video(one), read_video(seg)
    assert b["frames"] == a["frames"] > 0 and b["rate"] == a["rate"]
    assert b["times"] == pytest.approx(a["times"], abs=1e-4)
    assert b["audio_packets"] == a["audio_packets"]
    assert b["rotation"] == a["rotation"]
    assert not parts_folder(seg).exists()  # removed once the output is complete
    # Colours agree with the one-pass run's (up to the warm-up and the encoder's own choices).
    assert np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(a["rgb"], b["rgb"], strict=True)]) < 3.0


def interrupt_after(frames: int):
    """A progress callback that acts like Ctrl-C once `frames` frames are done."""

    def progress(p: Progress) -> None:
        if p.frames >= frames:
            raise KeyboardInterrupt

    return progress


@pytest.mark.slow
def test_resume_reuses_finished_segments_and_gives_the_same_frames(film, tiny_model, tmp_path):
    opts = ColorizeOptions(model=tiny_model, segment=1.0, encode=LOSSLESS)
    whole = tmp_path / "whole.mkv"
    colorize_video(film, whole, opts)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(film, out, opts, progress=interrupt_after(18))  # in the second segment
    folder = parts_folder(out)
    assert not out.exists() and (folder / "part-0000.json").exists() and not (folder / "part-0001.json").exists()
    # What a SIGKILL leaves: a half-written part, and a part file nobody recorded as finished.
    (folder / "part-0001.partial.nut").write_bytes(b"half")
    (folder / "part-0002.nut").write_bytes(b"junk")
    seen: list[int] = []
    summary = colorize_video(film, out, opts, progress=lambda p: seen.append(p.frames))
    assert any("resuming: 1 finished segment" in n for n in summary.notices)
    assert seen[0] > 12  # the progress counts the reused segment's 12 frames
    assert summary.frames == 48 and same_frames(out, whole)
    assert not folder.exists()


@pytest.mark.slow
def test_a_segment_reads_past_its_end_for_the_look_ahead_of_its_last_frames(film, tiny_model, tmp_path):
    """The first segment's frames are the one-pass run's up to its last: its last frames take their
    look-ahead from frames past its end, as they do in one pass."""
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    colorize_video(film, one, ColorizeOptions(model=tiny_model, encode=LOSSLESS))
    summary = colorize_video(film, seg, ColorizeOptions(model=tiny_model, segment=1.0, encode=LOSSLESS))
    a, b = read_video(one)["rgb"], read_video(seg)["rgb"]
    assert len(a) == len(b) == 48
    assert all(np.array_equal(x, y) for x, y in zip(a[:12], b[:12], strict=True))  # segment 1: 1 s at 12 fps
    # Reading on past its end, a part does not take the frames it does not write for missing ones.
    assert not any("ends early" in n for n in summary.notices)


def test_each_finished_part_gives_its_freed_memory_back(film, tiny_model, tmp_path, monkeypatch):
    """In one process the parts run one after another: after each, what it freed goes back to the system
    (film.give_back_freed_memory), so the next part does not start from the last one's peak."""
    import vidcolor.film

    calls = []
    monkeypatch.setattr(vidcolor.film, "give_back_freed_memory", lambda: calls.append(1))
    out = tmp_path / "out.mkv"
    colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=1.0, encode=LOSSLESS))
    assert len(calls) == 4  # 4 s of film in segments of 1 s


@pytest.mark.slow
def test_changed_option_invalidates_the_parts(film, tiny_model, tmp_path):
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=1.0, encode=LOSSLESS), progress=interrupt_after(14))
    manifest = json.loads((parts_folder(out) / "manifest.json").read_text())
    assert manifest["settings"]["decode"]["saturation"] != 0.9
    summary = colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=1.0, saturation=0.9, encode=LOSSLESS))
    assert any("another input, settings or model" in n for n in summary.notices)
    fresh = tmp_path / "fresh.mkv"
    colorize_video(film, fresh, ColorizeOptions(model=tiny_model, segment=1.0, saturation=0.9, encode=LOSSLESS))
    assert same_frames(out, fresh)


@pytest.mark.parametrize("fresh", [False, True])
def test_fresh_colours_every_segment_again_and_a_rerun_reuses_the_finished_ones(film, tiny_model, tmp_path, monkeypatch, fresh):
    import vidcolor.pipeline as pipeline

    out = tmp_path / "out.mp4"
    opts = ColorizeOptions(model=tiny_model, segment=1.0)
    with pytest.raises(KeyboardInterrupt):
        colorize_video(film, out, opts, progress=interrupt_after(18))  # in the second segment
    assert (parts_folder(out) / "part-0000.json").exists()  # the first segment was finished
    coloured: list[int] = []
    part = pipeline.colorize_part
    monkeypatch.setattr(pipeline, "colorize_part", lambda job, *a, **k: coloured.append(job.segment.index) or part(job, *a, **k))
    summary = colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=1.0, fresh=fresh))
    assert summary.frames == 48
    assert sorted(coloured) == ([0, 1, 2, 3] if fresh else [1, 2, 3])
    assert any("resuming" in n for n in summary.notices) is not fresh


def cut_film(path: Path) -> Path:
    """4 s at 12 fps, a keyframe every 0.5 s: one shot to 1.5 s, then another (a hard cut at frame 18)."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.gop_size = 6
        for i in range(48):
            img = scene(i, 64, 48) if i < 18 else np.ascontiguousarray(255 - scene(i, 64, 48, seed=7)[::-1])
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
    return path


@pytest.mark.slow
def test_a_later_segment_warmed_up_from_its_shot_start_gives_the_one_pass_frames(tiny_model, tmp_path, monkeypatch):
    """A segment's warm-up runs the temporal state over the frames before it: warmed up from the cut that
    starts its shot, its frames are the one-pass run's; with no warm-up they are not."""
    import vidcolor.pipeline as pipeline

    film = cut_film(tmp_path / "cut.mkv")
    one = tmp_path / "one.mkv"
    colorize_video(film, one, ColorizeOptions(model=tiny_model, encode=LOSSLESS))
    whole = read_video(one)["rgb"]

    def second_segment(warmup: float) -> list[np.ndarray]:
        monkeypatch.setattr(pipeline, "WARMUP", warmup)
        out = tmp_path / f"seg{warmup}.mkv"
        colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=2.0, encode=LOSSLESS, fresh=True))
        return read_video(out)["rgb"][24:]  # the second segment: from 2 s on

    assert all(np.array_equal(a, b) for a, b in zip(second_segment(1.0), whole[24:], strict=True))  # from 1 s: the cut
    assert not all(np.array_equal(a, b) for a, b in zip(second_segment(0.0), whole[24:], strict=True))


@pytest.mark.parametrize("segment", [1.0, 0.0])
def test_a_second_run_on_the_same_output_is_refused(film, tiny_model, tmp_path, segment):
    out = tmp_path / "out.mp4"
    with output_lock(out):  # as another process running on it would hold it
        with pytest.raises(VidcolorError, match="another vidcolor run is writing"):
            colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=segment))
    assert not out.exists() and not out.with_name(".out.mp4.lock").exists()
    colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=segment))  # released: runs
    assert out.exists()


def test_work_folder_keeps_only_recorded_parts(tmp_path):
    dst = tmp_path / "o.mp4"
    folder = WorkFolder(dst, {"a": 1}).open()
    folder.partial(0).write_bytes(b"x")
    folder.finish(0, PartInfo(3, 0.0, 0.2))
    folder.partial(1).write_bytes(b"y")
    again = WorkFolder(dst, {"a": 1}).open()
    assert set(again.done()) == {0} and not again.partial(1).exists()
    changed = WorkFolder(dst, {"a": 2}).open()
    assert changed.done() == {} and changed.notices


@pytest.mark.slow
def test_jobs_two_gives_the_frames_of_one_worker_with_as_many_threads(film, tiny_model, tmp_path):
    one, two = tmp_path / "one.mkv", tmp_path / "two.mkv"
    colorize_video(film, one, ColorizeOptions(model=tiny_model, segment=1.0, jobs=1, threads=1, encode=LOSSLESS))
    seen: list[int] = []
    colorize_video(
        film,
        two,
        ColorizeOptions(model=tiny_model, segment=1.0, jobs=2, threads=1, encode=LOSSLESS),
        progress=lambda p: seen.append(p.frames),
    )
    assert same_frames(one, two)
    assert seen and seen[-1] == 48  # one progress over the whole film


def test_several_inputs_go_on_past_a_bad_one(film, tiny_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    other = make_video(tmp_path / "other.mkv", frames=6)
    outdir = tmp_path / "out"
    res = run(film, bad, other, "-o", f"{outdir}/", "--model", tiny_model)
    assert res.exit_code == 1
    assert "bad.mp4" in res.output and "1 of 3 inputs failed" in res.output
    assert sorted(p.name for p in outdir.iterdir()) == ["film.color.mp4", "other.color.mp4"]
    assert read_video(outdir / "other.color.mp4")["frames"] == 6


def test_several_inputs_refuse_an_output_file(film, tiny_model, tmp_path):
    res = run(film, film, "-o", tmp_path / "x.mp4", "--model", tiny_model)
    assert res.exit_code == 1 and "need an output folder" in res.output


@pytest.mark.slow
def test_ray_round_trip_equals_the_local_run(film, tiny_model, tmp_path):
    ray = pytest.importorskip("ray")
    local, remote = tmp_path / "local.mkv", tmp_path / "ray.mkv"
    colorize_video(film, local, ColorizeOptions(model=tiny_model, segment=1.0, jobs=1, threads=1, encode=LOSSLESS))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        colorize_video(film, remote, ColorizeOptions(model=tiny_model, segment=1.0, threads=1, ray="auto", encode=LOSSLESS))
    finally:
        ray.shutdown()
    assert same_frames(local, remote)


def test_threads_option_sets_torch_threads_for_the_run_and_restores_them(film, tiny_model, tmp_path):
    import torch

    from vidcolor.precision import compute_threads

    before, seen = (torch.get_num_threads(), compute_threads()), []
    colorize_video(
        film,
        tmp_path / "o.mp4",
        ColorizeOptions(model=tiny_model, segment=0, threads=1),  # the torch engine: tiny has no int8 network
        progress=lambda p: seen.append((torch.get_num_threads(), compute_threads())),
    )
    assert set(seen) == {(1, 1)} and (torch.get_num_threads(), compute_threads()) == before


def test_a_finished_segment_leaves_nothing_behind_for_the_next_one(film, tiny_model, tmp_path, monkeypatch):
    """A segment's job (its decoder, encoder, frames and model workers) refers to itself in cycles, which
    Python frees only at a full collection, rare in a long run: every segment's ~50 MB stayed (RSS grew
    from 490 MB for a 1-minute film to 840 MB for a 6-minute one). With automatic collection off, as
    between those rare collections, no segment's job may outlive it."""
    import gc

    from vidcolor import job, pipeline

    parts = []
    real = pipeline.colorize_part
    monkeypatch.setattr(pipeline, "colorize_part", lambda job, *a: parts.append(job) or real(job, *a))
    gc.collect()
    gc.disable()
    try:
        colorize_video(film, tmp_path / "out.mkv", ColorizeOptions(model=tiny_model, segment=1.0, encode=LOSSLESS))
        # type(), not isinstance(): the latter reads __class__, which warns on torch's deprecated module attributes
        jobs = [o for o in gc.get_objects() if type(o) is job.Job]
    finally:
        gc.enable()
    assert len(parts) >= 3 and jobs == []


def test_ray_without_ray_installed_is_one_line_and_leaves_no_work_folder(film, tiny_model, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError, as where it is not installed
    out = tmp_path / "o.mp4"
    res = runner.invoke(app, [str(film), "-o", str(out), "--model", str(tiny_model), "--segment", "1", "--ray", "auto"])
    assert res.exit_code == 1 and "pip install 'vidcolor[ray]'" in res.output
    assert not out.exists() and not list(tmp_path.glob(".o*"))  # no .o.mp4.parts/ with its manifest, no partial


def test_parts_made_with_another_thread_count_are_not_reused(film, tiny_model, tmp_path):
    """The network's results depend on the torch thread count (precision.py): parts made with one count are
    not joined with parts made with another."""
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(
            film, out, ColorizeOptions(model=tiny_model, segment=1.0, threads=1, encode=LOSSLESS), progress=interrupt_after(14)
        )
    assert json.loads((parts_folder(out) / "manifest.json").read_text())["settings"]["threads"] == 1
    summary = colorize_video(film, out, ColorizeOptions(model=tiny_model, segment=1.0, threads=2, encode=LOSSLESS))
    assert any("another input, settings or model" in n for n in summary.notices)


def test_a_segment_that_starts_a_shot_warms_up_from_the_frame_before_and_keeps_the_one_pass_frames(
    tiny_model, tmp_path, monkeypatch
):
    """A boundary at a cut needs no warm-up: the temporal state and the look-ahead start again there."""
    import vidcolor.pipeline as pipeline

    film = cut_film(tmp_path / "cut.mkv")  # a cut at frame 18 (1.5 s), every frame a keyframe (FFV1)
    one = tmp_path / "one.mkv"
    colorize_video(film, one, ColorizeOptions(model=tiny_model, encode=LOSSLESS))
    starts: dict[int, float] = {}
    part = pipeline.colorize_part
    monkeypatch.setattr(
        pipeline, "colorize_part", lambda job, *a, **k: starts.update({job.segment.index: job.decode_from}) or part(job, *a, **k)
    )
    seg = tmp_path / "seg.mkv"
    colorize_video(film, seg, ColorizeOptions(model=tiny_model, segment=1.5, encode=LOSSLESS))
    assert starts[1] == pytest.approx(17 / 12, abs=1e-3)  # the segment from the cut (1.5 s): one frame before it
    assert starts[2] == pytest.approx(0.0)  # the one from 3 s, inside a shot: the whole warm-up (6 s, from the start)
    assert same_frames(one, seg)


def test_a_sigkilled_run_leaves_no_lock_behind_and_frees_its_output(tmp_path):
    """The lock is the kernel's: a process killed while it holds it leaves no file beside the output, and the
    next run on it is not refused."""
    import subprocess
    import sys

    out = tmp_path / "out.mp4"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time\nfrom pathlib import Path\nfrom vidcolor.outfile import output_lock\n"
            f"with output_lock(Path({str(out)!r})):\n"
            "    print('held', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(VidcolorError, match="another vidcolor run is writing"), output_lock(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert list(tmp_path.iterdir()) == []  # no .out.mp4.lock, nothing at all
    with output_lock(out):
        pass
