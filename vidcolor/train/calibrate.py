"""Release tool: calibrating trained weights, how far the hint gates open and how they are fed back.

One of the steps that made the shipped weights (`python -m vidcolor.train open-gate` and `set-feedback`;
the model card's Training section lists them in order); not part of a training run.

Trained on hints that are often wrong (degraded copies, the network's own warped colours), the gates
learn to follow a hint only partly; a user's keyframe, or a true colour carried by flow, deserves more.
Two offsets, both added to the gates' logits (x `HintGate.GAIN`) wherever the hint carries colour:
- the bias, for every hint. `--feedback` feeds the network its own guesses through it, and an open gate
  follows them further: 0.05 took the held-out clips' hint from +7.60 to +8.10 dB over gray with the
  feedback creep no worse than before, 0.2 to +8.78 with more creep (docs/experiments.md);
- `HintGate.trusted_offset`, for true colours only (a keyframe's shot): it opens the gates for them without
  touching feedback.
A gray input never reaches the gates, so its colours do not change.

And the record's feedback settings outside the network (weights.FeedbackRecord): whether it is fed its
own colours by default, `feedback_gain`, what they are multiplied by before they are fed back, and
`smooth_carried`. A network that boosts a hint creeps when fed its own colours; 0.95 held the shipped
one's creep over 80 s to +6.9 % against +30.6 % undamped (docs/experiments.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..model import ColorNet
from ..record import FeedbackRecord, read_weights
from ..weights import load_model, save_model


def open_hint_gate(model: ColorNet, offset: float, trusted: bool = False) -> ColorNet:
    """model with `offset` added to both hint gates' bias, or with `trusted` to their offset for true
    colours only (a network without a gate is refused)."""
    if model.hint is None:
        raise ValueError("this network has no hint gate to calibrate")
    with torch.no_grad():
        if trusted:
            model.hint.trusted_offset += offset
        else:
            model.hint.gate.bias += offset
    return model


def open_gate_file(src: Path, out: Path, offset: float, trusted: bool = False) -> None:
    """src's weights (.safetensors + .json) with the gates opened by offset, written to out (may be src),
    keeping the rest of src's record; its hint_gate offset (or, trusted, trusted_offset) adds up."""
    model, _ = load_model(src)
    record = read_weights(src)
    gate = record.hint_gate
    gate = replace(gate, trusted_offset=gate.trusted_offset + offset) if trusted else replace(gate, offset=gate.offset + offset)
    opened = open_hint_gate(model, offset, trusted)
    save_model(opened, out, record.decode, feedback=record.feedback, hint_gate=gate, training=record.training)


def set_feedback_file(src: Path, out: Path, **settings: bool | float) -> FeedbackRecord:
    """src's weights (.safetensors + .json) written to out (may be src) with the given FeedbackRecord
    fields set in the record (feedback, feedback_gain, smooth_carried, gray_every, snap_radius); the
    network, its decoding and the rest of its record unchanged. -> the record's feedback settings now."""
    record = read_weights(src)
    wanted = replace(record.feedback, **settings)
    if not 0.0 < wanted.feedback_gain <= 1.5:
        raise ValueError(f"a feedback gain of {wanted.feedback_gain} makes no sense: use a factor near 1 (0.95 ships)")
    if wanted.gray_every < 0 or wanted.gray_every == 1:
        raise ValueError(f"gray_every {wanted.gray_every} makes no sense: 0 (never) or every 2nd frame or more")
    if not 0 <= wanted.snap_radius <= 64:
        raise ValueError(f"a snap radius of {wanted.snap_radius} px makes no sense: 0 (off) to 64 (8 is the one measured)")
    model, _ = load_model(src)
    save_model(model, out, record.decode, feedback=wanted, hint_gate=record.hint_gate, training=record.training)
    return wanted
