"""Temporal figures: the default (temporal) mode vs --no-temporal vs the ground truth on colour clips.

    python benchmarks/temporal.py                        # every clip of ../shared/data/videos
    python benchmarks/temporal.py --held-out-clips       # also the training clips held out of training
    python benchmarks/temporal.py CLIP [CLIP ...] --smoothing 0.5 --no-feedback --json out.json

Per clip and on the mean (of the dev clips, the held-out clips and all): PSNR,
colorfulness, warp error (Lai et al.), CDC (Liu et al.), each on RGB and on Lab
ab alone (the output's lightness is the source's, so RGB figures have a floor
only the truth's lightness sets), the truth's own values beside them, the ratios
issue 14's bars ask for, the cut check (first frame after each cut: temporal vs
per-frame PSNR) and the colorfulness of the first and last second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vidcolor.inference import ENGINES
from vidcolor.pipeline import ColorizeOptions
from vidcolor.temporal import TemporalOptions
from vidcolor.train.clipeval import add_record_overrides, evaluate_clip, record_overrides
from vidcolor.train.clips import list_clips, split_clips
from vidcolor.train.fit import TrainConfig

# gray = the truth's lightness with no colour: the floor that luminance alone sets for
# warp error and CDC (the output's luminance is the source's own in every mode).
MODES = ("temporal", "single", "truth", "gray")
DEFAULT_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
TRAIN_CLIPS = DEFAULT_CLIPS.parent / "clips"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--smoothing", type=float, default=TemporalOptions().smoothing)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--engine", default="auto", choices=ENGINES, help="vidcolor's --engine")
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--flow-preset", default=TemporalOptions().flow_preset, choices=["ultrafast", "fast", "medium"])
    add_record_overrides(ap)
    ap.add_argument(
        "--feedback-lag",
        type=int,
        default=TemporalOptions().feedback_lag,
        choices=[1, 2],
        help="feed back frame t-1's or t-2's output",
    )
    ap.add_argument(
        "--anchor",
        type=float,
        default=TemporalOptions().anchor,
        help="how much of the drift each gray input measures is taken off later fed-back predictions (0: none)",
    )
    ap.add_argument(
        "--look-ahead",
        type=int,
        default=TemporalOptions().look_ahead,
        help="frames after each frame whose colours it also takes, carried back along the motion (0: none)",
    )
    ap.add_argument(
        "--no-confidence", action="store_true", help="blend by flow reliability alone, ignoring the model's confidence"
    )
    ap.add_argument("--held-out-clips", action="store_true", help="also the clips training leaves out of ../shared/data/clips")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", action="store_true", help="also print the README's table")
    args = ap.parse_args()
    clips = args.clips or sorted(DEFAULT_CLIPS.glob("*.mp4"))
    held = []
    if args.held_out_clips:
        _, held_paths = split_clips(list_clips(TRAIN_CLIPS), TrainConfig.clip_holdout_permille)
        held = [p.name for p in held_paths]
        clips = clips + held_paths
    if not clips:
        sys.exit(f"no clips given and none in {DEFAULT_CLIPS}")
    opts = ColorizeOptions(
        model=args.model,
        engine=args.engine,
        temperature=args.temperature,
        temporal_options=TemporalOptions(
            smoothing=args.smoothing,
            flow_preset=args.flow_preset,
            feedback_lag=args.feedback_lag,
            anchor=args.anchor,
            look_ahead=args.look_ahead,
            **record_overrides(args),
            use_confidence=not args.no_confidence,
        ),
    )
    results = {}
    head = f"{'clip':32s} {'mode':9s} {'PSNR':>6s} {'colour':>7s} {'warp_err':>9s} {'CDC':>8s} {'ab_warp':>8s} {'ab_CDC':>8s}"
    print(head)
    for clip in clips:
        r = evaluate_clip(clip, opts)
        results[clip.name] = r
        for mode in MODES:
            f = r[mode]
            print(
                f"{clip.stem[:32]:32s} {mode:9s} {f['psnr']:6.2f} {f['colorfulness']:7.2f} {f['warp_error'] * 1e3:9.3f} "
                f"{f['cdc'] * 1e3:8.3f} {f['chroma_warp_error']:8.3f} {f['chroma_cdc'] * 1e3:8.3f}"
            )
        t, s, g = r["temporal"], r["single"], r["truth"]
        print(
            f"  floor: warp gray/s {r['gray']['warp_error'] / s['warp_error']:.3f}  truth/s {g['warp_error'] / s['warp_error']:.3f}  "
            f"CDC gray/s {r['gray']['cdc'] / s['cdc']:.3f}  truth/s {g['cdc'] / s['cdc']:.3f}"
        )
        print(
            f"  ratios: warp t/s {t['warp_error'] / s['warp_error']:.3f}  t/truth {t['warp_error'] / max(g['warp_error'], 1e-12):.3f}  "
            f"CDC t/s {t['cdc'] / s['cdc']:.3f}  dPSNR {t['psnr'] - s['psnr']:+.2f}  colour t/s {t['colorfulness'] / s['colorfulness']:.3f}  "
            f"ab_warp t/s {t['chroma_warp_error'] / s['chroma_warp_error']:.3f}  ab_CDC t/s {t['chroma_cdc'] / s['chroma_cdc']:.3f}"
        )
        for c in r["cuts"]:
            print(f"  cut at frame {c['frame']}: PSNR temporal {c['psnr_temporal']:.2f} vs per-frame {c['psnr_single']:.2f}")
        a, b = r["colorfulness_first_last_second"]
        print(f"  colorfulness first/last second: {a:.2f} / {b:.2f} ({(b - a) / max(a, 1e-9) * 100:+.1f} %)")
    groups = {"all": results}
    if held:
        groups = {
            "dev clips": {k: v for k, v in results.items() if k not in held},
            "held-out clips": {k: results[k] for k in held},
            **groups,
        }
    totals = {name: summarize(name, group) for name, group in groups.items() if group}
    total = totals["all"]
    if args.json:
        args.json.write_text(json.dumps({"clips": results, "mean": totals, "smoothing": args.smoothing}, indent=2))
    if args.markdown:
        print("\n" + markdown_table(results, total))


KEYS = ("psnr", "colorfulness", "warp_error", "cdc", "chroma_warp_error", "chroma_cdc")


def summarize(name: str, results: dict) -> dict:
    """Print the mean over these clips and the bars of issue 14; -> the mean figures per mode."""
    total = {m: {k: float(np.mean([r[m][k] for r in results.values()])) for k in KEYS} for m in MODES}
    t, s, g = total["temporal"], total["single"], total["truth"]
    print(f"\nmean over {len(results)} clips ({name}):")
    for m in MODES:
        f = total[m]
        print(
            f"  {m:9s} PSNR {f['psnr']:6.2f}  colour {f['colorfulness']:6.2f}  warp_err {f['warp_error'] * 1e3:7.3f}e-3  "
            f"CDC {f['cdc'] * 1e3:7.3f}e-3  ab_warp {f['chroma_warp_error']:7.3f}  ab_CDC {f['chroma_cdc'] * 1e3:7.3f}e-3"
        )
    worst = min(r["temporal"]["psnr"] - r["single"]["psnr"] for r in results.values())
    dpsnr = t["psnr"] - s["psnr"]
    ab_warp_p = t["chroma_warp_error"] / s["chroma_warp_error"]
    ab_warp_g = t["chroma_warp_error"] / g["chroma_warp_error"]
    ab_cdc_g = t["chroma_cdc"] / g["chroma_cdc"]
    colour = t["colorfulness"] / s["colorfulness"]
    bars = [  # (figure, value, bar, met)
        ("dPSNR t-p (mean)", dpsnr, ">= +0.2", dpsnr >= 0.2),
        ("dPSNR t-p (worst clip)", worst, ">= -0.2", worst >= -0.2),
        ("ab warp t/p", ab_warp_p, "<= 0.5", ab_warp_p <= 0.5),
        ("ab warp t/truth", ab_warp_g, "<= 1.3", ab_warp_g <= 1.3),
        ("ab CDC t/truth", ab_cdc_g, "<= 1.3", ab_cdc_g <= 1.3),
        ("colour t/p", colour, ">= 0.9", colour >= 0.9),
        ("ab CDC t/p", t["chroma_cdc"] / s["chroma_cdc"], "", None),
        ("RGB warp t/p", t["warp_error"] / s["warp_error"], "", None),
        ("RGB CDC t/p", t["cdc"] / s["cdc"], "", None),
    ]
    for label, value, bar, met in bars:
        verdict = "" if met is None else ("ok" if met else "MISSED")
        print(f"  {label:24s} {value:+8.3f}  {bar:8s}  {verdict}")
    return total


def markdown_table(results: dict, total: dict) -> str:
    """Per clip and mean: temporal / per-frame figures, the truth's and the colourless floor's beside them."""
    rows = [
        "| clip | PSNR t / p | colour t / p | CDC t / p (truth, colourless) | CDC t/p | warp err t / p (truth, colourless) "
        "| warp t/p | ab CDC t/p | ab warp t/p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    named = [(Path(name).stem, r) for name, r in results.items()] + [("**mean**", total)]
    for name, r in named:
        t, s, g, z = r["temporal"], r["single"], r["truth"], r["gray"]
        rows.append(
            f"| {name} | {t['psnr']:.2f} / {s['psnr']:.2f} | {t['colorfulness']:.2f} / {s['colorfulness']:.2f} "
            f"| {t['cdc'] * 1e3:.3f} / {s['cdc'] * 1e3:.3f} ({g['cdc'] * 1e3:.3f}, {z['cdc'] * 1e3:.3f}) | {t['cdc'] / s['cdc']:.2f} "
            f"| {t['warp_error'] * 1e3:.3f} / {s['warp_error'] * 1e3:.3f} ({g['warp_error'] * 1e3:.3f}, {z['warp_error'] * 1e3:.3f}) "
            f"| {t['warp_error'] / s['warp_error']:.3f} | {t['chroma_cdc'] / s['chroma_cdc']:.2f} "
            f"| {t['chroma_warp_error'] / s['chroma_warp_error']:.2f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
