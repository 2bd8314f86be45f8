"""Which reduced precision to compute in, per device.

bf16 autocast on a CPU is only fast where oneDNN has native bf16 (AVX512-BF16 /
AMX). On an AVX2-only CPU it is emulated: a training step measured 12.8 s in
bf16 against 0.8 s in fp32 (AMD EPYC, 2 cores, torch 2.13). So the choice is
made from what the CPU reports, never assumed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def compute_dtype(device: torch.device, training: bool = False) -> torch.dtype:
    """CUDA: fp16 for inference, bf16 for training (no loss scaling needed); CPU: bf16 where native, else fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if training else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """torch.autocast for `dtype`, a no-op for fp32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
