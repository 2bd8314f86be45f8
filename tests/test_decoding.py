"""Decoding: the annealed mean, and the per-image choice of colour strength from the network's uncertainty."""

from __future__ import annotations

import dataclasses

import torch

from vidcolor.color import join_lab
from vidcolor.decoding import BETAS, annealed_mean, choose_prior_correction, corrected_logits
from vidcolor.evaluate import Decoding, sweep_decodings
from vidcolor.metrics import colourfulness
from vidcolor.model import ColorNet

from .conftest import TINY


def rebalanced_net(**cfg: float) -> ColorNet:
    torch.manual_seed(0)
    net = ColorNet(dataclasses.replace(TINY, **cfg)).eval()
    net.class_weights.copy_(1.0 + net.bins.norm(dim=1) / 20)  # rare, saturated colours weighed up
    return net


def test_one_beta_per_image_or_one_for_all_agree():
    net = rebalanced_net()
    logits = torch.randn(3, net.num_bins, 5, 6)
    log_w = net.log_class_weights()
    one = annealed_mean(corrected_logits(logits, log_w, 0.4), net.bins, 0.7)
    each = annealed_mean(corrected_logits(logits, log_w, torch.tensor([1.0, 0.4, 0.0])), net.bins, 0.7)
    assert torch.allclose(each[1], one[1], atol=1e-5)
    assert not torch.allclose(each[0], one[0], atol=1e-3)


def test_choice_is_one_of_the_candidates_per_image_and_more_colour_weight_never_means_less_colour():
    net = rebalanced_net()
    torch.manual_seed(1)
    logits = torch.randn(4, net.num_bins, 12, 12) * 2
    L = torch.rand(4, 1, 48, 48) * 80 + 10
    log_w = net.log_class_weights()

    def chosen_colour(weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        beta = choose_prior_correction(logits, log_w, net.bins, net.bin_rgb, L, 0.7, weight)
        ab = annealed_mean(corrected_logits(logits, log_w, beta), net.bins, 0.7)
        small_L = torch.nn.functional.interpolate(L, size=ab.shape[-2:], mode="area")
        return beta, colourfulness(join_lab(small_L, ab))

    betas, colours = zip(*(chosen_colour(w) for w in (0.0, 0.05, 0.5, 50.0)), strict=True)
    for beta in betas:
        assert beta.shape == (4,) and all(round(float(b), 1) in BETAS for b in beta)
    for lower, higher in zip(colours, colours[1:], strict=False):
        assert (higher >= lower - 1e-3).all()
    assert (betas[-1] < betas[0]).all()  # a huge colour weight takes a more vivid decoding everywhere


def test_the_expected_error_alone_prefers_the_cautious_decoding():
    net = rebalanced_net()
    torch.manual_seed(2)
    beta = choose_prior_correction(torch.randn(2, net.num_bins, 8, 8), net.log_class_weights(), net.bins, net.bin_rgb,
                                   torch.full((2, 1, 8, 8), 60.0), 1.0, 0.0)
    assert (beta >= 0.8).all()  # beta = 1, T = 1 is the posterior mean, the least expected error


def test_a_model_with_a_colour_weight_decodes_frames_and_evaluates(tmp_path):
    net = rebalanced_net(colour_weight=0.05, temperature=0.7)
    ab, conf = net.colorize_ab(torch.rand(2, 3, 40, 72))
    assert ab.shape == (2, 2, 10, 18) and torch.isfinite(ab).all() and torch.isfinite(conf).all()
    assert Decoding.of(net) == Decoding(None, 0.7, 0.05)
    figures = sweep_decodings(net, torch.rand(2, 3, 32, 32), [Decoding.of(net), Decoding(0.5, 0.7)])
    assert 0.0 <= figures[0]["beta"] <= 1.0 and figures[1]["beta"] == 0.5
