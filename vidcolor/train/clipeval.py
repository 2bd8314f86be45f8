"""Temporal evaluation of the real tool on colour clips (benchmarks/temporal.py).

For a colour clip: colorize it (the tool uses its luminance only) with and
without temporal consistency, into lossless FFV1 files, decode them, and
measure against the clip's own colours: PSNR, colorfulness, warp error (Lai
et al. 2018, flow computed on the ground truth) and CDC (Liu et al.). The
ground truth's own warp error and CDC are the target.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, fields, replace
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from ..flow import consistent, make_dis, warp
from ..pipeline import ColorizeOptions, colorize_video
from ..record import FeedbackRecord
from ..video import EncodeOptions
from .metrics import cdc, chroma_cdc, colorfulness, psnr, warp_error

# The weights' record's run-time settings (weights.FeedbackRecord), as the benchmarks let a run override them.
_RECORD_HELP = {
    "feedback": "feed the network its warped earlier colours (the CLI's --feedback/--no-feedback)",
    "feedback_gain": "damp the fed-back colours by this",
    "smooth_carried": "blend the colours feedback carries with the past",
    "gray_every": "every n-th fed-back input is the gray frame alone",
    "snap_radius": "snap the fed-back colours to the frame's edges over this (px)",
}


def add_record_overrides(ap: argparse.ArgumentParser) -> None:
    """One flag per FeedbackRecord field (--feedback-gain for feedback_gain, ...), each None unless given:
    the weights' own. TemporalOptions takes the parsed values by the same names (record_overrides)."""
    for f in fields(FeedbackRecord):
        flag = "--" + f.name.replace("_", "-")
        help_ = f"{_RECORD_HELP[f.name]} (TemporalOptions.{f.name}; default: the weights' own)"
        if isinstance(f.default, bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            ap.add_argument(flag, type=type(f.default), default=None, help=help_)


def record_overrides(args: argparse.Namespace) -> dict:
    """The parsed add_record_overrides flags, as TemporalOptions keyword arguments."""
    return {f.name: getattr(args, f.name) for f in fields(FeedbackRecord)}


def read_rgb_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@dataclass
class ClipFigures:
    psnr: float
    colorfulness: float
    warp_error: float
    cdc: float
    chroma_warp_error: float  # the same warp error on Lab ab only (units^2): flicker without the luma floor
    chroma_cdc: float  # CDC on Lab a, b only


def _ab(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 2) float32 Lab ab."""
    return cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 1:]


def without_color(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the same lightness with zero chroma: the luma floor of
    warp error and CDC (what remains when colour is perfectly still: none at all)."""
    lab = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] = 0.0
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def gt_flows(frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each t: flow t -> t+1 on the ground truth's gray, and its non-occlusion mask."""
    dis = make_dis("medium")
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    out = []
    for a, b in pairwise(grays):
        fwd = dis.calc(a, b, None)
        bwd = dis.calc(b, a, None)
        out.append((fwd, consistent(fwd, bwd)))
    return out


def figures(frames: list[np.ndarray], gt: list[np.ndarray], flows: list[tuple[np.ndarray, np.ndarray]]) -> ClipFigures:
    to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    p = float(np.mean([psnr(to_t(a), to_t(b)).item() for a, b in zip(frames, gt, strict=True)]))
    c = float(np.mean([colorfulness(to_t(a)).item() for a in frames]))
    errs, ab_errs = [], []
    for t, (flow, mask) in enumerate(flows):
        nxt = warp(frames[t + 1].astype(np.float32) / 255.0, flow)
        errs.append(warp_error(frames[t].astype(np.float32) / 255.0, nxt, mask))
        ab_now, ab_next = _ab(frames[t]), warp(_ab(frames[t + 1]), flow)
        ab_errs.append(float(((ab_now - ab_next) ** 2).sum(-1)[mask].mean()) if mask.any() else 0.0)
    mean = lambda v: float(np.mean(v)) if v else 0.0  # noqa: E731
    return ClipFigures(p, c, mean(errs), cdc(frames), mean(ab_errs), chroma_cdc(frames))


def shot_starts(gt: list[np.ndarray]) -> list[int]:
    """Hard cuts in the ground truth, found independently of the tool: frames whose
    mean gray difference to the previous one is far above the clip's typical change."""
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in gt]
    d = np.array([np.abs(a - b).mean() for a, b in pairwise(grays)])
    if len(d) == 0:
        return []
    return [int(i) + 1 for i in np.nonzero((d > 4 * np.median(d)) & (d > 15))[0]]


def colorize_to_frames(clip: Path, options: ColorizeOptions, folder: Path, name: str) -> list[np.ndarray]:
    out = folder / f"{name}.mkv"
    colorize_video(clip, out, replace(options, encode=EncodeOptions(codec="ffv1")))
    return read_rgb_frames(out)


def evaluate_clip(clip: Path, options: ColorizeOptions) -> dict:
    """-> figures for the temporal mode, --no-temporal and the ground truth, plus cut checks."""
    gt = read_rgb_frames(clip)
    flows = gt_flows(gt)
    with tempfile.TemporaryDirectory() as tmp:
        temporal = colorize_to_frames(clip, replace(options, temporal=True), Path(tmp), "temporal")
        single = colorize_to_frames(clip, replace(options, temporal=False), Path(tmp), "single")
    to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    cuts = [
        {
            "frame": t,
            "psnr_temporal": psnr(to_t(temporal[t]), to_t(gt[t])).item(),
            "psnr_single": psnr(to_t(single[t]), to_t(gt[t])).item(),
        }
        for t in shot_starts(gt)
    ]
    return {
        "frames": len(gt),
        "temporal": figures(temporal, gt, flows).__dict__,
        "single": figures(single, gt, flows).__dict__,
        "truth": figures(gt, gt, flows).__dict__,
        "gray": figures([without_color(f) for f in gt], gt, flows).__dict__,
        "cuts": cuts,
        "colorfulness_first_last_second": _first_last_color(temporal, clip),
    }


def _first_last_color(frames: list[np.ndarray], clip: Path) -> tuple[float, float]:
    with av.open(str(clip)) as c:
        rate = float(c.streams.video[0].average_rate or 25)
    n = max(1, int(round(rate)))
    to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    first = float(np.mean([colorfulness(to_t(f)).item() for f in frames[:n]]))
    last = float(np.mean([colorfulness(to_t(f)).item() for f in frames[-n:]]))
    return first, last
