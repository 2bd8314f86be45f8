"""The output file's safety: checks before any work, a hidden partial file, the rename into place.

A run writes `.<stem>.vidcolor-<pid>.partial<ext>` beside the destination and
renames it into place only on success; on an error, Ctrl-C, SIGTERM or SIGHUP it
is deleted. SIGKILL or a power cut can leave one behind: the PID in its name
lets a later run see that its writer is gone and remove it (with a notice).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import VidcolorError

try:  # POSIX; where there is no fcntl (Windows) a second run on the same output is not detected
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_MARK = ".vidcolor-"


def name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_output(src: Path, dst: Path) -> None:
    """Errors about the output that need no decoding: refuse before any work is done."""
    if dst.is_dir():
        raise VidcolorError(f"the output {dst} is a directory: give a file name, e.g. -o {dst / (src.stem + '.color.mp4')}")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise VidcolorError(f"the output {dst} is the input: choose another name with -o (the input is never overwritten)")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise VidcolorError(f"output folder {parent} does not exist: create it or choose another -o")
    if not os.access(parent, os.W_OK):
        raise VidcolorError(f"cannot write to {parent}: choose a writable output folder with -o")
    limit = name_max(parent)
    if len(dst.name.encode()) > limit:
        raise VidcolorError(
            f"the output name is {len(dst.name.encode())} bytes long, over this file system's "
            f"{limit}: choose a shorter name with -o"
        )


def partial_path(dst: Path, pid: int | None = None) -> Path:
    """The hidden file a run writes before renaming it to dst; its stem is shortened so the name fits."""
    pid = os.getpid() if pid is None else pid
    tail = f"{_MARK}{pid}.partial{dst.suffix}"
    room = name_max(dst.parent if str(dst.parent) else Path(".")) - len(tail.encode()) - 1
    stem = dst.stem.encode()[: max(1, room)].decode(errors="ignore")
    return dst.with_name(f".{stem}{tail}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(dst: Path) -> list[str]:
    """Delete partial files of dst left by runs whose process is gone; -> notices saying so."""
    own = partial_path(dst, 0).name
    prefix, suffix = own.split(_MARK)[0] + _MARK, f".partial{dst.suffix}"
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    notices = []
    folder = dst.parent if str(dst.parent) else Path(".")
    for p in folder.glob(f"{prefix}*{suffix}"):
        m = pattern.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            notices.append(f"removed {p.name}, left by an earlier run that was killed (process {m.group(1)})")
    return notices


def create_partial(dst: Path) -> Path:
    """Create the partial file with ordinary permissions (as any file the user makes, umask permitting)."""
    tmp = partial_path(dst)
    umask = os.umask(0)
    os.umask(umask)
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o666 & ~umask)
    os.close(fd)
    return tmp


@contextmanager
def output_lock(dst: Path) -> Iterator[None]:
    """Refuse a second run on the same output while one runs. On Linux an abstract socket named after the
    output's absolute path: nothing on disk, and the kernel frees the name when its process dies however it
    dies (a SIGKILL leaves nothing behind). Elsewhere an flock on `.<name>.lock` beside the output, which a
    SIGKILL leaves until the next run removes it."""
    if sys.platform.startswith("linux"):
        name = b"\0vidcolor-output-" + hashlib.sha256(os.fsencode(dst.resolve())).hexdigest()[:40].encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(name)
            except OSError:
                raise _busy(dst) from None
            yield
        return
    path = dst.with_name(f".{dst.name}.lock")
    handle = open(path, "w")  # noqa: SIM115 - held for the whole run
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise _busy(dst) from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
    finally:
        handle.close()


def _busy(dst: Path) -> VidcolorError:
    return VidcolorError(f"another vidcolor run is writing {dst} right now: wait for it to finish, or stop it first")
