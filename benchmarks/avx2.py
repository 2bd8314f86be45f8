"""Run a command as if this CPU had AVX2 and nothing newer: no AVX-512, VNNI, bf16 or AMX.

    python benchmarks/avx2.py python benchmarks/speed.py --profile
    python benchmarks/avx2.py python benchmarks/quality.py --engine int8 --points 5 20

Libraries pick their kernels from the CPUID instruction: ONNX Runtime's int8 kernels (VNNI or AVX2's
`vpmaddubsw`), oneDNN's and ATen's (AVX-512 or AVX2), numpy's and OpenCV's. `cpuid_mask.c`, compiled here and
preloaded into the command and every process it starts, turns on the kernel's CPUID faulting and answers each
CPUID with those bits cleared; it also hides them from /proc/cpuinfo, which vidcolor reads to choose bf16.
The code then runs at this machine's own speed down the AVX2 paths. This is not an AVX2 machine: the cores,
clocks and caches stay this one's (a Zen 4 core does 256-bit work as fast as a Zen 2 or 3), so figures are
an estimate of such a machine, and should be named with this CPU's model. Needs Linux on x86-64, a CPU with
the `cpuid_fault` flag, and a C compiler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cpuid_mask.c")
# glibc picks its string functions before any preloaded library runs: told to skip the AVX-512 ones too.
GLIBC_TUNABLES = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF,-AVX512_VNNI"


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    if "cpuid_fault" not in Path("/proc/cpuinfo").read_text():
        sys.exit("this CPU (or its hypervisor) has no cpuid_fault flag: CPUID cannot be masked here")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("no C compiler found: install one (apt-get install gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "cpuid_mask.so"
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(SOURCE), "-ldl"], check=True)
        env = dict(os.environ, LD_PRELOAD=str(lib), GLIBC_TUNABLES=GLIBC_TUNABLES)
        return subprocess.run(sys.argv[1:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
