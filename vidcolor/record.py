"""The record beside a network's weights: one versioned JSON, read without torch.

`<name>.safetensors` holds the tensors (weights.py) and `<name>.json` the record (WeightsRecord), schema 1:

    {"vidcolor_weights": 1,
     "model": {...},       ModelConfig: the network is rebuilt from it
     "decode": {...},      DecodeConfig: how its logits become colours by default
     "feedback": {...},    FeedbackRecord: how it wants its own colours fed back at run time
     "hint_gate": {...},   HintGateRecord: what calibration added to its hint gates after training
     "int8": {...},        Int8Record: the int8 engine's network made from these weights, if any (int8.py)
     "training": {...}}    where it came from: runs, steps, figures, the weights before (free form)

A record without "vidcolor_weights" (written before 2026-12-07) is read through `migrate`: its top-level
feedback and hint-gate keys move into their sections and the rest becomes "training". A newer schema is
refused.

The shipped weights are package data (`vidcolor/models/`, mapped from the checkout's top-level `models/`
folder by pyproject), so a wheel carries them. Nothing here imports torch: the int8 engine runs without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape; its defaults are the shipped network. How logits become colours is
    DecodeConfig's concern (below)."""

    decoder: tuple[int, ...] = (64, 96, 128, 256)  # decoder channels at strides 4, 8, 16, 32
    global_dim: int = 256  # hidden width of the global-context MLP
    bin_grid: float = 10.0  # ab quantization step (Zhang: 10)
    # Follow the colours the input carries where the network trusts them (HintGate); a gray input skips it.
    hint_gate: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        fields.setdefault("hint_gate", False)  # written before the gate existed: a network without one
        if fields.pop("hypercolumns", False):  # an experiment's (docs/experiments.md); False in older files
            raise ValueError("weights with hypercolumn laterals: vidcolor no longer builds that network")
        return cls(**fields)


# How logits become colours: decoding.py (torch) and int8.py (numpy) decode by it.
@dataclass(frozen=True)
class DecodeConfig:
    temperature: float = 0.5  # annealed-mean T (Zhang: 0.38); lower commits to the likeliest colour
    saturation: float = 0.3  # 0 = the posterior mean (muted) .. 1 = fully rebalanced (vivid)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DecodeConfig:
        return cls(**d)


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
