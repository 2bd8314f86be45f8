"""Device and precision: bf16 only where the CPU has it natively; training stays out of the runtime."""

from __future__ import annotations

import subprocess
import sys

import torch

from vidcolor import precision


def test_bf16_only_with_native_instructions(monkeypatch):
    # An AVX-512 Xeon without bf16: oneDNN would emulate it (twice as slow as fp32), so fp32.
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512bw", "avx512_vnni"})
    assert precision.compute_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert precision.compute_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_tile", "amx_bf16"})
    assert precision.compute_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())  # no /proc/cpuinfo (macOS, Windows)
    assert precision.compute_dtype(torch.device("cpu")) == torch.float32


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2 amx_bf16\n")
    assert precision.cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_the_runtime_never_imports_training_code(gray_clip, tiny_model, tmp_path):
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from typer.testing import CliRunner\n"
        "from vidcolor.cli import app\n"
        f"r = CliRunner().invoke(app, [{str(gray_clip)!r}, '-o', {str(tmp_path / 'o.mp4')!r}, '--model', {str(tiny_model)!r}, '-q'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert Path(" + repr(str(tmp_path / "o.mp4")) + ").is_file()\n"
        "print(sorted(m for m in sys.modules if m.startswith('vidcolor.train') or m.startswith('skimage')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_command_makes_openmp_wait_passively_unless_the_user_chose(monkeypatch):
    import pytest

    from vidcolor import cli

    monkeypatch.setattr(sys, "argv", ["vidcolor", "--version"])
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        cli.main()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # spinning threads collapse speed on a busy machine
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        cli.main()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_command_keeps_freed_memory_and_glibc_takes_the_settings(monkeypatch):
    import platform

    import pytest

    from vidcolor import cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(sys, "argv", ["vidcolor", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert calls == [1]
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt's settings are glibc's")
    # In a process of its own: the settings are process-wide.
    code = "from vidcolor.precision import keep_freed_memory; raise SystemExit(0 if keep_freed_memory() else 1)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
