"""Training: mixed gray / hinted inputs, rebalanced soft classification over ab bins + a regression head.

Runs unattended: resumable from `run_dir/last.pt`, logs JSON lines to
`run_dir/log.jsonl`, evaluates on the fixed held-out split, and exports the
EMA weights as safetensors whenever the held-out figures improve.
The same code runs on CUDA (bf16 AMP) or CPU (bf16 autocast where the CPU has native bf16, else fp32).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .augment import archival_look, degrade_hint
from .color import join_lab, rgb_to_lab
from .data import cached, center_crops, list_images, random_crops, split_images
from .evaluate import evaluate_images
from .model import ColorNet, ModelConfig, ResBlock, count_parameters
from .precision import autocast, compute_dtype
from .weights import load_model, read_config, save_model


@dataclass(frozen=True)
class TrainConfig:
    data_dir: str = "../shared/data/train"
    run_dir: str = "runs/base"
    cache_dir: str = "runs/cache"
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 12000
    batch: int = 16
    crop: int = 176
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 300
    ema: float = 0.999
    hint_prob: float = 0.5
    rebalance_lambda: float = 0.5  # Zhang et al.
    soft_sigma: float = 5.0  # soft-encoding Gaussian over the 5 nearest bins
    reg_weight: float = 1.0
    holdout_permille: int = 60
    eval_every: int = 500
    eval_images: int = 160
    ckpt_every: int = 250
    seed: int = 0
    device: str = "auto"
    init: str = ""  # start a new run from these weights (.safetensors), e.g. the shipped model

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        return cls(**d)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def colour_loss(
    logits: torch.Tensor, reg: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """logits (B, Q, h, w), reg (B, 2, h, w), target ab (B, 2, h, w) at the output size."""
    d2, idx = nearest_bins(ab, bins, k=5)
    soft = torch.softmax(-d2 / (2 * cfg.soft_sigma**2), dim=-1)
    target = torch.zeros(logits.shape[0], logits.shape[2], logits.shape[3], logits.shape[1])
    target.scatter_(-1, idx, soft)
    logp = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)
    ce = -(target * logp).sum(-1)  # (B, h, w)
    w = weights[idx[..., 0]]
    cls = (w * ce).mean()
    huber = F.smooth_l1_loss(reg.float() / 10.0, ab / 10.0, beta=1.0)
    return cls + cfg.reg_weight * huber, {"cls": cls.item(), "reg": huber.item()}


def has_nonfinite_statistics(model: torch.nn.Module) -> bool:
    return any(not torch.isfinite(b).all() for n, b in model.named_buffers() if "running_" in n)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Re-estimate every batch norm's running mean and variance as the plain average over
    `batches` (train-mode forwards, no gradients); the weights are untouched."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


def make_inputs(rgb: torch.Tensor, g: torch.Generator, hint_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth rgb (B, 3, H, W) -> (model input RGB, target ab at full size).

    The input lightness gets the archival look; about hint_prob of the samples
    carry a degraded hint of their own colours, the rest are plain gray.
    """
    lab = rgb_to_lab(rgb)
    L = archival_look(lab[:, :1], g)
    hint = degrade_hint(lab[:, 1:], g)
    use = (torch.rand(len(rgb), generator=g) < hint_prob)[:, None, None, None]
    x = join_lab(L, torch.where(use, hint, torch.zeros_like(hint)))
    return x, lab[:, 1:]


def load_deepened(model: ColorNet, state: dict[str, torch.Tensor]) -> list[str]:
    """Load a state dict from a network with the same widths and fewer residual blocks per stage.

    Blocks the file lacks are appended after the existing ones, so every stored
    tensor keeps its name. Their last batch norm's scale and shift are zeroed:
    a block then computes relu(x + 0) = x on its (already non-negative) input,
    so the deepened network starts as exactly the stored one and training only
    adds to it. Returns the new blocks' names; raises if anything else is missing.
    """
    own = model.state_dict()
    if any(k in own and own[k].shape != v.shape for k, v in state.items()):
        raise ValueError("weights do not fit this model: the widths differ (only --blocks may change)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    added = sorted({k.rsplit(".", 3)[0] for k in missing})  # "s8.3.a.conv.weight" -> "s8.3"
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, ResBlock)}
    if unexpected or any(name not in blocks for name in added):
        raise ValueError(f"weights do not fit this model: missing {missing[:4]}, unexpected {unexpected[:4]}")
    with torch.no_grad():
        for name in added:
            blocks[name].b.bn.weight.zero_()
            blocks[name].b.bn.bias.zero_()
    return added


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = compute_dtype(self.device, training=True)
        self.run = Path(cfg.run_dir)
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        torch.manual_seed(cfg.seed)
        paths = list_images(Path(cfg.data_dir))
        if not paths:
            raise FileNotFoundError(f"no images found under {cfg.data_dir}")
        train, held = split_images(paths, cfg.holdout_permille)
        self.log({"event": "data", "train": len(train), "held_out": len(held)})
        self.train_cache = cached(train, Path(cfg.cache_dir), 256)
        held_cache = cached(held, Path(cfg.cache_dir), 256)
        self.held = center_crops(held_cache, 256)[: cfg.eval_images]
        self.model = ColorNet(cfg.model).to(self.device).to(memory_format=torch.channels_last)
        self.ema = ColorNet(cfg.model).to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.best = -math.inf
        self.weights = rebalance_weights(bin_prior(self.train_cache, self.model.bins.cpu(), self.rng), cfg.rebalance_lambda)
        for m in (self.model, self.ema):
            m.class_weights.copy_(self.weights)
        if cfg.init and not (self.run / "last.pt").exists():
            self._init_from(Path(cfg.init))
        self._resume()
        if has_nonfinite_statistics(self.model) or has_nonfinite_statistics(self.ema):
            self._recalibrate()

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
        for key in ("model", "ema"):  # checkpoints from before class_weights was a buffer
            state[key].setdefault("class_weights", self.weights.to(self.device))
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.best = int(state["step"]), float(state["best"])
        self.rng = np.random.default_rng([self.cfg.seed, self.step])
        self.gen.manual_seed(self.cfg.seed + self.step)
        self.log({"event": "resume", "step": self.step})

    def _init_from(self, path: Path) -> None:
        """Warm start: the network's weights from a shipped model; optimizer and schedule start fresh.
        The run's model may have more residual blocks than the file (--blocks): see `load_deepened`."""
        state = load_model(path).state_dict()
        state["class_weights"] = self.weights  # this run's data decides the rebalancing
        added = load_deepened(self.model, state)
        self.ema.load_state_dict(self.model.state_dict())
        self.log({"event": "init", "from": str(path), "new_blocks": added})

    def _recalibrate(self, batches: int = 48) -> None:
        """Weights saved before batch-norm statistics were kept in fp32 can carry an inf running
        variance (fp16 overflow); the EMA's lerp turns it into NaN. Re-estimate them on training inputs."""
        rng, gen = np.random.default_rng([self.cfg.seed, 99]), torch.Generator().manual_seed(99)
        xs = [make_inputs(random_crops(self.train_cache, self.cfg.batch, self.cfg.crop, rng), gen, self.cfg.hint_prob)[0]
              .to(self.device).contiguous(memory_format=torch.channels_last) for _ in range(batches)]
        with autocast(self.device, self.dtype):
            for m in (self.model, self.ema):
                recalibrate_batchnorm(m, xs)
        self.log({"event": "recalibrated_batchnorm", "batches": batches})

    def _checkpoint(self) -> None:
        state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                 "step": self.step, "best": self.best}
        torch.save(state, self.run / "last.pt.tmp")
        (self.run / "last.pt.tmp").replace(self.run / "last.pt")

    def lr_at(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup:
            return c.lr * (step + 1) / c.warmup
        t = min(1.0, (step - c.warmup) / max(1, c.steps - c.warmup))
        return c.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    def train_step(self) -> dict[str, float]:
        c = self.cfg
        rgb = random_crops(self.train_cache, c.batch, c.crop, self.rng)
        x, ab = make_inputs(rgb, self.gen, c.hint_prob)
        ab4 = F.avg_pool2d(ab, 4)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.model.train()
        with autocast(self.device, self.dtype):
            logits, reg = self.model(x)
        loss, parts = colour_loss(logits.cpu(), reg.cpu(), ab4, self.model.bins.cpu(), self.weights, c)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            for pe, pm in zip(self.ema.state_dict().values(), self.model.state_dict().values(), strict=True):
                if pe.is_floating_point():
                    pe.lerp_(pm, 1 - c.ema)
                else:
                    pe.copy_(pm)
        return {"loss": loss.item(), **parts}

    def evaluate(self) -> dict[str, float]:
        figures = evaluate_images(self.ema.cpu(), self.held)
        self.ema.to(self.device)
        return figures

    def fit(self) -> None:
        c = self.cfg
        self.log({"event": "start", "step": self.step, "params": count_parameters(self.model), "dtype": str(self.dtype)})
        t0, acc = time.time(), []
        while self.step < c.steps:
            acc.append(self.train_step())
            self.step += 1
            if self.step % 50 == 0:
                mean = {k: round(float(np.mean([a[k] for a in acc])), 4) for k in acc[0]}
                self.log({"step": self.step, "lr": round(self.lr_at(self.step), 6),
                          "sec_per_step": round((time.time() - t0) / len(acc), 3), **mean})
                t0, acc = time.time(), []
            if self.step % c.ckpt_every == 0:
                self._checkpoint()
            if self.step % c.eval_every == 0 or self.step == c.steps:
                self._eval_and_export()
        self._checkpoint()

    def _eval_and_export(self) -> None:
        fig = self.evaluate()
        self.log({"event": "eval", "step": self.step, **{k: round(v, 3) for k, v in fig.items()}})
        score = fig["psnr_cls"] - fig["psnr_gray"]
        if score > self.best:
            self.best = score
            save_model(self.ema, self.run / "best.safetensors", {"step": self.step, "held_out": fig})
            self.log({"event": "export", "step": self.step, "gain_db": round(score, 3)})
        # Every evaluated step is kept (8 MB each): the shipped one is picked later on the
        # whole colour/PSNR frontier, which one PSNR figure cannot rank.
        save_model(self.ema, self.run / "snapshots" / f"step{self.step:06d}.safetensors", {"step": self.step, "held_out": fig})


def export_checkpoint(checkpoint: Path, out: Path, model_cfg: ModelConfig | None = None, extra: dict | None = None) -> None:
    """Write a checkpoint's EMA weights as safetensors + config (the shippable form).

    model_cfg may change decode-time settings (temperature, prior_correction), not the shapes.
    """
    run = checkpoint.parent
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = ColorNet(model_cfg or cfg.model)
    ema = state["ema"]
    if "class_weights" not in ema:  # older checkpoints: recompute them exactly as training did
        train, _ = split_images(list_images(Path(cfg.data_dir)), cfg.holdout_permille)
        cache = cached(train, Path(cfg.cache_dir), 256)
        prior = bin_prior(cache, model.bins, np.random.default_rng(cfg.seed))
        ema["class_weights"] = rebalance_weights(prior, cfg.rebalance_lambda)
    model.load_state_dict(ema)
    save_model(model.eval(), out, {"step": int(state["step"]), **(extra or {})})


def run_model_config(run_dir: Path, blocks: str = "", init: str = "") -> ModelConfig:
    """The network a run trains: the one RUN_DIR was started with (so resuming needs no repeated options),
    else the one the --init weights were saved with (their JSON config: shape only, decoding stays the
    training default), else the default; --blocks "1,3,3" overrides the depth of any of them."""
    saved = run_dir / "config.json"
    if saved.is_file():
        cfg = TrainConfig.from_dict(json.loads(saved.read_text())).model
    elif init:
        stored = read_config(Path(init))
        cfg = replace(ModelConfig(), widths=stored.widths, blocks=stored.blocks, global_dim=stored.global_dim,
                      bin_grid=stored.bin_grid)
    else:
        cfg = ModelConfig()
    return replace(cfg, blocks=tuple(int(n) for n in blocks.split(","))) if blocks else cfg


def main() -> None:
    """python -m vidcolor.train fit [--steps N ...] | export CHECKPOINT OUT.safetensors"""
    import typer

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def fit(data_dir: str = TrainConfig.data_dir, run_dir: str = TrainConfig.run_dir, steps: int = TrainConfig.steps,
            batch: int = TrainConfig.batch, crop: int = TrainConfig.crop, lr: float = TrainConfig.lr,
            eval_every: int = TrainConfig.eval_every, device: str = TrainConfig.device, init: str = "",
            hint_prob: float = TrainConfig.hint_prob, warmup: int = TrainConfig.warmup,
            weight_decay: float = TrainConfig.weight_decay, blocks: str = "") -> None:
        """Train (or resume, when RUN_DIR/last.pt exists). Example: python -m vidcolor.train fit --steps 10000
        (--init models/vidcolor-base.safetensors starts a new run from the shipped weights and their network;
        add --blocks 1,3,4 to deepen it). Without --blocks a run keeps the network it was started with."""
        model = run_model_config(Path(run_dir), blocks, init)
        Trainer(TrainConfig(data_dir=data_dir, run_dir=run_dir, steps=steps, batch=batch, crop=crop, lr=lr,
                            eval_every=eval_every, device=device, init=init, hint_prob=hint_prob, warmup=warmup,
                            weight_decay=weight_decay, model=model)).fit()

    @app.command()
    def export(checkpoint: Path, out: Path, temperature: float = ModelConfig.temperature,
               prior_correction: float = ModelConfig.prior_correction, colour_weight: float = ModelConfig.colour_weight) -> None:
        """Example: python -m vidcolor.train export runs/base/last.pt models/vidcolor-base.safetensors --temperature 0.7
        --colour-weight 0.04 (a colour weight > 0 chooses the prior correction per image: vidcolor/decoding.py)"""
        cfg = TrainConfig.from_dict(json.loads((checkpoint.parent / "config.json").read_text())).model
        export_checkpoint(checkpoint, out, replace(cfg, temperature=temperature, prior_correction=prior_correction,
                                                   colour_weight=colour_weight))

    app()


if __name__ == "__main__":
    main()
