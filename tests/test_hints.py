"""A user's points as the network's hint: carried over their region, stopped by edges and by the reach."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.color import lab_planes_to_rgb
from vidcolor.hints import corrections, found, move_guess, point_hint, spread_points
from vidcolor.model import HINT_CHROMA, ColorNet

from .conftest import TINY


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


def test_a_gray_point_reaches_the_networks_gate_as_gray():
    # A gray click's colour is (0, 0), as is "no hint": drawn as it is, the gate would never see it.
    L = torch.full((1, 1, 64, 64), 50.0)
    pts = torch.zeros(1, 2, 64, 64)
    on = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    on[..., 30:33, 30:33] = True
    hint = point_hint(pts, L, on)
    reached = hint.abs().sum(1) > 0
    assert reached.float().mean() > 0.5  # spread over its region, as a coloured point is
    assert (hint.abs().sum(1)[reached] > HINT_CHROMA).all()  # every pixel carries colour that the gate counts
    assert F.avg_pool2d(hint, 4).abs().max() < 1e-5  # and each cell it reads is the point's gray
    assert (point_hint(pts, L) == 0).all()  # told nothing of where the points lie, colour 0 is no point

    torch.manual_seed(0)
    net = ColorNet(TINY).eval()
    rgb = lambda ab: torch.from_numpy(lab_planes_to_rgb(L[0, 0].numpy(), ab[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)[None]  # noqa: E731
    with torch.no_grad():
        follow = net(rgb(hint), trusted=True)[2]
        unseen = net(rgb(torch.zeros_like(hint)), trusted=True)[2]
    assert (unseen == 0).all() and (follow[0, 0][reached[0, ::4, ::4]] > 0).all()


def test_a_faint_point_keeps_its_colour_in_the_cells_the_gate_reads():
    L = torch.full((1, 1, 32, 32), 70.0)
    pts = torch.zeros(1, 2, 32, 32)
    pts[0, :, 14:17, 14:17] = torch.tensor([0.5, -1.0])[:, None, None]  # |a| + |b| under HINT_CHROMA
    hint = point_hint(pts, L)
    reached = hint.abs().sum(1) > 0
    assert reached.float().mean() > 0.3 and (hint.abs().sum(1)[reached] > HINT_CHROMA).all()
    cells = F.avg_pool2d(hint, 4)[0].permute(1, 2, 0)[F.avg_pool2d(reached.float(), 4)[0] == 1]  # (n, 2)
    assert len(cells) and torch.allclose(cells, torch.tensor([0.5, -1.0]), atol=1e-5)
    strong = point_hint(pts * 10, L)  # a point the gate sees already keeps its colour as it is
    assert torch.equal(strong[:, :, reached[0]], torch.tensor([5.0, -10.0])[None, :, None].expand(1, 2, int(reached.sum())))


def _features(h, w, left, right):
    """(2, h/4, w/4): one feature vector on the left half of the cells, another on the right."""
    f = np.zeros((2, h // 4, w // 4), np.float32)
    f[:, :, : w // 8] = np.float32(left)[:, None, None]
    f[:, :, w // 8 :] = np.float32(right)[:, None, None]
    return f


def _moved(guess, features, ab, weight, L):
    """The guess moved by the points on its own frame."""
    return move_guess(guess, features, corrections(guess, features, ab, weight, L), L)[0]


def test_move_guess_carries_a_point_to_the_cells_alike_wherever_they_are_and_leaves_the_others():
    h, w = 32, 96
    guess = np.full((h, w, 2), (10.0, 0.0), np.float32)
    ab, weight = np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32)
    ab[4:7, 4:7], weight[4:7, 4:7] = (30.0, -20.0), 1.0  # one point, in the left third
    features = np.zeros((2, h // 4, w // 4), np.float32)
    features[0, :, : w // 12], features[1, :, w // 12 : w // 6], features[0, :, w // 6 :] = 1.0, 1.0, 1.0
    moved = _moved(guess, features, ab, weight, np.full((h, w), 50.0, np.float32))
    error = np.linalg.norm(guess[0, 0] - (30.0, -20.0))
    for far in (moved[20, 24], moved[20, 88]):  # far from the point, alike it: the left and right thirds
        assert np.linalg.norm(far - (30.0, -20.0)) < 0.3 * error
    assert np.abs(moved[20, 48] - guess[0, 0]).max() < 0.5  # the middle third, not alike: kept


def test_move_guess_learns_a_consistent_error_from_a_few_points_and_without_points_changes_nothing():
    rng = np.random.default_rng(0)
    h, w = 32, 32
    truth = np.repeat(np.repeat(rng.uniform(-40, 40, (4, 4, 2)), 8, 0), 8, 1).astype(np.float32)
    guess = 0.5 * truth + np.float32([5.0, -5.0])  # paler, and tinted
    ab, weight = np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32)
    for y, x in [(2, 2), (2, 20), (12, 11), (20, 3), (27, 27)]:
        ab[y : y + 3, x : x + 3], weight[y : y + 3, x : x + 3] = truth[y + 1, x + 1], 1.0
    # Two kinds of cells, the points on both.
    features, L = _features(h, w, (1, 0), (0, 1)), np.full((h, w), 50.0, np.float32)
    moved = _moved(guess, features, ab, weight, L)
    assert np.abs(moved - truth).mean() < 0.6 * np.abs(guess - truth).mean()  # 0.5 here; the prior holds some back
    assert corrections(guess, features, ab, np.zeros_like(weight), L) is None
    assert np.array_equal(move_guess(guess, features, None, L)[0], guess)


def test_move_guess_reads_the_lightness_a_guess_that_errs_in_the_light_alone_is_put_right_in_the_light():
    h, w = 32, 32
    L = np.tile(np.linspace(10.0, 90.0, w, dtype=np.float32), (h, 1))
    truth = np.zeros((h, w, 2), np.float32)
    truth[..., 1] = np.where(L > 50.0, 30.0, 0.0)  # yellow in the light, gray in the shadow
    guess = np.zeros_like(truth)
    ab, weight = np.zeros_like(truth), np.zeros((h, w), np.float32)
    for y, x in [(3, 2), (3, 27), (15, 4), (15, 25), (27, 1), (27, 28)]:
        ab[y : y + 3, x : x + 3], weight[y : y + 3, x : x + 3] = truth[y + 1, x + 1], 1.0
    moved = _moved(guess, _features(h, w, (1, 0), (0, 1)), ab, weight, L)
    light, shadow = moved[:, -4:, 1].mean(), moved[:, :4, 1].mean()
    assert light > 15.0 and light - shadow > 15.0


def test_points_move_another_frame_where_what_they_landed_on_has_moved_and_likeness_falls_on_other_things():
    h, w = 32, 64
    guess = np.zeros((h, w, 2), np.float32)
    L = np.full((h, w), 50.0, np.float32)
    ab, weight = np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32)
    ab[4:7, 4:7], weight[4:7, 4:7] = (30.0, -20.0), 1.0  # on the left half: the object
    here = _features(h, w, (1, 0), (0, 1))  # the object on the left, the ground on the right
    said = corrections(guess, here, ab, weight, L)
    later = _features(h, w, (0, 1), (1, 0))  # the object has moved to the right
    moved, like_later = move_guess(guess, later, said, L)
    assert np.linalg.norm(moved[16, 56] - (30.0, -20.0)) < 0.3 * 36.0 and np.abs(moved[16, 8]).max() < 0.1 * 36.0
    assert like_later == pytest.approx(1.0) and move_guess(guess, here, said, L)[1] == pytest.approx(1.0)
    # Another scene: lighter and darker things the points' frame did not show (features across its own axis).
    other = _features(h, w, (1, 1), (0.5, 0.5))
    assert move_guess(guess, other, said, L)[1] < 0.1


def test_found_is_one_where_the_points_thing_is_in_the_frame_and_zero_where_it_is_not_however_few_points():
    h, w = 32, 64
    guess, L = np.zeros((h, w, 2), np.float32), np.full((h, w), 50.0, np.float32)
    ab, weight = np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32)
    ab[4:7, 4:7], weight[4:7, 4:7] = (30.0, -20.0), 1.0  # one click, on the object (the left half)
    here = _features(h, w, (1, 0), (0, 1))
    said = corrections(guess, here, ab, weight, L)
    assert found(here, [said]) == pytest.approx([1.0])
    assert found(_features(h, w, (0, 1), (1, 0)), [said, said]) == pytest.approx([1.0, 1.0])  # the object moved
    # Another scene, and a flat frame (no features but their mean): nothing of the object. move_guess's
    # likeness weighs the rest of the points' own frame, and one click says little of it.
    assert found(_features(h, w, (1, 1), (0.5, 0.5)), [said]) == [0.0]
    assert found(np.ones((2, h // 4, w // 4), np.float32), [said]) == [0.0]
