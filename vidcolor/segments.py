"""A film as independent segments: the plan, and the work folder that lets a run resume.

A segment is a time range [start, end) of the source. Its boundaries are source
keyframes near every `segment` seconds, so a seek lands on them: keyframes an
encoder put at a cut when there are any near (`encoder_cuts`), else the nearest. Each segment is colorized on its own, after `warmup`
seconds of frames before it that go through flow and temporal state without
being written, so colours inside a shot do not jump at a boundary (job.py).

The work folder `.<output name>.parts/` beside the output holds:
    manifest.json      what the parts were made from: the input's identity, every
                       setting that changes pixels, the model's hash, the plan
    part-0003.mp4      a finished segment (written as part-0003.partial.mp4, then renamed)
    part-0003.json     written after the rename: the part is finished
Only the run holding the output's lock (outfile.output_lock) touches it. A rerun of the same command finds the folder, checks the manifest and reuses the
finished parts; anything else in it (a part cut short by SIGKILL) is discarded.
The folder is removed when the output is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

MANIFEST_VERSION = 1


# Seconds of frames before each segment that only warm its temporal state up. 6, not 2: the fed-back loop
# holds its colours longer than the blend alone did, and after 2 s a segment's first frames still differed
# from the one-pass output's (colour change across a seam 1.3-2.6x the median inside segments; 1.1-1.3x
# after 6 s, benchmarks/long.py --only seams), for 7 % more frames.
WARMUP = 6.0


@dataclass(frozen=True)
class Segment:
    index: int
    start: float  # seconds, source time: the first frame written has time >= start
    end: float | None  # seconds (exclusive); None = to the end of the range

    def warm_start(self, warmup: float, first: float | None) -> float | None:
        """Where decoding starts: `warmup` s before the segment, never before the range's own start."""
        if self.index == 0:
            return first
        return max(first or 0.0, self.start - warmup)

    def read_end(self, ahead: float, last: float | None) -> float | None:
        """Where decoding stops: `ahead` s past the segment's end (the look-ahead of its last frames),
        never past the range's own end `last` (None: the file's)."""
        if self.end is None:
            return None
        return min(self.end + ahead, last) if last is not None else self.end + ahead


def plan_segments(keyframes: Sequence[float], start: float | None, end: float | None, length: float) -> list[Segment]:
    """Boundaries at a cut between length / 2 and 1.5 x length after the previous boundary when there is
    one (the one nearest to `length`), else at the keyframe nearest to `length`; no segment is shorter
    than length / 2. keyframes: sorted times strictly inside (start, end); end None = unknown."""
    cuts = set(encoder_cuts(keyframes))
    bounds: list[float] = []
    last = start or 0.0
    while length > 0 and (end is None or end - last >= 1.5 * length):
        fits = [t for t in keyframes if t - last >= length / 2 and (end is None or end - t >= length / 2)]
        if not fits:
            break
        near = [t for t in fits if t in cuts and t - last <= 1.5 * length] or fits
        last = min(near, key=lambda t: abs(t - last - length))
        bounds.append(last)
    edges = [start or 0.0, *bounds]
    return [Segment(i, s, e) for i, (s, e) in enumerate(zip(edges, [*bounds, end], strict=False))]


def encoder_cuts(keyframes: Sequence[float]) -> list[float]:
    """The keyframes an encoder put at a cut: those that come sooner than its regular interval (x264 and
    most encoders insert one at a scene change and count the interval again from there). The regular
    interval is the commonest gap, to 0.1 s; a stream of evenly spaced keyframes shows no cut."""
    gaps = [round(b - a, 1) for a, b in pairwise(keyframes)]
    if len(gaps) < 3:
        return []
    regular = max(set(gaps), key=gaps.count)
    return [t for t, g in zip(keyframes[1:], gaps, strict=True) if g < 0.9 * regular]


def file_identity(path: Path) -> dict:
    """Size, modification time and a hash of the first and last MiB: changes when the file does."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
        h.update(f.read(1 << 20))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": h.hexdigest()}


@dataclass(frozen=True)
class PartJob:
    """One segment to colorize into its own file: what a worker (a process, a Ray task) is handed."""

    src: Path
    path: Path  # the part file to write
    segment: Segment
    decode_from: float | None  # seconds: where decoding starts (the warm-up before the segment)
    decode_to: float | None  # seconds: where it stops (past the segment's end by the look-ahead); None: the end
    offset: float  # seconds taken off every timestamp: the whole output's start
    options: object  # pipeline.ColorizeOptions (this module knows nothing of the pipeline)


@dataclass(frozen=True)
class PartInfo:
    """What a finished part says about itself (part-NNNN.json)."""

    frames: int
    first: float  # time (s) of its first written frame
    last: float  # time (s) of its last written frame
    notices: tuple[str, ...] = ()


def parts_folder(dst: Path) -> Path:
    """The work folder of an output: `.<output name>.parts/` beside it."""
    return dst.with_name(f".{dst.name}.parts")


class WorkFolder:
    """The parts of one output; made (or checked and reused) by `open`, under the output's lock."""

    def __init__(self, dst: Path, manifest: dict, fresh: bool = False):
        self.dst = Path(dst)
        self.path = parts_folder(self.dst)
        # as it reads back from JSON (tuples become lists), so the two compare equal
        self.manifest = json.loads(json.dumps({"version": MANIFEST_VERSION, **manifest}))
        self.fresh = fresh
        self.notices: list[str] = []

    def open(self) -> WorkFolder:
        self.path.mkdir(exist_ok=True)
        self._check()
        return self

    def _check(self) -> None:
        """Keep the finished parts only if they were made from the same input, settings and model."""
        manifest = self.path / "manifest.json"
        old = _read_json(manifest)
        if old is not None and old != self.manifest:
            self.notices.append(
                f"the finished parts of {self.dst.name} were made from another input, settings or model: starting again"
            )
            self._clear()
        elif old is not None and self.fresh:
            self._clear()
        elif old is not None and (finished := len(self.done())):
            self.notices.append(f"resuming: {finished} finished segment(s) of {self.dst.name} reused")
        for p in self.path.glob("*.partial*"):  # cut short by a kill: its segment runs again
            p.unlink(missing_ok=True)
        _write_json(manifest, self.manifest)

    def _clear(self) -> None:
        for p in self.path.iterdir():
            p.unlink(missing_ok=True)

    def part(self, index: int) -> Path:
        return self.path / f"part-{index:04d}{self.dst.suffix}"

    def partial(self, index: int) -> Path:
        return self.path / f"part-{index:04d}.partial{self.dst.suffix}"

    def done(self) -> dict[int, PartInfo]:
        """The finished parts by segment index."""
        out = {}
        for p in self.path.glob("part-*.json"):
            info = _read_json(p)
            index = int(p.stem.split("-")[1])
            if info is not None and self.part(index).is_file():
                out[index] = PartInfo(info["frames"], info["first"], info["last"], tuple(info.get("notices", ())))
        return out

    def finish(self, index: int, info: PartInfo) -> None:
        """The partial file of a segment is complete: rename it into place, then record it."""
        os.replace(self.partial(index), self.part(index))
        _write_json(self.path / f"part-{index:04d}.json", asdict(info))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Written whole or not at all: a kill mid-write leaves the old file or none."""
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
