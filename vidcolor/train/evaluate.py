"""Held-out image evaluation: how well the network colours photos it never saw.

Protocol: 256x256 centre crops of the held-out split; PSNR (RGB,
mean over images) of the gray input and of the colorization; mean
colorfulness of the colorization and of the ground truth; PSNR when the model
is given a degraded ground-truth hint (chroma shifted up to 4 px, 30 % holes).

The network runs once per batch (gray input, hinted input); every decoding
asked for (saturation, temperature) is
computed from those same outputs, so sweeping decodings costs little more than
one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..hints import corrections, move_guess, point_hint
from ..lab import gray_rgb, join_lab, rgb_to_lab
from ..model import ColorNet
from ..precision import autocast, compute_dtype
from ..record import DecodeConfig
from ..temporal import with_moved
from .augment import hole_mask, point_hints
from .metrics import colorfulness, psnr

NEUTRAL = 5.0  # Lab units of mean chroma under which a truth is nearly neutral: output colour there is invented


def label(dec: DecodeConfig) -> str:
    return f"saturation={dec.saturation:.2f} T={dec.temperature:.2f}"


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


def run_network(
    model: ColorNet, rgb_in: torch.Tensor, trusted: bool = False, body: Callable | None = None, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rgb_in (B, 3, H, W), H and W multiples of 4 -> fp32 logits (B, Q, H/4, W/4), regressed ab
    (B, 2, H/4, W/4) and how far it follows a hint (B, 1, H/4, W/4). trusted: rgb_in's colours are true
    ones (model.HintGate). body: runs model.body instead (the int8 engine's, benchmarks/quality.py); dtype:
    autocast's (None: the device's, precision.compute_dtype). Pads to the network's multiple with edge
    replication and crops the result."""
    h, w = rgb_in.shape[-2:]
    x = model.padded(rgb_in)
    with torch.inference_mode(), autocast(rgb_in.device, dtype or compute_dtype(rgb_in.device)):
        out = model(x, trusted, body)
    return tuple(t[..., : h // 4, : w // 4].float() for t in out)


def to_rgb(ab: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """ab (B, 2, h, w) upsampled (bilinear) and joined with L (B, 1, H, W) -> RGB (B, 3, H, W)."""
    return join_lab(L, upsampled(ab, L))


def upsampled(ab: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """ab (B, 2, h, w) -> (B, 2, H, W) at L's size (bilinear, half-pixel centres, as the run time's)."""
    return F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)


def decoder_features(
    model: ColorNet, rgb_in: torch.Tensor, body: Callable | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """rgb_in (B, 3, H, W) -> the decoder's last features (B, c, ceil(H/4), ceil(W/4)) fp32 (ColorNet.body's)."""
    h, w = rgb_in.shape[-2:]
    x = model.padded(rgb_in)
    with torch.inference_mode(), autocast(rgb_in.device, dtype or compute_dtype(rgb_in.device)):
        feats = (body or model.body)(x)[2]
    return feats[..., : -(-h // 4), : -(-w // 4)].float()


def with_moved_guess(
    hinted: torch.Tensor, guess: torch.Tensor, features: torch.Tensor, points: torch.Tensor, L: torch.Tensor
) -> torch.Tensor:
    """What the run time shows on a frame with points (temporal.Guide.moved): the network's output with them
    as its hint, hinted (B, 2, H, W), averaged with its guess without them, guess (B, 2, H, W), moved toward
    them (hints.move_guess); features (B, c, H/4, W/4); points (B, 2, H, W), 0 off the points; L (B, 1, H, W)
    Lab lightness -> (B, 2, H, W)."""
    moved = []
    for g, f, p, lt in zip(guess.float().cpu(), features.cpu(), points.cpu(), L.float().cpu(), strict=True):
        g, f, lt = g.permute(1, 2, 0).numpy(), f.numpy(), lt[0].numpy()
        said = corrections(g, f, p.permute(1, 2, 0).numpy(), (p.abs().sum(0) > 0).float().numpy(), lt)
        moved.append(move_guess(g, f, said, lt)[0])
    shown = with_moved(hinted.float().cpu().permute(0, 2, 3, 1).numpy(), np.stack(moved))
    return torch.from_numpy(np.ascontiguousarray(shown, dtype=np.float32)).permute(0, 3, 1, 2).to(hinted.device)


def sweep_decodings(
    model: ColorNet,
    images: torch.Tensor,
    decodings: Sequence[DecodeConfig],
    batch: int = 16,
    seed: int = 0,
    points: Sequence[int] = (),
    body: Callable | None = None,
    dtype: torch.dtype | None = None,
) -> list[dict[str, float]]:
    """images (N, 3, H, W) in [0, 1], H and W multiples of 4 -> mean figures over the images, one dict
    per decoding (psnr_cls, color_cls and psnr_hint differ; gray, regression and truth figures are shared).
    points: also psnr_points{n}, the output given n points of the truth (3x3 px, random places), as a frame with
    points is shown (with_moved_guess: the network's output with them as its hint, and its guess moved by them);
    chroma_cls, the output's mean Lab chroma, and chroma_gt the truth's, per image summed as the rest.
    body, dtype: as run_network's."""
    model.eval()
    run = partial(run_network, body=body, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    sums: list[dict[str, float]] = [{} for _ in decodings]
    for i in range(0, len(images), batch):
        gt = images[i : i + batch]
        lab = rgb_to_lab(gt)
        L = lab[:, :1]
        gray_out = run(model, gray_rgb(L))
        # The truth's colours, degraded: true colours, as a keyframe's carried by flow are.
        hint_out = run(model, join_lab(L, shifted_hint(lab[:, 1:], g)), trusted=True)
        # The same places for every decoding: each count's points drawn from its own seeded stream.
        drawn = [point_hints(lab[:, 1:], [n] * len(gt), torch.Generator().manual_seed(seed + i + n), (3, 3)) for n in points]
        point_outs = [run(model, join_lab(L, point_hint(pts, L)), trusted=True) for pts in drawn]
        features = decoder_features(model, gray_rgb(L), body, dtype) if points else None
        reg_ab = gray_out[1]
        reg = to_rgb(reg_ab, L)
        shared = {
            "psnr_gray": psnr(gray_rgb(L), gt),
            "psnr_reg": psnr(reg, gt),
            "color_reg": colorfulness(reg),
            "color_gt": colorfulness(gt),
        }
        for acc, dec in zip(sums, decodings, strict=True):
            cls = to_rgb(model.decode(*gray_out, dec)[0], L)
            hinted = to_rgb(model.decode(*hint_out, dec)[0], L)
            out = {
                **shared,
                "psnr_cls": psnr(cls, gt),
                "color_cls": colorfulness(cls),
                "psnr_hint": psnr(hinted, gt),
                "chroma_cls": mean_chroma(cls),
                "chroma_gt": mean_chroma(gt),
            }
            # Nearly neutral truths (mean chroma under NEUTRAL): their share, and their sums, so that
            # neutral_chroma_cls / neutral is the mean over them alone.
            neutral = (out["chroma_gt"] < NEUTRAL).float()
            out.update(
                {
                    "neutral": neutral,
                    "neutral_chroma_cls": out["chroma_cls"] * neutral,
                    "neutral_chroma_gt": out["chroma_gt"] * neutral,
                }
            )
            guess = upsampled(model.decode(*gray_out, dec)[0], L) if points else None
            for n, pts, p_out in zip(points, drawn, point_outs, strict=True):
                shown = with_moved_guess(upsampled(model.decode(*p_out, dec)[0], L), guess, features, pts, L)
                out[f"psnr_points{n}"] = psnr(join_lab(L, shown), gt)
            for k, v in out.items():
                acc[k] = acc.get(k, 0.0) + float(v.sum())
    return [{k: v / len(images) for k, v in acc.items()} for acc in sums]


def mean_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> each image's mean Lab chroma (B,)."""
    return rgb_to_lab(rgb)[:, 1:].square().sum(1).sqrt().flatten(1).mean(1)


def evaluate_images(
    model: ColorNet, images: torch.Tensor, decode: DecodeConfig, batch: int = 16, points: Sequence[int] = ()
) -> dict[str, float]:
    """The figures for one decoding."""
    return sweep_decodings(model, images, [decode], batch, points=points)[0]
