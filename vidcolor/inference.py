"""Running the network on frames: engine, device and precision, numpy in and out.

Engines (ENGINES, the --engine option):
- int8: the network's body on ONNX Runtime, its decoder in int8 and its encoder in fp32, its hint gate and
  decoding in numpy (int8.py). The default on a CPU where the weights have an int8 network; such a run
  never imports torch.
- torch: batch norms folded into the convolutions, channels_last, and on a CPU bf16 where it has native
  bf16 (AVX512-BF16 / AMX), fp32 elsewhere; on CUDA fp16 (torchnet.py). The default on a GPU and for
  weights without an int8 network.
- fp32: torch in fp32 everywhere, the reference the others are measured against.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import VidcolorError
from .int8 import Int8Net, Int8Unavailable
from .precision import compute_threads, pick_device
from .record import DecodeConfig, FeedbackRecord, WeightsRecord, default_model_path, read_weights
from .reference import Match

ENGINES = ("auto", "int8", "torch", "fp32")
GUESSES_KEPT = 4  # frames whose guess (Colorizer.guess) is kept: a pointed frame and a few around it


class Net(Protocol):
    """An engine's network (int8.Int8Net, torchnet.TorchNet): device "cpu" or "cuda", dtype a name."""

    device: object
    dtype: object
    engine: str  # which of ENGINES it is: int8, torch or fp32 (torch in fp32, by choice or by the CPU)
    bins: np.ndarray  # (Q, 2) the ab bins' centres, Lab units

    def run(self, batch: np.ndarray, decode: DecodeConfig, match: Match | None, trusted: bool, threads: int) -> np.ndarray: ...

    def distribution(self, rgb: np.ndarray, decode: DecodeConfig, trusted: bool) -> np.ndarray: ...

    def guess(self, rgb: np.ndarray, decode: DecodeConfig, threads: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Colorizer:
    net: Net
    decode: DecodeConfig
    feedback: FeedbackRecord = FeedbackRecord()  # how these weights want their own colours fed back (record.py)
    _guesses: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)  # guess's key -> output

    @property
    def engine(self) -> str:
        """The engine that runs: int8, torch or fp32."""
        return self.net.engine

    @property
    def device(self) -> str:
        """cpu or cuda."""
        return str(self.net.device)

    @property
    def bins(self) -> np.ndarray:
        """(Q, 2) float32: the centres of the ab bins the network's colour distribution is over."""
        return self.net.bins

    @classmethod
    def load(
        cls,
        path: Path | None,
        device: str = "auto",
        temperature: float | None = None,
        saturation: float | None = None,
        engine: str = "auto",
    ) -> Colorizer:
        """The weights at path (None: the shipped ones) on `engine` (ENGINES); temperature and saturation
        override the decoding they ship with (record.DecodeConfig)."""
        if engine not in ENGINES:
            raise VidcolorError(f"unknown engine {engine!r}: use {', '.join(ENGINES)}")
        dev = pick_device(device)
        path = Path(path) if path is not None else default_model_path()
        try:
            record = read_weights(path)
            net = _int8_net(path, record, dev, engine) or _torch_net(path, dev, engine == "fp32")
        except FileNotFoundError as e:
            raise VidcolorError(f"{e}. Reinstall vidcolor or pass --model PATH") from None
        except ValueError as e:
            raise VidcolorError(f"{e}: pass --model with weights made for it") from None
        decode = record.decode
        if temperature is not None:
            decode = replace(decode, temperature=temperature)
        if saturation is not None:
            decode = replace(decode, saturation=saturation)
        return cls(net, decode, record.feedback)

    def predict(
        self, rgb: np.ndarray, match: Match | None = None, trusted: bool = False, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """rgb (H, W, 3) float32 in [0, 1] -> ab (H, W, 4) float32 in Lab units (the colours to show, then
        the regression head's, to feed back: temporal.Predict) and confidence (H, W) float32 in [0, 1].
        trusted: rgb's colours are true ones (a keyframe's), not the network's own (model.HintGate).
        threads: the int8 engine's threads for this frame (0: the run's count, precision.compute_threads).
        The network predicts at 1/4 size; this upsamples (bilinear) to the input size."""
        batch = np.ascontiguousarray(rgb, dtype=np.float32)[None]
        out = self.net.run(batch, self.decode, match, trusted, threads or compute_threads())[0]
        return np.ascontiguousarray(out[..., [0, 1, 3, 4]]), np.ascontiguousarray(out[..., 2])

    def guess(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rgb (H, W, 3) float32 in [0, 1], a gray frame -> the colours shown without hints, ab (H, W, 2) float32
        in Lab units, and the decoder's last features (c, ceil(H/4), ceil(W/4)) float32: what a user's points
        move, and where (hints.move_guess). The last GUESSES_KEPT frames' are kept (read-only): the editor
        colours the points' frame again at every click, and the frames around it as the user steps through
        the shot, and this pass was a third of each."""
        rgb = np.ascontiguousarray(rgb, dtype=np.float32)
        key = (id(self.net), self.decode, rgb.shape, hashlib.blake2b(rgb.data, digest_size=16).digest())
        if key in self._guesses:
            self._guesses.move_to_end(key)
            return self._guesses[key]
        out = self.net.guess(rgb, self.decode, compute_threads())
        for a in out:
            a.flags.writeable = False
        self._guesses[key] = out
        while len(self._guesses) > GUESSES_KEPT:
            self._guesses.popitem(last=False)
        return out

    def distribution(self, rgb: np.ndarray, trusted: bool = False) -> np.ndarray:
        """rgb (H, W, 3) float32 in [0, 1] -> the colour distribution the decoding starts from (Q, H/4, W/4)
        float32, over the bins `bins` (Q, 2): the class output with the rebalancing divided out as far as
        the decoding's saturation says."""
        return self.net.distribution(np.ascontiguousarray(rgb, dtype=np.float32), self.decode, trusted)


def _int8_net(path: Path, record: WeightsRecord, device: str, engine: str) -> Int8Net | None:
    """The int8 engine for --engine int8 (an error where it cannot run), and for auto on a CPU where it
    can; None otherwise."""
    if engine == "int8" and device != "cpu":
        raise VidcolorError("--engine int8 runs on the CPU: use --device cpu, or --engine torch on the GPU")
    if engine not in ("auto", "int8") or device != "cpu":
        return None
    try:
        return Int8Net.for_weights(path, record)
    except Int8Unavailable as e:
        if engine == "int8":
            raise VidcolorError(f"--engine int8: {e}; or use --engine torch") from None
        return None


def _torch_net(path: Path, device: str, fp32: bool) -> Net:
    """The torch engines, imported only when one runs: torch takes about 195 MB and a second to load."""
    from .torchnet import TorchNet

    return TorchNet.load(path, device, fp32)


class Ahead:
    """The network on frames whose input does not wait for the frame before, a few frames ahead of their
    use, on `workers` threads of `threads` compute threads each (set for the run by precision.run_threads).

    Without feedback, keyframes or a reference photo a frame's input is its gray alone: the decoder thread
    submits each frame as it arrives and the main thread takes the results in order. On a CPU two workers
    of one thread each keep 2 cores busier than one prediction at a time on two threads, whose OpenMP
    threads sleep and wake between operators (OMP_WAIT_POLICY=PASSIVE, cli.py): 21-30 against 38-45 ms a
    frame of throughput (AVX2, fp32, 256x144).
    """

    def __init__(self, colorizer: Colorizer, on_time: Callable[[float], object]):
        """Shares out the torch threads set now; on_time(started) is called after each prediction."""
        threads = compute_threads()
        cpu = colorizer.device == "cpu" and threads >= 2
        self.workers, self.threads = (2, threads // 2) if cpu else (1, threads)
        self.colorizer, self.on_time = colorizer, on_time
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vidcolor-model")

    def submit(self, rgb: np.ndarray) -> Future:
        """rgb (H, W, 3) float32 in [0, 1] -> a Future of Colorizer.predict(rgb)."""
        return self.pool.submit(self._predict, rgb)

    def _predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        out = self.colorizer.predict(rgb, threads=self.threads)
        self.on_time(t)
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
