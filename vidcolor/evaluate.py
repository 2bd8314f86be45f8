"""Held-out image evaluation: how well the network colours photos it never saw.

Protocol (issue 3): 256x256 centre crops of the held-out split; PSNR (RGB,
mean over images) of the gray input and of the colorization; mean
colourfulness of the colorization and of the ground truth; PSNR when the model
is given a degraded ground-truth hint (chroma shifted up to 4 px, 30 % holes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import hole_mask
from .color import gray_rgb, join_lab, rgb_to_lab
from .metrics import colourfulness, psnr
from .model import ColorNet
from .precision import autocast, compute_dtype


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


def predict_rgb(
    model: ColorNet, rgb_in: torch.Tensor, L: torch.Tensor, temperature: float | None, head: str = "cls"
) -> torch.Tensor:
    """Run the model on rgb_in (B, 3, H, W); join its upsampled ab with L (B, 1, H, W) -> RGB (B, 3, H, W)."""
    with torch.inference_mode(), autocast(rgb_in.device, compute_dtype(rgb_in.device)):
        logits, reg = model(rgb_in)
        ab = model.decode(logits, temperature)[0] if head == "cls" else reg.float()
    ab = F.interpolate(ab.float(), size=L.shape[-2:], mode="bilinear", align_corners=False)
    return join_lab(L, ab)


def evaluate_images(
    model: ColorNet, images: torch.Tensor, temperature: float | None = None, batch: int = 16, seed: int = 0
) -> dict[str, float]:
    """images (N, 3, H, W) in [0, 1], H and W multiples of 16 -> mean figures over the images."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    for i in range(0, len(images), batch):
        gt = images[i : i + batch]
        lab = rgb_to_lab(gt)
        L = lab[:, :1]
        gray = gray_rgb(L)
        hint_in = join_lab(L, shifted_hint(lab[:, 1:], g))
        out = {
            "psnr_gray": psnr(gray, gt),
            "psnr_cls": psnr(cls := predict_rgb(model, gray, L, temperature, "cls"), gt),
            "psnr_reg": psnr(reg := predict_rgb(model, gray, L, temperature, "reg"), gt),
            "psnr_hint": psnr(predict_rgb(model, hint_in, L, temperature, "cls"), gt),
            "colour_cls": colourfulness(cls),
            "colour_reg": colourfulness(reg),
            "colour_gt": colourfulness(gt),
        }
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
    return {k: v / len(images) for k, v in sums.items()}
