"""Release tool: weight averaging ("model soup", Wortsman et al. 2022) of two fine-tunings of the same network.

One of the steps that made the shipped weights (`python -m vidcolor.train average`; the model card's
Training section lists them in order); not part of a training run.

Two runs that start from the same weights stay in one basin: the average of their weights often keeps what
each learned. Used to join the shipped gray-frame network with a run that trained the hint gate.
"""

from pathlib import Path

import torch

from ..model import ColorNet
from ..weights import load_model


def average_weights(a: ColorNet, b: ColorNet, alpha: float) -> dict[str, torch.Tensor]:
    """alpha * b + (1 - alpha) * a for every floating-point tensor both hold; b's own for the rest (a layer
    only b has, such as the hint gate, and integer buffers)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    own = a.state_dict()
    out = {}
    for name, v in b.state_dict().items():
        w = own.get(name)
        fits = w is not None and w.shape == v.shape and v.is_floating_point()
        out[name] = alpha * v.float() + (1 - alpha) * w.float() if fits else v
    return out


def average_models(a: Path, b: Path, alpha: float) -> ColorNet:
    """The network of b (its ModelConfig) with weights averaged with a's; both .safetensors with a .json."""
    base, _ = load_model(a)
    model, _ = load_model(b)
    model.load_state_dict(average_weights(base, model, alpha))
    return model.eval()
