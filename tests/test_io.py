"""Archival sources end to end: DV and MJPEG transfers with PCM audio, anamorphic pixels, interlacing, deep formats."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app

from .conftest import make_archival, make_video, read_video

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "name,codec,size,rate,pix_fmt,fmt,sar",
    [
        ("dv_pal.avi", "dvvideo", (720, 576), 25, "yuv420p", None, Fraction(16, 15)),
        ("dv_ntsc.dv", "dvvideo", (720, 480), Fraction(30000, 1001), "yuv411p", "dv", Fraction(8, 9)),
        ("mjpeg.avi", "mjpeg", (160, 120), 25, "yuvj420p", None, None),
    ],
)
def test_archival_transfers_with_pcm_audio_into_mp4(tmp_path, tiny_model, name, codec, size, rate, pix_fmt, fmt, sar):
    clip = make_archival(tmp_path / name, codec, size, rate, pix_fmt, frames=4, fmt=fmt)
    out = tmp_path / "out.mp4"
    res = run(clip, "-o", out, "--model", tiny_model)
    assert res.exit_code == 0, res.output
    assert "transcoded to AAC" in res.output  # PCM does not go into mp4 as it is
    dst = read_video(out)
    assert dst["frames"] == 4 and dst["rate"] == rate
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        assert len([p for p in c.demux(c.streams.audio[0]) if p.size]) > 0
        v = c.streams.video[0]
        if sar is not None:  # anamorphic DV keeps its pixel aspect, so it is not displayed squashed
            assert v.sample_aspect_ratio == sar
        if codec == "dvvideo":  # DV is interlaced, bottom field first: the output says so
            assert v.codec_context.field_order == 3


def test_progressive_sources_stay_progressive(gray_clip, tiny_model, tmp_path):
    out = tmp_path / "p.mp4"
    assert run(gray_clip, "-o", out, "--model", tiny_model).exit_code == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.field_order in (0, 1)  # unknown or progressive, never interlaced
        assert not next(c.decode(video=0)).interlaced_frame


def test_lossless_output_keeps_the_sources_bit_depth_and_chroma_format(tmp_path, tiny_model):
    clip = make_video(tmp_path / "deep.mkv", frames=3, size=(64, 48), pix_fmt="yuv422p10le", codec="ffv1", audio=False)
    out = tmp_path / "deep.out.mkv"
    assert run(clip, "-o", out, "--model", tiny_model, "--codec", "ffv1").exit_code == 0
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].codec_context.pix_fmt == "yuv422p10le"
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        ya, yb = (np.frombuffer(f.planes[0], np.uint16).reshape(48, -1)[:, :64] for f in (fa, fb))
    # The 10-bit luma passes through (within rounding), with all its levels: 8 bits would merge them four to one.
    assert np.abs(ya.astype(int) - yb.astype(int)).max() <= 1
    assert len(np.unique(yb)) == len(np.unique(ya)) > len(np.unique(ya >> 2))


def _deep_gray_scan(path, depth: int, frames: int = 3):
    """A gray film scan at `depth` bits: a fine ramp with far more than 256 levels, FFV1."""
    ramp = (np.arange(48 * 64, dtype=np.float64).reshape(48, 64) / (48 * 64) * 65535).astype(np.uint16)
    with av.open(str(path), "w") as box:
        v = box.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, f"gray{depth}le"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(ramp, i, axis=1), format="gray16le").reformat(format=f"gray{depth}le")
            box.mux(v.encode(frame))
        box.mux(v.encode())
    return path


@pytest.mark.parametrize("depth", [10, 12, 16])
def test_lossless_output_of_a_deep_gray_scan_keeps_its_bit_depth(tmp_path, tiny_model, depth):
    clip = _deep_gray_scan(tmp_path / "scan.mkv", depth)
    out = tmp_path / "scan.out.mkv"
    assert run(clip, "-o", out, "--model", tiny_model, "--codec", "ffv1").exit_code == 0
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].codec_context.pix_fmt == f"yuv444p{depth}le"
        ya = next(a.decode(video=0)).to_ndarray(format="gray16le")
        yb = next(b.decode(video=0)).reformat(format="gray16le").to_ndarray()
    # The scan's levels survive (the output is limited range: compare their count): 8 bits would keep 256 at most.
    assert len(np.unique(ya)) > 1000 and len(np.unique(yb)) > 0.8 * min(len(np.unique(ya)), 219 << (depth - 8))


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_a_sources_timecode_tag_does_not_become_a_timecode_track(tmp_path, tiny_model, suffix):
    """A DV file tags its container with a timecode; MP4 and MOV would turn the tag into a data track."""
    src = make_video(tmp_path / "tagged.mkv", frames=4, audio=False)
    tagged = tmp_path / "tc.mkv"
    with av.open(str(src)) as i, av.open(str(tagged), "w") as o:
        o.metadata["timecode"] = "10:00:00:00"
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = s
                o.mux(p)
    with av.open(str(tagged)) as c:
        assert {k.lower(): v for k, v in c.metadata.items()}["timecode"] == "10:00:00:00"  # the tag a DV file carries
    out = tmp_path / f"out{suffix}"
    assert run(tagged, "-o", out, "--model", tiny_model).exit_code == 0
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_a_film_ffmpeg_cannot_seek_in_is_one_line_not_frames_skipped(gray_clip, tiny_model, tmp_path, monkeypatch):
    import vidcolor.video as video

    monkeypatch.setattr(video, "_seek", lambda *a: False)  # as FFmpeg refuses every seek in such a file
    res = run(gray_clip, "-o", tmp_path / "out.mp4", "--model", tiny_model, "-ss", "0.5")
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and "cannot seek to 0.5 s" in lines[0], res.output
    assert not (tmp_path / "out.mp4").exists()
