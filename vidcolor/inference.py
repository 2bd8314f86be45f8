"""Running the network on one frame: device and precision choice, numpy in/out.

CPU: batch norms folded into the convolutions, channels_last, and bf16 where
the CPU has native bf16 (AVX512-BF16 / AMX), fp32 elsewhere. CUDA: fp16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import VidcolorError
from .model import ColorNet
from .precision import autocast, compute_dtype
from .weights import load_model


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VidcolorError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu (or auto)")
    if name not in ("cpu", "cuda"):
        raise VidcolorError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


@dataclass
class Colorizer:
    model: ColorNet
    device: torch.device
    dtype: torch.dtype
    temperature: float | None = None

    @classmethod
    def load(cls, path: Path | None, device: str = "auto", temperature: float | None = None,
             saturation: float | None = None) -> Colorizer:
        """saturation in [0, 1] fixes the colour strength for every frame: 1 - prior_correction
        (0 = cautious posterior mean, 1 = Zhang et al.'s fully rebalanced, vivid decoding). None keeps
        the model's own: a strength chosen per frame when its config has a colour_weight (decoding.py)."""
        dev = pick_device(device)
        decode = {} if saturation is None else {"prior_correction": 1.0 - saturation, "colour_weight": 0.0}
        try:
            model = load_model(path, **decode)
        except FileNotFoundError as e:
            raise VidcolorError(f"{e}. Reinstall vidcolor or pass --model PATH") from None
        model.fuse()
        dtype = compute_dtype(dev)
        model = model.to(dev, dtype=dtype, memory_format=torch.channels_last)
        model.bins.data = model.bins.data.float()
        model.bin_rgb.data = model.bin_rgb.data.float()
        return cls(model, dev, dtype, temperature)

    def predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rgb (H, W, 3) float32 in [0, 1] -> ab (H, W, 2) float32 and confidence (H, W) float32 in [0, 1].

        The network predicts at 1/4 size; this upsamples (bilinear) to the input size.
        """
        out = self._run(np.ascontiguousarray(rgb)[None])[0]
        return np.ascontiguousarray(out[..., :2]), np.ascontiguousarray(out[..., 2])

    def predict_many(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Several same-size (H, W, 3) images in one batch -> (ab (H, W, 2), confidence (H, W)) each."""
        out = self._run(np.stack(images))
        return [(np.ascontiguousarray(o[..., :2]), np.ascontiguousarray(o[..., 2])) for o in out]

    @torch.inference_mode()
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) float32 -> (B, H, W, 3): a, b, confidence at the input size."""
        h, w = batch.shape[1:3]
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            ab, conf = self.model.colorize_ab(x, self.temperature)
        out = F.interpolate(torch.cat((ab, conf), 1).float(), size=(h, w), mode="bilinear", align_corners=False)
        return out.permute(0, 2, 3, 1).cpu().numpy()
