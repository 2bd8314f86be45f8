"""Saving and loading a model: safetensors weights + the ModelConfig as JSON beside them.

`models/<name>.safetensors` holds the tensors and `models/<name>.json` the
config the network is rebuilt from. No pickle anywhere on the loading path.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model import ColorNet, ModelConfig

DEFAULT_MODEL = "vidcolor-base"


def default_model_path() -> Path:
    """The weights shipped with the package (installed copy first, then the source checkout's models/)."""
    packaged = resources.files("vidcolor") / "models" / f"{DEFAULT_MODEL}.safetensors"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "models" / f"{DEFAULT_MODEL}.safetensors"


def _stored_dtype(name: str, tensor: torch.Tensor, half: bool) -> torch.dtype:
    """fp16 for weights; fp32 for the ab bins, the class weights and batch-norm running statistics:
    a running variance can exceed fp16's largest value (65504) and would load as inf."""
    keep = name.endswith(("bins", "class_weights", "running_mean", "running_var"))
    return torch.float16 if half and tensor.is_floating_point() and not keep else tensor.dtype


def save_model(model: ColorNet, path: Path, extra: dict | None = None, half: bool = True) -> None:
    """Write path (.safetensors) and its config (.json). `half` stores weights in fp16 to halve the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(_stored_dtype(k, v, half)).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(model.cfg.to_dict())})
    meta = {"config": model.cfg.to_dict(), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def read_config(path: Path) -> ModelConfig:
    """The ModelConfig stored beside path (.safetensors) in its .json, checking both files exist."""
    cfg_path = path.with_suffix(".json")
    if not path.is_file() or not cfg_path.is_file():
        raise FileNotFoundError(f"model weights not found: {path} (and its {cfg_path.name})")
    return ModelConfig.from_dict(json.loads(cfg_path.read_text())["config"])


def load_model(path: Path | None = None, **decode: float) -> ColorNet:
    """Rebuild the network from the JSON config beside the weights, then load them (fp32, eval mode).

    `decode` may override decode-time settings (temperature, prior_correction).
    """
    path = Path(path) if path is not None else default_model_path()
    model = ColorNet(replace(read_config(path), **decode))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    return model.eval()
