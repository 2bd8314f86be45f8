"""Which device and precision to compute in.

bf16 autocast on a CPU is only fast where the CPU has native bf16 instructions
(AVX512-BF16 or AMX-BF16). Elsewhere oneDNN emulates it: a training step
measured 12.8 s in bf16 against 0.8 s in fp32 on an AVX2-only CPU, and on
an AVX-512 CPU without bf16 a forward pass took 69 ms in bf16 against 34 ms in
fp32, although `torch.ops.mkldnn._is_mkldnn_bf16_supported()` says yes there
(it counts emulation). So the choice is made from the CPU's own flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import torch

from .errors import VidcolorError

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux reports them; empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    return any(f in (cpu_flags() if flags is None else flags) for f in NATIVE_BF16_FLAGS)


def compute_dtype(device: torch.device, training: bool = False) -> torch.dtype:
    """CUDA: fp16 for inference, bf16 for training (no loss scaling needed); CPU: bf16 where native, else fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if training else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """torch.autocast for `dtype`, a no-op for fp32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def pick_device(name: str) -> torch.device:
    """auto (a CUDA GPU when torch sees one, else the CPU), cpu or cuda."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VidcolorError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu (or auto)")
    if name not in ("cpu", "cuda"):
        raise VidcolorError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with n torch threads (0: leave torch's own choice), restored after. Results depend on the
    thread count (float sums in another order), so a resumed run must use the same one."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
