"""Calibrating trained weights: how far the hint gates open.

Trained on hints that are often wrong (degraded copies, the network's own warped colours), the gates
learn to follow a hint only partly; a user's keyframe, or a true colour carried by flow, deserves more.
Raising both gates' bias (their logits by `HintGate.GAIN` x the offset) opens them wherever the hint is
trusted, but `--feedback` then follows the network's own guesses further too: with the shipped weights,
0.05 took the held-out clips' hint from +7.60 to +8.10 dB over gray with the feedback creep no worse than
before, 0.2 (the gates fully open) to +8.78 with more creep (docs/experiments.md, session 17). A gray
input never reaches the gates, so its colours do not change.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..model import ColorNet
from ..weights import load_model, read_record, save_model


def open_hint_gate(model: ColorNet, offset: float) -> ColorNet:
    """model with `offset` added to both hint gates' bias (a network without a gate is refused)."""
    if model.hint is None:
        raise ValueError("this network has no hint gate to calibrate")
    with torch.no_grad():
        model.hint.gate.bias += offset
    return model


def open_gate_file(src: Path, out: Path, offset: float) -> None:
    """src's weights (.safetensors + .json) with the gates opened by offset, written to out (may be src),
    keeping src's decoding and training record; the record's hint_gate_offset adds up."""
    model, decode = load_model(src)
    record = read_record(src)
    record["hint_gate_offset"] = record.get("hint_gate_offset", 0.0) + offset
    save_model(open_hint_gate(model, offset), out, decode, record)
