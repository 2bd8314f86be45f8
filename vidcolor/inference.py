"""Running the network on frames: engine, device and precision, numpy in and out.

Engines (ENGINES, the --engine option):
- int8: the network's body in int8 on ONNX Runtime (int8.py), the hint gate and decoding in torch fp32.
  The default on a CPU where the weights have an int8 network.
- torch: batch norms folded into the convolutions, channels_last, and on a CPU bf16 where it has native
  bf16 (AVX512-BF16 / AMX), fp32 elsewhere; on CUDA fp16. The default on a GPU and for weights without
  an int8 network.
- fp32: torch in fp32 everywhere, the reference the others are measured against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .decoding import DecodeConfig, Match
from .errors import VidcolorError
from .int8 import Int8Body, Int8Unavailable
from .model import ColorNet
from .precision import autocast, compute_dtype, pick_device
from .weights import FeedbackRecord, default_model_path, load_model, read_weights

ENGINES = ("auto", "int8", "torch", "fp32")

# oneDNN's preferred layout, in fp32 too: with this network (MobileNetV2 encoder) a 256x144 frame takes
# 40 ms against 46 in NCHW (AVX2 only, 2 threads, medians of 60 interleaved runs). TorchScript's
# trace + freeze gave 34 ms, but torch.jit.trace is deprecated.
MEMORY_FORMAT = torch.channels_last


@dataclass
class Colorizer:
    model: ColorNet
    decode: DecodeConfig
    device: torch.device
    dtype: torch.dtype
    feedback: FeedbackRecord = FeedbackRecord()  # how these weights want their own colours fed back (weights.py)
    int8: Int8Body | None = None  # the int8 engine's body; None: torch runs the whole network

    @property
    def engine(self) -> str:
        """The engine that runs: int8, torch or fp32 (torch in fp32, by choice or by the CPU)."""
        return "int8" if self.int8 is not None else "fp32" if self.dtype == torch.float32 else "torch"

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
        override the decoding they ship with (decoding.DecodeConfig)."""
        if engine not in ENGINES:
            raise VidcolorError(f"unknown engine {engine!r}: use {', '.join(ENGINES)}")
        dev = pick_device(device)
        path = Path(path) if path is not None else default_model_path()
        try:
            model, decode = load_model(path)
            record = read_weights(path)
        except FileNotFoundError as e:
            raise VidcolorError(f"{e}. Reinstall vidcolor or pass --model PATH") from None
        except ValueError as e:
            raise VidcolorError(f"{e}: pass --model with weights made for it") from None
        if temperature is not None:
            decode = replace(decode, temperature=temperature)
        if saturation is not None:
            decode = replace(decode, saturation=saturation)
        int8 = _int8_body(path, record, dev, engine)
        dtype = torch.float32 if int8 is not None or engine == "fp32" else compute_dtype(dev)
        model = model.fuse().to(dev, dtype=dtype, memory_format=MEMORY_FORMAT)
        return cls(model, decode, dev, dtype, record.feedback, int8)

    def predict(
        self, rgb: np.ndarray, match: Match | None = None, trusted: bool = False, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """rgb (H, W, 3) float32 in [0, 1] -> ab (H, W, 4) float32 in Lab units (the colours to show, then
        the regression head's, to feed back: temporal.Predict) and confidence (H, W) float32 in [0, 1].
        trusted: rgb's colours are true ones (a keyframe's), not the network's own (model.HintGate).
        threads: the int8 engine's threads for this frame (0: torch's count). The network predicts at 1/4
        size; this upsamples (bilinear) to the input size."""
        out = self._run(np.ascontiguousarray(rgb)[None], match, trusted, threads)[0]
        return np.ascontiguousarray(out[..., [0, 1, 3, 4]]), np.ascontiguousarray(out[..., 2])

    @torch.inference_mode()
    def _run(self, batch: np.ndarray, match: Match | None = None, trusted: bool = False, threads: int = 0) -> np.ndarray:
        """(B, H, W, 3) float32 -> (B, H, W, 5): a, b, confidence, regression a, b at the input size."""
        h, w = batch.shape[1:3]
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        x = x.contiguous(memory_format=MEMORY_FORMAT)
        with autocast(self.device, self.dtype):
            ab, conf, carrier = self.model.colorize_ab(x.to(self.dtype), self.decode, match, trusted, self.body(threads))
        out = F.interpolate(torch.cat((ab, conf, carrier), 1).float(), size=(h, w), mode="bilinear", align_corners=False)
        return out.permute(0, 2, 3, 1).cpu().numpy()

    def body(self, threads: int = 0) -> Callable | None:
        """The int8 body on `threads` threads, or None for the torch network's own."""
        return None if self.int8 is None else (lambda x: self.int8(x, threads))

    @torch.inference_mode()
    def distribution(self, rgb: np.ndarray, trusted: bool = False) -> torch.Tensor:
        """rgb (H, W, 3) float32 in [0, 1] -> the colour distribution the decoding starts from (Q, H/4, W/4)
        float32, over the bins `model.colors.bins` (Q, 2): the class output with the rebalancing divided out
        as far as the decoding's saturation says."""
        h, w = rgb.shape[:2]
        m = self.model.multiple
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(self.device)
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate").contiguous(memory_format=MEMORY_FORMAT)
        with autocast(self.device, self.dtype):
            x = x.to(self.dtype)
            logits = self.model(x, trusted, self.body())[0][0, :, : h // 4, : w // 4].float()
        z = logits - (1.0 - self.decode.saturation) * torch.log(self.model.colors.class_weights)[:, None, None]
        return torch.softmax(z, 0).cpu()


def _int8_body(path: Path, record, device: torch.device, engine: str) -> Int8Body | None:
    """The int8 body for --engine int8 (an error where it cannot run), and for auto on a CPU where it
    can; None otherwise."""
    if engine == "int8" and device.type != "cpu":
        raise VidcolorError("--engine int8 runs on the CPU: use --device cpu, or --engine torch on the GPU")
    if engine not in ("auto", "int8") or device.type != "cpu":
        return None
    try:
        return Int8Body.for_weights(path, record)
    except Int8Unavailable as e:
        if engine == "int8":
            raise VidcolorError(f"--engine int8: {e}; or use --engine torch") from None
        return None


class Ahead:
    """The network on frames whose input does not wait for the frame before, a few frames ahead of their
    use, on `workers` threads of `threads` torch threads each (set for the run by `torch_threads`).

    Without feedback, keyframes or a reference photo a frame's input is its gray alone: the decoder thread
    submits each frame as it arrives and the main thread takes the results in order. On a CPU two workers
    of one thread each keep 2 cores busier than one prediction at a time on two threads, whose OpenMP
    threads sleep and wake between operators (OMP_WAIT_POLICY=PASSIVE, cli.py): 21-30 against 38-45 ms a
    frame of throughput (AVX2, fp32, 256x144).
    """

    def __init__(self, colorizer: Colorizer, on_time: Callable[[float], object]):
        """Shares out the torch threads set now; on_time(started) is called after each prediction."""
        threads = torch.get_num_threads()
        cpu = colorizer.device.type == "cpu" and threads >= 2
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
