"""Training: mixed gray / hinted inputs, rebalanced soft classification over ab bins + a regression head.

Runs unattended: resumable from `run_dir/last.pt`, logs JSON lines to
`run_dir/log.jsonl`, evaluates on the fixed held-out split, and exports the
EMA weights as safetensors whenever the held-out figures improve.
The same code runs on CUDA (bf16 AMP) or CPU (bf16 autocast where the CPU has native bf16, else fp32).
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..color import gray_to_lightness_lut
from ..flow import make_dis
from ..hints import point_hint
from ..lab import join_lab, rgb_to_lab
from ..model import ColorNet, count_parameters
from ..precision import autocast, compute_dtype, pick_device
from ..record import DecodeConfig, FeedbackRecord, ModelConfig, read_configs
from ..temporal import TemporalOptions
from ..weights import save_model
from .augment import archival_look, degrade_hint, sparse_points
from .clips import clip_cache, list_clips, overlapping_photos, split_clips
from .data import ImageCache, cached, center_crops, list_images, random_crops, split_images
from .evaluate import evaluate_images
from .sequences import Chains, sequence_samples, window_crops


@dataclass(frozen=True)
class TrainConfig:
    data_dir: str = "../shared/data/train"
    clip_dir: str = "../shared/data/clips"
    # Folders of more photos laid out by `lay-out` (train.sources), held out by hash as data_dir is; their
    # held-out photos are not trained on, and the run evaluates on data_dir's alone, as every run before.
    extra_dirs: tuple[str, ...] = ()
    extra_prob: float = 0.3  # share of the photo samples drawn from extra_dirs
    # The encoder's ImageNet weights (train.pretrained); "" leaves it randomly initialized (tests).
    pretrained: str = "../shared/pretrained/mobilenet_v2_1.0_224_quant.tflite"
    run_dir: str = "runs/mnv2"
    cache_dir: str = "runs/cache"
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 2500
    batch: int = 16
    crop: int = 192  # a multiple of ColorNet.multiple
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1  # stage 2: the pretrained encoder learns at lr x this
    freeze_encoder_steps: int = 800  # stage 1: the encoder stays as pretrained while the decoder learns
    weight_decay: float = 1e-4
    warmup: int = 300
    ema: float = 0.999
    hint_prob: float = 0.4
    # Share of samples whose input holds a few clicked points of their own colours (augment.sparse_points),
    # so that one click colours the region it lands on.
    points_prob: float = 0.0
    clean_hint_prob: float = 0.0  # share of the hints that are only warped and holed (augment.degrade_hint)
    clip_prob: float = 0.3  # share of samples that are frames of the training clips, not photos
    # Share of samples whose input carries the network's own colours of the previous frame(s), warped by
    # flow (train.sequences); windows of 2..sequence_frames frames, every 1..sequence_skip-th frame.
    sequence_prob: float = 0.25
    sequence_frames: int = 3
    sequence_skip: int = 3
    # Samples of each batch (in place of the windows above) from chains carried on across steps
    # (train.sequences.Chains): the network's own colours after tens of frames of its loop, as over a long
    # shot at run time. A chain starts over with chance 1/chain_frames a step; a resumed run starts them
    # over (they are not checkpointed).
    sequence_chains: int = 0
    chain_frames: float = 40.0
    # The network's own colours are fed back times this in the sequence samples, as at run time
    # (temporal.TemporalOptions.feedback_gain); written into every record the run saves, for the run time.
    feedback_gain: float = 0.95
    # The colours fed back in the sequence samples are snapped to the frame's edges over this many px, as at
    # run time (TemporalOptions.snap_radius); 0: not. Written into the record beside the gain.
    snap_radius: int = 0
    # Every n-th fed-back input of a chain is its gray frame alone, as at run time (TemporalOptions.gray_every),
    # so the chains see the restarts the run time makes; 0: none. Written into the record beside the gain.
    gray_every: int = 0
    # Weight of a loss that keeps the network's output on gray inputs near the --init weights' (learning
    # without forgetting, Li & Hoiem 2016): chains teach trusting fed-back colours through the same weights
    # that colour a gray frame, and without this loss they cost the per-frame output a little
    # (docs/experiments.md). 0: none.
    distill: float = 0.0
    rebalance_lambda: float = 0.5  # Zhang et al.
    soft_sigma: float = 5.0  # soft-encoding Gaussian over the 5 nearest bins
    reg_weight: float = 1.0
    holdout_permille: int = 60  # photos held out by content hash
    clip_holdout_permille: int = 120  # clips held out by name
    eval_every: int = 500
    eval_images: int = 160
    eval_size: int = 256  # held-out photos are centre crops of this size (benchmarks/quality.py: 256)
    prior_samples: int = 512  # random crops the colour prior behind the class rebalancing is counted on
    ckpt_every: int = 250
    seed: int = 0
    device: str = "auto"
    # Processes that make the batches ahead (torch's DataLoader): a batch depends on the seed and its step
    # alone, so any count trains the same run. 0: the training process makes them between steps.
    workers: int = 0
    # A folder of held-out photos the run checks itself on instead of data_dir's held-out split (a pack's:
    # re-encoded, so their hashes no longer say they are held out). data_dir's split is left out either way.
    eval_dir: str = ""
    init: str = ""  # start a new run from these weights (.safetensors) instead of the pretrained encoder

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        d["extra_dirs"] = tuple(d.get("extra_dirs", ()))
        for gone in ("consistency", "consistency_pairs", "consistency_gap"):  # removed experiments' fields
            d.pop(gone, None)
        return cls(**d)


def bin_prior(cache, bins: torch.Tensor, rng: np.random.Generator, samples: int = 512) -> torch.Tensor:
    """Empirical distribution of nearest ab bins over random training crops, Gaussian-smoothed: (Q,)."""
    counts = torch.zeros(len(bins))
    for _ in range(samples // 32):
        ab = rgb_to_lab(random_crops(cache, 32, 64, rng))[:, 1:]
        idx = nearest_bins(ab, bins, k=1)[1].flatten()
        counts += torch.bincount(idx, minlength=len(bins)).float()
    p = counts / counts.sum()
    d2 = torch.cdist(bins, bins) ** 2
    smooth = torch.exp(-d2 / (2 * 5.0**2))
    p = smooth @ p
    return p / p.sum()


def rebalance_weights(prior: torch.Tensor, lam: float) -> torch.Tensor:
    """Zhang et al. eq. 4: w ∝ ((1-λ) p + λ/Q)^-1, normalized so that E_p[w] = 1."""
    w = 1.0 / ((1 - lam) * prior + lam / len(prior))
    return w / (prior * w).sum()


def nearest_bins(ab: torch.Tensor, bins: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ab (B, 2, h, w) -> squared distances and indices of the k nearest bins, each (B, h, w, k)."""
    flat = ab.permute(0, 2, 3, 1)
    d2 = ((flat[..., None, :] - bins) ** 2).sum(-1)  # (B, h, w, Q)
    return torch.topk(d2, k, dim=-1, largest=False)


def color_loss(
    logits: torch.Tensor, reg: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """logits (B, Q, h, w), reg (B, 2, h, w), target ab (B, 2, h, w) at the output size."""
    d2, idx = nearest_bins(ab, bins, k=5)
    soft = torch.softmax(-d2 / (2 * cfg.soft_sigma**2), dim=-1)
    target = torch.zeros(logits.shape[0], logits.shape[2], logits.shape[3], logits.shape[1], device=logits.device)
    target.scatter_(-1, idx, soft)
    logp = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)
    ce = -(target * logp).sum(-1)  # (B, h, w)
    w = weights[idx[..., 0]]
    cls = (w * ce).mean()
    huber = F.smooth_l1_loss(reg.float() / 10.0, ab / 10.0, beta=1.0)
    return cls + cfg.reg_weight * huber, {"cls": cls.item(), "reg": huber.item()}


def make_inputs(
    rgb: torch.Tensor, g: torch.Generator, hint_prob: float, clean_hint_prob: float = 0.0, points_prob: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth rgb (B, 3, H, W) -> (model input RGB, target ab at full size).

    The input lightness gets the archival look; about hint_prob of the samples carry a degraded dense hint of
    their own colours, about points_prob a few clicked points of them (augment.sparse_points) spread over
    their regions as the run time spreads a user's (hints.point_hint), the rest are plain gray.
    """
    lab = rgb_to_lab(rgb)
    L = archival_look(lab[:, :1], g)
    hint = degrade_hint(lab[:, 1:], g, clean=clean_hint_prob)
    pick = torch.rand(len(rgb), generator=g)[:, None, None, None]
    points = point_hint(sparse_points(lab[:, 1:], g), lab[:, :1]) if points_prob else torch.zeros_like(hint)
    hint = torch.where(pick < hint_prob, hint, torch.where(pick < hint_prob + points_prob, points, torch.zeros_like(hint)))
    return join_lab(L, hint), lab[:, 1:]


@dataclass(frozen=True)
class TrainingFiles:
    """Which files a run trains on and which it holds out (by photo hash and clip name)."""

    photos: list[Path]  # data_dir's training photos, without the ones that show a held-out clip
    held: list[Path]  # data_dir's held-out photos
    clips: list[Path]  # the training clips
    held_clips: list[Path]
    extra: list[Path]  # extra_dirs' training photos
    leaked: int  # photos left out because they show a held-out clip
    extra_held: int

    @classmethod
    def of(cls, cfg: TrainConfig) -> TrainingFiles:
        photos, held = split_images(list_images(Path(cfg.data_dir)), cfg.holdout_permille)
        clips = list_clips(Path(cfg.clip_dir)) if Path(cfg.clip_dir).is_dir() else []
        train_clips, held_clips = split_clips(clips, cfg.clip_holdout_permille)
        leaked = set(overlapping_photos(photos, held_clips)) if held_clips else set()
        extra, extra_held = split_images([p for d in cfg.extra_dirs for p in list_images(Path(d))], cfg.holdout_permille)
        kept = [p for p in photos if p not in leaked]
        return cls(kept, held, train_clips, held_clips, extra, len(leaked), len(extra_held))


class TrainingData:
    """The training photos and clip frames (held-out photos, clips and the photos showing held-out clips
    excluded), decoded once into caches; and the held-out images the run evaluates on."""

    def __init__(self, cfg: TrainConfig, log):
        files = TrainingFiles.of(cfg)
        photos, held, train_clips, extra = files.photos, files.held, files.clips, files.extra
        log(
            {
                "event": "data",
                "photos": len(photos),
                "held_out_photos": len(held),  # data_dir's, left out of training
                "eval_photos": cfg.eval_dir or "held_out_photos",  # what the run checks itself on
                "clips": len(train_clips),
                "held_out_clips": [p.stem for p in files.held_clips],
                "photos_of_held_out_clips": files.leaked,
                "extra_photos": len(extra),
                "extra_held_out": files.extra_held,
            }
        )
        if not photos:
            raise FileNotFoundError(f"no images found under {cfg.data_dir}")
        self.photos = cached(photos, Path(cfg.cache_dir), 256)
        self.extra = cached(extra, Path(cfg.cache_dir), 256) if extra else None
        self.extra_prob = cfg.extra_prob if extra else 0.0
        self.frames: ImageCache | None = None
        self.spans: list[tuple[str, int, int]] = []
        if train_clips:
            self.frames, self.spans = clip_cache(train_clips, Path(cfg.cache_dir))
        if cfg.eval_dir:
            held = list_images(Path(cfg.eval_dir))
            if not held:
                raise FileNotFoundError(f"no images found under {cfg.eval_dir}")
        self.held = center_crops(cached(held, Path(cfg.cache_dir), 256), cfg.eval_size)[: cfg.eval_images]
        self.clip_prob = cfg.clip_prob if self.frames is not None else 0.0

    def batch(self, n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        """(n, 3, size, size) in [0, 1]: random crops, about clip_prob of them from clip frames and
        extra_prob of the rest from the extra photos."""
        k = int(rng.binomial(n, self.clip_prob))
        e = int(rng.binomial(n - k, self.extra_prob)) if self.extra is not None else 0
        parts = [random_crops(self.photos, n - k - e, size, rng)]
        if e:
            parts.append(random_crops(self.extra, e, size, rng))
        if k:
            parts.append(random_crops(self.frames, k, size, rng))
        return torch.cat(parts)


class Batches(torch.utils.data.Dataset):
    """Batch `step` of a run, made from the seed and the step alone (so worker processes can make them ahead
    in any number): the input and target ab of its photo and clip-frame samples (make_inputs), and the
    windows of clip frames its sequence samples start from (None when it has none, or when the run's chains
    supply them: those need the network, in the training process)."""

    def __init__(self, data: TrainingData, cfg: TrainConfig):
        self.data, self.cfg = data, cfg

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
        c, data = self.cfg, self.data
        rng = np.random.default_rng([c.seed, step])
        gen = torch.Generator().manual_seed(c.seed * 1_000_003 + step)
        if c.sequence_chains and data.spans:
            k = c.sequence_chains
        else:
            k = int(rng.binomial(c.batch, c.sequence_prob)) if data.spans and c.sequence_frames > 1 else 0
        x, ab = make_inputs(data.batch(c.batch - k, c.crop, rng), gen, c.hint_prob, c.clean_hint_prob, c.points_prob)
        windows = None
        if k and not c.sequence_chains:
            frames = int(rng.integers(2, c.sequence_frames + 1))
            windows = window_crops(data.frames, data.spans, k, frames, c.crop, rng, c.sequence_skip)
        return x, ab, windows


def _as_made(batch: tuple) -> tuple:
    return batch


def _quiet_worker(_: int) -> None:
    """A batch worker computes on one thread: several of them share the cores with the training process.
    (OpenCV needs nothing: it runs serially in a forked process, and cv2.setNumThreads hangs there.)"""
    torch.set_num_threads(1)


def new_model(cfg: TrainConfig) -> ColorNet:
    """A new network whose encoder holds the ImageNet MobileNetV2 weights (unless cfg.pretrained is "")."""
    model = ColorNet(cfg.model)
    if cfg.pretrained:
        from .pretrained import load_mobilenet_v2

        model.encoder.load_state_dict(load_mobilenet_v2(Path(cfg.pretrained)).state_dict())
    return model


def init_model(path: Path, cfg: ModelConfig) -> ColorNet:
    """A network of shape cfg holding the weights at path; a part those weights lack (a hint gate added to
    shipped weights) keeps its initialization, under which a gray input's output is as it was."""
    model = ColorNet(cfg)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("hint.") for k in missing):
        raise ValueError(f"{path} does not fit the network {cfg}: missing {missing}, unexpected {unexpected}")
    return model


class Trainer:
    def __init__(self, cfg: TrainConfig):
        if cfg.sequence_chains > cfg.batch:
            raise ValueError(f"sequence_chains ({cfg.sequence_chains}) must not exceed the batch ({cfg.batch})")
        self.cfg = cfg
        self.device = torch.device(pick_device(cfg.device))
        self.dtype = compute_dtype(self.device, training=True)
        self.run = Path(cfg.run_dir)
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        torch.manual_seed(cfg.seed)
        self.data = TrainingData(cfg, self.log)
        self.model = (init_model(Path(cfg.init), cfg.model) if cfg.init else new_model(cfg)).train()
        self.model = self.model.to(self.device).to(memory_format=torch.channels_last)
        self.ema = ColorNet(cfg.model).to(self.device)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        # The run time's options for the fed-back colours of the sequence samples: made once, not every step.
        self.temporal = TemporalOptions(feedback_gain=cfg.feedback_gain, snap_radius=cfg.snap_radius, gray_every=cfg.gray_every)
        self.dis = make_dis(self.temporal.flow_preset)
        self.chains = (
            Chains(self.data.frames, self.data.spans, cfg.sequence_chains, cfg.crop, cfg.chain_frames, cfg.sequence_skip)
            if self.data.spans and cfg.sequence_chains
            else None
        )
        self.lut = gray_to_lightness_lut()
        self.step = 0
        self.best = -math.inf
        self.weights = rebalance_weights(  # on the device once, not copied there every step
            bin_prior(self.data.photos, self.model.colors.bins.cpu(), self.rng, cfg.prior_samples), cfg.rebalance_lambda
        ).to(self.device)
        self.model.colors.class_weights.copy_(self.weights)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.teacher = self._teacher()
        encoder = list(self.model.encoder.parameters())
        ids = {id(p) for p in encoder}
        self.opt = torch.optim.AdamW(
            [
                {"params": [p for p in self.model.parameters() if id(p) not in ids], "lr_scale": 1.0},
                {"params": encoder, "lr_scale": cfg.encoder_lr_scale},
            ],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        self._resume()

    def _teacher(self) -> ColorNet | None:
        """The --init network, frozen, which the gray samples' output is kept near (cfg.distill). Read from
        cfg.init at every start, a resumed run's too: a run that starts from the shipped weights distills
        toward whatever they are when it resumes, so start it from a copy that stays put."""
        if not self.cfg.distill:
            return None
        if not self.cfg.init:
            raise ValueError("distill needs --init weights to keep the output near")
        teacher = init_model(Path(self.cfg.init), self.cfg.model).to(self.device).eval()
        return teacher.requires_grad_(False)

    def log(self, rec: dict) -> None:
        rec = {"time": round(time.time(), 1), **rec}
        with open(self.run / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)

    def _resume(self) -> None:
        ckpt = self.run / "last.pt"
        if not ckpt.exists():
            return
        state = torch.load(ckpt, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.best = int(state["step"]), float(state["best"])
        self.rng = np.random.default_rng([self.cfg.seed, self.step])
        self.gen.manual_seed(self.cfg.seed + self.step)
        self.log({"event": "resume", "step": self.step})

    def _checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "best": self.best,
        }
        torch.save(state, self.run / "last.pt.tmp")
        (self.run / "last.pt.tmp").replace(self.run / "last.pt")

    def frozen(self) -> bool:
        """Stage 1 (the first freeze_encoder_steps): only the decoder learns."""
        return self.step < self.cfg.freeze_encoder_steps

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray | None]]:
        """Batches.__getitem__ for each step from this one to cfg.steps, made ahead by cfg.workers processes."""
        loader = torch.utils.data.DataLoader(
            Batches(self.data, self.cfg),
            batch_size=None,
            sampler=range(self.step, self.cfg.steps),
            num_workers=self.cfg.workers,
            worker_init_fn=_quiet_worker if self.cfg.workers else None,
            collate_fn=_as_made,  # not default_convert: the windows stay numpy for sequence_samples
            pin_memory=self.device.type == "cuda",
        )
        return iter(loader)

    def inputs(
        self, made: tuple[torch.Tensor, torch.Tensor, np.ndarray | None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: (model input (B, 3, crop, crop) RGB in [0, 1], target ab (B, 2, crop, crop)); `made`:
        Batches' part of it for this step (None: made here)."""
        x, ab, windows = made if made is not None else Batches(self.data, self.cfg)[self.step]
        if self.chains is not None:
            xs, abs_ = self.chains.samples(self._predict, self.dis, self.lut, self.temporal, self.rng, self.gen)
        elif windows is not None:
            xs, abs_ = sequence_samples(windows, self._predict, self.dis, self.lut, self.temporal, self.gen)
        else:
            return x, ab
        return torch.cat((x, xs)), torch.cat((ab, abs_))

    @torch.no_grad()
    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) float32 in [0, 1] -> ab (B, H, W, 2): the EMA network's regression head, the colours
        the pipeline feeds back (temporal.Predict, train.sequences)."""
        self.ema.eval()
        x = torch.from_numpy(rgb).permute(0, 3, 1, 2).to(self.device)
        with autocast(self.device, self.dtype):
            _, _, ab = self.ema.colorize_ab(x, DecodeConfig())
        ab = F.interpolate(ab.float(), size=rgb.shape[1:3], mode="bilinear", align_corners=False)
        return ab.permute(0, 2, 3, 1).cpu().numpy()

    def train_step(self, made: tuple[torch.Tensor, torch.Tensor, np.ndarray | None] | None = None) -> dict[str, float]:
        c = self.cfg
        x, ab = self.inputs(made)
        ab4 = F.avg_pool2d(ab, 4).to(self.device, non_blocking=True)
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(c, self.step) * group["lr_scale"]
        self.model.train()
        self.model.encoder.requires_grad_(not self.frozen())
        with autocast(self.device, self.dtype):
            with torch.set_grad_enabled(not self.frozen()):
                feats = self.model.encode(x)
            logits, reg, _ = self.model.head(feats, x)
        loss, parts = color_loss(logits, reg, ab4, self.model.colors.bins, self.weights, c)
        if self.teacher is not None:
            kept = distill_loss(self.teacher, x, logits, reg, self.dtype)
            loss = loss + c.distill * kept
            parts["distill"] = kept.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        ema_update(self.ema, self.model, c.ema)
        return {"loss": loss.item(), **parts}

    def evaluate(self) -> dict[str, float]:
        figures = evaluate_images(self.ema.cpu(), self.data.held, DecodeConfig(), points=(5, 20))
        self.ema.to(self.device)
        return figures

    def fit(self) -> None:
        """Train to cfg.steps. SIGTERM, SIGHUP or Ctrl-C (a session ending, a kill) finishes the step under way,
        writes last.pt and returns, so a resumed run loses nothing; SIGKILL loses the steps since the last
        checkpoint (every ckpt_every)."""
        with _stop_requests() as stop:
            self._fit(stop)
        self._checkpoint()
        if stop:
            self.log({"event": "stopped", "step": self.step, "signal": stop[0]})

    def _fit(self, stop: list[int]) -> None:
        c = self.cfg
        self.log({"event": "start", "step": self.step, "params": count_parameters(self.model), "dtype": str(self.dtype)})
        t0, acc = time.time(), []
        batches = self.batches()
        while self.step < c.steps and not stop:
            acc.append(self.train_step(next(batches)))
            self.step += 1
            if self.step % 50 == 0:
                mean = {k: round(float(np.mean([a[k] for a in acc])), 4) for k in acc[0]}
                self.log(
                    {
                        "step": self.step,
                        "lr": round(lr_at(c, self.step), 6),
                        "frozen": self.frozen(),
                        "sec_per_step": round((time.time() - t0) / len(acc), 3),
                        **mean,
                    }
                )
                t0, acc = time.time(), []
            if self.step % c.ckpt_every == 0:
                self._checkpoint()
            if self.step % c.eval_every == 0 or self.step == c.steps:
                self._eval_and_export()

    def _eval_and_export(self) -> None:
        fig = self.evaluate()
        self.log({"event": "eval", "step": self.step, **{k: round(v, 3) for k, v in fig.items()}})
        score, record = fig["psnr_cls"] - fig["psnr_gray"], {"step": self.step, "held_out": fig}  # where it came from
        if score > self.best:
            self.best = score
            save_model(self.ema, self.run / "best.safetensors", feedback=feedback_record(self.cfg), training=record)
            self.log({"event": "export", "step": self.step, "gain_db": round(score, 3)})
        # Every evaluated step is kept: the shipped one is picked later on the whole colour/PSNR
        # frontier, which one PSNR figure cannot rank.
        snapshot = self.run / "snapshots" / f"step{self.step:06d}.safetensors"
        save_model(self.ema, snapshot, feedback=feedback_record(self.cfg), training=record)


def lr_at(c: TrainConfig, step: int) -> float:
    """Linear warm-up, then a cosine down to 5 % of cfg.lr at cfg.steps."""
    if step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    t = min(1.0, (step - c.warmup) / max(1, c.steps - c.warmup))
    return c.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def ema_update(ema: ColorNet, model: ColorNet, decay: float) -> None:
    """ema's weights move 1 - decay of the way to model's; its integer buffers (counts) are copied."""
    for pe, pm in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if pe.is_floating_point():
            pe.lerp_(pm, 1 - decay)
        else:
            pe.copy_(pm)


def distill_loss(
    teacher: ColorNet, x: torch.Tensor, logits: torch.Tensor, reg: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """KL(teacher || network) of the class output plus the regression's Huber distance (in 10 Lab units),
    over the gray samples of the batch: x (B, 3, H, W) RGB in [0, 1], logits (B, Q, h, w), reg (B, 2, h, w);
    the teacher runs in `dtype`, as the network does."""
    gray = (x.amax(1) - x.amin(1)).flatten(1).amax(1) < 1e-3  # R = G = B: no colours in the input
    if not gray.any():
        return torch.zeros((), device=x.device)
    with torch.no_grad(), autocast(x.device, dtype):
        t_logits, t_reg, _ = teacher.head(teacher.encode(x[gray]), x[gray])
    t_logp = torch.log_softmax(t_logits.float(), dim=1)
    logp = torch.log_softmax(logits[gray].float(), dim=1)
    kl = (t_logp.exp() * (t_logp - logp)).sum(1).mean()
    return kl + F.smooth_l1_loss(reg[gray].float() / 10.0, t_reg.float() / 10.0, beta=1.0)


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """A list that receives the number of each stop signal (SIGTERM, SIGHUP, SIGINT) while inside; the
    handlers before are put back on leaving. Only the main thread may set handlers: elsewhere, none."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def on_signal(number: int, _frame: object) -> None:
        if caught:  # a second Ctrl-C: stop now, as before
            raise KeyboardInterrupt
        caught.append(number)

    before = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield caught
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def feedback_record(cfg: TrainConfig) -> FeedbackRecord:
    """The run-time feedback settings a run's weights are saved with (weights.FeedbackRecord): trained on
    chains of their own colours, unblended, they are fed them back by default, unblended and snapped to the
    frame's edges as the chains were."""
    chains = cfg.sequence_chains > 0
    return FeedbackRecord(
        feedback=chains,
        feedback_gain=cfg.feedback_gain,
        smooth_carried=not chains,
        snap_radius=cfg.snap_radius,
        gray_every=cfg.gray_every,
    )


def export_checkpoint(checkpoint: Path, out: Path, decode: DecodeConfig, weights: str = "ema", extra: dict | None = None) -> None:
    """Write a checkpoint's weights ("ema", or "model": the last step's own) as safetensors + configs (the
    shippable form), with this decoding."""
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be ema or model, got {weights!r}")
    cfg = TrainConfig.from_dict(json.loads((checkpoint.parent / "config.json").read_text()))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = ColorNet(cfg.model)
    model.load_state_dict(state[weights])
    training = {"step": int(state["step"]), "weights": weights, **(extra or {})}
    save_model(model.eval(), out, decode, feedback=feedback_record(cfg), training=training)


def run_model_config(run_dir: Path, init: str = "", hint_gate: bool = False) -> ModelConfig:
    """The network a run trains: the one RUN_DIR was started with (so resuming needs no repeated options),
    else the one the --init weights were saved with (plus a hint gate if asked), else the
    default."""
    saved = run_dir / "config.json"
    if saved.is_file():
        return TrainConfig.from_dict(json.loads(saved.read_text())).model
    base = read_configs(Path(init))[0] if init else ModelConfig()
    return replace(base, hint_gate=True) if hint_gate else base
