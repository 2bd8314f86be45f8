"""A user's points as the network's hint: each point's colour carried over the region it lands on.

The network follows a hint only near colour (model.HintGate fills holes within about 16 px), so a click
alone colours little more than itself. Here each point's colour is carried along paths that cross little
change of lightness (a geodesic distance: each step costs 1 + EDGE x |dL| per px, L in Lab units), and
every pixel within REACH of some point takes the colour of the nearest one; the network then decides how
far to follow it, as with any hint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CELL = 4  # px: the points are spread over cells of the network's output stride (finer gained nothing)
EDGE = 2.0  # a step across an edge of 10 Lab units of lightness costs as much as 20 px of flat ground
REACH = 0.5  # how far a point's colour goes, as a share of the image's longer side (path cost, px units)
ROUNDS = 3  # sweeps in all four directions: paths with up to about this many turns are found


def point_hint(points: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """points (B, 2, H, W) Lab units, 0 outside the points; L (B, 1, H, W) -> the network's hint (B, 2, H, W):
    the points spread over cells of CELL px (spread_points), each cell in its points' mean colour."""
    h, w = L.shape[-2:]
    pad = (0, (-w) % CELL, 0, (-h) % CELL)
    marked = F.avg_pool2d(F.pad((points.abs().sum(1, keepdim=True) > 0).float(), pad), CELL)
    cells = F.avg_pool2d(F.pad(points.float(), pad), CELL) / marked.clamp_min(1e-6)
    spread = spread_points(cells, F.avg_pool2d(F.pad(L.float(), pad, mode="replicate"), CELL))
    return F.interpolate(spread, scale_factor=CELL, mode="nearest")[..., :h, :w]


def spread_points(
    ab: torch.Tensor, L: torch.Tensor, reach: float = REACH, edge: float = EDGE, rounds: int = ROUNDS
) -> torch.Tensor:
    """ab (B, 2, H, W) Lab units, 0 outside the points; L (B, 1, H, W) Lab lightness -> (B, 2, H, W): each
    pixel within reach x max(H, W) of a point (by path cost) in the colour of the nearest one, 0 beyond."""
    seeds = ab.abs().sum(1, keepdim=True) > 0
    if not seeds.any():
        return ab.clone()
    dist = torch.where(seeds, 0.0, torch.inf).float()
    ab = ab.float()
    L = L.float()
    for _ in range(rounds):
        for dim in (3, 2):
            for flip in (False, True):
                dist, ab = _sweep(dist, ab, L, dim, flip, edge)
    return torch.where(dist <= reach * max(L.shape[-2:]), ab, torch.zeros_like(ab))


def _sweep(dist: torch.Tensor, ab: torch.Tensor, L: torch.Tensor, dim: int, flip: bool, edge: float):
    """One pass along rows (dim 3) or columns (dim 2), forward or back: dist[i] = min over j <= i of
    dist[j] + cost(j..i), all lines at once through a cumulative minimum (cost(j..i) = C[i] - C[j])."""
    if flip:
        dist, ab, L = dist.flip(dim), ab.flip(dim), L.flip(dim)
    step = 1.0 + edge * L.diff(dim=dim).abs()
    C = torch.cat((torch.zeros_like(L.narrow(dim, 0, 1)), step.cumsum(dim)), dim)
    best, idx = torch.cummin(dist - C, dim)
    dist = best + C
    ab = ab.gather(dim, idx.expand_as(ab))
    if flip:
        dist, ab = dist.flip(dim), ab.flip(dim)
    return dist, ab
