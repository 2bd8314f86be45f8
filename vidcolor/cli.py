"""The `vidcolor` command: a thin Typer layer over vidcolor.pipeline.colorize_video.

Domain errors (VidcolorError) become one-line messages and exit code 1. Ctrl-C,
SIGTERM and SIGHUP stop the run cleanly (no partial file) and exit 130, 143, 129.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from .errors import VidcolorError
from .precision import keep_freed_memory


def _command_app() -> typer.Typer:
    """One Typer app per command word (vidcolor FILM, vidcolor frame, vidcolor edit), all alike."""
    return typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _command_app()


class Stopped(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so the run deletes its partial file."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame) -> None:
    raise Stopped(signum)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"vidcolor {version('vidcolor')}")
        except PackageNotFoundError:
            typer.echo("vidcolor (not installed)")
        raise typer.Exit()


EXAMPLES = """
Examples:

  vidcolor film.mp4                      writes film.color.mp4 beside it

  vidcolor film.mkv -o out/film.mkv -y   choose the output, overwrite it

  vidcolor film.mp4 --preview            5 s from the middle: film.color.preview.mp4 (gray | colour) + .png sheet

  vidcolor film.mp4 -ss 1:00 -t 10       colorize 10 s starting at one minute

  vidcolor film.mp4 --codec ffv1 -o film.mkv   lossless output

  vidcolor film.mp4 --saturation 0.6     more vivid colours (0 muted .. 1 vivid)

  vidcolor frame film.mp4 -ss 1:23.5 -o frame.png   the gray frame at 1:23.5, to colour by hand

  vidcolor film.mp4 --keyframe 1:23.5=frame_coloured.png   your colours steer that shot

  vidcolor film.mp4 --reference photo.jpg   each shot's colours move toward the photo's

  vidcolor film.mp4 --uncertainty unsure.mp4   also where the network is unsure, as a heat map
"""

FRAME_EXAMPLES = """
Examples:

  vidcolor frame film.mp4 -ss 1:23.5 -o frame.png        the frame at 1:23.5

  vidcolor frame film.mp4 -ss 1:00 -t 60 --count 6 -o f.png   6 frames, one every 10 s: f-t60.000.png ...
"""


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"vidcolor: error: {message}", err=True)
    raise typer.Exit(code)


def _default_output(src: Path) -> Path:
    return src.with_name(src.stem + ".color.mp4")


def _confirm_overwrite(dst: Path, yes: bool, no: bool) -> bool:
    """True to go on. -y overwrites, -n skips; otherwise ask when interactive, refuse when not."""
    if not dst.exists() or yes:
        return True
    if no:
        typer.echo(f"vidcolor: {dst} exists; left as it is (-n)", err=True)
        return False
    if sys.stdin.isatty() and sys.stderr.isatty():
        return typer.confirm(f"{dst} exists. Overwrite?", default=False, err=True)
    _fail(f"{dst} already exists: pass -y to overwrite it, -n to skip, or choose another name with -o")
    return False


class _Progress:
    """A bar on a terminal; without one (nohup, a log file) an ffmpeg-style stats line every few seconds."""

    def __init__(self, enabled: bool, every: float = 5.0):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every = every
        self.last = time.monotonic()

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        fps = p.frames / p.elapsed if p.elapsed else 0.0
        if not self.tty:
            if time.monotonic() - self.last >= self.every:
                self.last = time.monotonic()
                total = f"/{p.total}" if p.total else ""
                sys.stderr.write(f"vidcolor: frame={p.frames}{total} fps={fps:.1f} elapsed={p.elapsed:.0f}s\n")
                sys.stderr.flush()
            return
        if p.frames % 5:
            return
        if p.total:
            pct = min(1.0, p.frames / p.total)
            eta = (p.total - p.frames) / fps if fps else 0.0
            bar = "#" * int(pct * 30)
            line = f"\r[{bar:<30}] {p.frames}/{p.total} frames  {fps:5.1f} fps  ETA {eta:5.0f} s"
        else:
            line = f"\r{p.frames} frames  {fps:5.1f} fps"
        sys.stderr.write(line)
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _os_error(e: OSError) -> str:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        return f"{reason}: no output was written. Free some space or choose another folder with -o"
    if e.errno == errno.ENAMETOOLONG:
        name = Path(str(e.filename or "")).name
        shown = name if len(name) <= 40 else f"{name[:20]}...{name[-16:]}"
        return f"a file name is too long for the file system ({shown}, {len(name.encode())} bytes): choose a shorter name with -o"
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    return f"{reason}{where}: no output was written"


@app.command(epilog=EXAMPLES, no_args_is_help=True)
def colorize(
    sources: list[Path] = typer.Argument(
        ..., metavar="SRC", help="Black-and-white video(s) to colorize (any container FFmpeg reads)."
    ),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Output file (.mp4, .mkv or .mov), or with several inputs a folder. Default: SRC's name + .color.mp4 beside it.",
    ),
    yes: bool = typer.Option(False, "-y", "--yes", help="Overwrite the output if it exists."),
    no: bool = typer.Option(False, "-n", "--no-overwrite", help="Leave an existing output as it is and exit."),
    start: str | None = typer.Option(None, "-ss", "--start", help="Start time: SS[.ms], MM:SS or HH:MM:SS[.ms]."),
    end: str | None = typer.Option(None, "-to", "--end", help="End time (exclusive), same forms as --start."),
    duration: str | None = typer.Option(None, "-t", "--duration", help="Length instead of --end, same forms."),
    preview: bool = typer.Option(
        False,
        "--preview",
        help="Write a side-by-side (gray | colour) clip and a PNG contact sheet (rows: gray, colour, the network's "
        "uncertainty) for the range (default: 5 s from the middle).",
    ),
    temporal: bool = typer.Option(
        True,
        "--temporal/--no-temporal",
        help="Carry colours from frame to frame (flow-warped smoothing, cut detection). --no-temporal colours each frame alone.",
    ),
    smoothing: float = typer.Option(
        1.0,
        "--smoothing",
        min=0.0,
        max=1.0,
        help="How much of the past each frame's colours keep, along the motion: 0 = none (the network's own guess, "
        "still fed its earlier colours and looked ahead; --no-temporal for frames alone) .. 1 = steadiest (the default).",
    ),
    look_ahead: int = typer.Option(
        16,
        "--look-ahead",
        min=0,
        help="Frames after each frame whose colours it also takes, carried back along the motion: steadier "
        "colour that does not lag behind a change. 0: only the frames before it. Example: vidcolor film.mp4 --look-ahead 0",
    ),
    feedback: bool | None = typer.Option(
        None,
        "--feedback/--no-feedback",
        help="Show the network its own colours of two frames before, carried along the motion: steadier "
        "colour. Default: what the weights were trained for (the shipped weights: on). --no-feedback: each "
        "frame's gray alone, its colours still smoothed along the motion. Example: vidcolor film.mp4 --no-feedback",
        show_default=False,
    ),
    keyframe: list[str] = typer.Option(
        [],
        "--keyframe",
        metavar="TIME=IMAGE",
        help="TIME=IMAGE: your coloured version of the frame at TIME (from `vidcolor frame`) steers its shot, "
        "before and after it, up to the cuts. Where you left it gray the model decides. Repeatable.",
    ),
    keyframe_reach: float = typer.Option(
        10.0, "--keyframe-reach", min=0.0, help="Seconds before a keyframe that its colours reach back to."
    ),
    hints: Path | None = typer.Option(
        None,
        "--hints",
        help="A project file of `vidcolor edit` (FILM.vidcolor.json): its points and keyframe images steer "
        "their shots as --keyframe does.",
    ),
    points_across_shots: bool = typer.Option(
        False,
        "--points-across-shots",
        help="Shots without points take the correction of the pointed frame they look likest to (a scene cut "
        "back to, the same faces), as far as they look alike. Shots with points keep their own. Slower on those shots.",
    ),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="A colour photo of a similar scene (not of the same frame): each shot's colours move toward its colours.",
    ),
    uncertainty: Path | None = typer.Option(
        None,
        "--uncertainty",
        help="Also write where the network is unsure, as a heat-map video (bright = unsure: where a keyframe pays).",
    ),
    saturation: float | None = typer.Option(
        None,
        "--saturation",
        min=0.0,
        max=1.0,
        help="How vivid the colours are: 0 = muted but rarely wrong .. 1 = vivid, with more wrong colours too. Default: the model's (see the README).",
    ),
    temperature: float | None = typer.Option(
        None,
        "--temperature",
        min=0.05,
        max=1.0,
        help="How firmly each pixel commits to one colour: lower = purer colours, higher = blends of the likely ones. Default: the model's.",
    ),
    work_size: int = typer.Option(
        256, "--work-size", min=64, max=2048, help="Long side, in pixels, of the resolution colour is predicted at."
    ),
    codec: str = typer.Option("libx264", "--codec", help="Video codec: libx264, libx265 or ffv1 (lossless)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Quality for libx264/libx265 (lower = better, bigger)."),
    preset: str = typer.Option("medium", "--preset", help="x264/x265 speed preset (ultrafast .. veryslow)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    engine: str = typer.Option(
        "auto",
        "--engine",
        help="auto (int8 on a CPU where the weights have it, else torch), int8 (ONNX Runtime), torch, or fp32 (torch in fp32, the reference).",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Weights (.safetensors with its .json beside it). Default: the shipped model."
    ),
    segment: float = typer.Option(
        60.0,
        "--segment",
        min=0.0,
        help="Seconds per segment of a long film: finished segments survive an interruption and a rerun of the same "
        "command reuses them. 0 = one pass.",
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore the finished segments of an earlier, interrupted run."),
    jobs: int = typer.Option(
        0, "--jobs", min=0, help="Worker processes, each on its own segments. 0 = from the core count (1 per 4 cores)."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch threads per worker. 0 = the cores / --jobs."),
    ray: str | None = typer.Option(
        None, "--ray", help="Run the segments as Ray tasks: auto (the cluster in RAY_ADDRESS, else a local one) or an address."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress, no summary; errors and warnings only."),
    _show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Colorize black-and-white videos; the original audio is kept."""
    from .pipeline import ColorizeOptions
    from .temporal import TemporalOptions
    from .video import EncodeOptions

    if yes and no:
        _fail("give -y (overwrite) or -n (never overwrite), not both")
    try:
        t_start, t_end = _span(start, end, duration)
        if reference is not None and not reference.is_file():
            raise VidcolorError(f"--reference {reference}: not found. Check the photo's path")
        options = ColorizeOptions(
            start=t_start,
            end=t_end,
            work_size=work_size,
            temperature=temperature,
            saturation=saturation,
            temporal=temporal,
            temporal_options=TemporalOptions(smoothing=smoothing, look_ahead=look_ahead, feedback=feedback),
            encode=EncodeOptions(codec=codec, crf=crf, preset=preset),
            device=device,
            engine=engine,
            model=model,
            preview=preview,
            keyframes=_keyframes(keyframe, hints, t_start, t_end, points_across_shots),
            keyframe_reach=keyframe_reach,
            points_across_shots=points_across_shots,
            uncertainty=uncertainty,
            reference=reference,
            segment=segment,
            fresh=fresh,
            jobs=jobs,
            threads=threads,
            ray=ray,
        )
    except VidcolorError as e:
        _fail(str(e))
        return
    answers = _Answers(yes, no, quiet)
    if len(sources) == 1:
        _one(sources[0], output, options, answers)
        return
    if output is not None and output.suffix and not output.is_dir():
        _fail(f"{len(sources)} inputs need an output folder, not the file {output}: give -o FOLDER/")
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    failed = []
    for src in sources:  # one bad file does not stop the others
        dst = None if output is None else output / _default_output(src).name
        if not quiet:
            typer.echo(f"vidcolor: {src}", err=True)
        try:
            _one(src, dst, options, answers)
        except typer.Exit as e:
            if e.exit_code in (130, 143, 129):  # interrupted: stop here
                raise
            if e.exit_code:
                failed.append(src)
    if failed:
        _fail(f"{len(failed)} of {len(sources)} inputs failed: {', '.join(str(f) for f in failed)} (errors above)")


@dataclass(frozen=True)
class _Answers:
    """What the command says of outputs and of itself, beside the ColorizeOptions: -y, -n, -q."""

    yes: bool
    no: bool
    quiet: bool


def _one(src: Path, output: Path | None, options, answers: _Answers) -> None:
    """Colorize one input; errors end in _fail (typer.Exit with the code)."""
    from .timecode import format_time

    handlers = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s}
    try:
        summary = _colorize(src, output, options, answers)
    except VidcolorError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        _fail(f"interrupted: no output was written{_resumable(src, output)}", code=130)
        return
    except Stopped as e:
        _fail(
            f"stopped by {signal.Signals(e.signum).name}: no output was written{_resumable(src, output)}",
            code=128 + e.signum,
        )
        return
    except OSError as e:  # disk full, permissions changing under us
        _fail(_os_error(e))
        return
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    if summary is None:
        return
    for notice in summary.notices:
        typer.echo(f"vidcolor: warning: {notice}", err=True)
    if not answers.quiet:
        extra = f" and {summary.sheet}" if summary.sheet else ""
        typer.echo(
            f"{summary.frames} frames ({format_time(summary.duration)}) in {summary.elapsed:.1f} s, "
            f"{summary.fps:.1f} fps -> {summary.output}{extra}",
            err=True,
        )


def _resumable(src: Path, output: Path | None) -> str:
    """After an interruption: say so when finished segments wait for a rerun."""
    dst = output if output is not None else _default_output(src)
    from .segments import parts_folder

    parts = parts_folder(dst)
    if any(parts.glob("part-*.json")):
        return f" (finished segments are kept in {parts}: run the same command again to resume)"
    return ""


def _span(start: str | None, end: str | None, duration: str | None) -> tuple[float | None, float | None]:
    """-ss, -to and -t -> (start, end) in seconds as -ss counts; None where not given."""
    from .timecode import parse_time

    t_start = parse_time(start, "start") if start is not None else None
    t_end = parse_time(end, "end") if end is not None else None
    if duration is not None:
        if t_end is not None:
            raise VidcolorError("give either --end or --duration, not both")
        t_end = (t_start or 0.0) + parse_time(duration, "duration")
    return t_start, t_end


def _keyframes(keyframe: list[str], hints: Path | None, start: float | None, end: float | None, across: bool) -> tuple:
    """--keyframe TIME=IMAGE values and a --hints project file -> the KeyframeSpecs they give. A project's
    frames outside the range [start, end) (seconds, as -ss counts) are left out: a project covers the film,
    and a range is rendered with the points inside it, as the editor plays a shot; with across
    (--points-across-shots) its points outside the range stay, to lend their correction."""
    from .keyframes import for_range, parse_keyframe, project_keyframes
    from .project import load_project

    keys = tuple(parse_keyframe(k) for k in keyframe)
    if hints is not None:
        if not hints.is_file():
            raise VidcolorError(f"--hints {hints}: not found. Check the project file's path (vidcolor edit writes it)")
        keys += tuple(for_range(project_keyframes(load_project(hints), hints.parent), start, end, across))
    return keys


def _colorize(src: Path, output: Path | None, options, answers: _Answers):
    """One input with the options: its output checked and, with -y / -n, confirmed; None when -n left an
    existing output alone."""
    from av.error import FFmpegError

    from .outfile import check_output
    from .pipeline import colorize_video, preview_paths

    dst = output if output is not None else _default_output(src)
    targets = list(preview_paths(dst)) if options.preview else [dst]
    if options.uncertainty is not None:
        targets.append(options.uncertainty)
    for target in targets:  # the input is never a target, whatever -y says
        check_output(src, target)
    if not all(_confirm_overwrite(t, answers.yes, answers.no) for t in targets):
        return None
    progress = _Progress(not answers.quiet)
    try:
        return colorize_video(src, dst, options, progress=progress)
    except FFmpegError as e:
        raise VidcolorError(f"FFmpeg: {getattr(e, 'strerror', None) or e}: no output was written") from None
    finally:
        progress.done()


# OpenMP threads that spin while they wait hold a core each; when another process wants the cores too,
# a parallel region then waits for whichever of its threads is descheduled, and vidcolor slowed 4x where a
# plain transcode slowed 1.3x beside one busy process. Passive waiting fixes that (0.97x against the
# transcode's 1.46x; benchmarks/speed.py --busy 1). It must be set before torch loads OpenMP, so here, in
# the entry point, before the pipeline (and torch) is imported; a user's own setting wins.
OPENMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


frame_app = _command_app()


@frame_app.command(epilog=FRAME_EXAMPLES, no_args_is_help=True)
def frame(
    src: Path = typer.Argument(..., help="The video to take the frame from."),
    output: Path | None = typer.Option(None, "-o", "--output", help="PNG to write. Default: SRC's name + .frame.png beside it."),
    start: str = typer.Option("0", "-ss", "--start", help="Time of the frame: SS[.ms], MM:SS or HH:MM:SS[.ms]."),
    end: str | None = typer.Option(None, "-to", "--end", help="With -n: end of the range (default: the video's end)."),
    duration: str | None = typer.Option(None, "-t", "--duration", help="With -n: length of the range instead of -to."),
    count: int = typer.Option(
        1, "-c", "--count", min=1, help="Write N frames evenly spaced over the range, named by their time."
    ),
    yes: bool = typer.Option(False, "-y", "--yes", help="Overwrite existing images."),
) -> None:
    """Write the gray frame at a time as a PNG, full resolution, to colour by hand and pass back with --keyframe."""
    from .stills import export_stills
    from .timecode import format_time, parse_time

    try:
        t_start = parse_time(start, "start")
        t_end = parse_time(end, "end") if end is not None else None
        if duration is not None:
            if t_end is not None:
                raise VidcolorError("give either --end or --duration, not both")
            t_end = t_start + parse_time(duration, "duration")
        dst = output if output is not None else src.with_name(src.stem + ".frame.png")
        stills = export_stills(src, dst, t_start, t_end, count, overwrite=yes)
    except VidcolorError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
        return
    except OSError as e:
        _fail(_os_error(e))
        return
    for still in stills:
        typer.echo(f"{format_time(still.time)} {still.path}")


edit_app = _command_app()


@edit_app.command(no_args_is_help=True)
def edit(
    src: Path = typer.Argument(..., help="The film to colour by hand."),
    project: Path | None = typer.Option(
        None, "--project", help="The project file. Default: SRC's name + .vidcolor.json beside it."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where Render writes. Default: SRC's name + .color.mp4."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="The port on 127.0.0.1. Default: a free one."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the page's address; do not open a browser."),
    model: Path | None = typer.Option(None, "--model", help="Weights (.safetensors) instead of the shipped ones."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    engine: str = typer.Option(
        "auto",
        "--engine",
        help="auto (int8 on a CPU where the weights have it, else torch), int8 (ONNX Runtime), torch, or fp32 (torch in fp32, the reference).",
    ),
    points_across_shots: bool = typer.Option(
        False,
        "--points-across-shots",
        help="Shots without points take the correction of the pointed frame they look likest to, in the frame "
        "shown, the shot played and the render (vidcolor --points-across-shots).",
    ),
) -> None:
    """Colour a film by clicking, in the browser: points steer their shots; Render writes the film (--hints)."""
    from .project import default_project_path
    from .server import serve

    try:
        serve(
            src,
            project or default_project_path(src),
            output or _default_output(src),
            port,
            not no_browser,
            model,
            device,
            engine,
            points_across_shots,
        )
    except VidcolorError as e:
        _fail(str(e))
    except OSError as e:
        _fail(_os_error(e))


def main() -> None:
    for key, value in OPENMP_ENV.items():
        os.environ.setdefault(key, value)
    keep_freed_memory()
    command = _command_word(sys.argv[1:])
    if command == "frame":
        frame_app(args=sys.argv[2:], prog_name="vidcolor frame")
    elif command == "edit":
        edit_app(args=sys.argv[2:], prog_name="vidcolor edit")
    else:
        app()


def _command_word(args: list[str]) -> str | None:
    """`vidcolor frame ...` and `vidcolor edit ...` are commands of their own; `vidcolor FILM ...` stays the
    one-word default. A film named like a command is that film where no other file is named after it
    (`vidcolor frame -o f.mp4` beside a file called frame); `./frame` always is."""
    if not args or args[0] not in ("frame", "edit"):
        return None
    if Path(args[0]).is_file() and not any(Path(a).is_file() for a in args[1:] if not a.startswith("-")):
        return None
    return args[0]
