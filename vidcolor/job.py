"""One pass over a range of frames (a whole file, a preview, or a segment's part): Job.

Three stages joined by small bounded queues, so memory does not grow with the
film and both cores stay busy (PyAV and torch release the GIL):

    decoder thread:  demux + decode -> full-res gray (H, W) uint8; other streams' packets as they come
    calling thread:  working-res gray -> flow, temporal state, model -> ab (h, w, 2) float32
    encoder thread:  compose Y'CbCr from the source luma + ab -> encode -> mux (with the copied packets)

It writes into the temporary file it is given; pipeline.py renames it into place.
"""

from __future__ import annotations

import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from .color import gray_to_lightness_lut
from .colouring import AheadMode, Colouring, ShotMatch, ahead_mode, upright
from .compose import Composer
from .errors import VidcolorError
from .flow import Link, Tracker
from .inference import Ahead, Colorizer
from .keyframes import in_range
from .options import ColorizeOptions, Progress, StageTimes, Summary, working_size
from .precision import run_threads
from .sheet import SHEET_FRAMES, SheetSampler, heat_map
from .temporal import gray_input
from .video import (
    EPS,
    DecodeStats,
    EncodeOptions,
    SourceInfo,
    Writer,
    bit_depth,
    container_format,
    demux_range,
    ends_mid_packet,
    field_order,
    file_start,
    grays,
    grays_between,
    has_colour,
    output_pix_fmt,
)


class _Stage(threading.Thread):
    """A worker thread whose exception the calling thread re-raises (_get, Job._write, Job._finish)."""

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


def _get(q: queue.Queue, stop: threading.Event, worker: _Stage, times: StageTimes) -> object:
    """The worker's next item; the wait counts as "wait decoder"."""
    t = time.perf_counter()
    while True:
        try:
            item = q.get(timeout=0.1)
            times.add("wait decoder", t)
            return item
        except queue.Empty:
            if worker.error is not None:
                raise worker.error from None
            if stop.is_set() or not worker.is_alive():
                raise VidcolorError("internal error: a pipeline stage stopped without a result") from None


_END = object()


def look_ahead_frames(options: ColorizeOptions) -> int:
    """Frames a run's look-ahead waits for (lookahead.py): TemporalOptions.look_ahead; 0 per frame."""
    return options.temporal_options.look_ahead if options.temporal else 0


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Stop signals ignored while inside, so a second Ctrl-C cannot interrupt a cleanup; only the main
    thread may set handlers, and elsewhere nothing changes."""
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
    ahead: Future | None  # the network's output on its gray, under way (inference.Ahead), or None


class _Done(NamedTuple):
    """What the encoder needs of a frame besides its colours, as it goes through the colouring core."""

    pts: int
    time: float
    gray: np.ndarray  # (H, W) uint8, full size, as stored
    deep: np.ndarray | None


@dataclass(frozen=True)
class Part:
    """A segment's share of a run (pipeline.colorize_part), in seconds: frames before write_from only warm
    the temporal state up, those from write_until on are only the look-ahead of the last ones written;
    offset is where the whole output's timestamps start."""

    write_from: float
    write_until: float
    offset: float


@dataclass(frozen=True)
class Target:
    """Where one run writes."""

    tmp: Path  # the temporary output file (pipeline.py renames it into place)
    fmt: str  # its container format
    sheet: Path | None = None  # a preview's contact sheet
    heat: Path | None = None  # the uncertainty heat map's temporary file
    part: Part | None = None  # a segment's share: video alone, its timestamps the whole output's


class Job:
    """One run: the queues, the three stages, the writers and the temporary output file; the colours are
    the colouring core's (colouring.py)."""

    def __init__(
        self,
        container,
        info: SourceInfo,
        src: Path,
        span: tuple[float | None, float | None],
        target: Target,
        options: ColorizeOptions,
        colorizer: Colorizer,
        progress: Callable[[Progress], None] | None,
        match: ShotMatch | None = None,
    ):
        """span: the range of the source to read (s, either end None: the file's own); match: a reference
        photo's (reference.py), or None."""
        self.container, self.info, self.src, (self.start, self.end) = container, info, src, span
        self.tmp, self.fmt, self.sheet, self.heat_tmp, self.part = target.tmp, target.fmt, target.sheet, target.heat, target.part
        self.options, self.colorizer, self.progress, self.match = options, colorizer, progress, match
        self.first_time: float | None = None
        self.heat: Writer | None = None
        self.temporal_options = options.temporal_options.filled(colorizer.feedback)  # the weights' own where unset
        self.stop, self.stats, self.times, self.notices = threading.Event(), DecodeStats(), StageTimes(), []
        self.frames_q: queue.Queue = queue.Queue(maxsize=6)
        # At the end of a run the look-ahead hands on all the frames it holds at once: room for them, so
        # that the main thread does not wait on the encoder (and the network with it) while it takes them.
        self.encode_q: queue.Queue = queue.Queue(maxsize=6 + look_ahead_frames(options))
        self.decoder, self.encoder, self.writer = _Stage(self._decode, "vidcolor-decode"), None, None
        self.shots = SheetSampler(SHEET_FRAMES) if target.sheet is not None else None  # previews only
        # The source's luma at its own depth, for an output deeper than 8 bits (FFV1 keeps the source's).
        self.deep = bit_depth(output_pix_fmt(info, options.encode.codec)) > 8
        self.wsize = working_size(info.width, info.height, options.work_size)
        # Flow and shot boundaries need only the gray frames: found on the decoder's thread, beside the network.
        flow = (gray_to_lightness_lut(), self.temporal_options.flow_preset, look_ahead_frames(options) > 0)
        self.tracker = Tracker(*flow) if options.temporal else None
        self.ahead: Ahead | None = None  # set by run() when frames can be predicted ahead
        self.ahead_mode = ahead_mode(options, self.temporal_options, match is not None)
        self.written, self.last_written = 0, 0.0  # frames on the encoder's queue, and the last one's time
        self.core: Colouring[_Done] | None = None  # set with the output (_open_output)
        self.t0, self.total = time.perf_counter(), expected_frames(info, self.start, self.end)  # for progress

    def _decode(self) -> None:
        """Decoder thread: video frames with their full-res gray (and deep luma), their upright working-size
        gray and its temporal.Link to the frame before; other packets as they come."""
        t = time.perf_counter()
        for item in demux_range(self.container, self.start, self.end, self.stats):
            if self.stop.is_set():
                return
            if isinstance(item, av.VideoFrame):
                gray, deep = grays(item, self.deep)
                small = upright(gray, self.wsize, int(item.rotation or 0) % 360)
                t = self.times.add("decode", t)
                link = self.tracker.link(small) if self.tracker is not None else None
                t = self.times.add("flow", t)
                gray_ahead = self.ahead is not None and self.ahead_mode is AheadMode.GRAY
                ahead = self.ahead.submit(gray_input(small)) if gray_ahead else None
                item = _Decoded(item, gray, deep, small, link, ahead)
            else:
                t = self.times.add("decode", t)
            _put(self.frames_q, item, self.stop)
            t = time.perf_counter()
        _put(self.frames_q, _END, self.stop)

    def _open_output(self, frame: av.VideoFrame, pending: list[av.Packet]) -> None:
        """On the first frame: rotation, colour check, the writer, the colouring core and the encoder thread."""
        opt, info = self.options, self.info
        self.rotation = int(frame.rotation or 0) % 360
        if has_colour(frame):
            self.notices.append(
                f"{self.src.name} already has colour: colorizing from its luminance only (its colours are replaced)"
            )
        # A range starts the output at its first frame; a whole file keeps its own
        # timestamps, moved to 0 only when the container starts late (MPEG-TS).
        if self.part is not None:
            offset = self.part.offset
        else:
            offset = frame.time if self.start is not None else file_start(self.container)
        out = (self.container, info, opt.encode, self.rotation, offset, self.notices)
        width, order = info.width * (2 if opt.preview else 1), field_order(self.container, frame)
        self.writer = Writer(self.tmp, self.fmt, *out, width=width, field_order=order, passthrough=self.part is None)
        composer = Composer(info.width, info.height, self.writer.pix_fmt, side_by_side=opt.preview)
        if self.heat_tmp is not None:  # the uncertainty's heat map: video alone, default encoding
            heat = (self.container, info, EncodeOptions(), *out[3:])
            self.heat = Writer(self.heat_tmp, container_format(opt.uncertainty), *heat, passthrough=False)
        base = file_start(self.container)
        # With --points-across-shots, points outside the range lend their correction (checked in pipeline).
        keys, sources = in_range([replace(k, time=k.time + base) for k in opt.keyframes], self.start, self.end)
        self.core = Colouring(
            self.colorizer,
            opt,
            (info.height, info.width),
            self.rotation,
            keyframes=keys,
            window=self._window,
            sources=sources,
            match=self.match,
            submit=self.ahead.submit if self.ahead is not None else None,
            times=self.times,
        )
        self.encoder = _Stage(
            lambda: _encode_loop(self.encode_q, self.writer, composer, self.stop, self.shots, self.times, self.heat),
            "vidcolor-encode",
        )
        self.encoder.start()
        for p in pending if self.part is None else ():  # a range drops what comes before its first frame
            if self.start is None or float(p.pts * p.time_base) >= offset - EPS:
                _put(self.encode_q, p, self.stop)

    def _window(self, start: float, key: float) -> list[tuple[float, np.ndarray]]:
        """keyframes.Window: upright working-size grays from `start` to the first frame at or after `key`."""
        return [(t, upright(g, self.wsize, self.rotation)) for t, g in grays_between(self.src, start, key)]

    def run(self) -> Summary:
        if self.ahead_mode is AheadMode.NONE:
            return self._run_frames()
        self.ahead = Ahead(self.colorizer, partial(self.times.add, "model"))  # not a closure over self: a cycle
        try:
            with run_threads(self.ahead.threads):
                return self._run_frames()
        finally:
            self.ahead.close()

    def _run_frames(self) -> Summary:
        self.t0 = time.perf_counter()
        self.decoder.start()
        pending: list[av.Packet] = []
        while (item := _get(self.frames_q, self.stop, self.decoder, self.times)) is not _END:
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
            frame = item.frame
            done = _Done(frame.pts, frame.time, item.gray, item.deep)
            for d, ab, unc in self.core.push(
                done, item.small, item.link, frame.time, frame_number(self.info, frame.time), item.ahead
            ):
                self._write(d, ab, unc)
        for d, ab, unc in self.core.flush() if self.core is not None else ():
            self._write(d, ab, unc)
        frames, last_time = self.written, self.last_written
        if self.first_time is None:
            raise no_frames_error(self.src, self.info, self.start, self.end, self.stats)
        self._finish()
        notice = shortfall_notice(self.container, self.src, self.info, self.end, self.part, last_time)
        self.notices += [notice] if notice else []
        duration = last_time - self.first_time + float(1 / self.info.rate)
        return Summary(
            self.tmp,
            frames,
            duration,
            time.perf_counter() - self.t0,
            self.notices,
            self.sheet,
            self.times,
        )

    def _write(self, done: _Done, ab: np.ndarray, unc: np.ndarray) -> None:
        """A finished frame's ab (h, w, 2) and uncertainty (h, w), as stored, onto the encoder's queue; frames
        outside a part's span only warm the temporal state up, or are the look-ahead of its last ones."""
        if self.part is not None and not (self.part.write_from - EPS <= done.time < self.part.write_until - EPS):
            return
        if self.first_time is None:
            self.first_time = done.time
        t = time.perf_counter()
        _put(self.encode_q, (done.pts, done.gray, ab, done.deep, unc), self.stop)
        self.times.add("wait encoder", t)
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
        lost = self.stats.corrupt_packets
        self.notices += (
            [f"{lost} damaged packet(s) could not be decoded: those frames are missing from the output"] if lost else []
        )

    def abort(self) -> None:
        """Stop every stage and delete the temporary output; the input was only ever read."""
        self.stop.set()
        if self.ahead is not None:
            self.ahead.close()
        for stage in (s for s in (self.encoder, self.decoder) if s is not None and s.is_alive()):
            stage.join(timeout=5)
        for writer in (w for w in (self.writer, self.heat) if w is not None):
            writer.abort()
        self.tmp.unlink(missing_ok=True)


def shortfall_notice(
    container, src: Path, info: SourceInfo, end: float | None, part: Part | None, last_time: float
) -> str | None:
    """A file cut short (an interrupted copy or download) still decodes: what to say of what is missing,
    if anything. last_time: the last frame written's time (s)."""
    if ends_mid_packet(container, src):
        return (
            f"{src.name} ends in the middle of a packet: it looks truncated (cut short while "
            "copying or downloading), and the output holds what decodes"
        )
    if not info.duration:
        return None
    # A part decodes past the frames it writes (their look-ahead): it answers for its own frames alone.
    until = end if part is None or math.isinf(part.write_until) else part.write_until
    declared_end = info.start + info.duration if until is None else min(until, info.start + info.duration)
    decoded_end = last_time + float(1 / info.rate)
    missing = declared_end - decoded_end
    if missing <= max(0.5, 3 / float(info.rate)):
        return None
    return (
        f"{src.name} ends early: its frames stop at {decoded_end - info.start:.2f} s of the "
        f"{declared_end - info.start:.2f} s it declares ({missing:.2f} s missing); it may be "
        "truncated, and the output holds what decodes"
    )


def frame_number(info: SourceInfo, t: float) -> int:
    """A frame's number in the film, from its time (s): the same in a segment as in the one-pass run, and in
    a range as in the whole film (where the temporal state's gray inputs fall, TemporalState._turn)."""
    return round((t - info.start) * float(info.rate))


def expected_frames(info: SourceInfo, start: float | None, end: float | None) -> int:
    if not info.duration:
        return info.frames
    s = start or info.start
    e = min(end, info.start + info.duration) if end is not None else info.start + info.duration
    return max(0, int(round((e - s) * info.rate)))


def no_frames_error(src: Path, info: SourceInfo, start, end, stats: DecodeStats) -> VidcolorError:
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
