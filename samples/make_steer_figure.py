"""Build docs/steer.jpg, the README's "steer the colours" picture, from the project's own sample.

    python samples/make_steer_figure.py [--model M]

What a user does: export the frame at 4.5 s (`vidcolor frame`), paint what they
know (here: the cup and saucer, the bright parts, were pale blue; the rest is
left gray for the model), and colorize the coffee shot with `--keyframe`.
Panels: the exported frame | the hand-coloured keyframe | the result at 4.5 s |
the result 1 s before it, which the keyframe's colours reached backward. Second
row: the same frames without the keyframe.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.color import gray_to_lightness_lut, lab_planes_to_rgb
from vidcolor.keyframes import KeyframeSpec
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.stills import export_stills
from vidcolor.video import EncodeOptions

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample.mp4"
OUT = HERE.parent / "docs" / "steer.jpg"
KEY, BEFORE, SHOT = 4.5, 3.5, (3.0, 6.0)  # seconds: the keyframe, a frame before it, the coffee shot
PANEL = (320, 180)


def paint(gray: np.ndarray) -> np.ndarray:
    """A user's colouring: the bright cup and saucer pale blue, everything else left gray -> RGB uint8."""
    lut = gray_to_lightness_lut()
    ab = np.zeros(gray.shape + (2,), np.float32)
    cup = cv2.morphologyEx((gray > 165).astype(np.uint8), cv2.MORPH_OPEN, np.ones((9, 9), np.uint8)) > 0
    ab[cup] = (-8.0, -28.0)
    return (lab_planes_to_rgb(lut[gray], ab) * 255 + 0.5).astype(np.uint8)


def frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.time >= t - 5e-4:
                return f.to_ndarray(format="rgb24")
    raise ValueError(f"no frame at {t} s in {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        still = export_stills(SAMPLE, folder / "frame.png", KEY, None)[0].path
        gray = cv2.imread(str(still), cv2.IMREAD_GRAYSCALE)
        painted = paint(gray)
        key = folder / "frame_coloured.png"
        cv2.imwrite(str(key), painted[..., ::-1])
        base = ColorizeOptions(start=SHOT[0], end=SHOT[1], model=args.model, encode=EncodeOptions(codec="ffv1"))
        results = {}
        for name, options in (
            ("plain", base),
            ("keyed", ColorizeOptions(**{**base.__dict__, "keyframes": (KeyframeSpec(KEY, key),)})),
        ):
            out = folder / f"{name}.mkv"
            colorize_video(SAMPLE, out, options)
            # The output of a range starts at 0: its times are the film's minus the range start.
            results[name] = [frame_at(out, t - SHOT[0]) for t in (KEY, BEFORE)]
    small = lambda img: cv2.resize(img, PANEL, interpolation=cv2.INTER_AREA)  # noqa: E731
    gray_rgb = np.repeat(gray[..., None], 3, axis=2)
    top = np.hstack([small(gray_rgb), small(painted), *map(small, results["keyed"])])
    bottom = np.hstack([small(gray_rgb), np.full_like(small(painted), 255), *map(small, results["plain"])])
    OUT.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(OUT), cv2.cvtColor(np.vstack((top, bottom)), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
