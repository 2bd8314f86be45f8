"""Training: a few real steps on generated images, resume, export; the loss pieces."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import cv2
import numpy as np
import pytest
import torch

from vidcolor.augment import archival_look, degrade_hint, hole_mask
from vidcolor.data import is_held_out, list_images, split_images
from vidcolor.model import ColorNet
from vidcolor.train import (
    TrainConfig,
    Trainer,
    colour_loss,
    export_checkpoint,
    load_deepened,
    rebalance_weights,
    run_model_config,
)
from vidcolor.weights import load_model, save_model

from .conftest import TINY, scene


def write_images(folder, n=24):
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), scene(0, 96, 80, seed=i)[..., ::-1])
    return folder


def test_smoke_training_resumes_and_exports(tmp_path):
    data = write_images(tmp_path / "imgs")
    cfg = TrainConfig(data_dir=str(data), run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), model=TINY,
                      steps=4, batch=4, crop=48, eval_every=2, ckpt_every=2, eval_images=8, holdout_permille=250, warmup=2)
    trainer = Trainer(cfg)
    trainer.fit()
    assert (tmp_path / "run" / "last.pt").is_file()
    assert (tmp_path / "run" / "best.safetensors").is_file()
    # Resume to a longer schedule: it continues from step 4, not from 0.
    Trainer(TrainConfig(**{**cfg.__dict__, "steps": 6})).fit()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "resume" and r["step"] == 4 for r in log)
    steps = [r["step"] for r in log if r.get("event") == "eval"]
    assert steps == [2, 4, 6]
    evals = [r for r in log if r.get("event") == "eval"]
    assert all(np.isfinite(r["psnr_cls"]) for r in evals)
    model = load_model(tmp_path / "run" / "best.safetensors")
    assert model.cfg == TINY
    # A new run can start from exported weights.
    warm = Trainer(TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "warm"), "init": str(tmp_path / "run" / "best.safetensors")}))
    assert torch.allclose(warm.model.stem[0].conv.weight, model.stem[0].conv.weight)
    # Export with a per-image colour choice: the setting travels in the JSON and the model decodes with it.
    out = tmp_path / "shipped.safetensors"
    export_checkpoint(tmp_path / "run" / "last.pt", out, replace(TINY, temperature=0.7, colour_weight=0.04))
    shipped = load_model(out)
    assert shipped.cfg.colour_weight == 0.04 and shipped.cfg.temperature == 0.7
    ab, _ = shipped.colorize_ab(torch.rand(1, 3, 32, 48))
    assert torch.isfinite(ab).all()


def test_split_is_by_content_and_stable(tmp_path):
    data = write_images(tmp_path / "imgs", n=40)
    train, held = split_images(list_images(data), 250)
    assert len(train) + len(held) == 40 and held and train
    # Renaming a file does not move it across the split.
    moved = held[0].rename(held[0].with_name("renamed.png"))
    train2, held2 = split_images(list_images(data), 250)
    assert moved in held2 and len(held2) == len(held)
    assert not is_held_out("ffffffff", 0)


def test_rebalance_weights_are_normalized():
    prior = torch.softmax(torch.randn(50), 0)
    w = rebalance_weights(prior, 0.5)
    assert torch.isclose((prior * w).sum(), torch.tensor(1.0))
    assert w[prior.argmin()] > w[prior.argmax()]  # rare colours weigh more


def test_colour_loss_prefers_the_right_bin():
    from vidcolor.color import gamut_bins

    bins = gamut_bins()
    ab = torch.full((1, 2, 4, 4), 0.0)
    ab[:, 0] = 40.0
    right = torch.full((1, len(bins), 4, 4), -5.0)
    right[:, torch.cdist(torch.tensor([[40.0, 0.0]]), bins).argmin()] = 5.0
    wrong = torch.roll(right, 7, dims=1)
    w = torch.ones(len(bins))
    reg = torch.zeros(1, 2, 4, 4)
    good, _ = colour_loss(right, reg, ab, bins, w, TrainConfig())
    bad, _ = colour_loss(wrong, reg, ab, bins, w, TrainConfig())
    assert good < bad


def test_augmentations_keep_shapes_and_ranges():
    g = torch.Generator().manual_seed(0)
    L = torch.rand(4, 1, 32, 32) * 100
    aged = archival_look(L, g, p=1.0)
    assert aged.shape == L.shape and aged.min() >= 0 and aged.max() <= 100
    ab = torch.randn(4, 2, 32, 32) * 30
    hint = degrade_hint(ab, g)
    assert hint.shape == ab.shape and torch.isfinite(hint).all()
    m = hole_mask(4, 32, 32, g, 0.3, 0.3)
    assert torch.allclose(1 - m.mean(dim=(1, 2, 3)), torch.full((4,), 0.3), atol=0.05)


def test_deepened_warm_start_starts_as_the_stored_network():
    torch.manual_seed(0)
    small = ColorNet(TINY).eval()
    for m in small.modules():  # non-trivial statistics, so the comparison means something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    deep = ColorNet(replace(TINY, blocks=(2, 2, 3)))
    added = load_deepened(deep, small.state_dict())
    assert added == ["s16.2", "s16.3", "s4.1", "s8.2"]  # s8.0 / s16.0 are the stride-2 convs
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        a, b = small(x), deep.eval()(x)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="do not fit"):
        load_deepened(ColorNet(replace(TINY, widths=(8, 16, 16, 32))), small.state_dict())


def test_a_resumed_run_keeps_the_network_it_started_with(tmp_path):
    assert run_model_config(tmp_path) == TrainConfig().model
    deep = TrainConfig(model=replace(TrainConfig().model, blocks=(1, 3, 3)))
    (tmp_path / "config.json").write_text(json.dumps(asdict(deep)))
    assert run_model_config(tmp_path).blocks == (1, 3, 3)
    assert run_model_config(tmp_path, "2,3,3").blocks == (2, 3, 3)


def test_a_new_run_from_weights_trains_the_network_they_were_saved_with(tmp_path):
    stored = replace(TINY, blocks=(1, 3, 3), temperature=0.7, prior_correction=0.75)
    save_model(ColorNet(stored), tmp_path / "w.safetensors")
    cfg = run_model_config(tmp_path / "run", init=str(tmp_path / "w.safetensors"))
    assert (cfg.widths, cfg.blocks, cfg.global_dim) == (TINY.widths, (1, 3, 3), TINY.global_dim)
    assert cfg.temperature == TrainConfig().model.temperature  # decoding stays the training default
    assert run_model_config(tmp_path / "run", "1,3,4", str(tmp_path / "w.safetensors")).blocks == (1, 3, 4)
