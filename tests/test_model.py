"""The network: shapes, finiteness, gradients, fusion, saving and loading without pickle."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from vidcolor.lab import gamut_bins, gray_rgb, join_lab, lab_to_rgb, rgb_to_lab
from vidcolor.model import ColorNet, count_parameters, spread
from vidcolor.record import DecodeConfig, ModelConfig, default_model_path, read_configs
from vidcolor.weights import load_model, save_model

from .conftest import TINY


@pytest.fixture(params=[False, True], ids=["plain", "hint_gate"])
def net(request) -> ColorNet:
    torch.manual_seed(0)
    return ColorNet(replace(TINY, hint_gate=request.param))


def test_forward_shapes_and_finite(net):
    x = torch.rand(2, 3, 64, 96)
    logits, reg, follow = net(x)
    assert logits.shape == (2, net.colors.num_bins, 16, 24)
    assert reg.shape == (2, 2, 16, 24) and follow.shape == (2, 1, 16, 24)
    assert torch.isfinite(logits).all() and torch.isfinite(reg).all()
    assert ((follow >= 0) & (follow <= 1)).all()
    assert (net(gray_rgb(torch.rand(2, 1, 64, 96) * 100))[2] == 0).all()  # a gray input follows nothing


@pytest.mark.parametrize("h,w", [(37, 53), (16, 16), (90, 160)])
def test_any_size_is_padded_and_cropped(net, h, w):
    ab, conf, carrier = net.eval().colorize_ab(torch.rand(1, 3, h, w), DecodeConfig())
    assert ab.shape == (1, 2, -(-h // 4), -(-w // 4))
    assert conf.shape == (1, 1, -(-h // 4), -(-w // 4))
    assert carrier.shape == ab.shape and torch.isfinite(carrier).all()
    assert ((conf >= 0) & (conf <= 1 + 1e-6)).all()


def test_every_parameter_gets_a_gradient(net):
    x = torch.rand(2, 3, 64, 64)
    # A small step: after one at lr 0.1 the hint gate's sigmoid sits at 1.0 on this all-colour input, where
    # the regression, following its hint in full, rightly gets no gradient.
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def loss():
        logits, reg, _ = net.train()(x)
        return logits.logsumexp(1).mean() + reg.abs().mean()

    # The global-context output layer starts at zero (an identity block), so the layer before it
    # first sees a gradient after one step. The input is coloured, so a hint gate is at work.
    loss().backward()
    opt.step()
    opt.zero_grad()
    loss().backward()
    missing = [
        n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert missing == []


def test_fuse_keeps_outputs(net):
    net.train()
    for _ in range(3):  # give the batch norms non-trivial statistics
        net(torch.rand(4, 3, 64, 64))
    net.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)[0]
        after = net.fuse()(x)[0]
    assert torch.allclose(before, after, atol=1e-4)


def test_channels_last_matches_nchw(net):
    # Inference runs channels_last, where 1x1 convolutions become matrix products (backbone.conv1x1)
    # and the decoding works with the bins last; training runs NCHW. Both must give the same colours.
    net.train()
    net(torch.rand(4, 3, 64, 64))  # non-trivial batch-norm statistics
    net.eval().fuse()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        nchw = net.colorize_ab(x, DecodeConfig())
        cl = net.colorize_ab(x.contiguous(memory_format=torch.channels_last), DecodeConfig())
    for a, b in zip(nchw, cl, strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_annealed_mean_temperature(net):
    logits = torch.randn(1, net.colors.num_bins, 4, 4) * 3
    hot, _ = net.colors(logits, DecodeConfig(temperature=1.0))
    cold, _ = net.colors(logits, DecodeConfig(temperature=0.2))
    # Lower temperature = more saturated on average.
    assert cold.norm(dim=1).mean() > hot.norm(dim=1).mean()


def test_save_and_load_without_pickle(net, tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(net.eval(), path)
    assert path.with_suffix(".json").is_file()
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\x0a"  # not a pickle
    loaded, decode = load_model(path)
    assert loaded.cfg == net.cfg and decode == DecodeConfig()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], net(x)[0], atol=0.05)  # weights stored as fp16


def test_large_batchnorm_statistics_survive_saving(net, tmp_path):
    """fp16 tops out at 65504: a running variance above it must not come back as inf."""
    bn = net.up8.reduce.bn
    bn.running_var[0] = 2e5
    path = tmp_path / "m.safetensors"
    save_model(net.eval(), path)
    loaded, _ = load_model(path)
    assert loaded.up8.reduce.bn.running_var[0].item() == pytest.approx(2e5)
    assert all(torch.isfinite(b).all() for b in loaded.buffers())


def test_shipped_model_loads_and_is_the_default_config():
    path = default_model_path()
    assert path.is_file(), f"the shipped weights are missing: {path}"
    model, decode = load_model(path)
    assert read_configs(path)[0] == ModelConfig()  # a newcomer's ColorNet(ModelConfig()) is the real thing
    assert count_parameters(model) > 1_000_000
    assert path.stat().st_size < 20_000_000
    assert all(torch.isfinite(b).all() for b in model.buffers())  # e.g. no running variance lost to fp16
    assert 0.0 <= decode.saturation <= 1.0
    assert model.hint is not None  # the shipped network follows keyframes through its gate


def test_a_config_written_before_the_hint_gate_existed_describes_a_network_without_one():
    old = {"decoder": [8, 8, 8, 16], "global_dim": 8, "bin_grid": 10.0}
    assert ModelConfig.from_dict(old) == replace(TINY, hint_gate=False)
    assert ModelConfig.from_dict(TINY.to_dict()) == TINY and TINY.hint_gate
    assert ColorNet(ModelConfig.from_dict(old)).hint is None


def test_lab_agrees_with_opencv():
    # OpenCV's float sRGB -> Lab (D65) is what the benchmarks measure ab with (train.clipeval); it
    # differs from ours only by its own rounding of the gamma curve, within a fraction of a Lab unit.
    x = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    ours = rgb_to_lab(torch.from_numpy(x).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(ours - cv2.cvtColor(x, cv2.COLOR_RGB2Lab)).max() < 0.5


def test_lab_roundtrip_and_gray():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4)
    L = rgb_to_lab(x)[:, :1]
    g = gray_rgb(L)
    assert torch.allclose(g[:, 0], g[:, 1], atol=1e-5) and torch.allclose(g[:, 1], g[:, 2], atol=1e-5)
    assert torch.allclose(rgb_to_lab(join_lab(L, torch.zeros(2, 2, 8, 8)))[:, 0], L[:, 0], atol=1e-3)


def test_gamut_bins_cover_the_sRGB_gamut():
    bins = gamut_bins()
    assert 200 < len(bins) < 330
    ab = rgb_to_lab(torch.rand(3, 1, 2000))[1:].reshape(2, -1).T
    nearest = torch.cdist(ab, bins).min(dim=1).values
    assert nearest.max() < 10.0  # every in-gamut colour lies within a cell of a bin centre


def test_lower_saturation_undoes_rebalancing_towards_rare_colors():
    torch.manual_seed(0)
    net = ColorNet(TINY)
    chroma = net.colors.bins.norm(dim=1)
    net.colors.class_weights.copy_(1.0 + chroma / 20)  # rebalancing weighs rare, saturated colours up
    logits = torch.randn(1, net.colors.num_bins, 4, 4)
    muted = net.colors(logits, DecodeConfig(temperature=1.0, saturation=0.0))[0]
    vivid = net.colors(logits, DecodeConfig(temperature=1.0, saturation=1.0))[0]
    assert muted.norm(dim=1).mean() < vivid.norm(dim=1).mean()


def test_a_followed_hint_keeps_its_regressed_colour_where_classes_would_round_it():
    net = ColorNet(TINY)
    logits = torch.randn(1, net.colors.num_bins, 4, 4)
    reg = torch.full((1, 2, 4, 4), 13.0)  # between bins, 10 units apart
    follow = torch.zeros(1, 1, 4, 4)
    follow[..., :2] = 1.0
    ab, conf = net.decode(logits, reg, follow, DecodeConfig())
    classes, conf_classes = net.colors(logits, DecodeConfig())
    assert torch.allclose(ab[..., :2], reg[..., :2]) and (conf[..., :2] == 1).all()
    assert torch.equal(ab[..., 2:], classes[..., 2:]) and torch.equal(conf[..., 2:], conf_classes[..., 2:])


def test_decoder_buffers_stay_fp32_when_the_network_is_cast(net):
    net = net.to(torch.bfloat16)
    assert net.colors.bins.dtype == torch.float32 and net.colors.class_weights.dtype == torch.float32
    assert net.logits.weight.dtype == torch.bfloat16


def test_a_hints_holes_are_filled_from_colour_nearby_and_far_cells_not_trusted():
    colored = torch.zeros(1, 1, 8, 48)
    colored[..., :4] = 1.0
    ab = torch.tensor([30.0, -20.0]).view(1, 2, 1, 1) * colored  # a hint on the 4 left columns only
    hint, trust = spread(ab, colored, torch.full((1, 1, 8, 48), 50.0))
    assert torch.allclose(hint[..., :8], torch.tensor([30.0, -20.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8), atol=1e-3)
    assert (trust[..., :8] == 1).all()  # coloured, or a hole next to colour
    assert (trust[..., -8:] == 0).all()  # 40 cells away: nothing to follow


def test_a_hole_takes_the_colour_of_its_own_lightness():
    # Rows 0-3 dark and blue, rows 4-7 light and yellow; a hole across both in columns 8-11.
    lightness = torch.full((1, 1, 8, 20), 30.0)
    lightness[..., 4:, :] = 80.0
    colour = torch.where(lightness > 50, torch.tensor([0.0, 60.0]).view(1, 2, 1, 1), torch.tensor([10.0, -40.0]).view(1, 2, 1, 1))
    colored = torch.ones(1, 1, 8, 20)
    colored[..., 8:12] = 0.0
    hint, trust = spread(colour * colored, colored, lightness)
    assert (trust[..., 8:12] == 1).all()
    assert torch.allclose(hint[..., :4, 8:12], colour[..., :4, 8:12], atol=0.5)  # blue, not blue-yellow
    assert torch.allclose(hint[..., 4:, 8:12], colour[..., 4:, 8:12], atol=0.5)


def test_the_hint_fill_is_the_lightness_weighted_mean_of_the_taps_around_each_hole():
    from vidcolor.model import FILL_LIGHTNESS, FILL_RADIUS, FILL_SIGMA, FILL_STEP, REACH

    g = torch.Generator().manual_seed(0)
    h, w = 5, 7
    colored = (torch.rand(1, 1, h, w, generator=g) > 0.4).float() * torch.rand(1, 1, h, w, generator=g)
    ab = torch.randn(1, 2, h, w, generator=g) * 30 * (colored > 0)
    lightness = torch.rand(1, 1, h, w, generator=g) * 100
    hint, trust = spread(ab, colored, lightness)
    taps = range(-FILL_RADIUS, FILL_RADIUS + 1, FILL_STEP)
    for y in range(h):
        for x in range(w):
            c = float(colored[0, 0, y, x])
            total, weight, share, norm = torch.zeros(2), 0.0, 0.0, 0.0
            for dy in taps:
                for dx in taps:
                    ty, tx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)  # edges replicated
                    near = math.exp(-(dy * dy + dx * dx) / (2 * FILL_SIGMA**2))
                    like = math.exp(-((float(lightness[0, 0, ty, tx] - lightness[0, 0, y, x])) ** 2) / (2 * FILL_LIGHTNESS**2))
                    total += near * like * ab[0, :, ty, tx]
                    weight += near * like * float(colored[0, 0, ty, tx])
                    share, norm = share + near * float(colored[0, 0, ty, tx]), norm + near
            fill = total / max(weight, 1e-6)
            want = ab[0, :, y, x] + (1 - c) * fill
            assert torch.allclose(hint[0, :, y, x], want, atol=1e-3), (y, x)
            assert float(trust[0, 0, y, x]) == pytest.approx(c + (1 - c) * float(share / norm > REACH), abs=1e-6)


def test_the_class_mixture_is_the_network_and_a_gaussian_around_the_hint_weighted_by_the_gate():
    from vidcolor.model import HintGate

    g = torch.Generator().manual_seed(0)
    bins = gamut_bins(10.0).float()
    logits = torch.randn(2, len(bins), 3, 4, generator=g) * 3
    hint, gate = torch.randn(2, 2, 3, 4, generator=g) * 40, torch.rand(2, 1, 3, 4, generator=g)
    theirs = torch.softmax(-((hint[:, None] - bins[None, :, :, None, None]) ** 2).sum(2) / (2 * 5.0**2), 1)
    want = (1 - gate) * torch.softmax(logits, 1) + gate * theirs
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the Gaussian's distances stay fp32
        mixed = HintGate(8, 5.0).mix(logits, hint, gate, bins)
    assert torch.allclose(mixed.exp(), want, atol=1e-5)


def test_the_hints_gaussian_is_floored_above_fp32_denormals():
    # fp32 values below 1.2e-38 are computed several times slower on x86: the Gaussian around a hint reaches
    # them 10 sigma out, so it is floored at e^FAR of its peak (HintGate.FAR) and stays normal everywhere.
    from vidcolor.model import HintGate

    bins = gamut_bins(10.0).float()
    logits = torch.full((1, len(bins), 2, 2), -1e4)
    logits[:, 0] = 0.0  # the network all on one bin: the other bins hold the Gaussian's share alone
    hint = torch.tensor([60.0, -60.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    mixed = HintGate(8, 5.0).mix(logits, hint, torch.ones(1, 1, 2, 2), bins)
    floor = HintGate.FAR + mixed.amax(1)
    assert (mixed >= floor[:, None] - 1e-3).all()
    assert float(mixed.exp().min()) > torch.finfo(torch.float32).tiny


def test_the_hint_fill_stays_fp32_under_bf16_autocast():
    ab, colored, lightness = torch.randn(1, 2, 8, 12) * 20, torch.rand(1, 1, 8, 12), torch.rand(1, 1, 8, 12) * 100
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hint, _ = spread(ab, colored, lightness)
    assert hint.dtype == torch.float32
    assert torch.allclose(hint, spread(ab, colored, lightness)[0])


def test_an_old_record_without_hypercolumns_loads_and_one_with_them_is_refused():
    from vidcolor.record import ModelConfig

    assert ModelConfig.from_dict({**TINY.to_dict(), "hypercolumns": False}) == TINY
    with pytest.raises(ValueError, match="hypercolumn"):
        ModelConfig.from_dict({**TINY.to_dict(), "hypercolumns": True})


def test_a_record_written_before_its_schema_migrates_and_a_newer_one_is_refused(tmp_path):
    import json

    from vidcolor.record import FeedbackRecord, HintGateRecord, read_weights

    path = tmp_path / "old.safetensors"
    save_model(ColorNet(TINY).eval(), path)
    old = {  # the shape of every record before schema 1: settings at the top, beside the training record
        "model": TINY.to_dict(),
        "decode": {"temperature": 0.5, "saturation": 0.3},
        "training": {"steps_total": 3},
        "hint_gate_offset": 0.05,
        "hint_gate_trusted_offset": 0.15,
        "feedback": True,
        "feedback_gain": 0.95,
        "gray_every": 8,
        "step": 9,
    }
    path.with_suffix(".json").write_text(json.dumps(old))
    record = read_weights(path)
    assert record.feedback == FeedbackRecord(feedback=True, feedback_gain=0.95, gray_every=8)
    assert record.hint_gate == HintGateRecord(0.05, 0.15)
    assert record.training == {"steps_total": 3, "step": 9}
    assert record.model == TINY and record.decode.saturation == 0.3
    net, _ = load_model(path)  # and the network loads as before
    assert net.cfg == TINY
    path.with_suffix(".json").write_text(json.dumps({**record.to_dict(), "vidcolor_weights": 2}))
    with pytest.raises(ValueError, match="update vidcolor"):
        read_weights(path)


def test_the_shipped_record_is_the_current_schema():
    import json

    from vidcolor.record import SCHEMA

    assert json.loads(default_model_path().with_suffix(".json").read_text())["vidcolor_weights"] == SCHEMA
