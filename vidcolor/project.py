"""The editor's project file: a user's points and keyframe images for one film, beside it as FILM.vidcolor.json.

    {"vidcolor_project": 1,
     "points": [{"t": 12.04, "x": 0.41, "y": 0.63, "colour": "#c08040", "size": 0.015}],
     "keyframes": [{"t": 83.5, "image": "car.png"}]}

- t: seconds from the start of the file, as -ss counts; a point belongs to the frame at or after t.
- x, y: the patch centre as fractions (0 to 1) of the upright frame's width and height.
- colour: sRGB hex; its chroma is used at the frame's own lightness.
- size: the patch's side as a fraction of the frame's width.
- keyframes: images coloured by hand, as --keyframe takes them; a relative path is from the project's folder.

A file that is not valid JSON, not this schema or of a newer version is refused with one line and is never
written over. Saving writes a temporary file and renames it into place, and keeps the previous version as
FILM.vidcolor.json.bak.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import VidcolorError

VERSION = 1
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_POINTS = 10_000  # a project is a person's clicks: far more is a mistake, not work
MAX_BYTES = 4 << 20  # the largest project file or request body read


class ProjectError(VidcolorError):
    """A project that is not valid: what is wrong, in one line."""


@dataclass(frozen=True)
class Point:
    t: float  # seconds, as -ss counts
    x: float  # patch centre, fraction of the upright frame's width
    y: float  # and of its height
    colour: str  # "#rrggbb"
    size: float = 0.015  # the patch's side, fraction of the frame's width


@dataclass(frozen=True)
class KeyImage:
    t: float
    image: str


@dataclass(frozen=True)
class Project:
    points: tuple[Point, ...] = ()
    keyframes: tuple[KeyImage, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "vidcolor_project": VERSION,
            "points": [asdict(p) for p in self.points],
            "keyframes": [asdict(k) for k in self.keyframes],
        }

    def frames(self) -> dict[float, tuple[Point, ...]]:
        """The points grouped by their time (ms), in time order."""
        groups: dict[float, list[Point]] = {}
        for p in sorted(self.points, key=lambda p: p.t):
            groups.setdefault(round(p.t, 3), []).append(p)
        return {t: tuple(ps) for t, ps in groups.items()}


def default_project_path(film: Path) -> Path:
    return (
        film.with_name(film.name.rsplit(".", 1)[0] + ".vidcolor.json")
        if "." in film.name
        else film.with_name(film.name + ".vidcolor.json")
    )


def _number(d: dict, key: str, where: str, lo: float, hi: float) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise ProjectError(f"{where}: {key!r} must be a number from {lo:g} to {hi:g}, got {v!r}")
    return float(v)


def _items(d: dict, key: str) -> list:
    items = d.get(key, [])
    if not isinstance(items, list):
        raise ProjectError(f"{key!r} must be a list, got {type(items).__name__}")
    return items


def from_dict(d: object) -> Project:
    """A parsed JSON document -> Project; ProjectError says what is wrong."""
    if not isinstance(d, dict):
        raise ProjectError("a project is a JSON object with 'vidcolor_project', 'points' and 'keyframes'")
    version = d.get("vidcolor_project")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ProjectError(f"the project is version {version}, newer than this vidcolor reads ({VERSION}): upgrade vidcolor")
    if version != VERSION:
        raise ProjectError(f"'vidcolor_project' must be {VERSION}, got {version!r}")
    points = []
    raw_points = _items(d, "points")
    if len(raw_points) > MAX_POINTS:
        raise ProjectError(f"{len(raw_points)} points: at most {MAX_POINTS}")
    for i, p in enumerate(raw_points):
        where = f"point {i}"
        if not isinstance(p, dict):
            raise ProjectError(f"{where} must be an object with t, x, y, colour and size")
        colour = p.get("colour")
        if not isinstance(colour, str) or not HEX.match(colour):
            raise ProjectError(f"{where}: 'colour' must be sRGB hex as #rrggbb, got {colour!r}")
        points.append(
            Point(
                t=_number(p, "t", where, 0, 1e7),
                x=_number(p, "x", where, 0, 1),
                y=_number(p, "y", where, 0, 1),
                colour=colour.lower(),
                size=_number(p, "size", where, 1e-4, 0.5) if "size" in p else 0.015,
            )
        )
    keys = []
    for i, k in enumerate(_items(d, "keyframes")):
        where = f"keyframe {i}"
        if not isinstance(k, dict) or not isinstance(k.get("image"), str) or not k["image"].strip():
            raise ProjectError(f"{where} must be an object with t and image (a path)")
        keys.append(KeyImage(_number(k, "t", where, 0, 1e7), k["image"]))
    return Project(tuple(points), tuple(keys))


def parse(text: str | bytes) -> Project:
    try:
        return from_dict(json.loads(text))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProjectError(f"not valid JSON ({e})") from None


def load_project(path: Path) -> Project:
    """The project at path; an empty one if there is no file yet."""
    if not path.exists():
        return Project()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ProjectError(f"larger than {MAX_BYTES >> 20} MiB")
        return parse(path.read_bytes())
    except ProjectError as e:
        raise ProjectError(f"{path}: {e}. It is left as it is: mend it, or choose another with --project") from None
    except OSError as e:
        raise ProjectError(f"{path}: cannot read it ({e.strerror})") from None


def save_project(path: Path, project: Project) -> None:
    """Write atomically (a temporary file renamed into place); the version before is kept as PATH.bak."""
    text = json.dumps(project.to_dict(), indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(text)
        if path.exists():
            shutil.copyfile(path, path.with_name(path.name + ".bak"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
