"""colorize_video(src, dst, options): the whole tool as one function.

Three stages joined by small bounded queues, so memory does not grow with the
film and both cores stay busy (PyAV and torch release the GIL):

    decoder thread:  demux + decode -> full-res gray (H, W) uint8; other streams' packets as they come
    calling thread:  working-res gray -> flow, temporal state, model -> ab (h, w, 2) float32
    encoder thread:  compose Y'CbCr from the source luma + ab -> encode -> mux (with the copied packets)

The output is written to a hidden temporary file beside the destination and
renamed into place only when everything succeeded.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np

from .color import gray_to_lightness_lut
from .compose import Composer
from .errors import VidcolorError
from .film import Workers, default_jobs, join_parts, run_parts
from .inference import Ahead, Colorizer
from .keyframes import Keyframes, KeyframeSpec, check_keyframes, painted_full
from .lookahead import LookAhead
from .outfile import check_output, create_partial, output_lock, remove_stale_partials
from .precision import torch_threads
from .reference import ReferenceMatch, reference_histogram
from .segments import PartInfo, PartJob, Segment, WorkFolder, file_hash, file_identity, plan_segments
from .sheet import SheetSampler, heat_map
from .temporal import Guide, Link, TemporalOptions, TemporalState, Tracker, gray_input
from .video import (
    EPS,
    DecodeStats,
    EncodeOptions,
    SourceInfo,
    Writer,
    bit_depth,
    check_encode,
    container_format,
    demux_range,
    describe,
    ends_mid_packet,
    field_order,
    first_frame_time,
    keyframe_times,
    open_input,
    output_pix_fmt,
)
from .weights import default_model_path


@dataclass(frozen=True)
class ColorizeOptions:
    start: float | None = None  # seconds
    end: float | None = None  # seconds (exclusive)
    work_size: int = 256  # long side of the working resolution, in pixels
    temperature: float | None = None  # annealed-mean T; None = the model's default
    saturation: float | None = None  # 0 cautious .. 1 vivid (undoes less of the rebalancing); None = the model's
    temporal: bool = True
    temporal_options: TemporalOptions = field(default_factory=TemporalOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    device: str = "auto"
    model: Path | None = None
    preview: bool = False  # side-by-side clip (gray | colour) + contact sheet instead of the plain output
    keyframes: tuple[KeyframeSpec, ...] = ()  # the user's coloured frames (keyframes.py)
    keyframe_reach: float = 10.0  # seconds before a keyframe its colours are carried back to
    uncertainty: Path | None = None  # also write the network's uncertainty as a heat-map video here
    reference: Path | None = None  # a colour photo whose colours each shot moves toward (reference.py)
    sheet_frames: int = 6
    # Long films (film.py, segments.py): segments of about this many seconds, each preceded by `warmup` s
    # of frames that only warm the temporal state up; finished segments survive a kill and are reused.
    segment: float = 60.0  # 0 = one pass, no segments
    # 6 s, not 2: the fed-back loop holds its colours longer than the blend alone did, and after 2 s a
    # segment's first frames still differed from the one-pass output's (colour change across a seam 1.3-2.6x
    # the median inside segments; 1.1-1.3x after 6 s, benchmarks/long.py --only seams), for 7 % more frames.
    warmup: float = 6.0
    fresh: bool = False  # ignore finished segments of an earlier run
    jobs: int = 0  # worker processes; 0 = from the core count (film.default_jobs)
    threads: int = 0  # torch threads per worker; 0 = the cores / jobs
    ray: str | None = None  # run the segments as Ray tasks: "auto" or a cluster's address


@dataclass
class Progress:
    frames: int
    total: int  # estimate, 0 when unknown
    elapsed: float


class StageTimes:
    """Seconds spent per stage (the decoder thread: decode, flow; the main one: model, blend; the encoder
    thread: compose, encode), so stages on different threads overlap."""

    names = ("decode", "flow", "model", "blend", "compose", "encode")

    def __init__(self) -> None:
        self.seconds = {n: 0.0 for n in self.names}
        self.lock = threading.Lock()  # the decoder, main and model threads add to it

    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        with self.lock:
            self.seconds[name] += now - since
        return now

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        return {n: 1000.0 * s / max(1, frames) for n, s in self.seconds.items()}


@dataclass
class Summary:
    output: Path
    frames: int
    duration: float  # seconds of video written
    elapsed: float
    notices: list[str]
    sheet: Path | None = None
    lost_packets: int = 0
    stages: StageTimes | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Fit (width, height) into long_side, keeping the aspect; never upscale; even sides."""
    s = min(1.0, long_side / max(width, height))
    return max(16, 2 * round(width * s / 2)), max(16, 2 * round(height * s / 2))


def preview_paths(dst: Path) -> tuple[Path, Path]:
    return dst.with_name(dst.stem + ".preview" + dst.suffix), dst.with_name(dst.stem + ".preview.png")


def default_preview_range(info: SourceInfo, start: float | None, end: float | None) -> tuple[float, float]:
    """5 s from the middle unless the user chose a range."""
    if start is not None or end is not None:
        s = start or 0.0
        return s, end if end is not None else s + 5.0
    mid = info.start + info.duration / 2
    return max(info.start, mid - 2.5), max(info.start, mid - 2.5) + 5.0


class _Stage(threading.Thread):
    """A worker thread whose exception is re-raised in the caller by join_checked()."""

    def __init__(self, target: Callable[[], None], name: str):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self.error = e
        finally:
            # The target is a bound method of the job that holds this stage: a cycle, freed only by a full
            # collection, rare in a long run. Dropped here as threading.Thread drops its own target.
            self._target_fn = None


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event, worker: _Stage) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if worker.error is not None:
                raise worker.error from None
            if stop.is_set() or not worker.is_alive():
                raise VidcolorError("internal error: a pipeline stage stopped without a result") from None


def _grays(frame: av.VideoFrame, deep: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """-> the frame's gray (H, W) uint8, and for a deep output its gray at 16 bits (H, W) uint16. The 8-bit
    one is then rounded from the 16-bit one: one conversion instead of two (0.6 against 1.9 ms a 720x576
    10-bit frame), within 2 levels of swscale's own."""
    if not deep:
        return frame.to_ndarray(format="gray"), None
    g16 = frame.to_ndarray(format="gray16le")
    return np.minimum((g16.astype(np.uint32) + 128) >> 8, 255).astype(np.uint8), g16


def _is_color(frame: av.VideoFrame) -> bool:
    """Does the source carry real colour? (mean Lab chroma of a small RGB rendering)"""
    small = frame.reformat(width=64, height=36, format="rgb24").to_ndarray().astype(np.float32) / 255.0
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean()) > 4.0


_END = object()


def colorize_video(src: Path, dst: Path, options: ColorizeOptions, progress: Callable[[Progress], None] | None = None) -> Summary:
    """Colorize src into dst (or, with options.preview, into dst's preview clip and sheet)."""
    src, dst = Path(src), Path(dst)
    if str(src) == "-":
        raise VidcolorError("reading from standard input (-) is not supported: save the stream to a file and give its name")
    container_format(dst)
    check_output(src, dst)
    if options.preview:
        for path in preview_paths(dst):
            check_output(src, path)
    if options.uncertainty is not None:
        container_format(options.uncertainty)
        check_output(src, options.uncertainty)
        if Path(options.uncertainty).resolve() in {Path(p).resolve() for p in (dst, *preview_paths(dst))}:
            raise VidcolorError(f"--uncertainty {options.uncertainty} is also the colour output: give it its own name")
    check_encode(options.encode)
    if options.start is not None and options.end is not None and options.end <= options.start:
        raise VidcolorError(
            f"the end ({options.end:g} s) is not after the start ({options.start:g} s): give an end later than the start"
        )
    container = open_input(src)
    try:
        info = describe(container)
        # User times count from the start of the file, like ffmpeg's -ss; streams
        # such as MPEG-TS carry timestamps that begin later.
        base = max(0.0, (container.start_time or 0) / av.time_base)
        start = None if options.start is None else options.start + base
        end = None if options.end is None else options.end + base
        if options.preview:
            start, end = default_preview_range(info, start, end)
            dst, sheet = preview_paths(dst)
        else:
            sheet = None
        if options.keyframes:
            if not options.temporal:
                raise VidcolorError("--keyframe needs the temporal path that carries its colours: drop --no-temporal")
            check_keyframes(
                [KeyframeSpec(k.time + base, k.image) for k in options.keyframes],
                start,
                end,
                base + info.duration if info.duration else 0.0,
            )
        if start is not None and info.duration and start >= info.start + info.duration:
            raise VidcolorError(
                f"the start {start - base:g} s is past the end of {src.name} ({info.duration:.2f} s long): "
                "choose an earlier start"
            )
        colorizer = Colorizer.load(options.model, options.device, options.temperature, options.saturation)
        match = _shot_match(options.reference, colorizer)  # read before any output exists: a bad photo is a clean error
        with output_lock(dst), torch_threads(options.threads):
            if _segmented(options):
                plan = _plan(src, info, start, end, options.segment)
                if len(plan) > 1:
                    return _run_film(container, info, src, dst, plan, (start, end), options, colorizer, progress)
            return _run(container, info, src, dst, sheet, start, end, options, colorizer, progress, match)
    finally:
        container.close()


def _shot_match(reference: Path | None, colorizer: Colorizer) -> ShotMatch | None:
    if reference is None:
        return None
    return ShotMatch(ReferenceMatch(reference_histogram(reference, colorizer.model.colors.bins.cpu())))


def _segmented(options: ColorizeOptions) -> bool:
    """Segments need each frame's colours to depend on a few seconds before it only: not with keyframes
    (their colours reach a whole shot), and not for previews or the uncertainty map (one pass is enough)."""
    return options.segment > 0 and not options.preview and not options.keyframes and options.uncertainty is None


def _plan(src: Path, info: SourceInfo, start: float | None, end: float | None, length: float) -> list[Segment]:
    """The range's segments, planned on the source's keyframes over its known end; the last one runs to
    the range's own end (None: wherever the frames stop). Scanned with a container of its own."""
    known_end = end if end is not None else (info.start + info.duration if info.duration else None)
    if known_end is not None and known_end - (start or 0.0) < 1.5 * length:
        return [Segment(0, start or 0.0, end)]  # too short to split: no need to read the index
    container = open_input(src)
    try:
        keys = keyframe_times(container, start, known_end)
    finally:
        container.close()
    plan = plan_segments(keys, start, known_end, length)
    return [*plan[:-1], replace(plan[-1], end=end)]


def _run_film(
    container,
    info: SourceInfo,
    src: Path,
    dst: Path,
    plan: list[Segment],
    span: tuple,
    options: ColorizeOptions,
    colorizer: Colorizer,
    progress,
) -> Summary:
    """A range of several segments: the missing parts (film.run_parts), then one join into dst."""
    t0 = time.perf_counter()
    start, end = span
    offset = _output_offset(container, src, info, span)
    notices = remove_stale_partials(dst)
    folder = WorkFolder(dst, _manifest(src, plan, span, offset, options, colorizer), fresh=options.fresh).open()
    notices += folder.notices
    finished = folder.done()
    # A part reads on past its end for the look-ahead of its last frames, as the one-pass run does;
    # the last one stops where the range does.
    ahead = _look_ahead_seconds(options, info)
    todo = [
        PartJob(src, folder.partial(s.index), s, s.warm_start(options.warmup, start), s.read_end(ahead, end), offset, options)
        for s in plan
        if s.index not in finished
    ]
    base, total = sum(i.frames for i in finished.values()), _expected_frames(info, start, end)

    def done(n: int) -> None:
        if progress is not None:
            progress(Progress(base + n, total, time.perf_counter() - t0))

    workers = Workers(jobs=options.jobs or default_jobs(), threads=options.threads, ray=options.ray)
    run_parts(folder, todo, colorize_part, workers, done, colorizer)
    recorded = folder.done()  # read once: it opens every part's record
    infos = [recorded[s.index] for s in plan]
    notices += dict.fromkeys(x for i in infos for x in i.notices)  # every part says it again: once is enough
    tmp = create_partial(dst)
    try:
        parts = [(folder.part(s.index), i) for s, i in zip(plan, infos, strict=True)]
        join_parts(parts, src, tmp, container_format(dst), info, offset, span, notices)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder.remove()
    duration = infos[-1].last - infos[0].first + float(1 / info.rate)
    return Summary(dst, sum(i.frames for i in infos), duration, time.perf_counter() - t0, notices)


def _look_ahead_frames(options: ColorizeOptions) -> int:
    """Frames a run's look-ahead waits for (lookahead.py): TemporalOptions.look_ahead; 0 per frame."""
    return options.temporal_options.look_ahead if options.temporal else 0


def _look_ahead_seconds(options: ColorizeOptions, info: SourceInfo) -> float:
    """How far past a frame its look-ahead reads (look_ahead frames), with a frame to spare; 0 without."""
    frames = _look_ahead_frames(options)
    return (frames + 1) / float(info.rate) if frames > 0 else 0.0


def _output_offset(container, src: Path, info: SourceInfo, span: tuple) -> float:
    """Seconds taken off every timestamp, as the one-pass run does: a range starts at its first frame; a
    whole file keeps its own times, moved to 0 only when the container starts late (MPEG-TS)."""
    start, end = span
    if start is None:
        return max(0.0, (container.start_time or 0) / av.time_base)
    offset = first_frame_time(container, start)
    if offset is None:
        raise _no_frames_error(src, info, start, end, DecodeStats())
    return offset


def _manifest(src: Path, plan: list[Segment], span: tuple, offset: float, options: ColorizeOptions, colorizer: Colorizer) -> dict:
    """Everything that changes a part's pixels or timestamps (segments.WorkFolder keeps parts only if it is
    unchanged); --jobs, --threads and --ray are left out: a resumed run may use other workers."""
    reference = None if options.reference is None else file_hash(Path(options.reference))
    return {
        "input": file_identity(src),
        "model": file_hash(Path(options.model) if options.model is not None else default_model_path()),
        "plan": [[s.start, s.end] for s in plan],
        "range": list(span),
        "offset": offset,
        "settings": {
            "work_size": options.work_size,
            "decode": colorizer.decode.to_dict(),
            "temporal": options.temporal,
            "temporal_options": asdict(options.temporal_options.filled(colorizer.feedback)),
            "encode": asdict(options.encode),
            "reference": reference,
            "warmup": options.warmup,
            "device": str(colorizer.device),
            "dtype": str(colorizer.dtype),
        },
    }


def colorize_part(job: PartJob, colorizer: Colorizer | None = None, progress: Callable[[int], None] | None = None) -> PartInfo:
    """One segment into job.path, video alone: frames from job.decode_from warm the temporal state up, those
    from the segment's start to its end are written (film.py runs this here, in a process or on Ray)."""
    options: ColorizeOptions = job.options  # type: ignore[assignment]
    if colorizer is None:
        colorizer = Colorizer.load(options.model, options.device, options.temperature, options.saturation)
    container = open_input(job.src)
    try:
        info = describe(container)
        write_from = job.segment.start if job.segment.index > 0 else -math.inf
        report = None if progress is None else (lambda p: progress(p.frames))
        run = _Job(
            container,
            info,
            job.src,
            job.path,
            container_format(job.path),
            (job.decode_from, job.decode_to),
            options,
            colorizer,
            None,
            report,
            match=_shot_match(options.reference, colorizer),
            part=(write_from, math.inf if job.segment.end is None else job.segment.end, job.offset),
        )
        try:
            summary = run.run()
        except BaseException:
            with _signals_ignored():
                run.abort()
            raise
        return PartInfo(summary.frames, run.first_time, run.last_time, tuple(summary.notices))
    finally:
        container.close()


def _run(
    container,
    info: SourceInfo,
    src: Path,
    dst: Path,
    sheet: Path | None,
    start,
    end,
    options: ColorizeOptions,
    colorizer: Colorizer,
    progress,
    match: ShotMatch | None = None,
) -> Summary:
    fmt = container_format(dst)
    stale = remove_stale_partials(dst)
    heat = options.uncertainty
    heat_tmp = create_partial(heat) if heat is not None else None
    job = _Job(container, info, src, create_partial(dst), fmt, (start, end), options, colorizer, sheet, progress, heat_tmp, match)
    try:
        summary = job.run()
        if heat is not None:
            os.replace(heat_tmp, heat)
        os.replace(job.tmp, dst)
        summary.output = dst
        summary.notices[:0] = stale
        return summary
    except BaseException:
        with _signals_ignored():  # a second Ctrl-C must not interrupt the cleanup itself
            job.abort()
            if heat_tmp is not None:
                heat_tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    old = {s: signal.signal(s, signal.SIG_IGN) for s in names}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class _Decoded(NamedTuple):
    """A video frame as the decoder thread hands it on."""

    frame: av.VideoFrame
    gray: np.ndarray  # (H, W) uint8, full size, as stored
    deep: np.ndarray | None  # the source's luma at its own depth, for outputs deeper than 8 bits
    small: np.ndarray  # (h, w) uint8, upright, at the working size
    link: Link | None  # how it follows the frame before (None without temporal)
    ahead: Future | None  # the network's output on its input, under way (inference.Ahead), or None


class _Done(NamedTuple):
    """A frame the temporal state has finished, as it waits in the look-ahead for the frames after it."""

    pts: int
    time: float
    gray: np.ndarray  # (H, W) uint8, full size, as stored
    deep: np.ndarray | None
    unc: np.ndarray  # (h, w) float32 in [0, 1], upright, at the working size
    at_key: KeyframeSpec | None  # the keyframe painted on this frame, if it is one


class _Job:
    """One run: the queues, the three stages, the writer and the temporary output file."""

    def __init__(
        self,
        container,
        info: SourceInfo,
        src: Path,
        tmp: Path,
        fmt: str,
        span: tuple,
        options: ColorizeOptions,
        colorizer: Colorizer,
        sheet: Path | None,
        progress,
        heat_tmp: Path | None = None,
        match: ShotMatch | None = None,
        part: tuple[float, float, float] | None = None,
    ):
        # A segment's part (colorize_part): (write_from, write_until, offset) in seconds. Frames before
        # write_from only warm the temporal state up, those from write_until on are only the look-ahead
        # of the last ones written; the part holds video alone, its timestamps the whole output's.
        self.part = part
        self.first_time: float | None = None
        self.heat_tmp = heat_tmp
        self.match = match  # the reference photo's (reference.py), or None
        self.heat: Writer | None = None
        self.container, self.info, self.src, self.tmp, self.fmt = container, info, src, tmp, fmt
        self.start, self.end = span
        self.options, self.colorizer, self.sheet, self.progress = options, colorizer, sheet, progress
        self.temporal_options = options.temporal_options.filled(colorizer.feedback)  # the weights' own where unset
        self.stop = threading.Event()
        self.stats = DecodeStats()
        self.times = StageTimes()
        self.notices: list[str] = []
        self.frames_q: queue.Queue = queue.Queue(maxsize=6)
        # At the end of a run the look-ahead hands on all the frames it holds at once: room for them, so
        # that the main thread does not wait on the encoder (and the network with it) while it takes them.
        self.encode_q: queue.Queue = queue.Queue(maxsize=6 + _look_ahead_frames(options))
        self.decoder = _Stage(self._decode, "vidcolor-decode")
        self.encoder: _Stage | None = None
        self.writer: Writer | None = None
        self.shots = SheetSampler(options.sheet_frames) if sheet is not None else None  # previews only
        # The source's luma at its own depth, for an output deeper than 8 bits (FFV1 keeps the source's).
        self.deep = bit_depth(output_pix_fmt(info, options.encode.codec)) > 8
        self.wsize = working_size(info.width, info.height, options.work_size)
        # Flow and shot boundaries need only the gray frames: found on the decoder's thread, beside the network.
        self.lut = gray_to_lightness_lut()  # (256,) Lab L of each gray level, for the tracker and the state
        self.tracker = Tracker(self.temporal_options, self.lut) if options.temporal else None
        self.ahead: Ahead | None = None  # set by run() when frames can be predicted ahead
        self.ahead_mode = _predicts_ahead(options, self.temporal_options, match)
        self.written, self.last_written = 0, 0.0  # frames on the encoder's queue, and the last one's time
        self.look: LookAhead[_Done] | None = None  # set with the output (_open_output)
        self.t0, self.total = time.perf_counter(), _expected_frames(info, self.start, self.end)  # for progress

    def _decode(self) -> None:
        """Decoder thread: video frames with their full-res gray (and deep luma), their upright working-size
        gray and its temporal.Link to the frame before; other packets as they come."""
        t = time.perf_counter()
        for item in demux_range(self.container, self.start, self.end, self.stats):
            if self.stop.is_set():
                return
            if isinstance(item, av.VideoFrame):
                gray, deep = _grays(item, self.deep)
                small = _working_gray(gray, self.wsize, int(item.rotation or 0) % 360)
                t = self.times.add("decode", t)
                link = self.tracker.link(small) if self.tracker is not None else None
                t = self.times.add("flow", t)
                gray_ahead = self.ahead is not None and self.ahead_mode == "gray"
                ahead = self.ahead.submit(gray_input(small)) if gray_ahead else None
                item = _Decoded(item, gray, deep, small, link, ahead)
            else:
                t = self.times.add("decode", t)
            _put(self.frames_q, item, self.stop)
            t = time.perf_counter()
        _put(self.frames_q, _END, self.stop)

    def _open_output(self, frame: av.VideoFrame, pending: list[av.Packet]) -> None:
        """On the first frame: rotation, colour check, the writer and the encoder thread."""
        opt, info = self.options, self.info
        self.rotation = int(frame.rotation or 0) % 360
        if _is_color(frame):
            self.notices.append(
                f"{self.src.name} already has colour: colorizing from its luminance only (its colours are replaced)"
            )
        # A range starts the output at its first frame; a whole file keeps its own
        # timestamps, moved to 0 only when the container starts late (MPEG-TS).
        if self.part is not None:
            offset = self.part[2]
        else:
            offset = frame.time if self.start is not None else max(0.0, (self.container.start_time or 0) / av.time_base)
        self.writer = Writer(
            self.tmp,
            self.fmt,
            self.container,
            info,
            opt.encode,
            self.rotation,
            offset,
            self.notices,
            width=info.width * (2 if opt.preview else 1),
            field_order=field_order(self.container, frame),
            passthrough=self.part is None,
        )
        composer = Composer(info.width, info.height, self.writer.pix_fmt, side_by_side=opt.preview)
        if self.heat_tmp is not None:
            heat_fmt = container_format(opt.uncertainty)
            self.heat = Writer(
                self.heat_tmp,
                heat_fmt,
                self.container,
                info,
                EncodeOptions(),
                self.rotation,
                offset,
                self.notices,
                passthrough=False,
            )
        self.state = TemporalState(self.temporal_options, self.lut, enabled=opt.temporal)
        look = _look_ahead_frames(opt)
        self.look = LookAhead(look, self.temporal_options.look_ahead_weight) if look > 0 else None
        self.keyframes = self._keyframes() if opt.keyframes else None
        self.encoder = _Stage(
            lambda: _encode_loop(self.encode_q, self.writer, composer, self.stop, self.shots, self.times, self.heat),
            "vidcolor-encode",
        )
        self.encoder.start()
        for p in pending if self.part is None else ():  # a range drops what comes before its first frame
            if self.start is None or float(p.pts * p.time_base) >= offset - EPS:
                _put(self.encode_q, p, self.stop)

    def _keyframes(self) -> Keyframes:
        """The keyframe guide; it reads the frames before each keyframe from a second decoder of the source."""
        base = max(0.0, (self.container.start_time or 0) / av.time_base)
        specs = [KeyframeSpec(k.time + base, k.image) for k in self.options.keyframes]
        lut = self.state.lut
        return Keyframes(specs, self._window, self.colorizer.predict, lut, self.temporal_options, self.options.keyframe_reach)

    def _window(self, start: float, key: float) -> list[tuple[float, np.ndarray]]:
        """keyframes.Window: upright working-size grays from `start` to the first frame at or after `key`."""
        out = []
        container = open_input(self.src)
        try:
            for item in demux_range(container, start, None, DecodeStats(), threads=1):
                if not isinstance(item, av.VideoFrame):
                    continue
                out.append((item.time, _working_gray(_grays(item, False)[0], self.wsize, self.rotation)))
                if item.time >= key - EPS:
                    break
        finally:
            container.close()
        return out

    def run(self) -> Summary:
        if self.ahead_mode is None:
            return self._run_frames()
        self.ahead = Ahead(self.colorizer, partial(self.times.add, "model"))  # not a closure over self: a cycle
        try:
            with torch_threads(self.ahead.threads):
                return self._run_frames()
        finally:
            self.ahead.close()

    def _run_frames(self) -> Summary:
        self.t0 = time.perf_counter()
        self.decoder.start()
        pending: list[av.Packet] = []
        held: deque[_Decoded] = deque()  # with feedback_lag 2: the frames whose prediction is under way
        while (item := _get(self.frames_q, self.stop, self.decoder)) is not _END:
            if isinstance(item, av.Packet):
                if self.part is not None:
                    continue  # a part is video alone: the join copies the audio once
                if self.writer is None:
                    pending.append(item)  # held until the first frame fixes the time offset
                else:
                    _put(self.encode_q, item, self.stop)
                continue
            if self.writer is None:
                self._open_output(item.frame, pending)
            if self.ahead_mode != "lagged":
                self._finish_frame(item)
                continue
            # Frame t's input holds frame t-2's output: finish t-2, then predict t beside t-1.
            if len(held) == 2:
                self._finish_frame(held.popleft())
            before = held[-1].link if held else None
            lagged = self.state.lagged_input(item.small, before, item.link, self._index(item.frame.time))
            held.append(item._replace(ahead=self.ahead.submit(lagged)))
        while held:
            self._finish_frame(held.popleft())
        for done, ab in self.look.flush() if self.look is not None else ():
            self._write(done, ab)
        frames, last_time = self.written, self.last_written
        if self.first_time is None:
            raise _no_frames_error(self.src, self.info, self.start, self.end, self.stats)
        self._finish()
        self._check_shortfall(last_time)
        self.last_time = last_time
        duration = last_time - self.first_time + float(1 / self.info.rate)
        return Summary(
            self.tmp,
            frames,
            duration,
            time.perf_counter() - self.t0,
            self.notices,
            self.sheet,
            self.stats.corrupt_packets,
            self.times,
        )

    def _finish_frame(self, item: _Decoded) -> None:
        """One decoded frame through the temporal state and the look-ahead; what leaves the look-ahead goes
        on to the encoder's queue."""
        frame, gray, deep, small, link, ahead = item
        guide = self.keyframes.guide(frame.time, self.state) if self.keyframes else None
        predicted = ahead.result() if ahead is not None else None
        index = self._index(frame.time)
        ab, unc = _colorize_frame(small, link, self.state, self.colorizer, self.times, guide, self.match, predicted, index)
        done = _Done(frame.pts, frame.time, gray, deep, unc, self.keyframes.at_key if self.keyframes else None)
        if self.look is None:
            self._write(done, ab)
            return
        t = time.perf_counter()
        leaving = self.look.push(done, ab, link.back if link is not None else None, index)
        self.times.add("blend", t)
        for d, smoothed in leaving:
            self._write(d, smoothed)

    def _index(self, t: float) -> int:
        """A frame's number in the film, from its time: the same in a segment as in the one-pass run, and in
        a range as in the whole film (where the temporal state's gray inputs fall, TemporalState._turn)."""
        return round((t - self.info.start) * float(self.info.rate))

    def _write(self, done: _Done, ab: np.ndarray) -> None:
        """A finished frame's upright working-size ab (h, w, 2) onto the encoder's queue; frames outside a
        part's span only warm the temporal state up, or are the look-ahead of its last ones."""
        if self.part is not None and not (self.part[0] - EPS <= done.time < self.part[1] - EPS):
            return
        k = self.rotation // 90
        unc = done.unc
        if k:
            ab, unc = np.rot90(ab, -k), np.rot90(unc, -k)
        ab, unc = np.ascontiguousarray(ab), np.ascontiguousarray(unc)
        if done.at_key is not None:
            ab = _painted_at_full_size(ab, done.at_key, done.gray.shape, self.rotation)
        if self.first_time is None:
            self.first_time = done.time
        _put(self.encode_q, (done.pts, done.gray, ab, done.deep, unc), self.stop)
        self.written, self.last_written = self.written + 1, done.time
        if self.encoder.error is not None:
            raise self.encoder.error
        if self.progress is not None:
            self.progress(Progress(self.written, self.total, time.perf_counter() - self.t0))

    def _finish(self) -> None:
        _put(self.encode_q, _END, self.stop)
        self.encoder.join()
        if self.encoder.error is not None:
            raise self.encoder.error
        self.decoder.join(timeout=5)
        if self.shots is not None:
            self.shots.write(self.sheet)
        if self.stats.corrupt_packets:
            self.notices.append(
                f"{self.stats.corrupt_packets} damaged packet(s) could not be decoded: those frames are missing from the output"
            )

    def _check_shortfall(self, last_time: float) -> None:
        """A file cut short (an interrupted copy or download) still decodes: say how much is missing."""
        info = self.info
        if ends_mid_packet(self.container, self.src):
            self.notices.append(
                f"{self.src.name} ends in the middle of a packet: it looks truncated (cut short while "
                "copying or downloading), and the output holds what decodes"
            )
            return
        if not info.duration:
            return
        # A part decodes past the frames it writes (their look-ahead): it answers for its own frames alone.
        until = self.end if self.part is None or math.isinf(self.part[1]) else self.part[1]
        declared_end = info.start + info.duration if until is None else min(until, info.start + info.duration)
        decoded_end = last_time + float(1 / info.rate)
        missing = declared_end - decoded_end
        if missing > max(0.5, 3 / float(info.rate)):
            self.notices.append(
                f"{self.src.name} ends early: its frames stop at {decoded_end - info.start:.2f} s of the "
                f"{declared_end - info.start:.2f} s it declares ({missing:.2f} s missing); it may be "
                "truncated, and the output holds what decodes"
            )

    def abort(self) -> None:
        """Stop every stage and delete the temporary output; the input was only ever read."""
        self.stop.set()
        if self.ahead is not None:
            self.ahead.close()
        for stage in (self.encoder, self.decoder):
            if stage is not None and stage.is_alive():
                stage.join(timeout=5)
        for writer in (self.writer, self.heat):
            if writer is not None:
                writer.abort()
        self.tmp.unlink(missing_ok=True)


def _expected_frames(info: SourceInfo, start: float | None, end: float | None) -> int:
    if not info.duration:
        return info.frames
    s = start or info.start
    e = min(end, info.start + info.duration) if end is not None else info.start + info.duration
    return max(0, int(round((e - s) * info.rate)))


def _no_frames_error(src: Path, info: SourceInfo, start, end, stats: DecodeStats) -> VidcolorError:
    if start is not None or end is not None:
        return VidcolorError(
            f"no frames of {src.name} fall between {start or 0:g} s and {end if end is not None else 'the end'} "
            f"(it is {info.duration:.2f} s long): choose a range inside the video"
        )
    if stats.corrupt_packets:
        return VidcolorError(
            f"{src.name} is damaged: none of its {stats.corrupt_packets} video packets decode. Try re-exporting it"
        )
    return VidcolorError(f"{src.name} has a video stream but no frames: there is nothing to colorize")


def _predicts_ahead(options: ColorizeOptions, temporal: TemporalOptions, match: ShotMatch | None) -> str | None:
    """How frames are predicted ahead of their use (inference.Ahead): "gray" when each frame's network input
    is its gray alone (no feedback), "lagged" when it holds frame t-2's output (feedback_lag 2: two frames
    at once), None when it must wait for frame t-1's (feedback_lag 1), or with keyframes (their colours are
    the input) or a reference photo (its bias follows the shot's frames so far)."""
    if options.keyframes or match is not None:
        return None
    if not temporal.feedback or not options.temporal:
        return "gray"
    return "lagged" if temporal.feedback_lag == 2 else None


def _working_gray(gray: np.ndarray, wsize: tuple[int, int], rotation: int) -> np.ndarray:
    """Full-res gray (H, W) uint8 as stored -> (h, w) uint8 at the working size, upright (what the network sees)."""
    small = cv2.resize(gray, wsize, interpolation=cv2.INTER_AREA)
    k = rotation // 90
    return np.ascontiguousarray(np.rot90(small, k)) if k else small


def _colorize_frame(
    upright: np.ndarray,
    link: Link | None,
    state: TemporalState,
    colorizer: Colorizer,
    times: StageTimes,
    guide: Guide | None = None,
    match: ShotMatch | None = None,
    predicted: tuple[np.ndarray, np.ndarray] | None = None,
    index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Upright working-size gray (h, w) uint8 and its link to the frame before (decoder thread) -> ab
    (h, w, 2) float32 at the working resolution, upright, and the network's uncertainty (h, w) float32 in
    [0, 1] (normalized entropy of its colour distribution). Model time is what the network
    took; "blend" is the rest of the temporal step (warps, the network's input, the blend). predicted:
    the network's output on the gray frame, computed ahead (inference.Ahead), or None. index: the frame's
    number in the film (TemporalState.step)."""
    t = time.perf_counter()
    in_model = [0.0]  # seconds in the network here (Ahead's workers add their own)

    def predict(rgb: np.ndarray, trusted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        t_model = time.perf_counter()
        out = colorizer.predict(rgb, match.current(state) if match is not None else None, trusted)
        in_model[0] += times.add("model", t_model) - t_model
        confidence.append(out[1])
        return out

    confidence: list[np.ndarray] = [] if predicted is None else [predicted[1]]
    ab = state.step(upright, predict, guide, link, predicted, index)
    unc = 1.0 - confidence[-1]
    times.add("blend", t + in_model[0])
    return ab, unc


def _painted_at_full_size(ab: np.ndarray, spec: KeyframeSpec, shape: tuple[int, int], rotation: int) -> np.ndarray:
    """A keyframe's own frame: ab (h, w, 2) at the working size -> (H, W, 2) at the frame's stored size, the
    user's colours exactly where they painted (the composer takes ab of any size)."""
    k = rotation // 90
    h, w = shape if k % 2 == 0 else shape[::-1]
    painted = painted_full(spec, h, w)
    user, weight = (np.rot90(painted.ab, -k), np.rot90(painted.weight, -k)) if k else (painted.ab, painted.weight)
    full = cv2.resize(ab, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(weight[..., None] * user + (1.0 - weight[..., None]) * full, dtype=np.float32)


class ShotMatch:
    """A ReferenceMatch that forgets the shot whenever the temporal state counts a cut."""

    def __init__(self, match: ReferenceMatch):
        self.match, self.cuts = match, 0

    def current(self, state: TemporalState) -> ReferenceMatch:
        if state.cuts != self.cuts:
            self.cuts = state.cuts
            self.match.reset()
        return self.match


def _encode_loop(
    q: queue.Queue,
    writer: Writer,
    composer: Composer,
    stop: threading.Event,
    shots: SheetSampler | None,
    times: StageTimes,
    heat: Writer | None = None,
) -> None:
    while not stop.is_set():
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is _END:
            writer.close()
            if heat is not None:
                heat.close()
            return
        if isinstance(item, av.Packet):
            writer.write_packet(item)
            continue
        pts, gray, ab, deep, unc = item
        t = time.perf_counter()
        frame = composer.frame(gray, ab, deep)
        frame.pts = pts
        t = times.add("compose", t)
        writer.write_frame(frame)
        if heat is not None:
            picture = heat_map(unc, gray.shape[1], gray.shape[0])
            f = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=heat.pix_fmt)
            f.pts = pts
            heat.write_frame(f)
        times.add("encode", t)
        if shots is not None and shots.wants():
            renders = (composer.rgb(gray, np.zeros_like(ab), 240), composer.rgb(gray, ab, 240))
            shots.add((*renders, heat_map(unc, 240, renders[0].shape[0])))
        elif shots is not None:
            shots.add(None)
