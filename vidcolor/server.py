"""The editor's HTTP server (`vidcolor edit`): a thin layer over editing.py and project.py.

Loopback only, behind a secret token (a Bearer header, or the cookie the page sets from its address), with
the Host header checked against DNS rebinding and bodies size-limited. No route takes a path from the client.
A request that cannot be served gets 400 (its fault) or 404/409 with a one-line message, never 500.
The routes are documented in docs/editor-api.md.
"""

from __future__ import annotations

import base64
import hmac
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .editing import Film, FrameColourer, ShotPoints, encode_jpeg, heat_map, view_size
from .errors import VidcolorError
from .keyframes import KeyframeSpec, for_range, governing, parse_keyframe, project_keyframes
from .options import ColorizeOptions
from .pipeline import colorize_video
from .project import MAX_BYTES, Project, ProjectError, load_project, parse, save_project
from .video import EncodeOptions

COOKIE = "vidcolor_token"
PLAY_SIZE = 160  # px, the long side a shot is coloured at to be played in the page
PLAY_WIDTH = 480  # px, the widest frame of a played shot
STATIC = {"editor.js": "text/javascript", "editor.css": "text/css"}
CSP = "default-src 'self'"


class Editor:
    """The state behind the routes: the film, the colouring of one frame, the project file, a render."""

    def __init__(
        self,
        film: Path,
        project_path: Path,
        colourer: FrameColourer,
        output: Path,
        model: Path | None = None,
        engine: str = "auto",
        points_across_shots: bool = False,
    ):
        self.film = Film(film)
        self.across = points_across_shots  # vidcolor --points-across-shots, in the view, the play and the render
        self.film_path, self.project_path, self.output = film, project_path, output
        self.project = load_project(project_path)  # a corrupt one stops here, before anything is served
        self.colourer, self.model = colourer, model  # the weights a played shot and a render use (None: shipped)
        self.engine = engine  # and the engine (inference.ENGINES)
        self.lock = threading.Lock()  # one network call at a time: the cores are the bottleneck
        self.render: subprocess.Popen | None = None
        self.render_log: list[str] = []

    def points_at(self, t: float):
        frame_t = self.film.frame_time(t)
        return tuple(p for p in self.project.points if abs(self.film.frame_time(p.t) - frame_t) < 5e-4)

    def key_at(self, t: float) -> KeyframeSpec | None:
        """The frame at t as a keyframe: its points, else a frame coloured by hand for it; None if neither."""
        frame_t, points = self.film.frame_time(t), self.points_at(t)
        if points:
            return KeyframeSpec(frame_t, None, points)
        image = next((k.image for k in self.project.keyframes if abs(self.film.frame_time(k.t) - frame_t) < 5e-4), None)
        return None if image is None else parse_keyframe(f"{frame_t}={self.project_path.parent / image}")

    def shot_points(self, t: float) -> ShotPoints | None:
        """The points a render carries to the frame at t from another frame of its shot (keyframes.governing),
        or None: the frame has points of its own, or its shot has none that reach it."""
        frame_t = self.film.frame_time(t)
        specs = [KeyframeSpec(self.film.frame_time(s), None, points) for s, points in self.project.frames().items()]
        specs += [KeyframeSpec(self.film.frame_time(k.t), Path(k.image)) for k in self.project.keyframes]
        key = governing(specs, frame_t, self.film.shot(frame_t), ColorizeOptions.keyframe_reach)
        if key is None or key.image is not None or abs(key.time - frame_t) < 5e-4:
            return None
        return self._points(key.time, key.points)

    def lenders(self) -> list[ShotPoints]:
        """With --points-across-shots, every frame with points, for the frames that take none from their own
        shot; else none."""
        return [self._points(s, points) for s, points in self.project.frames().items()] if self.across else []

    def _points(self, t: float, points: tuple) -> ShotPoints:
        return ShotPoints(self.film.frame_time(t), points, lambda: self.film.gray(t)[1])

    def put_project(self, project: Project) -> None:
        save_project(self.project_path, project)
        self.project = project

    def render_command(self) -> list[str]:
        model = ["--model", str(self.model)] if self.model is not None else []
        engine = ["--engine", self.engine] if self.engine != "auto" else []
        across = ["--points-across-shots"] if self.across else []
        return [
            "vidcolor",
            str(self.film_path),
            "--hints",
            str(self.project_path),
            "-o",
            str(self.output),
            "-y",
            *model,
            *engine,
            *across,
        ]

    def start_render(self) -> None:
        if self.render is not None and self.render.poll() is None:
            raise ConflictError("a render is already running: cancel it first")
        save_project(self.project_path, self.project)
        cmd = [sys.executable, "-m", "vidcolor", *self.render_command()[1:]]
        self.render_log = []
        self.render = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read_log, args=(self.render,), daemon=True).start()

    def _read_log(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.render_log.append(line.strip())
            del self.render_log[:-20]

    def render_state(self) -> dict:
        if self.render is None:
            return {"state": "idle", "command": " ".join(self.render_command())}
        code = self.render.poll()
        state = "running" if code is None else "done" if code == 0 else "cancelled" if code in (-15, 143) else "failed"
        frames = [int(m.group(1)) for line in self.render_log for m in [re.search(r"frame=(\d+)", line)] if m]
        done = frames[-1] if frames else 0
        return {
            "state": state,
            "progress": 1.0 if state == "done" else min(1.0, done / max(1, self.film.info.frames)),
            "message": self.render_log[-1] if self.render_log and state == "failed" else "",
            "output": str(self.output),
            "command": " ".join(self.render_command()),
        }

    def play_shot(self, t: float, work_size: int = PLAY_SIZE) -> dict:
        """The shot around t coloured as a render colours it (its points and keyframes carried through it),
        at a reduced working size: {"fps", "start", "frames": [base64 JPEG, ...]} at most PLAY_WIDTH wide."""
        start, end = self.film.shot(t)
        # With --points-across-shots the points of other shots lend their correction here too.
        specs = for_range(project_keyframes(self.project, self.project_path.parent), start, end, self.across)
        options = ColorizeOptions(
            start=start,
            end=end,
            work_size=work_size,
            keyframes=tuple(specs),
            points_across_shots=self.across and any(k.points for k in specs),
            segment=0,
            model=self.model,
            engine=self.engine,
        )
        with tempfile.TemporaryDirectory() as tmp, self.lock:
            out = Path(tmp) / "shot.mkv"
            colorize_video(self.film_path, out, replace(options, encode=EncodeOptions(codec="ffv1")))
            frames = []
            with av.open(str(out)) as box:
                for frame in box.decode(video=0):
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w = view_size(rgb.shape[:2], PLAY_WIDTH)
                    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
                    frames.append(base64.b64encode(encode_jpeg(small.astype(np.float32) / 255.0, 80)).decode())
        return {"fps": self.film.info.fps, "start": start, "frames": frames}

    def cancel_render(self) -> None:
        if self.render is not None and self.render.poll() is None:
            self.render.terminate()
            self.render.wait(timeout=30)


class ConflictError(VidcolorError):
    pass


def _float(request: Request, name: str, lo: float = 0.0, hi: float = 1e7) -> float:
    raw = request.query_params.get(name)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must be a number, got {raw!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"'{name}' must be from {lo:g} to {hi:g}, got {v:g}")
    return v


def make_app(editor: Editor, token: str, port: int) -> ASGIApp:
    def film(request: Request) -> Response:
        return JSONResponse(editor.film.info.to_dict())

    def frame(request: Request) -> Response:
        t = _float(request, "t")
        view = request.query_params.get("view", "colour")
        if view not in ("gray", "colour", "uncertainty", "split"):
            raise ValueError(f"'view' must be gray, colour, uncertainty or split, got {view!r}")
        _, gray = editor.film.gray(t)
        if view == "gray":
            h, w = view_size(gray.shape)
            return _jpeg(encode_jpeg(cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)))
        key, shot = editor.key_at(t), editor.shot_points(t)
        lenders = editor.lenders() if key is None and shot is None else []
        with editor.lock:
            coloured = editor.colourer.colour(gray, key, shot, lenders)
        # Which frame's points colour this one too, for the page to say so.
        carried = {"X-Vidcolor-Points-From": f"{coloured.points_from:.4f}"} if coloured.points_from is not None else {}
        if view == "uncertainty":
            return _jpeg(encode_jpeg(heat_map(coloured.uncertainty)), carried)
        if view == "split":  # gray on the left half, colour on the right
            rgb = coloured.rgb.copy()
            half = rgb.shape[1] // 2
            rgb[:, :half] = (coloured.gray[:, :half, None] / 255.0).astype(np.float32)
            return _jpeg(encode_jpeg(rgb), carried)
        return _jpeg(encode_jpeg(coloured.rgb), carried)

    async def project(request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            editor.put_project(parse(body))
        return JSONResponse(editor.project.to_dict())

    def suggest(request: Request) -> Response:
        t, x, y = _float(request, "t"), _float(request, "x", 0, 1), _float(request, "y", 0, 1)
        _, gray = editor.film.gray(t)
        # The colours the network would show with the frame's other points: what a new one is chosen among.
        with editor.lock:
            colours = editor.colourer.suggest(gray, x, y, editor.points_at(t))
        return JSONResponse({"colours": colours})

    def shot(request: Request) -> Response:
        return JSONResponse(editor.play_shot(_float(request, "t")))

    def render(request: Request) -> Response:
        if request.method == "POST":
            editor.start_render()
        elif request.method == "DELETE":
            editor.cancel_render()
        return JSONResponse(editor.render_state())

    def page(request: Request) -> Response:
        html = resources.files("vidcolor.static").joinpath("editor.html").read_text()
        response = Response(html, media_type="text/html")
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _error(404, f"no such file: {name}")
        return Response(resources.files("vidcolor.static").joinpath(name).read_bytes(), media_type=STATIC[name])

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # none: a browser asks anyway
        Route("/api/film", film),
        Route("/api/frame", frame),
        Route("/api/project", project, methods=["GET", "PUT"]),
        Route("/api/suggest", suggest),
        Route("/api/render", render, methods=["GET", "POST", "DELETE"]),
        Route("/api/shot", shot),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: answer_error})
    return Guard(app, token, port)


def _jpeg(data: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store", **(headers or {})})


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> bytes:
    """The request's body, refused past MAX_BYTES without reading it all."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BYTES:
            raise ValueError(f"the body is larger than {MAX_BYTES >> 20} MiB")
    return data


def answer_error(request: Request, e: Exception) -> Response:
    """Every failure of a route becomes a one-line answer: 400 for a bad request, 404 for a frame or file that
    is not there, 409 for a render already running, 503 for anything else; the server goes on."""
    if isinstance(e, ConflictError):
        status = 409
    elif isinstance(e, ValueError | ProjectError):
        status = 400
    elif isinstance(e, VidcolorError):
        status = 404
    else:
        status = 503
    return _error(status, str(e).splitlines()[0] if str(e) else type(e).__name__)


class Guard:
    """The token, the Host header and the body size, checked before any route runs."""

    def __init__(self, app: ASGIApp, token: str, port: int):
        self.app, self.token = app, token
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if request.headers.get("host", "") not in self.hosts:
            return await _error(403, "this server answers only at its loopback address")(scope, receive, send)
        if not self._authorized(request):
            return await _error(403, "open the address vidcolor edit printed (with its token)")(scope, receive, send)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BYTES):
            return await _error(400, f"the body must be at most {MAX_BYTES >> 20} MiB")(scope, receive, send)

        async def secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"content-security-policy", CSP.encode())]}
            await send(message)

        await self.app(scope, receive, secured)

    def _authorized(self, request: Request) -> bool:
        given = [
            request.query_params.get("token", "") if request.url.path == "/" else "",
            request.cookies.get(COOKIE, ""),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ]
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)


@contextmanager
def running(editor: Editor, token: str) -> Iterator[str]:
    """The editor served on a free loopback port in a background thread, for scripts and tests: -> its base
    URL (http://127.0.0.1:PORT); stopped on leaving."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(editor, token, port), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def serve(
    film: Path,
    project: Path,
    output: Path,
    port: int,
    browser: bool,
    model: Path | None,
    device: str,
    engine: str = "auto",
    points_across_shots: bool = False,
) -> None:
    """Run the editor until Ctrl-C: on 127.0.0.1 (port 0: a free one), printing the page's address."""
    import secrets
    import webbrowser

    import uvicorn

    from .inference import Colorizer

    colourer = FrameColourer(Colorizer.load(model, device, engine=engine))
    editor = Editor(film, project, colourer, output, model, engine, points_across_shots)
    token = secrets.token_urlsafe(24)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        raise VidcolorError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}): choose another --port") from None
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/?token={token}"
    print(f"vidcolor edit: {film.name}, project {project}\n  open {url}\n  Ctrl-C saves and stops", flush=True)
    if browser:
        webbrowser.open(url)
    config = uvicorn.Config(make_app(editor, token, port), log_level="warning", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        editor.cancel_render()
        save_project(project, editor.project)
        print("vidcolor edit: saved", project, flush=True)
