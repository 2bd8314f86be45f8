"""The int8 engine's colours on another CPU's instructions, emulated: does int8 hold on AVX2 without VNNI?

    python benchmarks/int8_isa.py [--images 32] [--cpu EPYC-Rome]     # needs qemu-user (apt-get install qemu-user)

ONNX Runtime picks its integer kernels from the CPU's CPUID: with VNNI (AVX-512 or AVX) one instruction
multiplies and adds u8 x s8 in 32 bits; on AVX2 alone `vpmaddubsw` adds pairs in 16 bits, which can
saturate. This runs the shipped int8 body on held-out photos (gray, 256x160) natively and under
`qemu-x86_64 -cpu CPU` (default EPYC-Rome: Zen 2, AVX2 without AVX-512 or VNNI), where the emulated CPUID
sends ONNX Runtime down the other kernels, and compares both with torch fp32 after the same decoding:
PSNR against the truth, colourfulness, and the mean difference of the decoded ab. Emulation says nothing
of speed. Needs ../shared (the held-out photos).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import gray_rgb, join_lab, rgb_to_lab
from vidcolor.inference import Colorizer
from vidcolor.train.data import cached, center_crops, list_images, split_images
from vidcolor.train.fit import TrainConfig
from vidcolor.train.metrics import colorfulness, psnr

# Run under the emulator: numpy and onnxruntime only (torch would take minutes to import there).
BODY = """
import sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
outs = [s.run(None, {"rgb": x[i : i + 1]}) for i in range(len(x))]
np.savez(sys.argv[3], logits=np.concatenate([o[0] for o in outs]), reg=np.concatenate([o[1] for o in outs]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--cpu", default="EPYC-Rome", help="qemu's CPU model (qemu-x86_64 -cpu help)")
    args = ap.parse_args()
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        sys.exit("qemu-x86_64 not found: apt-get install qemu-user")
    col = Colorizer.load(None, "cpu", engine="int8")
    _, held = split_images(list_images(Path(TrainConfig.data_dir)), TrainConfig.holdout_permille)
    truth = F.interpolate(
        center_crops(cached(held, Path(TrainConfig.cache_dir), 256), 256)[: args.images], size=(160, 256), mode="area"
    )
    L = rgb_to_lab(truth)[:, :1]
    x = gray_rgb(L).contiguous()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x.numpy())
        outs = {}
        for name, prefix in (("int8, this CPU", []), (f"int8, {args.cpu} emulated", [qemu, "-cpu", args.cpu])):
            out = Path(tmp) / "out.npz"
            cmd = [*prefix, sys.executable, "-c", BODY, str(col.int8.path), str(Path(tmp) / "x.npy"), str(out)]
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            o = np.load(out)
            outs[name] = (torch.from_numpy(o["logits"]), torch.from_numpy(o["reg"]))
    with torch.inference_mode():
        logits, reg, _ = col.model.body(x)
    outs["torch fp32"] = (logits, reg)
    ref = None
    print(f"{args.images} held-out photos, gray, 256x160; CPU here: {' '.join(sorted(_flags()))}")
    for name, (logits, reg) in reversed(outs.items()):
        ab, _ = col.model.decode(logits, reg, torch.zeros_like(reg[:, :1]), col.decode)
        ref = ab if ref is None else ref
        rgb = join_lab(L, F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False))
        print(
            f"{name:28s} PSNR {float(psnr(rgb, truth).mean()):.3f} dB | colour {float(colorfulness(rgb).mean()):.2f} | "
            f"decoded ab from fp32's: {float((ab - ref).abs().mean()):.3f} Lab units on average"
        )


def _flags() -> set[str]:
    from vidcolor.precision import cpu_flags

    return cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}


if __name__ == "__main__":
    main()
