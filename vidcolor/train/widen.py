"""Widening a trained network's decoder without changing what it computes (after Net2Net, Chen et al. 2016).

Issue 17 asks whether a wider decoder colours better. Training one from the ImageNet encoder alone would
throw away the shipped weights' training (about 10,000 steps), which these 2-core machines cannot repeat in
a session. So the wider network starts as the shipped one: each widened layer keeps the old weights in its leading
channels, its new channels start at the layer's own random initialization, and the old channels read
nothing from the new ones (those weights start at zero). A gray frame's output is then exactly the old
network's, and training grows the new channels from there.

Only the stride-8 and stride-16 widths may grow: the stride-4 width is read by the heads and the hint gate, and
the stride-32 width by the global-context MLP, whose output halves (scale, shift) a leading-slice copy
would mix up.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..model import ColorNet
from ..weights import load_model, read_record, save_model


def widened(narrow: ColorNet, decoder: tuple[int, ...]) -> ColorNet:
    """A network like `narrow` with decoder widths `decoder` that computes what `narrow` computes."""
    old = narrow.cfg.decoder
    if len(decoder) != len(old) or decoder[0] != old[0] or decoder[-1] != old[-1]:
        raise ValueError(f"only the middle decoder widths may change: {old} -> {decoder}")
    if any(n < o for n, o in zip(decoder, old, strict=True)):
        raise ValueError(f"a decoder can only grow: {old} -> {decoder}")
    wide = ColorNet(replace(narrow.cfg, decoder=tuple(decoder)))
    wide.load_state_dict(grown_state(narrow.state_dict(), wide.state_dict()))
    return wide.eval()


def grown_state(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each tensor of `new` (a wider network's initialization) with `old`'s values in its leading slice.
    A conv weight (out, in, k, k) that gained inputs gets zeros where old outputs read new inputs."""
    out = {}
    for name, init in new.items():
        w = old[name]
        if w.shape == init.shape:
            out[name] = w.clone()
            continue
        if w.dim() != init.dim() or any(a > b for a, b in zip(w.shape, init.shape, strict=True)):
            raise ValueError(f"{name}: {tuple(w.shape)} does not fit in {tuple(init.shape)}")
        t = init.clone()
        if t.dim() == 4:
            t[: w.shape[0], w.shape[1] :] = 0
        t[tuple(slice(0, s) for s in w.shape)] = w
        out[name] = t
    return out


def widen_file(src: Path, out: Path, decoder: tuple[int, ...]) -> None:
    """Write src's network widened to `decoder` (with src's decoding and record) to out (.safetensors + .json)."""
    narrow, decode = load_model(src)
    # fp32: a training start, not a shipped file; the copy stays exact whatever precision src holds.
    save_model(widened(narrow, decoder), out, decode, {**read_record(src), "widened_from": str(src)}, half=False)
