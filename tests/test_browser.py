"""The editor in a real browser: Debian's Chromium driven by Playwright, against the server on loopback."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest

from vidcolor.editing import FrameColourer
from vidcolor.inference import Colorizer
from vidcolor.keyframes import hex_ab
from vidcolor.server import Editor, running

from .conftest import make_video

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-token"


def _needs_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    return None if CHROMIUM else "no chromium on this machine (apt-get install chromium)"


why_not = _needs_browser()
# In CI a missing browser is a failure, not a skip: .ci/run installs it.
pytestmark = pytest.mark.skipif(why_not is not None and not os.environ.get("CI"), reason=str(why_not))


@pytest.fixture
def served(tmp_path, tiny_model):
    clip = make_video(tmp_path / "clip.mp4", frames=24, size=(160, 96))
    editor = Editor(clip, tmp_path / "clip.vidcolor.json", FrameColourer(Colorizer.load(tiny_model, "cpu")), tmp_path / "o.mp4")
    with running(editor, TOKEN) as url:
        yield url, editor


def pixels_at(page, x: float, y: float) -> np.ndarray:
    """The mean Lab ab of a 3x3 px spot of the shown frame at (x, y), fractions of its size."""
    rgb = page.evaluate(
        """([x, y]) => { const c = document.getElementById('frame');
        const d = c.getContext('2d').getImageData(Math.round(x * c.width) - 1, Math.round(y * c.height) - 1, 3, 3).data;
        const out = []; for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]); return out; }""",
        [x, y],
    )
    spot = np.array(rgb, np.float32)[None] / 255
    return cv2.cvtColor(spot, cv2.COLOR_RGB2Lab)[0, :, 1:].mean(0)


def hue_gap(ab: np.ndarray, colour: str) -> float:
    """Degrees between two colours' hues."""
    want = hex_ab(colour)
    d = np.degrees(np.arctan2(ab[1], ab[0]) - np.arctan2(want[1], want[0]))
    return float(abs((d + 180) % 360 - 180))


def test_click_a_point_give_it_a_colour_undo_and_find_it_after_a_reload(served):
    from playwright.sync_api import sync_playwright

    url, editor = served
    errors, foreign = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(url) else foreign.append(r.url))

        def shown(revision: int) -> None:
            page.wait_for_function(
                "(r) => document.getElementById('frame').dataset.revision === r", arg=str(revision), timeout=20_000
            )

        page.goto(f"{url}/?token={TOKEN}")
        shown(0)
        box = page.locator("#frame").bounding_box()
        x, y = 0.3, 0.45
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        shown(1)
        page.fill("#hex", "#2060d0")
        page.press("#hex", "Enter")
        shown(2)
        assert hue_gap(pixels_at(page, x, y), "#2060d0") < 10  # the point took the hue
        assert editor.project.points[0].colour == "#2060d0"
        page.click("#gray")  # no colour: the selected point takes the network's colour off
        shown(3)
        assert editor.project.points[0].colour == "#808080"
        assert float(np.hypot(*pixels_at(page, x, y))) < 4
        page.evaluate("() => document.activeElement.blur()")  # out of the field: the page's keys again
        page.keyboard.press("Control+z")
        shown(4)
        assert hue_gap(pixels_at(page, x, y), "#2060d0") < 10  # undone: blue again
        page.keyboard.press("Control+z")
        shown(5)
        assert hue_gap(pixels_at(page, x, y), "#2060d0") > 60  # and back to the colour it was placed with
        page.reload()
        shown(0)
        assert page.locator("#marks .mark").count() == 1  # the point was saved, and is found again
        page.keyboard.press("ArrowRight")  # the next frame, in the point's shot: the page says the point colours it
        page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('coloured by the points at 0:00.')", timeout=20_000
        )
        assert page.locator("#marks .mark").count() == 0
        browser.close()
    assert not errors, errors
    assert not foreign, foreign
