"""Video I/O with PyAV, in-process: open and check a source, demux a time range
(video frames decoded, other packets passed through), and set up the output.

Nothing here knows about colour or the network.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from .errors import VidcolorError
from .timecode import EPS

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
# Codecs that can be copied into mp4/mov as they are. FFmpeg lists more as "supported" (PCM in mp4, say),
# but writing them fails ("Invalid argument") or gives files players refuse; the rest is transcoded to AAC.
COPYABLE = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "mov_text"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_f32le", "mov_text"},
}
# AVFieldOrder values (libavcodec/defs.h).
PROGRESSIVE, TOP_FIRST, BOTTOM_FIRST = 1, 2, 3
CODECS = {"libx264": "H.264", "libx265": "H.265/HEVC", "ffv1": "FFV1 (lossless)"}


@dataclass(frozen=True)
class SourceInfo:
    width: int  # as stored (before the display rotation)
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction
    start: float  # seconds: time of the stream's first frame
    duration: float  # seconds, 0 when the container does not say
    frames: int  # from the container, or estimated; 0 when unknown
    pix_fmt: str


def open_input(path: Path) -> av.container.InputContainer:
    """Open a source, turning every way it can fail into a VidcolorError."""
    if not path.exists():
        raise VidcolorError(f"input not found: {path}. Check the path and file name.")
    if path.is_dir():
        raise VidcolorError(f"{path} is a directory, not a video file. Give a file, e.g. vidcolor {path}/film.mp4")
    try:
        container = av.open(str(path), mode="r")
    except av.error.EOFError:
        raise VidcolorError(
            f"{path} has no frames to read: the file is empty or cut short. Check that it is a complete video file."
        ) from None
    except av.error.FFmpegError as e:
        raise VidcolorError(
            f"{path} is not a video FFmpeg can read ({_reason(e)}). Check that it is a complete video file."
        ) from None
    if not container.streams.video:
        container.close()
        raise VidcolorError(f"{path} has no video stream ({_kinds(path)}). Give a file with a picture track.")
    return container


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[0].strip() or type(e).__name__


def _kinds(path: Path) -> str:
    try:
        with av.open(str(path)) as c:
            kinds = sorted({s.type for s in c.streams})
        return "only " + ", ".join(kinds) + " streams" if kinds else "no streams at all"
    except av.error.FFmpegError:
        return "unreadable streams"


def file_start(container: av.container.InputContainer) -> float:
    """Seconds that times "as -ss counts" are measured from: the container's start time (never negative)."""
    return max(0.0, (container.start_time or 0) / av.time_base)


def describe(container: av.container.InputContainer) -> SourceInfo:
    v = container.streams.video[0]
    tb = v.time_base or Fraction(1, 90000)
    rate = v.average_rate
    if not rate or rate > 1000:  # raw DV reports its time base (60000) as the average rate
        rate = v.guessed_rate or v.base_rate or Fraction(25)
    start = float(v.start_time * tb) if v.start_time is not None else 0.0
    if v.duration:
        duration = float(v.duration * tb)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    frames = v.frames or (int(round(duration * rate)) if duration else 0)
    return SourceInfo(
        width=v.codec_context.width,
        height=v.codec_context.height,
        rate=Fraction(rate),
        time_base=Fraction(tb),
        start=start,
        duration=duration,
        frames=frames,
        pix_fmt=v.codec_context.pix_fmt or "unknown",
    )


@dataclass
class DecodeStats:
    frames: int = 0
    corrupt_packets: int = 0


def _in_span(t: float, start: float | None, end: float | None) -> bool:
    return (start is None or t >= start - EPS) and (end is None or t < end - EPS)


def demux_range(
    container: av.container.InputContainer,
    start: float | None,
    end: float | None,
    stats: DecodeStats,
    threads: int = 2,
) -> Iterator[av.VideoFrame | av.Packet]:
    """Yield, in file order, decoded video frames with start <= time < end and the
    other streams' packets in that range (still encoded, for copying).

    With a start time it seeks to the keyframe before it and decodes forward,
    dropping frames before `start`: frame-accurate without decoding from the top.
    Packets that fail to decode are counted in `stats` and skipped.
    """
    video = container.streams.video[0]
    if not video.codec_context.is_open:  # set once: a second range of the same container reuses the decoder
        video.thread_type = "AUTO"
        video.thread_count = threads
    others = [s for s in container.streams if s.type in ("audio", "subtitle")]
    if start:
        _seek_before(container, video, start)
    video_done = False
    for packet in container.demux([video, *others]):
        if packet.stream.type != "video":
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * packet.stream.time_base)
            if _in_span(t, start, end):
                yield packet
            elif video_done and end is not None and t > end + 2.0:
                return  # the other streams have passed the range too
            continue
        if video_done:
            continue
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            stats.corrupt_packets += 1
            continue
        for frame in frames:
            if frame.pts is None:
                continue
            t = frame.time
            if start is not None and t < start - EPS:
                continue
            if end is not None and t >= end - EPS:
                video_done = True  # keep demuxing a little: audio interleaved after the last frame
                break
            stats.frames += 1
            yield frame


def keyframe_times(container: av.container.InputContainer, start: float | None, end: float | None) -> list[float]:
    """Times (s) of the video's keyframe packets inside (start, end), sorted: the points a seek lands on.
    Reads packets only, decodes nothing (about a second for a feature film's index)."""
    video = container.streams.video[0]
    if start:
        _seek_before(container, video, start)
    else:
        container.seek(0)
    times = set()
    for packet in container.demux(video):
        if packet.pts is None or not packet.is_keyframe:
            continue
        t = float(packet.pts * packet.time_base)
        if end is not None and t >= end:
            break
        if start is None or t > start:
            times.add(t)
    return sorted(times)


def other_packets(container: av.container.InputContainer, start: float | None, end: float | None) -> Iterator[av.Packet]:
    """The audio and subtitle packets with start <= time < end, in file order, without decoding the video."""
    others = [s for s in container.streams if s.type in ("audio", "subtitle")]
    if not others:
        return
    if start:
        container.seek(max(0, int((start - 1.0) * av.time_base)), backward=True)
    for packet in container.demux(others):
        if packet.pts is None or packet.size == 0:
            continue
        t = float(packet.pts * packet.stream.time_base)
        if _in_span(t, start, end):
            yield packet
        elif end is not None and t > end + 2.0:
            return  # every stream has passed the range


def first_frame_time(container: av.container.InputContainer, start: float) -> float | None:
    """Time of the first frame at or after `start` (s), as demux_range finds it; None if there is none."""
    for item in demux_range(container, start, None, DecodeStats(), threads=1):
        if isinstance(item, av.VideoFrame):
            return float(item.time)
    return None


def grays(frame: av.VideoFrame, deep: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """-> the frame's gray (H, W) uint8, and for a deep output its gray at 16 bits (H, W) uint16. The 8-bit
    one is then rounded from the 16-bit one: one conversion instead of two (0.6 against 1.9 ms a 720x576
    10-bit frame), within 2 levels of swscale's own."""
    if not deep:
        return frame.to_ndarray(format="gray"), None
    g16 = frame.to_ndarray(format="gray16le")
    return np.minimum((g16.astype(np.uint32) + 128) >> 8, 255).astype(np.uint8), g16


def has_colour(frame: av.VideoFrame) -> bool:
    """Does the source carry real colour? (mean Lab chroma of a small RGB rendering)"""
    small = frame.reformat(width=64, height=36, format="rgb24").to_ndarray().astype(np.float32) / 255.0
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean()) > 4.0


def grays_between(path: Path, start: float, until: float) -> list[tuple[float, np.ndarray]]:
    """(time in s, gray (H, W) uint8 as stored) of a file's frames from `start` to the first frame at or
    after `until`, from a decoder of its own (the keyframes' window before each keyframe)."""
    out = []
    with open_input(path) as container:
        for item in demux_range(container, start, None, DecodeStats(), threads=1):
            if not isinstance(item, av.VideoFrame):
                continue
            out.append((item.time, grays(item, False)[0]))
            if item.time >= until - EPS:
                break
    return out


def video_packets(path: Path, first: float) -> Iterator[av.Packet]:
    """The video packets of a file (a finished segment's part), in decode order, their timestamps moved so
    that its first frame is at `first` seconds (an MP4's edit list shifts them by a few ticks). Matroska
    stores no decode times: the leading packets' missing ones are counted back from the first it has."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        head = [p.pts for p, _ in zip(container.demux(stream), range(64), strict=False) if p.pts is not None]
        shift = round(first / stream.time_base) - min(head) if head else 0
        container.seek(0)
        waiting: list[av.Packet] = []
        for packet in container.demux(stream):
            if not packet.size:  # the empty packet that marks the end
                continue
            if packet.pts is not None:
                packet.pts += shift
            if packet.dts is None and packet.pts is not None:
                waiting.append(packet)
                continue
            if packet.dts is not None:
                packet.dts += shift
            for k, early in enumerate(waiting):
                early.dts = (packet.dts or 0) - (len(waiting) - k) * (packet.duration or 1)
                yield early
            waiting = []
            yield packet
        yield from waiting


def _seek_before(container: av.container.InputContainer, video: av.video.stream.VideoStream, start: float) -> None:
    """Seek so that decoding restarts at a keyframe at or before `start`.

    Containers without an index (MPEG-TS) seek by estimate and can land after
    the target or between keyframes; probe the first decoded frame and step
    back until it is a keyframe early enough (at worst, the file's beginning).
    """
    tb = video.time_base
    first = float(video.start_time * tb) if video.start_time is not None else 0.0
    target = start
    for _ in range(8):
        if not _seek(container, video, target, first):
            # FFmpeg refuses even the start of a video stream without a single frame: nothing to decode,
            # and the run says so. A stream with frames that cannot be sought in is an error, not a skip.
            if _first_frame(container, video)[0] is None:
                return
            raise _unseekable(container, start)
        t, key = _first_frame(container, video)
        if t is None or (t <= start + EPS and key) or target <= first:
            break
        target = max(first, target - max(1.0, 2 * (t - start)))
    if not _seek(container, video, target, first):
        raise _unseekable(container, start)


def _unseekable(container: av.container.InputContainer, start: float) -> VidcolorError:
    return VidcolorError(f"{Path(container.name).name}: FFmpeg cannot seek to {start:g} s in it. Re-mux it (or colour it whole)")


def _seek(container: av.container.InputContainer, video: av.video.stream.VideoStream, target: float, first: float) -> bool:
    """-> whether FFmpeg took the seek."""
    try:
        if target <= first:
            container.seek(0)  # the very beginning, whatever the stream's timestamps say
        else:
            container.seek(int(math.floor(target / video.time_base)), stream=video, backward=True, any_frame=False)
    except av.error.FFmpegError:
        return False
    return True


def _first_frame(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> tuple[float | None, bool]:
    """Time of the first frame decoded from here, and whether it is a keyframe."""
    for packet in container.demux(video):
        try:
            for frame in packet.decode():
                if frame.pts is not None:
                    return float(frame.time), bool(frame.key_frame)
        except av.error.FFmpegError:
            continue
    return None, False


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"


def container_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise VidcolorError(f"cannot write {path.suffix or 'files without an extension'}: name the output .mp4, .mkv or .mov")
    return fmt


PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def check_encode(options: EncodeOptions) -> None:
    check_codec(options.codec)
    if options.codec in ("libx264", "libx265") and options.preset not in PRESETS:
        raise VidcolorError(f"unknown preset {options.preset!r}: use one of {', '.join(PRESETS[:-1])}")


def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise VidcolorError(f"unknown codec {codec!r}: use one of {', '.join(CODECS)}")
    if codec not in av.codecs_available:
        raise VidcolorError(f"this FFmpeg build has no {codec} encoder: use --codec libx264")


# Planar Y'CbCr formats FFV1 keeps as they are (chroma format and bit depth of the source).
FFV1_KEEPS = {
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "yuv420p12le",
    "yuv422p12le",
    "yuv444p12le",
    "yuv420p16le",
    "yuv422p16le",
    "yuv444p16le",
}
_FULL_RANGE = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}
# A gray source has no chroma to keep: its colour output takes full chroma at the source's own depth (film scans).
_GRAY_DEEP = {"gray10le": "yuv444p10le", "gray12le": "yuv444p12le", "gray16le": "yuv444p16le", "gray16be": "yuv444p16le"}


def output_pix_fmt(info: SourceInfo, codec: str = "libx264") -> str:
    """FFV1 (lossless): the source's own chroma format and bit depth (a deep gray source: 4:4:4 at its depth). Otherwise 4:2:0 as players expect,
    4:4:4 for odd sizes, which 4:2:0 encoders refuse."""
    own = _GRAY_DEEP.get(info.pix_fmt) or _FULL_RANGE.get(info.pix_fmt, info.pix_fmt)
    even = info.width % 2 == 0 and (info.height % 2 == 0 or "420" not in own)
    if codec == "ffv1" and own in FFV1_KEEPS and (even or "444" in own):
        return own
    return "yuv444p" if info.width % 2 or info.height % 2 else "yuv420p"


def ends_mid_packet(container: av.container.InputContainer, path: Path) -> bool:
    """An MPEG transport stream is a run of fixed-size packets (188 bytes; 192 in .m2ts); one that ends
    inside a packet was cut short. (Its duration cannot tell: it is estimated from the last timestamp.)"""
    if container.format.name != "mpegts":
        return False
    size = path.stat().st_size
    return size % 188 != 0 and size % 192 != 0


def field_order(container: av.container.InputContainer, first: av.VideoFrame) -> int:
    """The source's field order: as its stream says, else from its first frame (DV, which is always
    bottom field first, often says nothing); PROGRESSIVE when the frames are not interlaced."""
    v = container.streams.video[0].codec_context
    if v.field_order in (TOP_FIRST, BOTTOM_FIRST, 4, 5):
        return TOP_FIRST if v.field_order in (TOP_FIRST, 4) else BOTTOM_FIRST
    if not first.interlaced_frame:
        return PROGRESSIVE
    return BOTTOM_FIRST if v.name == "dvvideo" else TOP_FIRST


def bit_depth(pix_fmt: str) -> int:
    return 16 if pix_fmt.endswith("16le") else 12 if pix_fmt.endswith("12le") else 10 if pix_fmt.endswith("10le") else 8


_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

# Metadata FFmpeg writes itself; copying it would be wrong about the new file.
# Not carried over: the source container's own brand and muxer tags, and "timecode", from which the MP4 and
# MOV muxers make a timecode track that the source did not have (a DV file's tag), and that a range would get wrong.
_SKIP_METADATA = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id", "timecode"}


class Writer:
    """Encodes composed frames and muxes copied packets into one output file.

    Timestamps: frames and packets keep the source's own timestamps, shifted by
    `offset` seconds (the range start), so variable frame rates stay variable
    and audio stays in sync. Only one thread may use a Writer.
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        source: av.container.InputContainer,
        info: SourceInfo,
        options: EncodeOptions,
        rotation: int,
        offset: float,
        notices: list[str],
        width: int | None = None,
        field_order: int = PROGRESSIVE,
        passthrough: bool = True,
        video_from: av.video.stream.VideoStream | None = None,
    ):
        """passthrough=False writes the video alone (no audio or subtitles: the uncertainty map, a segment).
        video_from: copy that already-encoded stream's packets (write_video_packet) instead of encoding
        frames (segments.py joins the segments' parts this way)."""
        self.out = av.open(str(path), mode="w", format=fmt)
        self.fmt = fmt
        self.offset = offset
        self.info = info
        self.out.metadata.update({k: v for k, v in source.metadata.items() if k.lower() not in _SKIP_METADATA})
        self.encodes = video_from is None
        if video_from is None:
            self.video = self._add_video(source.streams.video[0], info, options, rotation, width or info.width, field_order)
        else:
            self.video = self.out.add_stream_from_template(video_from)
            self.video.codec_context.framerate = info.rate  # a Matroska part gives its time base as its rate
            if rotation:
                self.video.set_display_rotation(rotation)
        self.pix_fmt = self.video.pix_fmt
        self.copies: dict[int, av.stream.Stream] = {}
        self.transcodes: dict[int, tuple[av.stream.Stream, av.stream.Stream, av.AudioResampler]] = {}
        for stream in source.streams if passthrough else []:
            if stream.type in ("audio", "subtitle"):
                self._add_passthrough(stream, notices)

    def _add_video(
        self,
        src: av.video.stream.VideoStream,
        info: SourceInfo,
        options: EncodeOptions,
        rotation: int,
        width: int,
        field_order: int,
    ):
        v = self.out.add_stream(options.codec, rate=info.rate)
        v.width, v.height = width, info.height
        v.pix_fmt = output_pix_fmt(info, options.codec)
        v.time_base = info.time_base
        v.codec_context.time_base = info.time_base
        # Anamorphic sources (PAL/NTSC DV, DVD, MPEG-2: SAR 64:45, 16:15, 8:9 ...) display at their own aspect.
        sar = src.codec_context.sample_aspect_ratio or src.sample_aspect_ratio
        if sar and sar.numerator > 0:
            v.codec_context.sample_aspect_ratio = sar
        interlaced = field_order in (TOP_FIRST, BOTTOM_FIRST)
        if interlaced:
            v.codec_context.field_order = field_order
        if options.codec in ("libx264", "libx265"):
            v.options = {"crf": str(options.crf), "preset": options.preset}
            if options.codec == "libx265":
                v.options["x265-params"] = "log-level=error"
            elif interlaced:  # field-coded like the source, so deinterlacing players treat it alike
                v.options["x264-params"] = "bff=1" if field_order == BOTTOM_FIRST else "tff=1"
        # What compose.py writes: limited-range BT.709 Y'CbCr.
        cc = v.codec_context
        cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1, 1
        if src.language:
            v.metadata["language"] = src.language
        if rotation:
            v.set_display_rotation(rotation)
        return v

    def _add_passthrough(self, stream: av.stream.Stream, notices: list[str]) -> None:
        name = stream.codec_context.name
        if name in COPYABLE.get(self.fmt, self.out.supported_codecs):
            self.copies[stream.index] = self.out.add_stream_from_template(stream)
        elif stream.type == "audio":
            rate = stream.codec_context.sample_rate or 48000
            # Sources may declare only a channel count; AAC needs a named layout.
            layout = _LAYOUTS.get(stream.codec_context.layout.nb_channels, "stereo")
            enc = self.out.add_stream("aac", rate=rate, layout=layout)
            if stream.language:
                enc.metadata["language"] = stream.language
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self.transcodes[stream.index] = (stream, enc, resampler)
            notices.append(f"audio stream {stream.index} ({name}) does not fit this container: transcoded to AAC")
        else:
            notices.append(f"subtitle stream {stream.index} ({name}) does not fit this container: left out (try -o out.mkv)")

    def write_frame(self, frame: av.VideoFrame) -> None:
        """frame: composed output picture whose pts is still the source's."""
        frame.pts = frame.pts - round(self.offset / self.info.time_base)
        frame.time_base = self.info.time_base
        with self._stage(f"encoding the video ({self.video.codec_context.name}, {self.video.pix_fmt})"):
            self.out.mux(self.video.encode(frame))

    def write_video_packet(self, packet: av.Packet) -> None:
        """A packet of the `video_from` stream, its timestamps already the output's."""
        with self._stage("joining the segments"):
            packet.stream = self.video
            self.out.mux(packet)

    @contextmanager
    def _stage(self, what: str) -> Iterator[None]:
        """FFmpeg errors while writing become one line naming the stage and the stream, with FFmpeg's reason."""
        try:
            yield
        except av.error.FFmpegError as e:
            raise VidcolorError(
                f"{what} into the .{self.fmt.replace('matroska', 'mkv')} output failed ({_reason(e)}): "
                "no output was written. Try another container (-o NAME.mkv) or --codec"
            ) from None

    def write_packet(self, packet: av.Packet) -> None:
        stream = packet.stream
        with self._stage(f"writing {stream.type} stream {stream.index} ({stream.codec_context.name})"):
            self._write_packet(packet)

    def _write_packet(self, packet: av.Packet) -> None:
        idx = packet.stream.index
        if idx in self.copies:
            out_stream = self.copies[idx]
            shift = round(self.offset / packet.time_base) if self.offset else 0
            packet.pts = packet.pts - shift
            if packet.dts is not None:
                packet.dts = packet.dts - shift
            packet.stream = out_stream
            self.out.mux(packet)
        elif idx in self.transcodes:
            src, enc, resampler = self.transcodes[idx]
            try:
                frames = src.decode(packet)
            except av.error.FFmpegError:
                return
            for f in frames:
                for g in resampler.resample(f):
                    g.pts = None  # the encoder counts samples from the range start
                    self.out.mux(enc.encode(g))

    def close(self) -> None:
        with self._stage("finishing the file"):
            if self.encodes:
                self.out.mux(self.video.encode())
            for _, enc, _ in self.transcodes.values():
                self.out.mux(enc.encode())
            self.out.close()

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - the file is deleted next anyway
            pass
