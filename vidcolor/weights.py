"""Saving and loading a model: safetensors weights + the configs as JSON beside them.

`<name>.safetensors` holds the tensors and `<name>.json` the ModelConfig the
network is rebuilt from, the DecodeConfig it ships with, and the training
record. Five of the record's keys are run-time settings too (read_feedback):
whether the network is fed its own warped colours by default ("feedback": it
was trained on chains of them), how much they are damped ("feedback_gain"),
whether the colours carried are smoothed first ("smooth_carried"), how often an
input goes without them ("gray_every") and how far they are snapped to the
frame's edges ("snap_radius"). No pickle anywhere on the loading path.

The shipped weights are package data (`vidcolor/models/`, mapped from the
checkout's top-level `models/` folder by pyproject), so a wheel carries them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .decoding import DecodeConfig
from .model import ColorNet, ModelConfig
from .temporal import FeedbackRecord

DEFAULT_MODEL = "vidcolor-base"


def default_model_path() -> Path:
    """The weights shipped with the package (installed as vidcolor.models, or the checkout's models/)."""
    try:
        packaged = resources.files("vidcolor.models") / f"{DEFAULT_MODEL}.safetensors"
        if packaged.is_file():
            return Path(str(packaged))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "models" / f"{DEFAULT_MODEL}.safetensors"


def _stored_dtype(name: str, tensor: torch.Tensor, half: bool) -> torch.dtype:
    """fp16 for weights; fp32 for the ab bins, the class weights and batch-norm running statistics:
    a running variance can exceed fp16's largest value (65504) and would load as inf."""
    keep = name.endswith(("bins", "class_weights", "running_mean", "running_var"))
    return torch.float16 if half and tensor.is_floating_point() and not keep else tensor.dtype


def save_model(
    model: ColorNet, path: Path, decode: DecodeConfig | None = None, extra: dict | None = None, half: bool = True
) -> None:
    """Write path (.safetensors) and its configs (.json). `half` stores weights in fp16 to halve the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(_stored_dtype(k, v, half)).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    meta = {"model": model.cfg.to_dict(), "decode": (decode or DecodeConfig()).to_dict(), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def read_configs(path: Path) -> tuple[ModelConfig, DecodeConfig]:
    """The configs stored beside path (.safetensors) in its .json, checking both files exist."""
    cfg_path = path.with_suffix(".json")
    if not path.is_file() or not cfg_path.is_file():
        raise FileNotFoundError(f"model weights not found: {path} (and its {cfg_path.name})")
    meta = json.loads(cfg_path.read_text())
    if "model" not in meta or "decoder" not in meta["model"]:
        raise ValueError(f"{cfg_path} describes a network this version of vidcolor does not build")
    return ModelConfig.from_dict(meta["model"]), DecodeConfig.from_dict(meta.get("decode", {}))


def read_record(path: Path) -> dict:
    """What the JSON beside path (.safetensors) holds besides the configs: the training record."""
    meta = json.loads(path.with_suffix(".json").read_text())
    return {k: v for k, v in meta.items() if k not in ("model", "decode")}


def read_feedback(path: Path) -> FeedbackRecord:
    """The feedback settings path's record holds (FeedbackRecord's defaults where it holds none)."""
    record, d = read_record(path), asdict(FeedbackRecord())
    # Each field cast to its default's type (a JSON 1 for a gain is a float), so a new field needs no edit here.
    return FeedbackRecord(**{k: type(v)(record.get(k, v)) for k, v in d.items()})


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
