"""Held-out image evaluation: how well the network colours photos it never saw.

Protocol (issue 3): 256x256 centre crops of the held-out split; PSNR (RGB,
mean over images) of the gray input and of the colorization; mean
colourfulness of the colorization and of the ground truth; PSNR when the model
is given a degraded ground-truth hint (chroma shifted up to 4 px, 30 % holes).

The network runs once per batch (gray input, hinted input); every decoding
asked for (prior correction beta or a colour weight, temperature T) is
computed from those same outputs, so sweeping decodings costs little more than
one evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .augment import hole_mask
from .color import gray_rgb, join_lab, rgb_to_lab
from .metrics import colourfulness, psnr
from .model import ColorNet
from .precision import autocast, compute_dtype


class Decoding(NamedTuple):
    prior_correction: float | None  # beta; None = chosen per image at colour_weight (decoding.py)
    temperature: float
    colour_weight: float = 0.0

    @classmethod
    def of(cls, model: ColorNet) -> Decoding:
        """The model's own default decoding."""
        c = model.cfg
        return cls(None, c.temperature, c.colour_weight) if c.colour_weight > 0 else cls(c.prior_correction, c.temperature)

    def label(self) -> str:
        beta = f"auto(w={self.colour_weight:g})" if self.prior_correction is None else f"{self.prior_correction:.2f}"
        return f"beta={beta} T={self.temperature:.2f}"

    def apply(self, model: ColorNet, logits: torch.Tensor, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, Q, h, w), L (B, 1, H, W) -> ab (B, 2, h, w) and the beta used per image (B,)."""
        beta = self.prior_correction
        if beta is None:
            beta = model.choose_prior_correction(logits, L, self.temperature, self.colour_weight)
        ab, _ = model.decode(logits, self.temperature, beta)
        return ab, torch.as_tensor(beta).expand(len(logits))


def shifted_hint(ab: torch.Tensor, g: torch.Generator, max_shift: float = 4.0, holes: float = 0.3) -> torch.Tensor:
    """The evaluation hint: ab (B, 2, H, W) shifted by up to max_shift px, with `holes` of the area gray."""
    b, _, h, w = ab.shape
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * max_shift
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, [b, 2, h, w], align_corners=False)
    moved = F.grid_sample(ab, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved * hole_mask(b, h, w, g, holes, holes)


def run_network(model: ColorNet, rgb_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rgb_in (B, 3, H, W) -> fp32 logits (B, Q, H/4, W/4) and regressed ab (B, 2, H/4, W/4)."""
    with torch.inference_mode(), autocast(rgb_in.device, compute_dtype(rgb_in.device)):
        logits, reg = model(rgb_in)
    return logits.float(), reg.float()


def to_rgb(ab: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """ab (B, 2, h, w) upsampled (bilinear) and joined with L (B, 1, H, W) -> RGB (B, 3, H, W)."""
    return join_lab(L, F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False))


def sweep_decodings(
    model: ColorNet, images: torch.Tensor, decodings: Sequence[Decoding], batch: int = 16, seed: int = 0
) -> list[dict[str, float]]:
    """images (N, 3, H, W) in [0, 1], H and W multiples of 16 -> mean figures over the images, one dict
    per decoding (psnr_cls, colour_cls, psnr_hint and the mean beta differ; gray, regression and truth
    figures are shared)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    sums: list[dict[str, float]] = [{} for _ in decodings]
    for i in range(0, len(images), batch):
        gt = images[i : i + batch]
        lab = rgb_to_lab(gt)
        L = lab[:, :1]
        logits, reg_ab = run_network(model, gray_rgb(L))
        hint_logits, _ = run_network(model, join_lab(L, shifted_hint(lab[:, 1:], g)))
        reg = to_rgb(reg_ab, L)
        shared = {"psnr_gray": psnr(gray_rgb(L), gt), "psnr_reg": psnr(reg, gt),
                  "colour_reg": colourfulness(reg), "colour_gt": colourfulness(gt)}
        for acc, dec in zip(sums, decodings, strict=True):
            ab, beta = dec.apply(model, logits, L)
            cls = to_rgb(ab, L)
            hinted = to_rgb(dec.apply(model, hint_logits, L)[0], L)
            out = {**shared, "psnr_cls": psnr(cls, gt), "colour_cls": colourfulness(cls), "psnr_hint": psnr(hinted, gt),
                   "beta": beta}
            for k, v in out.items():
                acc[k] = acc.get(k, 0.0) + float(v.sum())
    return [{k: v / len(images) for k, v in acc.items()} for acc in sums]


def evaluate_images(model: ColorNet, images: torch.Tensor, temperature: float | None = None, batch: int = 16) -> dict[str, float]:
    """The figures for the model's own decoding settings (temperature may be overridden)."""
    dec = Decoding.of(model)
    if temperature is not None:
        dec = dec._replace(temperature=temperature)
    return sweep_decodings(model, images, [dec], batch)[0]
