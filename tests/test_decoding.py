"""Decoding: logits to chroma (annealed mean, saturation, confidence) and the evaluation's sweep over decodings."""

from __future__ import annotations

import math

import torch

from vidcolor.decoding import annealed_mean
from vidcolor.model import ColorNet
from vidcolor.record import DecodeConfig
from vidcolor.train.evaluate import sweep_decodings

from .conftest import TINY


def rebalanced_net() -> ColorNet:
    torch.manual_seed(0)
    net = ColorNet(TINY).eval()
    net.colors.class_weights.copy_(1.0 + net.colors.bins.norm(dim=1) / 20)  # rare, saturated colours weighed up
    return net


def test_a_sure_distribution_decodes_to_its_bin_with_full_confidence():
    net = rebalanced_net()
    logits = torch.full((1, net.colors.num_bins, 2, 2), -50.0)
    logits[:, 17] = 50.0
    ab, conf = net.colors(logits, DecodeConfig())
    assert torch.allclose(ab[0, :, 0, 0], net.colors.bins[17], atol=1e-3)
    assert torch.allclose(conf, torch.ones_like(conf), atol=1e-3)


def test_a_flat_distribution_has_no_confidence():
    net = rebalanced_net()
    ab, conf = net.colors(torch.zeros(1, net.colors.num_bins, 2, 2), DecodeConfig(saturation=1.0))
    assert torch.allclose(conf, torch.zeros_like(conf), atol=1e-4)
    assert torch.allclose(ab[0, :, 0, 0], net.colors.bins.mean(0), atol=1e-3)


def test_saturation_one_is_the_rebalanced_mean_and_zero_the_posterior_mean():
    net = rebalanced_net()
    logits = torch.randn(2, net.colors.num_bins, 3, 3)
    w = net.colors.class_weights
    vivid, _ = net.colors(logits, DecodeConfig(temperature=1.0, saturation=1.0))
    muted, _ = net.colors(logits, DecodeConfig(temperature=1.0, saturation=0.0))
    assert torch.allclose(vivid, annealed_mean(logits, net.colors.bins, 1.0), atol=1e-4)
    posterior = logits - torch.log(w)[None, :, None, None]
    assert torch.allclose(muted, annealed_mean(posterior, net.colors.bins, 1.0), atol=1e-4)


def test_decoding_gives_the_tempered_softmaxs_mean_and_the_plain_ones_entropy_at_any_temperature():
    """The decoder takes both from one exp over the bins (and squares it at the shipped temperature 0.5):
    the same as the definitions."""
    net = rebalanced_net()
    logits = torch.randn(2, net.colors.num_bins, 3, 3) * 8
    for temperature in (0.5, 0.38, 1.0):
        ab, conf = net.colors(logits, DecodeConfig(temperature=temperature, saturation=1.0))
        assert torch.allclose(ab, annealed_mean(logits, net.colors.bins, temperature), atol=1e-3)
        p = torch.softmax(logits, 1)
        entropy = -(p * torch.log_softmax(logits, 1)).sum(1, keepdim=True)
        assert torch.allclose(conf, 1 - entropy / math.log(net.colors.num_bins), atol=1e-5)


def test_sweep_reports_each_decoding_and_shares_the_rest():
    net = rebalanced_net()
    images = torch.rand(3, 3, 40, 56)  # not multiples of 32: the evaluation pads
    cautious, vivid = sweep_decodings(net, images, [DecodeConfig(saturation=0.0), DecodeConfig(saturation=1.0)])
    assert cautious["psnr_gray"] == vivid["psnr_gray"] and cautious["color_gt"] == vivid["color_gt"]
    assert cautious["color_cls"] != vivid["color_cls"]
    assert all(math.isfinite(v) for v in (*cautious.values(), *vivid.values()))
