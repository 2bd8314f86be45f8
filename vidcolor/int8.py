"""The network's body in int8 on ONNX Runtime, for CPUs.

`python -m vidcolor.train quantize` makes `<weights>.int8.onnx` from a network's weights: its body
(ColorNet.body: the encoder and decoder, up to the logits, the regression and the features the hint gate
reads) with int8 weights (per channel) and int8 activations whose ranges were measured on real frames. The
hint gate and the decoding of the bins stay in torch, in fp32. The record beside the weights names the file
and the sha256 of the weights it was made from (weights.Int8Record): other weights never use it.

ONNX Runtime runs one session per thread count asked for: the model's workers (inference.Ahead) run one
frame each on one thread, which keeps 2 cores busier than one frame at a time on both.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from .weights import WeightsRecord, file_hash


class Int8Unavailable(Exception):
    """Why the int8 engine cannot run these weights here (one line)."""


def ort():
    """onnxruntime, imported on first use: a torch-only run never loads it."""
    try:
        import onnxruntime
    except ImportError:
        raise Int8Unavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    except OSError as e:  # installed, but its library does not load on this system
        raise Int8Unavailable(f"onnxruntime does not load here ({e})") from None
    return onnxruntime


class Int8Body:
    """ColorNet.body's stand-in: rgb (B, 3, H, W) float32 in [0, 1], H and W multiples of 32 -> logits
    (B, Q, H/4, W/4), ab regression (B, 2, H/4, W/4) in Lab units, decoder features (B, c, H/4, W/4), all
    float32 on the CPU."""

    def __init__(self, path: Path):
        self.path = path
        self.sessions: dict[int, object] = {}
        self.lock = threading.Lock()

    @classmethod
    def for_weights(cls, weights: Path, record: WeightsRecord) -> Int8Body:
        """The int8 body made from the weights at `weights`; Int8Unavailable if there is none for them."""
        if not record.int8.file:
            raise Int8Unavailable(f"{weights.name} has no int8 network (python -m vidcolor.train quantize makes one)")
        path = weights.parent / record.int8.file
        if not path.is_file():
            raise Int8Unavailable(f"{path} is missing (reinstall vidcolor, or python -m vidcolor.train quantize)")
        if file_hash(weights) != record.int8.weights_sha256:
            raise Int8Unavailable(f"{path.name} was made from other weights than {weights.name} (run quantize again)")
        body = cls(path)
        body.session(1)  # the model workers' session, made now: a file ONNX Runtime cannot read fails here
        return body

    def session(self, threads: int):
        """The session that runs on `threads` threads, made on first use (the lock only then: this is per frame)."""
        if (made := self.sessions.get(threads)) is not None:
            return made
        with self.lock:
            if threads not in self.sessions:
                rt = ort()
                so = rt.SessionOptions()
                so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
                so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
                # Idle pool threads sleep instead of spinning: the decoder, flow and encoder need the cores (as
                # torch's OpenMP threads do under OMP_WAIT_POLICY=PASSIVE, cli.py).
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                # No memory pattern (one block per input size, planned ahead): 12 MB less a session, as fast.
                so.enable_mem_pattern = False
                try:
                    self.sessions[threads] = rt.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
                except Exception as e:  # ONNX Runtime raises its own types for a file it cannot read
                    first = (str(e).splitlines() or [type(e).__name__])[0]
                    raise Int8Unavailable(f"{self.path} is not an ONNX file ONNX Runtime can read ({first})") from None
            return self.sessions[threads]

    def __call__(self, rgb: torch.Tensor, threads: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """threads: 0 for torch's own count."""
        x = np.ascontiguousarray(rgb.detach().float().cpu().numpy())
        logits, reg, feats = self.session(threads or torch.get_num_threads()).run(None, {"rgb": x})
        # channels_last, as the torch body gives them: the gate and the bins' decoding read cells' channels.
        return tuple(torch.from_numpy(t).contiguous(memory_format=torch.channels_last) for t in (logits, reg, feats))
