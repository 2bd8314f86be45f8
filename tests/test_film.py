"""Worker processes of a film in segments: they stop with a failed run, die with a killed parent, and a
library user's own child processes are left alone."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vidcolor.film import Workers, _in_processes
from vidcolor.segments import PartJob, Segment

ROOT = Path(__file__).resolve().parents[1]


def failing_work(job, colorizer, progress):
    raise RuntimeError(f"part {job.segment.index} failed")


def slow_work(job, colorizer, progress):
    time.sleep(120)


def _jobs(n: int, tmp: Path) -> list[PartJob]:
    return [
        PartJob(tmp / "in.mp4", tmp / f"{i}.mkv", Segment(i, float(i), float(i + 1)), None, None, 0.0, None) for i in range(n)
    ]


def _sleeper() -> None:
    time.sleep(120)


def _children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_failed_run_stops_its_workers_and_leaves_a_users_own_child_alone(tmp_path):
    mine = multiprocessing.get_context("spawn").Process(target=_sleeper, daemon=True)
    mine.start()
    try:
        with pytest.raises(RuntimeError, match="failed"):
            _in_processes(None, _jobs(2, tmp_path), failing_work, Workers(jobs=2, threads=1), lambda n: None)
        mine.join(2.0)  # a terminate() sent to it would have landed by now
        assert mine.is_alive()  # the user's own process survived our failure
        deadline = time.monotonic() + 10
        while any(c is not mine for c in multiprocessing.active_children()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [c for c in multiprocessing.active_children() if c is not mine] == []  # our workers are gone
    finally:
        mine.terminate()
        mine.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_die_with_a_parent_killed_outright(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from vidcolor.film import Workers, _in_processes
        from tests.test_film import _jobs, slow_work
        _in_processes(None, _jobs(2, Path({str(tmp_path)!r})), slow_work, Workers(jobs=2, threads=1), lambda n: None)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline:  # both workers started (and the resource tracker)
            workers = _children_of(parent.pid)
            if len(workers) >= 3:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, workers
        time.sleep(2)  # past the workers' start-up, where they ask to die with their parent
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
