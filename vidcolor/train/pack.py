"""A training subset packed for a machine without ../shared: a lent GPU takes the repo and 64 MiB beside it.

    python -m vidcolor.train pack runs/pack [--max-mib 44]
    # then, on the GPU, from the repo's root: sh runs/pack/run.sh   (checkpoints and weights under $OUT)

The pack holds the run's own choice of files (fit.TrainingFiles: never a held-out photo or clip, nor a
photo showing a held-out clip):
- clips/  the training clips, as they are (their names keep their split);
- held/   the first `eval_images` held-out photos, re-encoded: the run checks itself on them (--eval-dir);
- photos/ training photos in a seeded random order, short side 256, JPEG, until the budget is spent;
- MANIFEST.json: each packed file's source and the source's sha1; run.sh: the one command for the GPU.
Re-encoding changes a photo's hash, so the pack's photos fall into the held-out buckets by chance: those
(about 6 %) are left out of training there, and never evaluated (--eval-dir names what is).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from .data import file_digest, fit_short_side, read_rgb
from .fit import TrainConfig, TrainingFiles

JPEG_QUALITY = 88
SHORT_SIDE = 256

RUN_SH = """#!/bin/sh
# Train on this pack on a lent GPU, from the repo's root: sh {pack}/run.sh
# Starts from the shipped weights; stops itself (SIGTERM: a checkpoint) after SECONDS_FOR_TRAINING, then copies the
# run's log, its best weights and the last step's EMA weights to $OUT (what comes back from the machine).
set -e
OUT=${{OUT:-runs/gpu-out}}; mkdir -p "$OUT"
RUN=${{RUN:-/tmp/vidcolor-run}}
export PYTHONPATH=$PWD${{PYTHONPATH:+:$PYTHONPATH}} PYTHONUNBUFFERED=1
timeout --foreground -s TERM ${{SECONDS_FOR_TRAINING:-420}} python3 -m vidcolor.train fit --device cuda --workers ${{WORKERS:-12}} \\
  --data-dir {pack}/photos --eval-dir {pack}/held --clip-dir {pack}/clips \\
  --init models/vidcolor-base.safetensors --run-dir "$RUN" {fit_args} "$@" 2>&1 | tee "$OUT/train.log" || true
python3 -m vidcolor.train export "$RUN/last.pt" "$OUT/last-ema.safetensors"
cp "$RUN/log.jsonl" "$RUN/config.json" "$OUT/"
[ -f "$RUN/best.safetensors" ] && cp "$RUN/best.safetensors" "$RUN/best.json" "$OUT/" || true
"""
# The shipped recipe at a GPU's batch; more steps than 7 minutes allow, so
# SECONDS_FOR_TRAINING decides where it stops.
FIT_ARGS = (
    "--steps 20000 --batch 64 --crop 224 --lr 1.2e-4 --warmup 200 --freeze-encoder-steps 0 --eval-every 500 "
    "--hint-prob 0.25 --points-prob 0.3 --clean-hint-prob 0.5 --sequence-chains 12 --chain-frames 80 "
    "--snap-radius 8 --gray-every 8"
)


def pack(out: Path, cfg: TrainConfig, max_mib: float = 44.0, seed: int = 0) -> dict:
    """Write the pack to `out` (a new folder); -> its manifest. max_mib bounds the files written."""
    if out.exists():
        raise FileExistsError(f"{out} exists: remove it or name another folder")
    files = TrainingFiles.of(cfg)
    budget = int(max_mib * 2**20)
    manifest: dict = {"clips": [], "held": [], "photos": [], "jpeg_quality": JPEG_QUALITY, "short_side": SHORT_SIDE}
    for sub in ("clips", "held", "photos"):
        (out / sub).mkdir(parents=True)
    for clip in files.clips:
        if budget - clip.stat().st_size < 0:
            break
        shutil.copyfile(clip, out / "clips" / clip.name)
        budget -= clip.stat().st_size
        manifest["clips"].append({"file": clip.name, "source": str(clip), "sha1": file_digest(clip)})
    for sub, paths in (("held", files.held[: cfg.eval_images]), ("photos", _shuffled(files.photos, seed))):
        for i, src in enumerate(paths):
            img = fit_short_side(read_rgb(src), SHORT_SIDE)
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok or len(jpg) > budget:
                break
            name = f"{i:05d}.jpg"
            (out / sub / name).write_bytes(jpg.tobytes())
            budget -= len(jpg)
            manifest[sub].append({"file": name, "source": str(src), "sha1": file_digest(src)})
    manifest["bytes"] = int(max_mib * 2**20) - budget
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "run.sh").write_text(RUN_SH.format(pack=out.as_posix(), fit_args=FIT_ARGS))
    return manifest


def _shuffled(paths: list[Path], seed: int) -> list[Path]:
    order = np.random.default_rng(seed).permutation(len(paths))
    return [paths[i] for i in order]
