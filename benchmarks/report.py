"""Write docs/benchmarks.md: the headline figures, measured now, under the CPU's flags, the commit and the date.

    python benchmarks/report.py                    # needs ../shared (held-out photos and clips); about 20 min on 2 cores
    python benchmarks/report.py --model runs/x.safetensors --quick

Runs the benchmarks below one after another (pause anything else running: they time things) and writes their
output verbatim, each under the command that reproduces it:
- quality.py: held-out photos, with 5 and 20 points of the truth (`--quick`: 160 of them);
- points.py: 10 points on one frame of each clip's longest shot, over that shot (`--quick`: the development clips);
- gray_clicks.py: gray clicks where the network invented colour on the nearly neutral held-out photos;
- across.py: points on one scene, on its later frames and on other scenes, with --points-across-shots (the same);
- speed.py: end-to-end fps beside a plain transcode (`--quick`: 120 frames);
- memory.py: peak memory of a whole run on each engine, beside a plain transcode's;
- editor.py: the editor's latency.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEV_CLIPS = Path("../shared/data/videos")  # from the checkout's root, where the benchmarks run


def cpu() -> tuple[str, str]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(info.split())
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    return model, " ".join(
        f for f in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags
    ) or "none of avx2, avx512f, amx"


def run(args: list[str]) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    text = out.stdout.strip()
    return text if out.returncode == 0 else text + f"\n(failed, exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    model = ["--model", str(args.model)] if args.model else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    name, flags = cpu()
    runs = [
        (
            "Quality on held-out photos",
            ["benchmarks/quality.py", "--points", "5", "20", *model, *(["--limit", "160"] if args.quick else [])],
        ),
        (
            "Points on a clip",
            [
                "benchmarks/points.py",
                *model,
                *(sorted(str(DEV_CLIPS / p.name) for p in (ROOT / DEV_CLIPS).glob("*.mp4")) if args.quick else []),
            ],
        ),
        ("Gray clicks on nearly neutral photos", ["benchmarks/gray_clicks.py", *model]),
        (
            "Points across shots",
            [
                "benchmarks/across.py",
                *model,
                *(sorted(str(DEV_CLIPS / p.name) for p in (ROOT / DEV_CLIPS).glob("*.mp4")) if args.quick else []),
            ],
        ),
        ("Speed", ["benchmarks/speed.py", "--frames", "120" if args.quick else "240", *model]),
        ("Memory", ["benchmarks/memory.py"]),
        ("The editor's latency", ["benchmarks/editor.py", *model]),
    ]
    parts = [
        "# Benchmarks\n",
        f"Written by `python benchmarks/report.py{' --quick' if args.quick else ''}` on {datetime.date.today().isoformat()}, "
        f"commit {commit}, on {name} ({flags}), {len(__import__('os').sched_getaffinity(0))} cores"
        f"{', weights ' + str(args.model) if args.model else ', the shipped weights'}.",
        "How the figures are made: each script's docstring. The history of every experiment: docs/experiments.md.\n",
    ]
    for title, cmd in runs:
        print(f"running {' '.join(cmd)}", flush=True)
        parts += [f"## {title}\n", f"`python {' '.join(cmd)}`\n", "```", run(cmd), "```\n"]
    args.out.write_text("\n".join(parts))
    print(args.out)


if __name__ == "__main__":
    main()
