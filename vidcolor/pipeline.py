"""colorize_video(src, dst, options): the whole tool as one function.

It checks the request before anything is written, then runs the range in one pass (job.Job) or, for a
long film, in segments (film.py) joined at the end. The output is written to a hidden temporary file
beside the destination and renamed into place only when everything succeeded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import av

from .color import gray_to_lightness_lut
from .colouring import ShotMatch, upright
from .errors import VidcolorError
from .film import Workers, default_jobs, join_parts, ray_installed, run_parts
from .flow import Tracker
from .inference import Colorizer
from .job import Job, Part, Target, expected_frames, look_ahead_frames, no_frames_error, signals_ignored
from .keyframes import check_keyframes
from .options import ColorizeOptions, Progress, StageTimes, Summary, working_size
from .outfile import check_output, create_partial, output_lock, remove_stale_partials
from .precision import compute_threads, run_threads
from .record import default_model_path, file_hash
from .reference import ReferenceMatch, reference_histogram
from .segments import WARMUP, PartInfo, PartJob, Segment, WorkFolder, file_identity, plan_segments
from .video import (
    EPS,
    DecodeStats,
    SourceInfo,
    bit_depth,
    check_encode,
    container_format,
    demux_range,
    describe,
    file_start,
    first_frame_time,
    grays,
    keyframe_times,
    open_input,
    output_pix_fmt,
)

# The public API, importable from here: the options and what a run reports are defined in options.py.
__all__ = ["ColorizeOptions", "Progress", "StageTimes", "Summary", "colorize_part", "colorize_video", "working_size"]


def preview_paths(dst: Path) -> tuple[Path, Path]:
    return dst.with_name(dst.stem + ".preview" + dst.suffix), dst.with_name(dst.stem + ".preview.png")


def default_preview_range(info: SourceInfo, start: float | None, end: float | None) -> tuple[float, float]:
    """5 s from the middle unless the user chose a range."""
    if start is not None or end is not None:
        s = start or 0.0
        return s, end if end is not None else s + 5.0
    mid = info.start + info.duration / 2
    return max(info.start, mid - 2.5), max(info.start, mid - 2.5) + 5.0


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
    with open_input(src) as container:
        info = describe(container)
        # User times count from the start of the file, like ffmpeg's -ss; streams
        # such as MPEG-TS carry timestamps that begin later.
        base = file_start(container)
        start = None if options.start is None else options.start + base
        end = None if options.end is None else options.end + base
        if options.preview:
            start, end = default_preview_range(info, start, end)
            dst, sheet = preview_paths(dst)
        else:
            sheet = None
        if options.ray is not None:
            ray_installed()  # before any work folder exists: a missing Ray leaves nothing behind
        if options.points_across_shots and not any(k.points for k in options.keyframes):
            raise VidcolorError(
                "--points-across-shots carries clicked points to other shots, and there are none: give them with "
                "--hints FILM.vidcolor.json (vidcolor edit writes it)"
            )
        if options.keyframes:
            if not options.temporal:
                raise VidcolorError("--keyframe needs the temporal path that carries its colours: drop --no-temporal")
            check_keyframes(
                [replace(k, time=k.time + base) for k in options.keyframes],
                start,
                end,
                base + info.duration if info.duration else 0.0,
                sources=options.points_across_shots,
            )
        if start is not None and info.duration and start >= info.start + info.duration:
            raise VidcolorError(
                f"the start {start - base:g} s is past the end of {src.name} ({info.duration:.2f} s long): "
                "choose an earlier start"
            )
        colorizer = Colorizer.load(options.model, options.device, options.temperature, options.saturation, options.engine)
        match = _shot_match(options.reference, colorizer)  # read before any output exists: a bad photo is a clean error
        with output_lock(dst), run_threads(options.threads):
            if _segmented(options):
                plan = _plan(src, info, start, end, options.segment)
                if len(plan) > 1:
                    return _run_film(container, info, src, dst, plan, (start, end), options, colorizer, progress)
            return _run(container, info, src, dst, sheet, start, end, options, colorizer, progress, match)


def _shot_match(reference: Path | None, colorizer: Colorizer) -> ShotMatch | None:
    if reference is None:
        return None
    return ShotMatch(ReferenceMatch(reference_histogram(reference, colorizer.bins)))


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
    with open_input(src) as container:
        keys = keyframe_times(container, start, known_end)
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
    workers = Workers(jobs=options.jobs or default_jobs(), threads=options.threads, ray=options.ray)
    # Each part's compute threads: a worker's own (film.Workers), or this process's (the pipeline's run_threads).
    threads = workers.part_threads() if workers.jobs > 1 or workers.ray is not None else compute_threads()
    folder = WorkFolder(dst, _manifest(src, plan, span, offset, options, colorizer, threads), fresh=options.fresh).open()
    notices += folder.notices
    finished = folder.done()
    # A part reads on past its end for the look-ahead of its last frames, as the one-pass run does;
    # the last one stops where the range does.
    ahead = _look_ahead_seconds(options, info)
    todo = [
        PartJob(
            src,
            folder.partial(s.index),
            s,
            _warm_start(src, s, start, info, options, colorizer),
            s.read_end(ahead, end),
            offset,
            options,
        )
        for s in plan
        if s.index not in finished
    ]
    base, total = sum(i.frames for i in finished.values()), expected_frames(info, start, end)

    def done(n: int) -> None:
        if progress is not None:
            progress(Progress(base + n, total, time.perf_counter() - t0))

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


def _warm_start(
    src: Path, segment: Segment, first: float | None, info: SourceInfo, options: ColorizeOptions, colorizer: Colorizer
) -> float | None:
    """Where a segment's part starts decoding: WARMUP s before it, or where it starts a shot, just before it.
    At a cut the temporal state, the look-ahead and the keyframes' guide all start again, so the frames
    before the cut change nothing of the segment's colours: one frame before it (so that the look-ahead
    sees the cut, as in one pass) is all the warm-up it needs. Not with a reference photo, whose match
    does not start again at a cut without the temporal state."""
    warm = segment.warm_start(WARMUP, first)
    if segment.index == 0 or not options.temporal or options.reference is not None:
        return warm
    before = _frame_before_a_cut(src, segment.start, info, options, colorizer)
    return warm if before is None else max(warm or 0.0, before)


def _frame_before_a_cut(src: Path, t: float, info: SourceInfo, options: ColorizeOptions, colorizer: Colorizer) -> float | None:
    """The time of the frame before the frame at t (s), when the frame at t starts a shot as the run's tracker
    sees it (the same gray frames, at the same size, through the same cut test); else None."""
    deep = bit_depth(output_pix_fmt(info, options.encode.codec)) > 8  # the run's 8-bit gray comes from its deep one
    size = working_size(info.width, info.height, options.work_size)
    preset = options.temporal_options.filled(colorizer.feedback).flow_preset
    prev: tuple[float, av.VideoFrame] | None = None
    with open_input(src) as container:
        for frame in demux_range(container, max(0.0, t - max(1.0, 3 / float(info.rate))), None, DecodeStats(), threads=1):
            if not isinstance(frame, av.VideoFrame):
                continue
            if frame.time < t - EPS:
                prev = (frame.time, frame)
                continue
            if prev is None:
                return None
            # A link depends on the two frames alone (a black first one links nothing to the second).
            tracker = Tracker(gray_to_lightness_lut(), preset, look_ahead=False)
            for f in (prev[1], frame):
                link = tracker.link(upright(grays(f, deep)[0], size, int(f.rotation or 0) % 360))
            return prev[0] if link.motion is None else None
    return None


def _look_ahead_seconds(options: ColorizeOptions, info: SourceInfo) -> float:
    """How far past a frame its look-ahead reads (look_ahead frames), with a frame to spare; 0 without."""
    frames = look_ahead_frames(options)
    return (frames + 1) / float(info.rate) if frames > 0 else 0.0


def _output_offset(container, src: Path, info: SourceInfo, span: tuple) -> float:
    """Seconds taken off every timestamp, as the one-pass run does: a range starts at its first frame; a
    whole file keeps its own times, moved to 0 only when the container starts late (MPEG-TS)."""
    start, end = span
    if start is None:
        return file_start(container)
    offset = first_frame_time(container, start)
    if offset is None:
        raise no_frames_error(src, info, start, end, DecodeStats())
    return offset


def _manifest(
    src: Path, plan: list[Segment], span: tuple, offset: float, options: ColorizeOptions, colorizer: Colorizer, threads: int
) -> dict:
    """Everything that changes a part's pixels or timestamps (segments.WorkFolder keeps parts only if it is
    unchanged): the compute threads each part ran with too, since the results depend on their count
    (precision.py). --jobs and --ray are left out: a resumed run may use other workers with as many threads."""
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
            "warmup": WARMUP,
            "device": str(colorizer.device),
            "engine": colorizer.engine,
            "dtype": str(colorizer.net.dtype),
            "threads": threads,
        },
    }


def colorize_part(job: PartJob, colorizer: Colorizer | None = None, progress: Callable[[int], None] | None = None) -> PartInfo:
    """One segment into job.path, video alone: frames from job.decode_from warm the temporal state up, those
    from the segment's start to its end are written (film.py runs this here, in a process or on Ray)."""
    options: ColorizeOptions = job.options  # type: ignore[assignment]
    if colorizer is None:
        colorizer = Colorizer.load(options.model, options.device, options.temperature, options.saturation, options.engine)
    container = open_input(job.src)
    try:
        info = describe(container)
        write_from = job.segment.start if job.segment.index > 0 else -math.inf
        report = None if progress is None else (lambda p: progress(p.frames))
        part = Part(write_from, math.inf if job.segment.end is None else job.segment.end, job.offset)
        target = Target(job.path, container_format(job.path), part=part)
        span = (job.decode_from, job.decode_to)
        run = Job(container, info, job.src, span, target, options, colorizer, report, _shot_match(options.reference, colorizer))
        try:
            summary = run.run()
        except BaseException:
            with signals_ignored():
                run.abort()
            raise
        return PartInfo(summary.frames, run.first_time, run.last_written, tuple(summary.notices))
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
    target = Target(create_partial(dst), fmt, sheet, heat_tmp)
    job = Job(container, info, src, (start, end), target, options, colorizer, progress, match)
    try:
        summary = job.run()
        if heat is not None:
            os.replace(heat_tmp, heat)
        os.replace(job.tmp, dst)
        summary.output = dst
        summary.notices[:0] = stale
        return summary
    except BaseException:
        with signals_ignored():  # a second Ctrl-C must not interrupt the cleanup itself
            job.abort()
            if heat_tmp is not None:
                heat_tmp.unlink(missing_ok=True)
        raise
