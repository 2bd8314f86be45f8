"""End-to-end speed, measured side by side in one run (these machines are noisy).

    python benchmarks/speed.py [--frames 240] [--model OTHER.safetensors]
    # 640x360 is also run with --no-temporal (and with --model OTHER end to end), side by side
    python benchmarks/speed.py --busy 1     # also with 1 competing CPU-bound process: slowdowns side by side
    python benchmarks/speed.py --feedback   # also 640x360 with --no-feedback, and feedback of frame t-2's and t-1's colours
    python benchmarks/speed.py --profile    # also the forward pass split: the network, then decoding its bins
    python benchmarks/speed.py --engine fp32   # everything on another engine (inference.ENGINES)

For a 640x360 and a 1280x720 clip (generated here: a camera panning over
scikit-image's photos, like samples/make_sample.py), reports:
- vidcolor's end-to-end fps with default settings;
- a plain PyAV transcode of the same clip with the same encoder settings (the
  floor no colorizer can beat), and the ratio of the two;
- vidcolor's per-stage time in ms per frame: decode and flow (decoder thread), the network (on the model's
  workers where frames are predicted ahead), blend and look-ahead (main thread), compose and encode (encoder
  thread), and how long the main thread waits on the decoder's queue, on a prediction made ahead and on the
  encoder's queue. Stages on different threads overlap.
Also the model's forward time alone on a 640x360 frame at the default working size,
on each engine (int8, torch, fp32) and, with --model, for other weights, measured
alternately (the ratios are what to trust on a noisy machine); the 640x360 clip
again on each other engine. --forward-only stops there. --engine runs everything else
on that engine. For an AVX2-only machine, run it under `python benchmarks/avx2.py`.

--busy N runs the 640x360 clip again while N other processes keep the CPU busy
(a user's desktop is never idle), and prints how much vidcolor and the plain
transcode slow down, side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the vidcolor command sets it (cli.OPENMP_ENV), before torch
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
from synthetic import pan_clip

from vidcolor.errors import VidcolorError
from vidcolor.inference import ENGINES, Colorizer
from vidcolor.int8 import Int8Net
from vidcolor.pipeline import ColorizeOptions, colorize_video, working_size
from vidcolor.precision import compute_threads, cpu_flags, keep_freed_memory
from vidcolor.temporal import TemporalOptions
from vidcolor.video import EncodeOptions


def plain_transcode(src: Path, dst: Path, enc: EncodeOptions) -> float:
    """Decode and re-encode with the same encoder settings: the floor. -> fps"""
    t = time.perf_counter()
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        iv = i.streams.video[0]
        iv.thread_type = "AUTO"
        ov = o.add_stream(enc.codec, rate=iv.average_rate, options={"crf": str(enc.crf), "preset": enc.preset})
        ov.width, ov.height, ov.pix_fmt = iv.width, iv.height, "yuv420p"
        n = 0
        for frame in i.decode(iv):
            frame.pict_type = 0
            o.mux(ov.encode(frame))
            n += 1
        o.mux(ov.encode())
    return n / (time.perf_counter() - t)


def model_forward_ms(cols: list[Colorizer], repeats: int = 40) -> list[float]:
    """Median time (ms) of each colorizer's network on a gray 640x360 frame at the default working size (what
    the default pipeline feeds it), taking turns so that a load on the machine hits them alike: the network
    on the run's threads, the decoding of its bins and the upsampling to the working size."""
    w, h = working_size(640, 360, ColorizeOptions().work_size)
    x = np.repeat(np.random.default_rng(0).random((1, h, w, 1), dtype=np.float32), 3, -1)
    times: list[list[float]] = [[] for _ in cols]
    for i in range(repeats + 5):
        for col, ts in zip(cols, times, strict=True):
            t = time.perf_counter()
            col.net.run(x, col.decode, None, False, compute_threads())
            if i >= 5:
                ts.append(time.perf_counter() - t)
    return [1000 * statistics.median(ts) for ts in times]


def forward_split_ms(col: Colorizer, repeats: int = 40) -> tuple[float, float]:
    """The network on a gray 640x360 frame at the default working size: median ms of the network itself
    (encoder, decoder, heads, hint gate) and of decoding its bins into colours (ColorNet.decode, int8.Head.decode)."""
    w, h = working_size(640, 360, ColorizeOptions().work_size)
    x = np.repeat(np.random.default_rng(0).random((1, h, w, 1), dtype=np.float32), 3, -1)
    if isinstance(col.net, Int8Net):
        forward = lambda: col.net.forward(x, False, compute_threads())  # noqa: E731
        decode = lambda out: col.net.head.decode(*out, col.decode)  # noqa: E731
    else:
        import torch

        from vidcolor.precision import autocast
        from vidcolor.torchnet import MEMORY_FORMAT

        model, m = col.net.model, col.net.model.multiple
        t = torch.from_numpy(np.pad(x, ((0, 0), (0, (-h) % m), (0, (-w) % m), (0, 0)), mode="edge")).permute(0, 3, 1, 2)
        t = t.to(col.net.dtype).contiguous(memory_format=MEMORY_FORMAT)

        def forward():
            with torch.inference_mode(), autocast(col.net.device, col.net.dtype):
                return model(t)

        def decode(out):
            with torch.inference_mode(), autocast(col.net.device, col.net.dtype):
                return model.decode(*out, col.decode)

    net, bins = [], []
    for i in range(repeats + 5):
        t0 = time.perf_counter()
        out = forward()
        t1 = time.perf_counter()
        decode(out)
        t2 = time.perf_counter()
        if i >= 5:
            net.append(t1 - t0)
            bins.append(t2 - t1)
    return 1000 * statistics.median(net), 1000 * statistics.median(bins)


def _spin() -> None:
    while True:
        pass


def measure(clip: Path, folder: Path, opts: ColorizeOptions) -> tuple[float, float, dict[str, float]]:
    """-> (vidcolor fps, plain transcode fps, vidcolor's per-stage ms a frame), run back to back."""
    floor = plain_transcode(clip, folder / "plain.mp4", opts.encode)
    summary = colorize_video(clip, folder / "out.mp4", opts)
    (folder / "out.mp4").unlink()
    return summary.fps, floor, summary.stages.per_frame_ms(summary.frames)


def busy_run(clip: Path, folder: Path, n: int, quiet: tuple[float, float], opts: ColorizeOptions) -> None:
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        fps, floor, _ = measure(clip, folder, opts)
    finally:
        for p in procs:
            p.terminate()
    slow_v, slow_p = quiet[0] / fps, quiet[1] / floor
    print(f"with {n} busy process(es): vidcolor {fps:5.1f} fps | plain transcode {floor:5.1f} fps")
    print(
        f"   slowdown: vidcolor {slow_v:.2f}x, plain transcode {slow_p:.2f}x; vidcolor's / the transcode's = "
        f"{slow_v / slow_p:.2f} (bar: <= 1, at most the transcode's)"
    )


def main() -> None:
    keep_freed_memory()  # as the vidcolor command does (cli.main)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--model", type=Path, default=None, help="also time these weights' forward pass, beside the shipped ones")
    ap.add_argument("--forward-only", action="store_true", help="time the forward pass only, not whole clips")
    ap.add_argument("--engine", default="auto", choices=ENGINES, help="the engine the clips run on (vidcolor's --engine)")
    ap.add_argument("--profile", action="store_true", help="also split the forward pass: the network, then its bins decoded")
    ap.add_argument("--busy", type=int, default=0, help="also run 640x360 beside N competing CPU-bound processes")
    ap.add_argument(
        "--feedback", action="store_true", help="also run 640x360 with --no-feedback, --look-ahead 0 and --feedback (lag 2 and 1)"
    )
    args = ap.parse_args()
    base = ColorizeOptions(engine=args.engine)
    col = Colorizer.load(None, "cpu", engine=args.engine)
    print(f"threads {compute_threads()}, engine {col.engine} ({col.net.dtype}), CPU: {cpu_name()}")
    engines = {e: c for e in ("int8", "torch", "fp32") if (c := _load(e)) is not None}
    others = [Colorizer.load(args.model, "cpu", engine=args.engine)] if args.model else []
    ms = model_forward_ms(list(engines.values()) + others)
    print("model forward, 640x360 frame at the default working size, shipped weights, medians taken in turn:")
    for (name, c), t in zip(engines.items(), ms, strict=False):
        print(f"   {name} ({c.net.dtype}): {t:.1f} ms, {ms[len(engines) - 1] / t:.2f}x fp32's speed")
    if args.model:
        print(f"   {args.model} on {others[0].engine}: {ms[-1]:.1f} ms")
    if args.profile:
        net, bins = forward_split_ms(col)
        print(
            f"   of which ({col.engine}): the network {net:.1f} ms, decoding its bins {bins:.1f} ms (medians, separately timed)"
        )
    if args.forward_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for w, h in ((640, 360), (1280, 720)):
            clip = pan_clip(folder / f"clip{h}.mp4", w, h, args.frames)
            fps, floor, stages = measure(clip, folder, base)
            print(f"{w}x{h}: vidcolor {fps:5.1f} fps | plain transcode {floor:5.1f} fps | ratio {fps / floor:.2f}")
            print("   per frame: " + "  ".join(f"{k} {v:5.1f} ms" for k, v in stages.items()))
            if h == 360:
                variants = [("--no-temporal", replace(base, temporal=False))]
                for name, c in engines.items():  # the other engines, where they differ from this run's
                    if c.engine != col.engine:
                        variants.append((f"--engine {name}", replace(base, engine=name)))
                if args.feedback:
                    variants.append(("--no-feedback", replace(base, temporal_options=TemporalOptions(feedback=False))))
                    variants.append(("--look-ahead 0", replace(base, temporal_options=TemporalOptions(look_ahead=0))))
                    for lag in (2, 1):  # frame t-2's colours fed back (two frames at once), or frame t-1's
                        fed = TemporalOptions(feedback=True, feedback_lag=lag)
                        variants.append((f"--feedback, lag {lag}", replace(base, temporal_options=fed)))
                if args.model:
                    variants.append((f"--model {args.model.name}", replace(base, model=args.model)))
                for name, opts in variants:
                    vfps, vfloor, vstages = measure(clip, folder, opts)
                    print(f"   {name}: vidcolor {vfps:5.1f} fps | plain transcode {vfloor:5.1f} fps | ratio {vfps / vfloor:.2f}")
                    print("      per frame: " + "  ".join(f"{k} {v:5.1f} ms" for k, v in vstages.items()))
            if args.busy and h == 360:
                busy_run(clip, folder, args.busy, (fps, floor), base)


def _load(engine: str) -> Colorizer | None:
    """The shipped weights on `engine`, or None where it cannot run here."""
    try:
        return Colorizer.load(None, "cpu", engine=engine)
    except VidcolorError:
        return None


def cpu_name() -> str:
    """The CPU's model name and the flags that decide the model's speed (bf16 needs avx512_bf16 or amx;
    int8 runs fastest with VNNI or AMX)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown")
    flags = cpu_flags()
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    masked = "; CPUID masked to AVX2 by benchmarks/avx2.py" if "cpuid_mask" in os.environ.get("LD_PRELOAD", "") else ""
    return f"{name} ({' '.join(shown) or 'no AVX2'}{masked})"


if __name__ == "__main__":
    sys.exit(main())
