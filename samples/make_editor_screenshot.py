"""Build docs/editor.jpg, the README's picture of `vidcolor edit`, from the project's own sample.

    python samples/make_editor_screenshot.py [--model M]

The editor runs on samples/sample.mp4 with a project holding two points on the astronaut's suit (orange, as
it was); the script clicks a third in headless Chromium (Debian's, driven by Playwright), so the page shows
the suggested colours at that pixel, and takes the screenshot.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from vidcolor.editing import FrameColourer
from vidcolor.inference import Colorizer
from vidcolor.server import Editor, running

HERE = Path(__file__).resolve().parent
TOKEN = "screenshot"
SUIT = "#d0702c"


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs" / "editor.jpg")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "sample.vidcolor.json"
        points = [
            {"t": 1.5, "x": 0.1, "y": 0.8, "colour": SUIT, "size": 0.03},
            {"t": 1.5, "x": 0.68, "y": 0.72, "colour": SUIT, "size": 0.03},
        ]
        project.write_text(json.dumps({"vidcolor_project": 1, "points": points, "keyframes": []}))
        editor = Editor(HERE / "sample.mp4", project, FrameColourer(Colorizer.load(args.model)), Path(tmp) / "o.mp4", args.model)
        with running(editor, TOKEN) as url, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1100, "height": 640})
            page.goto(f"{url}/?token={TOKEN}")
            page.wait_for_function("() => document.getElementById('frame').dataset.revision === '0'")
            page.evaluate("() => document.getElementById('scrub').value = String(1.5 / 6.0)")
            page.dispatch_event("#scrub", "input")
            page.wait_for_function("() => document.getElementById('frame').dataset.t === '1.5000'")
            page.fill("#hex", SUIT)
            page.press("#hex", "Enter")
            box = page.locator("#frame").bounding_box()
            page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.85 * box["height"])
            page.wait_for_function("() => document.getElementById('frame').dataset.revision === '1'")
            page.wait_for_selector("#suggestions .swatch")
            page.evaluate("() => document.activeElement.blur()")
            page.screenshot(path=str(args.out), type="jpeg", quality=85)
            browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
