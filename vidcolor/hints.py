"""A user's points as the network's hint: each point's colour carried over the region it lands on.

The network follows a hint only near colour (model.HintGate fills holes within about 16 px), so a click
alone colours little more than itself. Here each point's colour is carried along paths that cross little
change of lightness (a geodesic distance: each step costs 1 + EDGE x |dL| per px, L in Lab units), and
every pixel within REACH of some point takes the colour of the nearest one; the network then decides how
far to follow it, as with any hint.

The points also move the network's guess without them (`move_guess`): its errors are alike over what it
sees as alike, so each point's correction is carried to the cells whose decoder features resemble the
point's, wherever they are. A frame with points shows the mean of that and the network's output with the
points as its hint (temporal.MOVED_SHARE); the other frames of its shot show a share of their own guess
moved by them, less on frames unlike theirs (the likeness `move_guess` also gives; keyframes.Keyframes).
With points_across_shots, a shot without points takes a share of the correction of the pointed frame
whose points are most `found` in it. docs/experiments.md has the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .model import HINT_CHROMA

CELL = 4  # px: the points are spread over cells of the network's output stride (finer gained nothing)
EDGE = 2.0  # a step across an edge of 10 Lab units of lightness costs as much as 20 px of flat ground
REACH = 0.5  # how far a point's colour goes, as a share of the image's longer side (path cost, px units)
ROUNDS = 3  # sweeps in all four directions: paths with up to about this many turns are found
# move_guess: a point's say over a cell falls as exp((cos - 1) / SIMILAR) with the cosine of their
# features; and the fit is pulled toward no change as by PRIOR points that agree with the guess.
SIMILAR = 0.2
PRIOR = 0.1
# found(): a point is in a frame where its FOUND_CELLS likest cells' mean cosine reaches FOUND_AT, and not
# at all below FOUND_FROM. Other scenes' frames: 0.66 at their median; a scene's own later frames: 0.94.
FOUND_CELLS = 4
FOUND_FROM, FOUND_AT = 0.85, 0.95
LIGHTNESS = 0.2  # the map also reads the lightness, as (L - 50) x this: the guess errs apart in shadow and light
# The network's gate sees a hint only where |a| + |b| > HINT_CHROMA, so a gray input and a gray hint are one
# input. A nearly neutral point's colour is drawn as a checkerboard of +-FAINT x (1, 1) around it: every pixel
# then carries colour, and each 4x4 cell's mean, which the gate reads, is the point's.
FAINT = 2.5


def point_hint(points: torch.Tensor, L: torch.Tensor, on: torch.Tensor | None = None) -> torch.Tensor:
    """points (B, 2, H, W) Lab units, 0 outside the points; L (B, 1, H, W); on (B, 1, H, W) bool, where the
    points lie (None: where their colour is not 0, which a gray point's is) -> the network's hint
    (B, 2, H, W), 0 where it has none: the points spread over cells of CELL px (spread_points), each cell in
    its points' mean colour, a nearly neutral one drawn so that the network sees it (HINT_CHROMA)."""
    h, w = L.shape[-2:]
    pad = (0, (-w) % CELL, 0, (-h) % CELL)
    on = points.abs().sum(1, keepdim=True) > 0 if on is None else on
    marked = F.avg_pool2d(F.pad(on.float(), pad), CELL)
    cells = F.avg_pool2d(F.pad(points.float(), pad), CELL) / marked.clamp_min(1e-6)
    spread, reached = _spread(cells, marked > 0, F.avg_pool2d(F.pad(L.float(), pad, mode="replicate"), CELL))
    spread = F.interpolate(spread, scale_factor=CELL, mode="nearest")[..., :h, :w]
    reached = F.interpolate(reached.float(), scale_factor=CELL, mode="nearest")[..., :h, :w] > 0
    spread = torch.where(reached, spread, torch.zeros_like(spread))
    faint = reached & (spread.abs().sum(1, keepdim=True) <= HINT_CHROMA)
    ys, xs = torch.arange(h)[:, None], torch.arange(w)[None]
    checker = (((ys + xs) % 2) * 2 - 1).to(spread.dtype)  # (H, W): -1, +1, ...
    return torch.where(faint, spread + FAINT * checker, spread)


def spread_points(
    ab: torch.Tensor, L: torch.Tensor, reach: float = REACH, edge: float = EDGE, rounds: int = ROUNDS
) -> torch.Tensor:
    """ab (B, 2, H, W) Lab units, 0 outside the points; L (B, 1, H, W) Lab lightness -> (B, 2, H, W): each
    pixel within reach x max(H, W) of a point (by path cost) in the colour of the nearest one, 0 beyond."""
    spread, reached = _spread(ab, ab.abs().sum(1, keepdim=True) > 0, L, reach, edge, rounds)
    return torch.where(reached, spread, torch.zeros_like(spread))


def _spread(
    ab: torch.Tensor, seeds: torch.Tensor, L: torch.Tensor, reach: float = REACH, edge: float = EDGE, rounds: int = ROUNDS
) -> tuple[torch.Tensor, torch.Tensor]:
    """spread_points from the points at `seeds` (B, 1, H, W) bool, whatever their colour -> each pixel in the
    colour of the nearest point, and whether that one is within reach (B, 1, H, W) bool."""
    if not seeds.any():
        return ab.float().clone(), seeds.clone()
    dist = torch.where(seeds, 0.0, torch.inf).float()
    ab = ab.float()
    L = L.float()
    for _ in range(rounds):
        for dim in (3, 2):
            for flip in (False, True):
                dist, ab = _sweep(dist, ab, L, dim, flip, edge)
    return ab, dist <= reach * max(L.shape[-2:])


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


@dataclass(frozen=True)
class Corrections:
    """What a frame's points say about the network's guess there (`corrections`), for move_guess to carry to
    the cells alike, on that frame or on another of its shot."""

    features: np.ndarray  # (C, n) float64: each point's decoder features, less their frame's mean, unit length
    src: np.ndarray  # (n, 3) float64: what the map reads at each point (the guess's a, b; (L - 50) x LIGHTNESS)
    dst: np.ndarray  # (n, 2) float64: each point's colour, Lab units
    heard: float = 1.0  # how much they say about their own frame's cells (`heard`), a yardstick for other frames'


def corrections(guess: np.ndarray, features: np.ndarray, ab: np.ndarray, weight: np.ndarray, L: np.ndarray) -> Corrections | None:
    """guess (H, W, 2) Lab units and features (C, ceil(H/4), ceil(W/4)), the decoder's last features: the
    network's output on the gray frame (inference.Colorizer.guess); ab (H, W, 2) and weight (H, W): the
    points' patches, weight > 0.5 on them; L (H, W) the frame's Lab lightness -> the points' Corrections,
    or None without points. Touching patches count as one point."""
    count, labels = cv2.connectedComponents((weight > 0.5).astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    idx = labels.ravel()
    size = np.bincount(idx, minlength=count)[1:].astype(np.float64)

    def mean(x: np.ndarray) -> np.ndarray:  # per point, (n, ...) from (H, W, ...)
        flat = x.reshape(idx.size, -1)
        return np.stack([np.bincount(idx, flat[:, c], count)[1:] for c in range(flat.shape[1])], 1) / size[:, None]

    features = _unit(features)
    h, w = features.shape[1:]
    ys, xs = np.indices(labels.shape)
    at = mean(np.stack([ys, xs], -1).astype(np.float64))  # (n, 2) px: each point's centre
    cy = np.minimum((at[:, 0] // CELL).astype(int), h - 1)
    cx = np.minimum((at[:, 1] // CELL).astype(int), w - 1)
    said = Corrections(features[:, cy, cx], mean(_map_inputs(guess, L).astype(np.float64)), mean(ab.astype(np.float64)))
    return replace(said, heard=_heard(_says(said, features)))


def _says(points: Corrections, features: np.ndarray) -> np.ndarray:
    """Each point's say over each cell, (n, h w): exp((cos - 1) / SIMILAR) of their features (from _unit)."""
    # einsum, not BLAS: OpenBLAS's threads would spin beside the model workers (int8.Head).
    cos = np.einsum("cn,cp->np", points.features, features.reshape(len(features), -1))
    return np.exp((cos - 1.0) / SIMILAR)


def _heard(says: np.ndarray) -> float:
    """Says (n, h w) -> the median over the cells of the points' summed say: how far the frame is like them."""
    return float(np.median(says.sum(0)))


def found(features: np.ndarray, said: list[Corrections]) -> np.ndarray:
    """A frame's decoder features (C, h, w) and what the points of some frames said -> how far what each
    frame's points landed on is in this frame, (len(said),) in [0, 1]: per point, the mean cosine of its
    FOUND_CELLS likest cells, from FOUND_FROM (0) to FOUND_AT (1), averaged over the frame's points. 1 on their
    own frame. Unlike move_guess's likeness it does not weigh the rest of their own frame, which for one
    click on a small thing says nothing and made any frame look alike."""
    return _found(_unit(features), said)


def _found(unit: np.ndarray, said: list[Corrections]) -> np.ndarray:
    """found(), from the frame's features as _unit gives them."""
    if not said:
        return np.zeros(0)
    # All frames' points in one pass over the cells, in float32: half the time of float64 at 50 frames' points.
    points = np.concatenate([s.features for s in said], 1).astype(np.float32)
    cos = np.einsum("cn,cp->np", points, unit.reshape(len(unit), -1).astype(np.float32))
    k = min(FOUND_CELLS, cos.shape[1])
    best = np.partition(cos, -k, axis=1)[:, -k:].mean(1)
    score = np.clip((best - FOUND_FROM) / (FOUND_AT - FOUND_FROM), 0.0, 1.0)
    return np.array([part.mean() for part in np.split(score, np.cumsum([s.features.shape[1] for s in said])[:-1])])


def _unit(features: np.ndarray) -> np.ndarray:
    """(C, h, w) -> float64, less their mean over the frame (ReLU outputs, all of whose cosines are high),
    each cell's of unit length: alike as this frame goes."""
    features = features.astype(np.float64)
    features = features - features.mean(axis=(1, 2), keepdims=True)
    return features / np.maximum(np.sqrt((features * features).sum(0, keepdims=True)), 1e-6)


def _map_inputs(guess: np.ndarray, L: np.ndarray) -> np.ndarray:
    """What the map reads: the guess's a, b (H, W, 2) and the lightness (L - 50) x LIGHTNESS -> (H, W, 3)."""
    return np.concatenate([guess, (L[..., None] - 50.0) * LIGHTNESS], -1).astype(np.float32)


def move_guess(guess: np.ndarray, features: np.ndarray, points: Corrections | None, L: np.ndarray) -> tuple[np.ndarray, float]:
    """The network's colours without the points, moved toward them where it sees alike, and how far the frame
    is like the points' own.

    guess (H, W, 2) Lab units, features (C, ceil(H/4), ceil(W/4)) and L (H, W): a frame's, as for
    `corrections`; points: from this frame or another of its shot -> (H, W, 2) float32, and the likeness in
    [0, 1]: what the points say about this frame's cells over what they say about their own frame's (1 there;
    across a pan from a close-up to the scene around it, it falls toward 0 on frames that show other things).
    Each cell gets an affine map of the guess's ab and the lightness to ab, fitted to the points by least
    squares, each point weighed by how alike its features are to the cell's, and pulled toward the identity
    by PRIOR; so a cell like no point keeps the guess, and points that disagree with it in a consistent way
    (paler, tinted, warmer in the light) move every cell they resemble."""
    if points is None:
        return guess.astype(np.float32, copy=True), 1.0
    return _move(guess, _unit(features), points, L)


def move_likest(
    guess: np.ndarray, features: np.ndarray, said: list[Corrections], L: np.ndarray
) -> tuple[np.ndarray | None, float, int]:
    """A frame's guess, features and L (as for move_guess) and what the points of some frames said -> the
    guess moved by the frame's points that are most `found` here, how far to show it (found x the move's
    likeness: either alone let through the colours of alike scenes that had others), and which frame's
    those are; (None, 0, -1) where no frame's points are found."""
    unit = _unit(features)  # once, for the finding and the move
    finds = _found(unit, said)
    best = int(np.argmax(finds)) if len(finds) else -1
    if best < 0 or finds[best] <= 0:
        return None, 0.0, -1
    moved, likeness = _move(guess, unit, said[best], L)
    return moved, float(finds[best]) * likeness, best


def _move(guess: np.ndarray, features: np.ndarray, points: Corrections, L: np.ndarray) -> tuple[np.ndarray, float]:
    """move_guess, from the frame's features as _unit gives them."""
    h, w = features.shape[1:]
    inputs = _map_inputs(guess, L)
    src, dst = points.src, points.dst
    say = _says(points, features)  # (n, h w)
    X = np.concatenate([src, np.ones((len(src), 1))], 1)  # (n, 4)
    scale = float((src[:, :2] ** 2).mean()) + 1.0  # the matrix's pull in the units of the colours it multiplies
    prior = PRIOR * np.diag([scale, scale, scale, 1.0])
    identity = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    lhs = np.einsum("np,ni,nj->pij", say, X, X) + prior
    rhs = np.einsum("np,ni,nj->pij", say, X, dst) + prior @ identity
    maps = np.linalg.solve(lhs, rhs)  # (h w, 4, 2): (a, b, L', 1) -> ab, per cell
    H, W = guess.shape[:2]
    cells = cv2.resize(inputs, (w, h), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float64)
    moved = np.einsum("pi,pij->pj", np.concatenate([cells, np.ones((len(cells), 1))], 1), maps) - cells[:, :2]
    shift = cv2.resize(moved.reshape(h, w, 2).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    return (guess + shift).astype(np.float32), min(1.0, _heard(say) / max(points.heard, 1e-12))
