"""The torch engines: the whole network in torch, numpy in and out (inference.Colorizer's net).

- torch: batch norms folded into the convolutions, channels_last, and on a CPU bf16 where it has native
  bf16 (AVX512-BF16 / AMX), fp32 elsewhere; on CUDA fp16.
- fp32: torch in fp32 everywhere, the reference the others are measured against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .model import ColorNet
from .precision import autocast, compute_dtype
from .record import DecodeConfig
from .reference import Match
from .weights import load_model

# oneDNN's preferred layout, in fp32 too: with this network (MobileNetV2 encoder) a 256x144 frame takes
# 40 ms against 46 in NCHW (AVX2 only, 2 threads, medians of 60 interleaved runs). TorchScript's
# trace + freeze gave 34 ms, but torch.jit.trace is deprecated.
MEMORY_FORMAT = torch.channels_last


class TorchNet:
    def __init__(self, model: ColorNet, device: torch.device, dtype: torch.dtype):
        self.model, self.device, self.dtype = model, device, dtype

    @classmethod
    def load(cls, path: Path, device: str, fp32: bool) -> TorchNet:
        """The weights at path on `device` (cpu or cuda), in fp32 or the device's fast precision.
        FileNotFoundError or ValueError as weights.load_model."""
        dev = torch.device(device)
        model, _ = load_model(path)
        dtype = torch.float32 if fp32 else compute_dtype(dev)
        return cls(model.fuse().to(dev, dtype=dtype, memory_format=MEMORY_FORMAT), dev, dtype)

    @property
    def engine(self) -> str:
        return "fp32" if self.dtype == torch.float32 else "torch"

    @property
    def bins(self) -> np.ndarray:
        return self.model.colors.bins.float().cpu().numpy()

    @torch.inference_mode()
    def run(self, batch: np.ndarray, decode: DecodeConfig, match: Match | None, trusted: bool, threads: int) -> np.ndarray:
        """(B, H, W, 3) float32 in [0, 1] -> (B, H, W, 5): a, b, confidence, regression a, b at the input
        size (bilinear). threads: unused (torch's own count, precision.run_threads)."""
        h, w = batch.shape[1:3]
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        x = x.contiguous(memory_format=MEMORY_FORMAT)
        with autocast(self.device, self.dtype):
            ab, conf, carrier = self.model.colorize_ab(x.to(self.dtype), decode, match, trusted)
        out = F.interpolate(torch.cat((ab, conf, carrier), 1).float(), size=(h, w), mode="bilinear", align_corners=False)
        return out.permute(0, 2, 3, 1).cpu().numpy()

    @torch.inference_mode()
    def guess(self, rgb: np.ndarray, decode: DecodeConfig, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """inference.Colorizer.guess: rgb (H, W, 3) -> ab (H, W, 2), features (c, ceil(H/4), ceil(W/4))."""
        h, w = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(self.device)
        x = self.model.padded(x).contiguous(memory_format=MEMORY_FORMAT).to(self.dtype)
        with autocast(self.device, self.dtype):
            logits, reg, feats = self.model.body(x)
            ab, _ = self.model.decode(*self.model.gate(logits, reg, feats, x), decode)
        oh, ow = -(-h // 4), -(-w // 4)
        ab = F.interpolate(ab[..., :oh, :ow].float(), size=(h, w), mode="bilinear", align_corners=False)
        return ab[0].permute(1, 2, 0).cpu().numpy(), feats[0, :, :oh, :ow].float().cpu().numpy()

    @torch.inference_mode()
    def distribution(self, rgb: np.ndarray, decode: DecodeConfig, trusted: bool) -> np.ndarray:
        """inference.Colorizer.distribution: rgb (H, W, 3) -> (Q, H/4, W/4) float32."""
        h, w = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(self.device)
        x = self.model.padded(x).contiguous(memory_format=MEMORY_FORMAT)
        with autocast(self.device, self.dtype):
            logits = self.model(x.to(self.dtype), trusted)[0][0, :, : h // 4, : w // 4].float()
        z = logits - (1.0 - decode.saturation) * torch.log(self.model.colors.class_weights)[:, None, None]
        return torch.softmax(z, 0).cpu().numpy()
