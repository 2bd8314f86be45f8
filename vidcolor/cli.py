"""The `vidcolor` command: a thin Typer layer over vidcolor.pipeline.colorize_video.

Domain errors (VidcolorError) become one-line messages and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .errors import VidcolorError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})

EXAMPLES = """
Examples:

  vidcolor film.mp4                      writes film.color.mp4 beside it

  vidcolor film.mkv -o out/film.mkv -y   choose the output, overwrite it

  vidcolor film.mp4 --preview            5 s from the middle: film.color.preview.mp4 (gray | colour) + .png sheet

  vidcolor film.mp4 -ss 1:00 -t 10       colorize 10 s starting at one minute

  vidcolor film.mp4 --codec ffv1 -o film.mkv   lossless output

  vidcolor film.mp4 --saturation 0.6     one fixed colour strength for every frame (0 muted .. 1 vivid)
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


class _Bar:
    """Progress on stderr: frames, fps, ETA. Only when stderr is a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, p) -> None:
        if not self.enabled or p.frames % 5:
            return
        fps = p.frames / p.elapsed if p.elapsed else 0.0
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
        if self.enabled:
            sys.stderr.write("\n")


@app.command(epilog=EXAMPLES)
def colorize(
    src: Path = typer.Argument(..., help="Black-and-white video to colorize (any container FFmpeg reads)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Output file (.mp4, .mkv or .mov). Default: SRC's name + .color.mp4 beside it."),
    yes: bool = typer.Option(False, "-y", "--yes", help="Overwrite the output if it exists."),
    no: bool = typer.Option(False, "-n", "--no-overwrite", help="Exit quietly if the output exists."),
    start: str | None = typer.Option(None, "-ss", "--start", help="Start time: SS[.ms], MM:SS or HH:MM:SS[.ms]."),
    end: str | None = typer.Option(None, "-to", "--end", help="End time (exclusive), same forms as --start."),
    duration: str | None = typer.Option(None, "-t", "--duration", help="Length instead of --end, same forms."),
    preview: bool = typer.Option(False, "--preview", help="Write a side-by-side (gray | colour) clip and a PNG contact sheet for the range (default: 5 s from the middle)."),
    temporal: bool = typer.Option(True, "--temporal/--no-temporal", help="Carry colours from frame to frame (flow-warped smoothing, cut detection). --no-temporal colours each frame alone."),
    smoothing: float = typer.Option(1.0, "--smoothing", min=0.0, max=1.0, help="Blend with the previous frame's flow-warped colours: 0 off .. 1 strong (the default; the past never fully outweighs a new frame)."),
    feedback: bool = typer.Option(False, "--feedback/--no-feedback", help="Also give the network the previous frame's warped colours as a hint (off by default: see the README's figures)."),
    saturation: float | None = typer.Option(None, "--saturation", min=0.0, max=1.0, help="Fix the colour strength for every frame: 0 = cautious (the posterior mean, muted), 1 = vivid (Zhang et al.'s rebalanced decoding, more wrong colours too). Default: chosen per frame from the network's certainty (about 0.4 on average; more colour where it is unsure, where the cautious decoding would wash out)."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.05, max=1.0, help="Annealed-mean temperature of the decoding (lower = commits to the likeliest colour). Default: the model's (0.7)."),
    work_size: int = typer.Option(256, "--work-size", min=64, max=2048, help="Long side, in pixels, of the resolution colour is predicted at."),
    codec: str = typer.Option("libx264", "--codec", help="Video codec: libx264, libx265 or ffv1 (lossless)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Quality for libx264/libx265 (lower = better, bigger)."),
    preset: str = typer.Option("medium", "--preset", help="x264/x265 speed preset (ultrafast .. veryslow)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    model: Path | None = typer.Option(None, "--model", help="Weights (.safetensors with its .json beside it). Default: the shipped model."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar, no summary; errors and warnings only."),
) -> None:
    """Colorize a black-and-white video; the original audio is kept."""
    from av.error import FFmpegError

    from .pipeline import ColorizeOptions, colorize_video
    from .temporal import TemporalOptions
    from .timecode import format_time, parse_time
    from .video import EncodeOptions

    try:
        t_start = parse_time(start, "start") if start is not None else None
        t_end = parse_time(end, "end") if end is not None else None
        if duration is not None:
            if t_end is not None:
                _fail("give either --end or --duration, not both")
            t_end = (t_start or 0.0) + parse_time(duration, "duration")
        dst = output if output is not None else _default_output(src)
        target = dst
        if preview:
            from .pipeline import preview_paths
            target = preview_paths(dst)[0]
        if not _confirm_overwrite(target, yes, no):
            return
        options = ColorizeOptions(
            start=t_start, end=t_end, work_size=work_size, temperature=temperature, saturation=saturation, temporal=temporal,
            temporal_options=TemporalOptions(smoothing=smoothing, feedback=feedback),
            encode=EncodeOptions(codec=codec, crf=crf, preset=preset), device=device, model=model, preview=preview,
        )
        bar = _Bar(not quiet)
        try:
            summary = colorize_video(src, dst, options, progress=bar)
        finally:
            bar.done()
    except VidcolorError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        _fail("interrupted: no output was written", code=130)
        return
    except (OSError, FFmpegError) as e:  # disk full, permissions changing under us, FFmpeg I/O errors
        _fail(f"{getattr(e, 'strerror', None) or e}: no output was written. Check the output folder and free space")
        return
    for notice in summary.notices:
        typer.echo(f"vidcolor: warning: {notice}", err=True)
    if not quiet:
        extra = f" and {summary.sheet}" if summary.sheet else ""
        typer.echo(f"{summary.frames} frames ({format_time(summary.duration)}) in {summary.elapsed:.1f} s, "
                   f"{summary.fps:.1f} fps -> {summary.output}{extra}", err=True)


def main() -> None:
    app()
