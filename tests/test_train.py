"""Training: a few real steps on generated images, resume, export; the loss pieces."""

from __future__ import annotations

import itertools
import json
import os
import signal
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import vidcolor.train.fit as fit_module
from vidcolor.lab import join_lab
from vidcolor.model import ColorNet
from vidcolor.record import DecodeConfig, FeedbackRecord, read_feedback
from vidcolor.train.augment import archival_look, degrade_hint, hole_mask, point_hints, sparse_points
from vidcolor.train.average import average_models
from vidcolor.train.clips import _read_frames_cv2, is_held_out_clip, list_clips, overlapping_photos, read_frames, split_clips
from vidcolor.train.data import is_held_out, list_images, split_images
from vidcolor.train.fit import (
    Batches,
    TrainConfig,
    Trainer,
    TrainingFiles,
    color_loss,
    distill_loss,
    export_checkpoint,
    init_model,
    make_inputs,
    rebalance_weights,
    run_model_config,
)
from vidcolor.train.pack import pack
from vidcolor.weights import load_model, save_model

from .conftest import TINY, make_video, scene


def write_images(folder, n=24):
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), scene(0, 96, 80, seed=i)[..., ::-1])
    return folder


def write_clips(folder, n=8):
    folder.mkdir()
    return [make_video(folder / f"clip{i}.mp4", frames=6, size=(96, 64), color=True, audio=False) for i in range(n)]


def _tiny_run(tmp_path) -> TrainConfig:
    data = write_images(tmp_path / "imgs")
    write_clips(tmp_path / "clips")
    return TrainConfig(
        data_dir=str(data),
        clip_dir=str(tmp_path / "clips"),
        pretrained="",
        run_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        model=TINY,
        steps=4,
        batch=4,
        crop=64,
        eval_every=2,
        ckpt_every=2,
        eval_images=8,
        eval_size=64,
        prior_samples=64,
        holdout_permille=250,
        clip_holdout_permille=300,
        clip_prob=0.5,
        warmup=2,
        freeze_encoder_steps=2,
        sequence_prob=0.5,
    )


@pytest.mark.slow
def test_smoke_training_resumes_and_exports(tmp_path):
    cfg = _tiny_run(tmp_path)
    trainer = Trainer(cfg)
    encoder_before = trainer.model.encoder.stem.weight.detach().clone()
    trainer.train_step()
    trainer.step += 1
    assert torch.equal(trainer.model.encoder.stem.weight, encoder_before)  # stage 1: the encoder is frozen
    trainer.fit()
    assert not torch.equal(trainer.model.encoder.stem.weight, encoder_before)  # stage 2: it learns too
    assert (tmp_path / "run" / "last.pt").is_file()
    assert (tmp_path / "run" / "best.safetensors").is_file()
    # Resume to a longer schedule: it continues from step 4, not from 0.
    Trainer(TrainConfig(**{**cfg.__dict__, "steps": 6})).fit()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "resume" and r["step"] == 4 for r in log)
    data_event = next(r for r in log if r.get("event") == "data")
    assert data_event["clips"] + len(data_event["held_out_clips"]) == 8 and data_event["clips"] > 0
    steps = [r["step"] for r in log if r.get("event") == "eval"]
    assert steps == [2, 4, 6]
    evals = [r for r in log if r.get("event") == "eval"]
    assert all(np.isfinite(r["psnr_cls"]) for r in evals)
    model, _ = load_model(tmp_path / "run" / "best.safetensors")
    assert model.cfg == TINY
    # For the run time: trained without chains of its own colours, not fed them back by default.
    assert read_feedback(tmp_path / "run" / "best.safetensors") == FeedbackRecord(False, cfg.feedback_gain, True)
    # A new run can start from exported weights.
    warm = Trainer(
        TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "warm"), "init": str(tmp_path / "run" / "best.safetensors")})
    )
    assert torch.allclose(warm.model.encoder.stem.weight, model.encoder.stem.weight)
    # Export with a decoding: it travels in the JSON and the model decodes with it.
    out = tmp_path / "shipped.safetensors"
    export_checkpoint(tmp_path / "run" / "last.pt", out, DecodeConfig(temperature=0.5, saturation=0.3))
    shipped, decode = load_model(out)
    assert decode == DecodeConfig(temperature=0.5, saturation=0.3)
    assert read_feedback(out) == FeedbackRecord(False, cfg.feedback_gain, True)
    ab, _, _ = shipped.colorize_ab(torch.rand(1, 3, 32, 48), decode)
    assert torch.isfinite(ab).all()
    # --weights model exports the last step's own weights, not their EMA.
    export_checkpoint(tmp_path / "run" / "last.pt", out, DecodeConfig(), weights="model")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    raw, _ = load_model(out)
    stem = "encoder.stem.weight"
    assert torch.allclose(raw.state_dict()[stem], state["model"][stem].half().float())
    assert not torch.allclose(state["model"][stem], state["ema"][stem])


def test_a_stop_signal_ends_training_with_a_checkpoint_to_resume_from(tmp_path):
    cfg = replace(_tiny_run(tmp_path), steps=50, ckpt_every=1000, eval_every=1000)
    trainer = Trainer(cfg)
    step = trainer.train_step

    def step_then_term(made=None):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as when the session ends
        return step(made)

    trainer.train_step = step_then_term
    before = signal.getsignal(signal.SIGTERM)
    trainer.fit()
    assert trainer.step == 3  # the step under way finished, none after it
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 3
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "stopped"
    assert Trainer(cfg).step == 3  # a rerun resumes there


def test_averaging_two_networks_mixes_the_weights_they_share_and_keeps_the_gate(tmp_path):
    torch.manual_seed(0)
    a, b = ColorNet(replace(TINY, hint_gate=False)), ColorNet(TINY)
    save_model(a.eval(), tmp_path / "a.safetensors", half=False)
    save_model(b.eval(), tmp_path / "b.safetensors", half=False)
    for alpha in (0.0, 0.25, 1.0):
        m = average_models(tmp_path / "a.safetensors", tmp_path / "b.safetensors", alpha).state_dict()
        for name, w in m.items():
            want = b.state_dict()[name]
            if name in a.state_dict() and w.is_floating_point():
                want = alpha * want + (1 - alpha) * a.state_dict()[name]
            assert torch.allclose(w.float(), want.float(), atol=1e-6), name
    assert any(k.startswith("hint.") for k in m) and m.keys() == b.state_dict().keys()
    with pytest.raises(ValueError, match="alpha"):
        average_models(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 1.5)


def test_clips_are_held_out_by_name_with_the_photos_that_show_them(tmp_path):
    clips = write_clips(tmp_path / "clips", n=12)
    train, held = split_clips(list_clips(tmp_path / "clips"), 300)
    assert held and train and len(train) + len(held) == 12
    assert all(is_held_out_clip(p, 300) for p in held)
    assert is_held_out_clip(tmp_path / "elsewhere" / held[0].name, 300)  # by name, not by folder or bytes
    # A photo that is a frame of a held-out clip is found; one of another scene is not.
    photos = tmp_path / "photos"
    photos.mkdir()
    import av

    with av.open(str(held[0])) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    cv2.imwrite(str(photos / "frame.jpg"), frame[..., ::-1])
    cv2.imwrite(str(photos / "other.jpg"), scene(0, 96, 64, seed=99)[..., ::-1])
    found = overlapping_photos(sorted(photos.glob("*.jpg")), held)
    assert [p.name for p in found] == ["frame.jpg"]
    assert clips


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


def test_color_loss_prefers_the_right_bin():
    from vidcolor.lab import gamut_bins

    bins = gamut_bins()
    ab = torch.full((1, 2, 4, 4), 0.0)
    ab[:, 0] = 40.0
    right = torch.full((1, len(bins), 4, 4), -5.0)
    right[:, torch.cdist(torch.tensor([[40.0, 0.0]]), bins).argmin()] = 5.0
    wrong = torch.roll(right, 7, dims=1)
    w = torch.ones(len(bins))
    reg = torch.zeros(1, 2, 4, 4)
    good, _ = color_loss(right, reg, ab, bins, w, TrainConfig())
    bad, _ = color_loss(wrong, reg, ab, bins, w, TrainConfig())
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


def test_a_spoiled_hints_saturation_error_is_unbiased_in_the_truths_terms():
    from vidcolor.train.augment import saturation_errors

    factors = saturation_errors(20000, torch.Generator().manual_seed(0))
    assert (1.0 / factors).mean() == pytest.approx(1.0, abs=0.01)  # truth = hint / factor: no boost to learn
    assert factors.min() < 0.8 and factors.max() > 1.35  # errors both ways


def test_clean_hints_are_only_moved_and_holed():
    # A flat colour stays exactly that colour where a clean hint has it (no blur, recolouring or wrong
    # patch), with holes; spoiled hints of the same colour come out recoloured some of the time.
    ab = torch.tensor([30.0, -20.0])[None, :, None, None].expand(16, 2, 48, 48).contiguous()
    centre = (slice(None), slice(None), slice(12, 36), slice(12, 36))  # away from the edges a shift empties
    clean = degrade_hint(ab, torch.Generator().manual_seed(1), clean=1.0)[centre]
    kept = clean.abs().sum(1) > 0
    assert 0.3 < float(kept.float().mean()) < 0.99
    assert torch.allclose(clean.permute(0, 2, 3, 1)[kept], torch.tensor([30.0, -20.0]), atol=1e-3)
    spoiled = degrade_hint(ab, torch.Generator().manual_seed(1), clean=0.0)[centre]
    some = spoiled.abs().sum(1) > 0
    assert not torch.allclose(spoiled.permute(0, 2, 3, 1)[some], torch.tensor([30.0, -20.0]), atol=1e-3)


def test_a_run_keeps_its_network_or_takes_the_one_of_its_init_weights(tmp_path):

    assert run_model_config(tmp_path) == TrainConfig().model
    (tmp_path / "config.json").write_text(json.dumps(asdict(TrainConfig(model=TINY))))
    assert run_model_config(tmp_path) == TINY
    from vidcolor.model import ColorNet

    plain = replace(TINY, hint_gate=False)
    save_model(ColorNet(plain), tmp_path / "w.safetensors")
    assert run_model_config(tmp_path / "new", init=str(tmp_path / "w.safetensors")) == plain
    with_hint = run_model_config(tmp_path / "new", init=str(tmp_path / "w.safetensors"), hint_gate=True)
    assert with_hint == TINY


def test_a_hint_gate_added_to_trained_weights_leaves_gray_inputs_alone_and_follows_a_hint(tmp_path):
    from vidcolor.model import ColorNet

    torch.manual_seed(0)
    plain = ColorNet(replace(TINY, hint_gate=False))
    plain.train()
    plain(torch.rand(4, 3, 64, 64))  # non-trivial batch-norm statistics
    save_model(plain.eval(), tmp_path / "w.safetensors", half=False)
    grown = init_model(tmp_path / "w.safetensors", TINY).eval()
    assert grown.hint is not None
    L = torch.rand(2, 1, 64, 64) * 60 + 20
    gray = join_lab(L, torch.zeros(2, 2, 64, 64))
    hint = torch.tensor([40.0, -30.0])[None, :, None, None].expand(2, 2, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(gray), grown(gray), strict=True):
            assert torch.equal(a, b.to(a.dtype))  # no colour in the input: exactly the network before
        (lp, rp, _), (lg, rg, follow) = plain(join_lab(L, hint)), grown(join_lab(L, hint))
    assert (follow > 0).all()
    target = hint[:, :, :16, :16]
    assert (rg - target).norm(dim=1).mean() < (rp - target).norm(dim=1).mean()  # the regression moves toward it
    bins = grown.colors.bins
    near = ((bins - torch.tensor([40.0, -30.0])) ** 2).sum(1).argmin()
    assert (lg.softmax(1)[:, near] > lp.softmax(1)[:, near]).all()  # and the hint's bin gains probability
    save_model(grown, tmp_path / "grown.safetensors")
    with pytest.raises(ValueError, match="does not fit"):  # weights with parts the network lacks
        init_model(tmp_path / "grown.safetensors", replace(TINY, hint_gate=False))


def _panning_clip(frames=8, size=(96, 80), step=3):
    """One clip as an ImageCache: a colourful scene moving `step` px right per frame, and its span."""
    from vidcolor.train.data import ImageCache

    wide = scene(0, size[0] + frames * step, size[1], seed=3)
    imgs = [np.ascontiguousarray(wide[:, (frames - i) * step : (frames - i) * step + size[0]]) for i in range(frames)]
    return ImageCache.from_arrays(imgs), [("pan", 0, frames)]


def test_sequence_windows_take_consecutive_frames_of_one_clip_with_one_crop():
    from vidcolor.train.sequences import window_crops

    cache, spans = _panning_clip()
    w = window_crops(cache, spans, n=3, frames=3, size=64, rng=np.random.default_rng(0), max_skip=2)
    assert w.shape == (3, 3, 64, 64, 3) and w.dtype == np.uint8
    assert all(not np.array_equal(win[0], win[1]) for win in w)  # the scene moved between them


def test_sequence_inputs_carry_the_previous_prediction_along_the_flow():
    from vidcolor.color import gray_to_lightness_lut
    from vidcolor.flow import make_dis
    from vidcolor.lab import rgb_to_lab
    from vidcolor.temporal import TemporalOptions
    from vidcolor.train.sequences import sequence_samples, window_crops

    cache, spans = _panning_clip()
    windows = window_crops(cache, spans, n=2, frames=3, size=64, rng=np.random.default_rng(1), max_skip=1)
    calls = []

    def painter(ab_value):
        def predict(x):
            calls.append(x.shape)
            return np.broadcast_to(np.float32(ab_value), x.shape[:3] + (2,)).copy()

        return predict

    args = (make_dis("fast"), gray_to_lightness_lut(), TemporalOptions(), torch.Generator().manual_seed(0))
    x, ab = sequence_samples(windows, painter((30.0, -20.0)), *args, own_hint_prob=0.0)
    assert x.shape == (2, 3, 64, 64) and ab.shape == (2, 2, 64, 64)
    assert calls == [(2, 64, 64, 3), (2, 64, 64, 3)]  # frame 1 from 0, frame 2 from 1
    lab = rgb_to_lab(x)
    assert (lab[:, 1].median() - 30).abs() < 6 and (lab[:, 2].median() + 20).abs() < 6  # the painted colour arrived
    truth = rgb_to_lab(torch.from_numpy(windows[:, -1]).permute(0, 3, 1, 2).float() / 255)[:, 1:]
    assert torch.allclose(ab, truth)  # the target is the last frame's own colours
    gray, _ = sequence_samples(windows, painter((0.0, 0.0)), *args, own_hint_prob=0.0)
    assert (gray.max(1).values - gray.min(1).values).max() < 0.02  # nothing predicted, nothing carried: gray


def test_chains_carry_the_networks_colours_on_from_one_training_step_to_the_next():
    from vidcolor.color import gray_to_lightness_lut
    from vidcolor.flow import make_dis
    from vidcolor.lab import rgb_to_lab
    from vidcolor.temporal import TemporalOptions
    from vidcolor.train.sequences import Chains, _crop

    cache, spans = _panning_clip(frames=5)
    chains = Chains(cache, spans, n=3, size=64, chain_frames=1e9, max_skip=1)
    seen = []

    def predict(x):  # paints every pixel (20 + 5 * calls so far, -10)
        seen.append(x.shape)
        return np.broadcast_to(np.float32((20.0 + 5 * len(seen), -10.0)), x.shape[:3] + (2,)).copy()

    flow, rng, g = make_dis("fast"), np.random.default_rng(0), torch.Generator().manual_seed(0)
    lut, opt = gray_to_lightness_lut(), TemporalOptions(feedback_gain=1.0)
    x0, _ = chains.samples(predict, flow, lut, opt, rng, g, own_hint_prob=0.0)
    assert (x0.max(1).values - x0.min(1).values).max() < 0.02  # a new chain starts from gray
    indices = [[c.index] for c in chains.chains]
    for call in range(2, 9):  # 8 calls walk 5 frames: forward, then back from the clip's end
        x, ab = chains.samples(predict, flow, lut, opt, rng, g, own_hint_prob=0.0)
        a = rgb_to_lab(x)[:, 1]
        assert (a.median() - (20 + 5 * (call - 1))).abs() < 6  # the colours of the call before arrived
        assert all(0 <= c.index < 5 for c in chains.chains)
        frames = np.stack([_crop(cache.image(c.index), c.box, 64) for c in chains.chains])
        truth = rgb_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)[:, 1:]
        assert torch.allclose(ab, truth)  # the target is each chain's frame's own colours
        indices = [[*i, c.index] for i, c in zip(indices, chains.chains, strict=True)]
    for walk in indices:  # one frame a step, turning back at the ends
        assert all(abs(b - a) == 1 for a, b in itertools.pairwise(walk)) and len(set(walk)) >= 4
    assert seen == [(3, 64, 64, 3)] * 8  # one forward pass a step
    restart = Chains(cache, spans, n=2, size=64, chain_frames=1.0, max_skip=1)  # starts over every step
    restart.samples(predict, flow, lut, opt, rng, g, own_hint_prob=0.0)
    again, _ = restart.samples(predict, flow, lut, opt, rng, g, own_hint_prob=0.0)
    assert (again.max(1).values - again.min(1).values).max() < 0.02


def test_chains_give_every_gray_every_th_fed_back_input_its_gray_alone_as_the_run_time_does():
    from vidcolor.color import gray_to_lightness_lut
    from vidcolor.flow import make_dis
    from vidcolor.temporal import TemporalOptions
    from vidcolor.train.sequences import Chains

    cache, spans = _panning_clip(frames=5)
    chains = Chains(cache, spans, n=2, size=64, chain_frames=1e9, max_skip=1)

    def predict(x):  # paints every pixel (30, -10)
        return np.broadcast_to(np.float32((30.0, -10.0)), x.shape[:3] + (2,)).copy()

    flow, rng, g = make_dis("fast"), np.random.default_rng(0), torch.Generator().manual_seed(0)
    lut, opt = gray_to_lightness_lut(), TemporalOptions(feedback_gain=1.0, gray_every=3)
    colourless = []
    for _ in range(10):  # the first call starts the chains from gray; then 9 fed-back inputs each
        x, _ = chains.samples(predict, flow, lut, opt, rng, g, own_hint_prob=0.0)
        colourless.append(bool((x.max(1).values - x.min(1).values).max() < 0.02))
    assert colourless == [True, False, False, True, False, False, True, False, False, True]
    assert [c.fed for c in chains.chains] == [9, 9]


def test_training_with_chains_puts_them_in_every_batch_and_carries_them_on(tmp_path):
    cfg = replace(_tiny_run(tmp_path), sequence_chains=2, chain_frames=1e9)
    trainer = Trainer(cfg)
    x, ab = trainer.inputs()
    assert x.shape == (4, 3, 64, 64) and ab.shape == (4, 2, 64, 64)
    chains = trainer.chains.chains
    assert len(chains) == 2 and all(c.ab is not None and c.ab.shape == (64, 64, 2) for c in chains)
    where, ids = [c.index for c in chains], [id(c) for c in chains]
    trainer.train_step()
    assert [id(c) for c in trainer.chains.chains] == ids  # the same chains (none started over) ...
    assert [c.index for c in trainer.chains.chains] != where  # ... moved on
    with pytest.raises(ValueError, match="sequence_chains"):
        Trainer(replace(cfg, sequence_chains=5, run_dir=str(tmp_path / "too-many")))


def test_weights_trained_on_chains_ask_for_their_own_colours_fed_back(tmp_path):
    """Chains train the network on its own colours, unblended: its record asks the run time for that."""
    cfg = replace(_tiny_run(tmp_path), sequence_chains=2, steps=2, feedback_gain=0.9, snap_radius=5, gray_every=7)
    trainer = Trainer(cfg)
    # The chains' inputs are made as the record will ask the run time to.
    assert trainer.temporal.snap_radius == 5 and trainer.temporal.gray_every == 7
    trainer.fit()
    assert read_feedback(tmp_path / "run" / "best.safetensors") == FeedbackRecord(True, 0.9, False, 7, 5)


def test_distilling_pulls_the_gray_inputs_output_toward_the_init_weights(tmp_path):
    """--distill: a loss toward the --init network's output on the batch's gray samples, 0 where the network
    is still that one; its gradient moves the network back toward it; coloured samples do not count."""
    torch.manual_seed(0)
    cfg = replace(_tiny_run(tmp_path), sequence_chains=2, steps=2, freeze_encoder_steps=0)
    init = tmp_path / "init.safetensors"
    save_model(ColorNet(TINY).eval(), init)
    with pytest.raises(ValueError, match="init"):
        Trainer(replace(cfg, distill=1.0, run_dir=str(tmp_path / "no-init")))
    trainer = Trainer(replace(cfg, init=str(init), distill=1.0))
    model = trainer.model.eval()  # eval mode, as the teacher: their batch norms use the same statistics
    gray = join_lab(torch.rand(3, 1, 64, 64) * 100, torch.zeros(3, 2, 64, 64))
    colour = join_lab(torch.rand(1, 1, 64, 64) * 100, torch.full((1, 2, 64, 64), 30.0))

    def kept(x: torch.Tensor) -> torch.Tensor:
        logits, reg, _ = model.head(model.encode(x), x)
        return distill_loss(trainer.teacher, x, logits, reg)

    assert kept(gray).item() < 1e-4  # the network is still the teacher
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = kept(gray)
    assert before.item() > 1e-3
    assert kept(torch.cat((gray, colour))).item() == pytest.approx(before.item(), rel=1e-4)  # gray ones only
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        kept(gray).backward()
        opt.step()
    assert kept(gray).item() < 0.8 * before.item()  # its gradient leads back toward the teacher
    assert "distill" in trainer.train_step()  # logged beside the colour loss


def test_opening_the_hint_gate_follows_a_hint_further_and_leaves_gray_inputs_alone():
    """The bias opens the gate for every hint; the trusted offset for true colours only."""
    from vidcolor.model import ColorNet
    from vidcolor.train.calibrate import open_hint_gate

    torch.manual_seed(0)
    net = ColorNet(TINY).eval()
    L = torch.rand(1, 1, 64, 64) * 60 + 20
    gray = join_lab(L, torch.zeros(1, 2, 64, 64))
    hinted = join_lab(L, torch.tensor([40.0, -30.0])[None, :, None, None].expand(1, 2, 64, 64))
    with torch.no_grad():
        before_gray, before_follow = net(gray), net(hinted)[2]
        open_hint_gate(net, 0.2)
        after_gray, after_follow = net(gray), net(hinted)[2]
    assert all(torch.equal(a, b) for a, b in zip(before_gray, after_gray, strict=True))
    assert (after_follow > 2 * before_follow).all()  # a new gate: sigmoid(-4) = 0.02 -> sigmoid(-2) = 0.12
    with torch.no_grad():
        open_hint_gate(net, 0.2, trusted=True)
        assert torch.equal(net(hinted)[2], after_follow)  # the network's own colours fed back: as before
        assert (net(hinted, trusted=True)[2] > 2 * after_follow).all()  # true colours: followed further
        assert all(torch.equal(a, b) for a, b in zip(net(gray), net(gray, trusted=True), strict=True))
    with pytest.raises(ValueError, match="no hint gate"):
        open_hint_gate(ColorNet(replace(TINY, hint_gate=False)), 0.2)


def test_open_gate_file_keeps_the_record_and_adds_up_the_offsets(tmp_path):
    from vidcolor.model import ColorNet
    from vidcolor.record import HintGateRecord, read_weights
    from vidcolor.train.calibrate import open_gate_file
    from vidcolor.weights import load_model

    torch.manual_seed(0)
    net = ColorNet(TINY).eval()
    src = tmp_path / "w.safetensors"
    save_model(net, src, training={"step": 7}, half=False)
    open_gate_file(src, tmp_path / "a.safetensors", 0.05)
    open_gate_file(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 0.05)
    record = read_weights(tmp_path / "b.safetensors")
    assert record.training == {"step": 7} and record.hint_gate == HintGateRecord(offset=pytest.approx(0.1))
    opened, _ = load_model(tmp_path / "b.safetensors")
    assert torch.allclose(opened.hint.gate.bias, net.hint.gate.bias + 0.1, atol=1e-3)  # stored in fp16
    assert float(opened.hint.trusted_offset) == 0.0
    open_gate_file(tmp_path / "b.safetensors", tmp_path / "c.safetensors", 0.15, trusted=True)
    gate = read_weights(tmp_path / "c.safetensors").hint_gate
    assert gate.trusted_offset == pytest.approx(0.15) and gate.offset == pytest.approx(0.1)
    trusting, _ = load_model(tmp_path / "c.safetensors")
    assert float(trusting.hint.trusted_offset) == pytest.approx(0.15, abs=1e-3)
    assert torch.equal(trusting.hint.gate.bias, opened.hint.gate.bias)  # the guesses' gate is as it was


def test_set_feedback_file_sets_what_it_is_given_and_keeps_the_rest(tmp_path):
    from vidcolor.model import ColorNet
    from vidcolor.record import read_weights
    from vidcolor.train.calibrate import set_feedback_file

    src, out = tmp_path / "w.safetensors", tmp_path / "damped.safetensors"
    save_model(ColorNet(TINY).eval(), src, training={"step": 7})
    assert read_feedback(src) == FeedbackRecord()  # saved without any: no feedback, undamped, blended
    assert set_feedback_file(src, out, feedback_gain=0.9) == FeedbackRecord(False, 0.9, True)
    record = read_weights(out)
    assert record.training == {"step": 7} and record.feedback == FeedbackRecord(False, 0.9, True, 0, 0)
    assert out.read_bytes() == src.read_bytes()  # the network itself is untouched
    set_feedback_file(out, out, feedback=True, smooth_carried=False, gray_every=8, snap_radius=8)
    assert read_feedback(out) == FeedbackRecord(True, 0.9, False, 8, 8)  # the gain set before is kept
    with pytest.raises(ValueError, match="feedback gain"):
        set_feedback_file(src, out, feedback_gain=0.0)
    with pytest.raises(ValueError, match="gray_every"):
        set_feedback_file(src, out, gray_every=1)
    with pytest.raises(ValueError, match="snap radius"):
        set_feedback_file(src, out, snap_radius=-1)


def test_weights_saved_before_the_trusted_offset_load_with_none(tmp_path):
    from safetensors.torch import load_file, save_file

    from vidcolor.model import ColorNet
    from vidcolor.weights import load_model

    path = tmp_path / "old.safetensors"
    save_model(ColorNet(TINY).eval(), path, half=False)
    state = load_file(str(path))
    del state["hint.trusted_offset"]
    save_file(state, str(path))
    net, _ = load_model(path)
    assert float(net.hint.trusted_offset) == 0.0


def test_sparse_points_are_few_small_squares_of_the_mean_true_colour():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(64, 2, 128, 128) * 20
    hints = sparse_points(ab, g)
    marked = hints.abs().sum(1) > 0  # (B, H, W)
    share = marked.flatten(1).float().mean(1)
    assert (share > 0).float().mean() > 0.95  # nearly every sample gets a point (a zero-mean patch may vanish)
    assert share.median() < 0.02  # most samples only a few (median 6 points of 25 px on average)
    # Each point is one colour: the truth's mean under its square.
    one = point_hints(ab[:1], [1], torch.Generator().manual_seed(1), (3, 3))
    ys, xs = torch.nonzero(one[0].abs().sum(0) > 0, as_tuple=True)
    assert len(ys) == 9 and ys.max() - ys.min() == 2 and xs.max() - xs.min() == 2
    y0, x0 = int(ys.min()), int(xs.min())
    expected = ab[0, :, y0 : y0 + 3, x0 : x0 + 3].mean(dim=(1, 2))
    assert torch.allclose(one[0, :, y0, x0], expected) and torch.allclose(one[0, :, y0 + 2, x0 + 2], expected)


def test_points_prob_gives_that_share_of_samples_spread_points_and_zero_gives_none():
    rgb = torch.rand(200, 3, 96, 96)
    g = torch.Generator().manual_seed(0)
    x, _ = make_inputs(rgb, g, hint_prob=0.0, points_prob=0.5)
    coloured = ((x.amax(1) - x.amin(1)) > 1e-3).float().mean(dim=(1, 2))  # each sample's share of coloured px
    with_points = (coloured > 0).float().mean()
    assert 0.35 < with_points < 0.65  # about half the samples
    # The points are spread over the regions they land on (hints.point_hint), as the run time does.
    flat = torch.rand(8, 3, 96, 96) * 0.02 + 0.5
    xf, _ = make_inputs(flat, torch.Generator().manual_seed(1), hint_prob=0.0, points_prob=1.0)
    assert ((xf.amax(1) - xf.amin(1)) > 1e-3).float().mean() > 0.5
    x0, _ = make_inputs(rgb, torch.Generator().manual_seed(0), hint_prob=0.0, points_prob=0.0)
    assert ((x0.amax(1) - x0.amin(1)) < 1e-3).all()


def test_extra_photos_are_sampled_at_extra_prob_and_their_held_out_ones_never(tmp_path):
    cfg = _tiny_run(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(16):  # a flat saturated red: told apart from the scenes at a glance
        cv2.imwrite(str(extra / f"{i:03d}.png"), np.full((80, 96, 3), (0, 0, 200 + i), np.uint8))
    cfg = replace(cfg, extra_dirs=(str(extra),), extra_prob=0.5, clip_prob=0.0, holdout_permille=250)
    trainer = Trainer(cfg)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    data = next(r for r in log if r.get("event") == "data")
    _, held = split_images(list_images(extra), 250)
    assert data["extra_held_out"] == len(held) > 0 and data["extra_photos"] == 16 - len(held)
    x = trainer.data.batch(400, 32, np.random.default_rng(0))
    red = ((x[:, 0] > 0.7) & (x[:, 1] < 0.1)).flatten(1).float().mean(1) > 0.9
    assert 0.4 < red.float().mean() < 0.6
    held_values = {int(cv2.imread(str(p))[0, 0, 2]) for p in held}
    cache = trainer.data.extra
    assert not held_values & {int(cache.image(i)[0, 0, 0]) for i in range(len(cache))}


def test_lay_out_keeps_colour_photos_big_enough_and_new_and_names_the_commit(tmp_path):
    import subprocess

    from vidcolor.train import sources

    repo = tmp_path / "src"
    (repo / "faces").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ref = tmp_path / "ref"
    ref.mkdir()
    base = scene(0, 240, 220, seed=1)
    cv2.imwrite(str(ref / "a.png"), base[..., ::-1])
    for i in range(3):  # new colour photos
        cv2.imwrite(str(repo / "faces" / f"new{i}.png"), scene(0, 240, 220, seed=10 + i)[..., ::-1])
    cv2.imwrite(str(repo / "faces" / "small.png"), scene(0, 150, 120, seed=20)[..., ::-1])
    cv2.imwrite(str(repo / "faces" / "gray.png"), np.repeat(scene(0, 240, 220, seed=21)[..., :1], 3, axis=2))
    near = np.clip(base.astype(int) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(repo / "faces" / "dup.png"), near[..., ::-1])
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "photos"], check=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    src = sources.Source(repo="someone/faces", folder="faces", what="test photos", terms="research only")
    sources.SOURCES["test"] = src
    try:
        m = sources.lay_out("test", repo / ".git", tmp_path / "out", list_images(ref), log=lambda *_: None)
    finally:
        del sources.SOURCES["test"]
    assert (m["read"], m["small"], m["gray"], m["duplicate"], m["kept"]) == (6, 1, 1, 1, 3)
    assert m["commit"] == commit and m["terms"] == "research only"
    laid = list_images(tmp_path / "out" / "test")
    assert len(laid) == 3 and all(min(cv2.imread(str(p)).shape[:2]) == 256 for p in laid)
    sources.SOURCES["test"] = src
    try:
        with pytest.raises(FileExistsError):  # laid out once: a second run must not mix two lay-outs
            sources.lay_out("test", repo / ".git", tmp_path / "out", [], log=lambda *_: None)
    finally:
        del sources.SOURCES["test"]


@pytest.mark.slow
def test_worker_processes_train_the_same_run_as_the_training_process_alone(tmp_path, monkeypatch):
    cfg = replace(_tiny_run(tmp_path), steps=3, eval_every=3, ckpt_every=3, hint_prob=0.3, points_prob=0.3)
    started = tmp_path / "workers"
    started.mkdir()
    quiet = fit_module._quiet_worker
    monkeypatch.setattr(fit_module, "_quiet_worker", lambda i: ((started / str(os.getpid())).touch(), quiet(i)))
    states = []
    for workers in (0, 2):
        run = replace(cfg, run_dir=str(tmp_path / f"run{workers}"), workers=workers)
        Trainer(run).fit()
        states.append(torch.load(tmp_path / f"run{workers}" / "last.pt", weights_only=True))
    alone, ahead = states
    assert len(list(started.iterdir())) == 2 and str(os.getpid()) not in os.listdir(started)  # the batches came from 2 processes
    assert alone["step"] == ahead["step"] == 3
    for name, w in alone["model"].items():
        assert torch.equal(w, ahead["model"][name]), name
    # The runs did learn (so equal is not both untouched), and another seed gives another run.
    first = Trainer(replace(cfg, run_dir=str(tmp_path / "fresh"), steps=0)).model.state_dict()
    assert any(not torch.equal(w, first[k]) for k, w in alone["model"].items() if w.is_floating_point())
    Trainer(replace(cfg, run_dir=str(tmp_path / "seed1"), seed=1, workers=2)).fit()
    other = torch.load(tmp_path / "seed1" / "last.pt", weights_only=True)["model"]
    assert any(not torch.equal(w, other[k]) for k, w in alone["model"].items() if w.is_floating_point())


def test_a_batch_depends_on_the_seed_and_its_step_alone(tmp_path):
    cfg = _tiny_run(tmp_path)
    trainer = Trainer(replace(cfg, steps=0))
    batches = Batches(trainer.data, cfg)
    x5, ab5, _ = batches[5]
    batches[2]  # another step in between changes nothing
    again, ab_again, _ = batches[5]
    assert torch.equal(x5, again) and torch.equal(ab5, ab_again)
    assert not torch.equal(x5, batches[6][0])


@pytest.mark.slow
def test_eval_dir_checks_the_run_on_its_photos_and_data_dirs_held_out_ones_stay_out(tmp_path):
    cfg = _tiny_run(tmp_path)
    held = write_images(tmp_path / "held", n=5)
    trainer = Trainer(replace(cfg, steps=0, eval_dir=str(held)))
    assert len(trainer.data.held) == 5
    files = TrainingFiles.of(cfg)  # data_dir's held-out photos are still left out of training
    assert files.held and len(trainer.data.photos) == len(files.photos) == len(
        TrainingFiles.of(replace(cfg, eval_dir=str(held))).photos
    )


def test_a_pack_holds_no_held_out_file_stays_in_budget_and_trains_where_there_is_no_shared(tmp_path):
    cfg = _tiny_run(tmp_path)
    files = TrainingFiles.of(cfg)
    assert files.held and files.held_clips  # the tiny set has both, so leaving them out is tested
    out = tmp_path / "pack"
    made = pack(out, cfg, max_mib=0.25)
    assert sum(f.stat().st_size for f in out.rglob("*") if f.parent.name in ("clips", "held", "photos")) <= 0.25 * 2**20
    sources = {name: {Path(e["source"]).name for e in made[name]} for name in ("photos", "held", "clips")}
    assert sources["clips"] and sources["clips"] <= {p.name for p in files.clips}
    assert sources["held"] == {p.name for p in files.held[: cfg.eval_images]}
    assert sources["photos"] and sources["photos"] <= {p.name for p in files.photos}
    assert not sources["photos"] & {p.name for p in files.held}
    assert f"--eval-dir {out.as_posix()}/held" in (out / "run.sh").read_text()
    with pytest.raises(FileExistsError):
        pack(out, cfg)
    run = replace(
        cfg, data_dir=str(out / "photos"), clip_dir=str(out / "clips"), eval_dir=str(out / "held"), steps=1, eval_every=1
    )
    trainer = Trainer(run)
    assert len(trainer.data.held) == len(made["held"]) and trainer.data.spans
    trainer.fit()
    assert (tmp_path / "run" / "best.safetensors").is_file()


def test_clips_read_without_pyav_give_the_same_frames(tmp_path):
    clip = make_video(tmp_path / "c.mp4", frames=5, size=(96, 64), color=True, audio=False)
    with_av, with_cv2 = read_frames(clip, 48, every=2), _read_frames_cv2(clip, 48, every=2)
    assert len(with_av) == len(with_cv2) == 3
    assert all(np.abs(a.astype(int) - b).mean() < 1.0 for a, b in zip(with_av, with_cv2, strict=True))
