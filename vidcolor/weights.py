"""Saving and loading a network: its tensors as safetensors, its record as JSON beside them (record.py).

No pickle anywhere on the loading path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model import ColorNet
from .record import DecodeConfig, FeedbackRecord, HintGateRecord, WeightsRecord, default_model_path, read_configs, write_record


def _stored_dtype(name: str, tensor: torch.Tensor, half: bool) -> torch.dtype:
    """fp16 for weights; fp32 for the ab bins, the class weights and batch-norm running statistics:
    a running variance can exceed fp16's largest value (65504) and would load as inf."""
    keep = name.endswith(("bins", "class_weights", "running_mean", "running_var"))
    return torch.float16 if half and tensor.is_floating_point() and not keep else tensor.dtype


def save_model(
    model: ColorNet,
    path: Path,
    decode: DecodeConfig | None = None,
    *,
    feedback: FeedbackRecord | None = None,
    hint_gate: HintGateRecord | None = None,
    training: dict | None = None,
    half: bool = True,
) -> None:
    """Write path (.safetensors) and its record (.json); the record's network is model.cfg. `half` stores
    weights in fp16 to halve the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(_stored_dtype(k, v, half)).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    record = WeightsRecord(
        model.cfg, decode or DecodeConfig(), feedback or FeedbackRecord(), hint_gate or HintGateRecord(), training or {}
    )
    write_record(path, record)


def load_model(path: Path | None = None) -> tuple[ColorNet, DecodeConfig]:
    """Rebuild the network from the JSON beside the weights, then load them (fp32, eval mode);
    -> (network, the decoding it ships with)."""
    path = Path(path) if path is not None else default_model_path()
    cfg, decode = read_configs(path)
    model = ColorNet(cfg)
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a file that is not its format
        raise ValueError(f"{path} is not a safetensors file vidcolor can read ({str(e).splitlines()[0]})") from None
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError:
        raise ValueError(f"{path} holds weights of another shape than its {path.with_suffix('.json').name} describes") from None
    return model.eval(), decode
