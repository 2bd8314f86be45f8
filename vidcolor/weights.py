"""Saving and loading a model: safetensors weights + one versioned record as JSON beside them.

`<name>.safetensors` holds the tensors and `<name>.json` the record (WeightsRecord), schema 1:

    {"vidcolor_weights": 1,
     "model": {...},       ModelConfig: the network is rebuilt from it
     "decode": {...},      DecodeConfig: how its logits become colours by default
     "feedback": {...},    FeedbackRecord: how it wants its own colours fed back at run time
     "hint_gate": {...},   HintGateRecord: what calibration added to its hint gates after training
     "int8": {...},        Int8Record: the int8 engine's network made from these weights, if any (int8.py)
     "training": {...}}    where it came from: runs, steps, figures, the weights before (free form)

A record without "vidcolor_weights" (written before 2026-12-07) is read through `migrate`: its top-level
feedback and hint-gate keys move into their sections and the rest becomes "training". A newer schema is
refused. No pickle anywhere on the loading path.

The shipped weights are package data (`vidcolor/models/`, mapped from the checkout's top-level `models/`
folder by pyproject), so a wheel carries them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .decoding import DecodeConfig
from .model import ColorNet, ModelConfig

SCHEMA = 1  # the record's "vidcolor_weights"


@dataclass(frozen=True)
class FeedbackRecord:
    """How a network wants its own colours fed back: temporal.TemporalOptions' fields of the same names,
    where a run leaves them unset. The defaults are a record that says nothing."""

    feedback: bool = False  # fed back by default: trained on chains of its own colours (train.sequences)
    feedback_gain: float = 1.0  # below 1 where it was found to boost a hint it is fed
    smooth_carried: bool = True  # False: fed back as it gave them, unblended, as chains train it
    gray_every: int = 0  # every n-th input that would carry fed-back colours is the gray frame alone; 0: none
    snap_radius: int = 0  # fed-back colours snapped to the frame's edges by a guided filter this wide (px); 0: not


@dataclass(frozen=True)
class HintGateRecord:
    """What train.calibrate's open-gate added to the hint gates after training: already in the weights, a
    record of how they were made that nothing reads at run time."""

    offset: float = 0.0  # added to both gates' bias: every hint followed further
    trusted_offset: float = 0.0  # added for true colours only (a keyframe's, a user's points)


@dataclass(frozen=True)
class Int8Record:
    """The network's body quantized to int8 for ONNX Runtime (int8.py), made from these weights by
    `python -m vidcolor.train quantize`; empty where there is none."""

    file: str = ""  # the ONNX file, beside the weights
    weights_sha256: str = ""  # of the .safetensors it was made from: it is used with those weights only
    calibration: str = ""  # what its activation ranges were measured on (free form)


@dataclass(frozen=True)
class WeightsRecord:
    """Everything the JSON beside a network's weights says of it (see the module's docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    feedback: FeedbackRecord = field(default_factory=FeedbackRecord)
    hint_gate: HintGateRecord = field(default_factory=HintGateRecord)
    training: dict = field(default_factory=dict)
    int8: Int8Record = field(default_factory=Int8Record)

    def to_dict(self) -> dict:
        return {
            "vidcolor_weights": SCHEMA,
            "model": self.model.to_dict(),
            "decode": self.decode.to_dict(),
            "feedback": asdict(self.feedback),
            "hint_gate": asdict(self.hint_gate),
            **({"int8": asdict(self.int8)} if self.int8.file else {}),
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, d: dict) -> WeightsRecord:
        d = migrate(d)
        return cls(
            ModelConfig.from_dict(d["model"]),
            DecodeConfig.from_dict(d.get("decode", {})),
            _typed(FeedbackRecord, d.get("feedback", {})),
            _typed(HintGateRecord, d.get("hint_gate", {})),
            d.get("training", {}),
            _typed(Int8Record, d.get("int8", {})),
        )


def migrate(d: dict) -> dict:
    """A record as read -> schema 1. One without "vidcolor_weights" had its feedback settings and its hint
    gates' offsets at the top level, beside its training record ("training", and a run's own keys such as
    "step", which join it). A newer schema is refused (ValueError)."""
    version = d.get("vidcolor_weights", 0)
    if not isinstance(version, int) or version > SCHEMA:
        raise ValueError(f"a weights record of schema {version}: this vidcolor reads up to {SCHEMA}; update vidcolor")
    if version == SCHEMA:
        return d
    rest = {k: v for k, v in d.items() if k not in ("model", "decode")}
    feedback = {f.name: rest.pop(f.name) for f in fields(FeedbackRecord) if f.name in rest}
    gate = {name: rest.pop(f"hint_gate_{name}") for name in ("offset", "trusted_offset") if f"hint_gate_{name}" in rest}
    training = rest.pop("training", {}) if isinstance(rest.get("training"), dict) else {}
    kept = {k: d[k] for k in ("model", "decode") if k in d}
    return {"vidcolor_weights": SCHEMA, **kept, "feedback": feedback, "hint_gate": gate, "training": {**training, **rest}}


def _typed(kind: type, d: dict):
    """A record's dataclass from its JSON section, each field cast to its default's type (a JSON 1 for a
    gain is a float); fields it lacks keep their defaults, keys the dataclass lacks are refused."""
    defaults = asdict(kind())
    unknown = set(d) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {kind.__name__} fields {sorted(unknown)}")
    return kind(**{k: type(v)(d.get(k, v)) for k, v in defaults.items()})


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


def file_hash(path: Path) -> str:
    """The sha256 of a file (weights, a reference photo), hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_record(path: Path, record: WeightsRecord) -> None:
    """The record beside the weights at path (.safetensors)."""
    path.with_suffix(".json").write_text(json.dumps(record.to_dict(), indent=2) + "\n")


def read_weights(path: Path) -> WeightsRecord:
    """The record beside path (.safetensors), checking both files exist; an old one migrated."""
    cfg_path = path.with_suffix(".json")
    if not path.is_file() or not cfg_path.is_file():
        raise FileNotFoundError(f"model weights not found: {path} (and its {cfg_path.name})")
    meta = json.loads(cfg_path.read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict) or "decoder" not in meta["model"]:
        raise ValueError(f"{cfg_path} describes a network this version of vidcolor does not build")
    return WeightsRecord.from_dict(meta)


def read_configs(path: Path) -> tuple[ModelConfig, DecodeConfig]:
    """The network and the decoding path's record describes."""
    record = read_weights(path)
    return record.model, record.decode


def read_feedback(path: Path) -> FeedbackRecord:
    """How path's network wants its own colours fed back (FeedbackRecord's defaults where it says nothing)."""
    return read_weights(path).feedback


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
