"""The training commands, each a thin layer over vidcolor.train's functions:

python -m vidcolor.train fit [--steps N ...]          train, or resume a run (fit.Trainer)
python -m vidcolor.train export CHECKPOINT OUT        a checkpoint's weights as shipped
python -m vidcolor.train average A B OUT              two fine-tuned networks averaged
python -m vidcolor.train open-gate / set-feedback     the release steps that set a record's settings
python -m vidcolor.train lay-out NAME --git-dir PATH  a fetched photo set laid out for training
python -m vidcolor.train quantize [WEIGHTS]            the int8 engine's network, made from the weights
python -m vidcolor.train pack OUT                     a training subset and its command, for a lent GPU
"""

from __future__ import annotations

import random
from pathlib import Path

import typer

from ..record import DecodeConfig, read_feedback
from ..weights import save_model
from .average import average_models
from .calibrate import open_gate_file, set_feedback_file
from .data import list_images, split_images
from .fit import TrainConfig, Trainer, export_checkpoint, run_model_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
d = TrainConfig


@app.command()
def fit(
    data_dir: str = d.data_dir,
    clip_dir: str = d.clip_dir,
    extra_dirs: list[str] = typer.Option([], "--extra-dir", help="a folder of more photos (lay-out); repeat for more"),
    extra_prob: float = typer.Option(d.extra_prob, help="share of the photo samples drawn from the --extra-dir folders"),
    run_dir: str = d.run_dir,
    steps: int = d.steps,
    batch: int = d.batch,
    crop: int = d.crop,
    lr: float = d.lr,
    encoder_lr_scale: float = d.encoder_lr_scale,
    freeze_encoder_steps: int = d.freeze_encoder_steps,
    eval_every: int = d.eval_every,
    device: str = d.device,
    workers: int = typer.Option(d.workers, help="processes that make the batches ahead (the same run for any count)"),
    eval_dir: str = typer.Option(d.eval_dir, help="held-out photos to check the run on (a pack's), not DATA_DIR's split"),
    init: str = "",
    hint_prob: float = d.hint_prob,
    clean_hint_prob: float = d.clean_hint_prob,
    points_prob: float = typer.Option(d.points_prob, help="share of samples hinted with a few clicked points"),
    clip_prob: float = d.clip_prob,
    warmup: int = d.warmup,
    weight_decay: float = d.weight_decay,
    sequence_prob: float = d.sequence_prob,
    sequence_frames: int = d.sequence_frames,
    sequence_chains: int = typer.Option(
        d.sequence_chains, help="samples a batch from chains of frames carried on across steps (instead of windows)"
    ),
    chain_frames: float = typer.Option(d.chain_frames, help="frames a chain runs on average before it starts over"),
    feedback_gain: float = typer.Option(d.feedback_gain, help="the network's own colours are fed back times this"),
    snap_radius: int = typer.Option(d.snap_radius, help="the colours fed back snapped to the frame's edges over this (px)"),
    gray_every: int = typer.Option(d.gray_every, help="every n-th fed-back input of a chain is its gray frame alone"),
    distill: float = typer.Option(d.distill, help="keep the gray inputs' output near the --init weights' by this weight"),
    hint_gate: bool = typer.Option(False, help="add a hint gate to --init weights that have none"),
) -> None:
    """Train (or resume, when RUN_DIR/last.pt exists). Example: python -m vidcolor.train fit --steps 10000
    (--init models/vidcolor-base.safetensors starts a new run from the shipped weights instead of the
    ImageNet encoder). A resumed run keeps the network it was started with."""
    options = dict(locals())  # the parameters above: each a TrainConfig field of the same name, but
    model = run_model_config(Path(run_dir), init, options.pop("hint_gate"))  # a ModelConfig one
    options["extra_dirs"] = tuple(options["extra_dirs"])
    Trainer(TrainConfig(**options, model=model)).fit()


@app.command()
def export(
    checkpoint: Path,
    out: Path,
    temperature: float = DecodeConfig.temperature,
    saturation: float = DecodeConfig.saturation,
    weights: str = typer.Option("ema", help="ema (the moving average of the weights) or model (the last step's own)"),
) -> None:
    """Example: python -m vidcolor.train export runs/r3/last.pt models/vidcolor-base.safetensors --saturation 0.3"""
    export_checkpoint(checkpoint, out, DecodeConfig(temperature=temperature, saturation=saturation), weights)


@app.command()
def average(
    a: Path,
    b: Path,
    out: Path,
    alpha: float = typer.Option(0.5, help="b's share of each weight"),
    temperature: float = DecodeConfig.temperature,
    saturation: float = DecodeConfig.saturation,
) -> None:
    """Average two networks fine-tuned from the same weights; B's network, and B's own weights where A has
    none. Example: python -m vidcolor.train average models/vidcolor-base.safetensors runs/r11.safetensors
    runs/soup.safetensors --alpha 0.5"""
    model = average_models(a, b, alpha)
    save_model(
        model,
        out,
        DecodeConfig(temperature=temperature, saturation=saturation),
        feedback=read_feedback(b),
        training={"average": {"a": str(a), "b": str(b), "alpha": alpha}},
    )


@app.command("open-gate")
def open_gate(
    src: Path,
    out: Path,
    offset: float = typer.Option(..., help="added to both hint gates' logits / 10; shipped: 0.05, and 0.15 --trusted"),
    trusted: bool = typer.Option(False, help="for true colours only (a keyframe's shot), not the network's own fed back"),
) -> None:
    """Open the hint gates of trained weights by OFFSET (vidcolor.train.calibrate); keeps their decoding
    and training record. Example: python -m vidcolor.train open-gate runs/r13.safetensors
    runs/r13-open.safetensors --offset 0.05"""
    open_gate_file(src, out, offset, trusted)


@app.command("set-feedback")
def set_feedback(
    src: Path,
    out: Path,
    feedback: bool | None = typer.Option(None, "--feedback/--no-feedback", help="fed their own colours by default"),
    feedback_gain: float | None = typer.Option(None, help="what their own colours are fed back times; shipped: 0.95"),
    smooth_carried: bool | None = typer.Option(
        None, "--smooth-carried/--no-smooth-carried", help="the colours fed back blended with the past first"
    ),
    gray_every: int | None = typer.Option(None, help="every n-th input that would be fed back is gray alone; 0: never"),
    snap_radius: int | None = typer.Option(None, help="fed-back colours snapped to the frame's edges over this (px); 0: not"),
) -> None:
    """Set the run-time feedback settings in trained weights' record (weights.FeedbackRecord); keeps their
    network, decoding and the rest of their record; unset options keep theirs. Example: python -m
    vidcolor.train set-feedback runs/r15.safetensors runs/r15.safetensors --feedback-gain 0.95 --gray-every 8 --snap-radius 8"""
    given = {
        "feedback": feedback,
        "feedback_gain": feedback_gain,
        "smooth_carried": smooth_carried,
        "gray_every": gray_every,
        "snap_radius": snap_radius,
    }
    now = set_feedback_file(src, out, **{k: v for k, v in given.items() if v is not None})
    typer.echo(f"{out}: {now}")


@app.command("lay-out")
def lay_out_source(
    name: str = typer.Argument(..., help="a photo set of vidcolor.train.sources.SOURCES, e.g. utkface"),
    git_dir: Path = typer.Option(..., help="the repository's snapshot (a bare git directory)"),
    dest: Path = typer.Option(Path("../extra"), help="the folder the set is laid out in, outside the project"),
    reference: Path = typer.Option(Path(TrainConfig.data_dir), help="photos the set must not repeat"),
) -> None:
    """Lay a fetched photo set out as a training folder (vidcolor.train.sources). Example: python -m
    vidcolor.train lay-out utkface --git-dir /work/.mirror/OWNER+NAME/repo --dest ../extra"""
    from .sources import lay_out

    lay_out(name, git_dir, dest, list_images(reference))


@app.command()
def quantize(
    weights: Path = typer.Argument(None, help="the .safetensors; default: the shipped weights"),
    data_dir: Path = typer.Option(Path(TrainConfig.data_dir), help="training photos to calibrate on"),
    count: int = typer.Option(128, help="photos calibrated on, drawn from the training split"),
) -> None:
    """Make WEIGHTS' int8 network for ONNX Runtime (vidcolor/int8.py), calibrated on COUNT training photos
    (never held-out ones), and name it in their record. Example: python -m vidcolor.train quantize"""
    from ..record import default_model_path
    from .quantize import quantize_weights

    path = weights or default_model_path()
    train, _ = split_images(list_images(data_dir), TrainConfig.holdout_permille)
    photos = random.Random(0).sample(train, min(count, len(train)))
    out = quantize_weights(path, photos, f"{len(photos)} training photos of {data_dir.name}, seed 0")
    print(f"wrote {out} and its record in {path.with_suffix('.json').name}")


@app.command("pack")
def pack_command(
    out: Path,
    data_dir: str = d.data_dir,
    clip_dir: str = d.clip_dir,
    max_mib: float = typer.Option(44.0, help="the most the packed files take (a lent GPU takes 64 MiB with the repo)"),
) -> None:
    """Pack the training photos and clips (never held-out ones) and the command that trains on them, for a
    machine without ../shared. Example: python -m vidcolor.train pack runs/pack; then sh runs/pack/run.sh there."""
    from .pack import pack

    try:
        made = pack(out, TrainConfig(data_dir=data_dir, clip_dir=clip_dir), max_mib)
    except FileExistsError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(
        f"{out}: {len(made['photos'])} photos, {len(made['held'])} held-out photos, {len(made['clips'])} clips, "
        f"{made['bytes'] / 2**20:.1f} MiB; on the GPU: sh {out}/run.sh"
    )


def main() -> None:
    app()
