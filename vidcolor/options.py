"""What a run is asked to do (ColorizeOptions) and what it reports (Progress, StageTimes, Summary)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .keyframes import KeyframeSpec
from .temporal import TemporalOptions
from .video import EncodeOptions


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
    engine: str = "auto"  # inference.ENGINES: int8 on a CPU where the weights have it, else torch
    model: Path | None = None
    preview: bool = False  # side-by-side clip (gray | colour) + contact sheet instead of the plain output
    keyframes: tuple[KeyframeSpec, ...] = ()  # the user's coloured frames (keyframes.py)
    keyframe_reach: float = 10.0  # seconds before a keyframe its colours are carried back to
    # Shots without keyframes take the correction of the pointed frame they look likest to (keyframes.across_shots).
    points_across_shots: bool = False
    uncertainty: Path | None = None  # also write the network's uncertainty as a heat-map video here
    reference: Path | None = None  # a colour photo whose colours each shot moves toward (reference.py)
    # Long films (film.py, segments.py): segments of about this many seconds, each preceded by
    # segments.WARMUP s of frames that only warm the temporal state up; finished segments survive a kill
    # and are reused.
    segment: float = 60.0  # 0 = one pass, no segments
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

    # "wait ..." is the main thread blocked: on the decoder's queue (nothing decoded yet), on a prediction
    # made ahead on the model's workers, on the encoder's full queue.
    names = ("decode", "flow", "model", "blend", "look-ahead", "compose", "encode", "wait decoder", "wait model", "wait encoder")

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
    stages: StageTimes | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Fit (width, height) into long_side, keeping the aspect; never upscale; even sides."""
    s = min(1.0, long_side / max(width, height))
    return max(16, 2 * round(width * s / 2)), max(16, 2 * round(height * s / 2))
