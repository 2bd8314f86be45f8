"""Which device and precision to compute in.

bf16 autocast on a CPU is only fast where the CPU has native bf16 instructions
(AVX512-BF16 or AMX-BF16). Elsewhere oneDNN emulates it: a training step
measured 12.8 s in bf16 against 0.8 s in fp32 on an AVX2-only CPU, and on
an AVX-512 CPU without bf16 a forward pass took 69 ms in bf16 against 34 ms in
fp32, although `torch.ops.mkldnn._is_mkldnn_bf16_supported()` says yes there
(it counts emulation). So the choice is made from the CPU's own flags.

It also owns the run's thread count (run_threads). Nothing here imports torch before a torch engine
needs it: the int8 engine runs without it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VidcolorError

if TYPE_CHECKING:
    import torch

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
    import torch

    if device.type == "cuda":
        return torch.bfloat16 if training else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """torch.autocast for `dtype`, a no-op for fp32."""
    import torch

    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def pick_device(name: str) -> str:
    """auto (a CUDA GPU when torch sees one, else the CPU), cpu or cuda -> "cpu" or "cuda"."""
    if name not in ("auto", "cpu", "cuda"):
        raise VidcolorError(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cpu" or (name == "auto" and not _gpu_possible()):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise VidcolorError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu (or auto)")
    return "cpu"


def _gpu_possible() -> bool:
    """Whether torch might see a GPU, told without importing it: not with a CPU build of torch (its
    version.py names no CUDA or ROCm), nor without a GPU driver's device files."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
    except OSError:
        return True  # cannot tell: ask torch
    lines = [line.replace(" ", "") for line in text.splitlines()]
    cpu_build = all(not line.startswith(("cuda", "hip")) or line.endswith("=None") for line in lines)
    return not cpu_build and any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/kfd", "/proc/driver/nvidia"))


_threads = 0  # the run's compute threads (run_threads); 0: each library's own choice


def compute_threads() -> int:
    """The threads the network may use now: the run's (run_threads), else torch's own count where torch is
    loaded, else the cores this process may run on."""
    if _threads:
        return _threads
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else len(os.sched_getaffinity(0))


@contextmanager
def run_threads(n: int) -> Iterator[None]:
    """Run with n compute threads (0: leave the count as it is): the int8 engine's, and torch's where a
    torch engine has loaded it; restored after. Results depend on the thread count (float sums in another
    order), so a resumed run must use the same one."""
    global _threads
    torch = sys.modules.get("torch")
    before = _threads, (torch.get_num_threads() if torch is not None else 0)
    if n > 0:
        _threads = n
        if torch is not None:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        _threads = before[0]
        if torch is not None:
            torch.set_num_threads(before[1])


# glibc's mallopt parameters (malloc.h) and the values the vidcolor command sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Bytes: blocks under 32 MB (a 1280x720 frame in float32 is 11) come from the heap, which keeps up to 256 MB free.
KEEP_FREED = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 256 << 20}


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for the next allocation instead of giving it back to the system at once.

    Each frame makes numpy arrays of megabytes (the int8 head's (Q, h, w) maps are 2.7 MB at 256x160) and
    frees them. By default glibc maps such blocks anew, or trims them off its heap, so each new one costs
    page faults: the fed-back frame's mixture took 4.2 ms a frame against 1.8 with memory kept, and a
    640x360 run spent 2.1 s of system time against 0.9. Process-wide, so the command sets it, not the
    library. False where the C library has no mallopt (not glibc)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(k, v) == 1 for k, v in KEEP_FREED.items())
