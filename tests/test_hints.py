"""A user's points as the network's hint: carried over their region, stopped by edges and by the reach."""

from __future__ import annotations

import torch

from vidcolor.hints import point_hint, spread_points


def _two_regions(h=32, w=64):
    L = torch.full((1, 1, h, w), 40.0)
    L[..., w // 2 :] = 80.0  # an edge of 40 Lab units down the middle
    return L


def test_a_point_colours_its_own_region_and_not_the_one_across_an_edge():
    L = _two_regions()
    ab = torch.zeros(1, 2, 32, 64)
    ab[0, :, 10, 5] = torch.tensor([30.0, -20.0])
    out = spread_points(ab, L, reach=1.0)
    left, right = out[..., :32], out[..., 32:]
    assert torch.equal(left[0, :, 3, 30], torch.tensor([30.0, -20.0]))
    assert (left.abs().sum(1) > 0).all() and (right == 0).all()


def test_each_pixel_takes_the_nearest_points_colour_and_the_reach_stops_it():
    L = torch.full((1, 1, 8, 100), 50.0)
    ab = torch.zeros(1, 2, 8, 100)
    ab[0, :, 4, 10] = 10.0
    ab[0, :, 4, 60] = -10.0
    out = spread_points(ab, L, reach=0.2)  # 20 px of path
    assert out[0, 0, 4, 25] == 10.0 and out[0, 0, 4, 45] == -10.0  # nearer to the second point
    assert out[0, 0, 4, 85] == 0.0  # 25 px from the second: beyond its reach
    assert torch.equal(spread_points(torch.zeros(1, 2, 8, 100), L), torch.zeros(1, 2, 8, 100))


def test_point_hint_keeps_the_size_and_the_points_mean_colour_on_sizes_not_multiple_of_the_cell():
    L = torch.full((2, 1, 30, 45), 60.0)
    pts = torch.zeros(2, 2, 30, 45)
    pts[0, :, 12:15, 20:23] = torch.tensor([5.0, 25.0])[:, None, None]
    out = point_hint(pts, L)
    assert out.shape == (2, 2, 30, 45)
    assert torch.allclose(out[0, :, 8, 12], torch.tensor([5.0, 25.0])) and (out[1] == 0).all()
    assert (out[0, :, 29, 0] == 0).all()  # 11 cells of path away: beyond half the longer side (6 cells)
