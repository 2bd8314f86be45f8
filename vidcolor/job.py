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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np

from .color import gray_to_lightness_lut
from .compose import Composer
from .errors import VidcolorError
from .inference import Ahead, Colorizer
from .keyframes import Keyframes, KeyframeSpec, painted_full
from .lookahead import LookAhead
from .options import ColorizeOptions, Progress, StageTimes, Summary, working_size
from .precision import torch_threads
from .reference import ReferenceMatch
from .sheet import SheetSampler, heat_map
from .temporal import Guide, Link, TemporalOptions, TemporalState, Tracker, gray_input
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
    open_input,
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
    ahead: Future | None  # the network's output on its input, under way (inference.Ahead), or None


class _Done(NamedTuple):
    """A frame the temporal state has finished, as it waits in the look-ahead for the frames after it."""

    pts: int
    time: float
    gray: np.ndarray  # (H, W) uint8, full size, as stored
    deep: np.ndarray | None
    unc: np.ndarray  # (h, w) float32 in [0, 1], upright, at the working size
    at_key: KeyframeSpec | None  # the keyframe painted on this frame, if it is one


class Job:
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
        # A segment's part (pipeline.colorize_part): (write_from, write_until, offset) in seconds. Frames before
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
        self.encode_q: queue.Queue = queue.Queue(maxsize=6 + look_ahead_frames(options))
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
        self.t0, self.total = time.perf_counter(), expected_frames(info, self.start, self.end)  # for progress

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
            offset = frame.time if self.start is not None else file_start(self.container)
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
        look = look_ahead_frames(opt)
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
        base = file_start(self.container)
        specs = [replace(k, time=k.time + base) for k in self.options.keyframes]
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
            # Frame t's input holds frame t-2's output: step t-2, predict t beside t-1, then hand t-2 on (the
            # look-ahead and the encoder's queue wait: the network's worker does not).
            stepped = self._step_frame(held.popleft()) if len(held) == 2 else None
            before = held[-1].link if held else None
            lagged = self.state.lagged_input(item.small, before, item.link, self._index(item.frame.time))
            held.append(item._replace(ahead=self.ahead.submit(lagged)))
            if stepped is not None:
                self._hand_on(*stepped)
        while held:
            self._finish_frame(held.popleft())
        for done, ab in self.look.flush() if self.look is not None else ():
            self._write(done, ab)
        frames, last_time = self.written, self.last_written
        if self.first_time is None:
            raise no_frames_error(self.src, self.info, self.start, self.end, self.stats)
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
            self.times,
        )

    def _finish_frame(self, item: _Decoded) -> None:
        """One decoded frame through the temporal state and the look-ahead; what leaves the look-ahead goes
        on to the encoder's queue."""
        self._hand_on(*self._step_frame(item))

    def _step_frame(self, item: _Decoded) -> tuple[_Done, np.ndarray, Link | None, int]:
        """One decoded frame through the temporal state -> the finished frame, its ab (h, w, 2), its link
        and its number in the film, for _hand_on."""
        frame, gray, deep, small, link, ahead = item
        guide = self.keyframes.guide(frame.time, self.state) if self.keyframes else None
        predicted = ahead.result() if ahead is not None else None
        index = self._index(frame.time)
        ab, unc = _colorize_frame(small, link, self.state, self.colorizer, self.times, guide, self.match, predicted, index)
        done = _Done(frame.pts, frame.time, gray, deep, unc, self.keyframes.at_key if self.keyframes else None)
        return done, ab, link, index

    def _hand_on(self, done: _Done, ab: np.ndarray, link: Link | None, index: int) -> None:
        """A stepped frame into the look-ahead; what leaves it goes on to the encoder's queue."""
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
