"""The editor's latency: the real server on loopback, driven through its HTTP API as the page drives it.

    python benchmarks/editor.py                      # samples/sample.mp4 (640x360), the shipped weights
    python benchmarks/editor.py FILM --rounds 40

Per round: a PUT of the project with one point moved, then the GET of that frame in colour (the time the
page waits for the new frame), a GET /api/suggest at a random pixel, and the GET of the next frame (a step
through the shot, whose guess the point moves). Also the page's load in headless
Chromium (to the first frame drawn), when Playwright and Chromium are on the machine. Prints medians and
95th percentiles in ms, with the CPU's flags.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from vidcolor.editing import FrameColourer
from vidcolor.inference import ENGINES, Colorizer
from vidcolor.server import Editor, running

HERE = Path(__file__).resolve().parents[1]
TOKEN = "benchmark"


def cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return " ".join(f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags) or "unknown"


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[float, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {TOKEN}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        data = r.read()
    return (time.perf_counter() - t) * 1000, data


def page_load(url: str) -> float | None:
    """ms from navigation to the first frame drawn, in headless Chromium; None without a browser."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page()
        t = time.perf_counter()
        page.goto(f"{url}/?token={TOKEN}")
        page.wait_for_function("() => document.getElementById('frame').dataset.revision === '0'")
        ms = (time.perf_counter() - t) * 1000
        browser.close()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("film", nargs="?", type=Path, default=HERE / "samples" / "sample.mp4")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument(
        "--engine",
        default="auto",
        choices=ENGINES,
        help="vidcolor's --engine (for an AVX2-only machine, run this under benchmarks/avx2.py)",
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        editor = Editor(
            args.film,
            Path(tmp) / "p.vidcolor.json",
            FrameColourer(Colorizer.load(args.model, engine=args.engine)),
            Path(tmp) / "o.mp4",
        )
        with running(editor, TOKEN) as url:
            frame_ms, put_ms, suggest_ms, next_ms, load = drive(url, editor, args.rounds)
    info = editor.film.info
    print(
        f"CPU: {cpu_flags()}; threads 2, engine {editor.colourer.colorizer.engine}; {args.film.name} {info.width}x{info.height}, {args.rounds} rounds"
    )
    for name, ms in (
        ("PUT /api/project", put_ms),
        ("GET /api/frame?view=colour after it", frame_ms),
        ("GET /api/suggest", suggest_ms),
        ("GET /api/frame?view=colour, the next", next_ms),
    ):
        print(f"  {name:38s} median {np.median(ms):6.1f} ms, p95 {np.percentile(ms, 95):6.1f} ms")
    print(f"  page load to the first frame: {load:.0f} ms" if load is not None else "  page load: no Chromium/Playwright here")


def drive(url: str, editor: Editor, rounds: int):
    """The rounds against a running editor -> ms lists for PUT, the frame after it, suggest, the next frame;
    the page's load."""
    info = editor.film.info
    rng = np.random.default_rng(0)
    t, t_next = info.times[len(info.times) // 2], info.times[len(info.times) // 2 + 1]
    request(f"{url}/api/frame?t={t}&view=colour")  # the first call loads and warms up
    frame_ms, put_ms, suggest_ms, next_ms = [], [], [], []
    for _ in range(rounds):
        point = {
            "t": t,
            "x": float(rng.uniform(0.1, 0.9)),
            "y": float(rng.uniform(0.1, 0.9)),
            "colour": "#c08040",
            "size": 0.015,
        }
        body = json.dumps({"vidcolor_project": 1, "points": [point], "keyframes": []}).encode()
        put_ms.append(request(f"{url}/api/project", "PUT", body)[0])
        frame_ms.append(request(f"{url}/api/frame?t={t}&view=colour")[0])
        suggest_ms.append(request(f"{url}/api/suggest?t={t}&x={rng.uniform(0, 1):.3f}&y={rng.uniform(0, 1):.3f}")[0])
        next_ms.append(request(f"{url}/api/frame?t={t_next}&view=colour")[0])
    load = page_load(url)
    return frame_ms, put_ms, suggest_ms, next_ms, load


if __name__ == "__main__":
    main()
