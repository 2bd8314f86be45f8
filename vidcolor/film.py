"""A long film as segments (segments.py): colorize the ones not yet finished, here, in worker processes
(--jobs) or as Ray tasks (--ray), then join the parts into the output without re-encoding.

The segment's own work is pipeline.colorize_part, handed in as `work` (a module-level function, so
it pickles by name into worker processes and Ray tasks); this module never imports the pipeline.
"""

from __future__ import annotations

import heapq
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import av

from .errors import VidcolorError
from .precision import run_threads
from .segments import PartInfo, PartJob, WorkFolder
from .video import EncodeOptions, SourceInfo, Writer, open_input, other_packets, video_packets

# pipeline.colorize_part(job, colorizer=None, progress=None) -> PartInfo; progress gets the frames written so far.
Work = Callable[..., PartInfo]
FramesDone = Callable[[int], None]


@dataclass(frozen=True)
class Workers:
    """Where segments run: `jobs` local processes (1 = in this process), or Ray tasks when `ray` is set
    ("auto": the cluster RAY_ADDRESS names, else a local one; or a cluster's address), each with `threads`
    compute threads."""

    jobs: int = 1
    threads: int = 0  # 0 = the cores / jobs
    ray: str | None = None

    def part_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // max(1, self.jobs))


def default_jobs(cores: int | None = None) -> int:
    """One worker per 4 cores (1 on 2 cores), so a default run holds one copy of the network per 4 cores.
    Within a process two model threads share the cores out (inference.Ahead): on 2 cores --jobs 2 took
    0.94x the time of --jobs 1 with feedback, 1.03x without (benchmarks/long.py, README)."""
    return max(1, (cores or os.cpu_count() or 1) // 4)


def run_parts(
    folder: WorkFolder, todo: Sequence[PartJob], work: Work, workers: Workers, done: FramesDone, colorizer=None
) -> None:
    """Colorize every job into its part; each finished part is recorded at once (a later kill keeps it)."""
    if not todo:
        return
    if workers.ray is not None:
        _on_ray(folder, todo, work, workers, done)
    elif workers.jobs > 1:
        _in_processes(folder, todo, work, workers, done)
    else:
        total = 0
        for job in todo:
            info = work(job, colorizer, lambda n, base=total: done(base + n))
            folder.finish(job.segment.index, info)
            total += info.frames
            done(total)
            give_back_freed_memory()


def _in_processes(folder: WorkFolder, todo: Sequence[PartJob], work: Work, workers: Workers, done: FramesDone) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
    q = ctx.Queue()  # progress: handed to each worker as it starts, so no Manager process is needed
    pool = ProcessPoolExecutor(workers.jobs, mp_context=ctx, initializer=_start_worker, initargs=(q,))
    try:
        futures = {pool.submit(_worker, work, job, workers.part_threads()): job for job in todo}
        pending, counts = set(futures), {}
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            while not q.empty():
                index, n = q.get()
                counts[index] = n
            for f in finished:
                job = futures[f]
                info = f.result()
                folder.finish(job.segment.index, info)
                counts[job.segment.index] = info.frames
            done(sum(counts.values()))
    except BaseException:
        # Stop this pool's workers only: a library user's own child processes are none of ours.
        own = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for child in own:
            child.terminate()
        raise
    finally:
        q.close()
    pool.shutdown()


_progress = None  # a worker's progress queue (_start_worker)


def _start_worker(q) -> None:
    """In a new worker: die with the parent, leave Ctrl-C to it, and keep the progress queue.

    Ctrl-C reaches every process of the terminal's group: the parent stops the workers itself, so a worker
    must not die of it with a traceback of its own. A parent killed outright (SIGKILL, the OOM killer) cannot
    stop them, so each asks the kernel for SIGKILL when its parent dies (Linux; elsewhere nothing)."""
    global _progress
    _progress = q
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the request: nobody will collect this worker's work
        os._exit(1)


def _worker(work: Work, job: PartJob, threads: int) -> PartInfo:
    """In a worker process: fixed compute threads (results depend on the thread count), progress to the queue."""
    q = _progress
    with run_threads(threads):
        info = work(job, None, lambda n: q.put((job.segment.index, n)) if n % 10 == 0 and q is not None else None)
    give_back_freed_memory()  # a worker runs its next part in this process
    return info


def give_back_freed_memory() -> None:
    """Return the memory a finished part freed to the system (glibc only; elsewhere nothing happens).

    Each part runs on threads of its own (decoder, encoder, model workers), and glibc keeps much of what a
    finished part freed in its malloc arenas rather than returning it: a 6-minute film in 7 segments
    peaked at 535-548 MB where its first minute in one pass took 489. Trimmed after each part,
    498-515 MB (an RSS trace of the CLI, sampled every 0.2 s; docs/experiments.md). Limiting
    the arenas instead (MALLOC_ARENA_MAX=2) gave 490 MB but ran 4 % slower."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def ray_installed():
    """The ray module, or a VidcolorError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise VidcolorError("--ray needs Ray: pip install 'vidcolor[ray]'") from None
    return ray


def _on_ray(folder: WorkFolder, todo: Sequence[PartJob], work: Work, workers: Workers, done: FramesDone) -> None:
    ray = ray_installed()
    started = not ray.is_initialized()
    if started:
        address = None if workers.ray == "auto" else workers.ray
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise VidcolorError(f"--ray {workers.ray}: cannot reach a Ray cluster ({e}); check the address") from None
    try:
        task = ray.remote(num_cpus=workers.part_threads())(_ray_task)
        refs = {task.remote(work, job, workers.part_threads()): job for job in todo}
        total = 0
        while refs:
            finished, _ = ray.wait(list(refs), num_returns=1)
            for ref in finished:
                job = refs.pop(ref)
                data, info = ray.get(ref)
                folder.partial(job.segment.index).write_bytes(data)
                folder.finish(job.segment.index, info)
                total += info.frames
                done(total)
    finally:
        if started:
            ray.shutdown()


def _ray_task(work: Work, job: PartJob, threads: int) -> tuple[bytes, PartInfo]:
    """On a Ray worker: the part is written to the worker's own temporary folder and returned as bytes
    through the object store, so workers need to read the input but never see the output folder."""
    tmp = Path(tempfile.mkdtemp(prefix="vidcolor-"))
    try:
        local = replace(job, path=tmp / job.path.name)
        with run_threads(threads):
            info = work(local, None, None)
        return local.path.read_bytes(), info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def join_parts(
    parts: Sequence[tuple[Path, PartInfo]],
    src: Path,
    dst: Path,
    fmt: str,
    info: SourceInfo,
    offset: float,
    span: tuple,
    notices: list[str],
) -> None:
    """The parts' video packets (at the output's times: their first frame's source time - offset) and the
    source's audio and subtitle packets over the whole range, interleaved by time, into dst: no re-encoding."""
    with open_input(src) as container, av.open(str(parts[0][0])) as first:
        writer = Writer(
            dst, fmt, container, info, EncodeOptions(), _rotation(first), offset, notices, video_from=first.streams.video[0]
        )
        try:
            start, end = span
            video = ((_time(p), 0, p) for path, part in parts for p in video_packets(path, part.first - offset))
            audio = ((_time(p) - offset, 1, p) for p in other_packets(container, offset if start is not None else None, end))
            for _, kind, packet in heapq.merge(video, audio, key=lambda item: (item[0], item[1])):
                if kind == 0:
                    writer.write_video_packet(packet)
                else:
                    writer.write_packet(packet)
            writer.close()
        except BaseException:
            writer.abort()
            raise


def _time(packet: av.Packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base)


def _rotation(container: av.container.InputContainer) -> int:
    for frame in container.decode(video=0):
        return int(frame.rotation or 0) % 360
    return 0
