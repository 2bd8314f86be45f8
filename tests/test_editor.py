"""The editor's server: the API through Starlette's TestClient on a generated clip, with a tiny network."""

from __future__ import annotations

import base64
import json
import random

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from vidcolor.color import gray_to_lightness_lut, lab_planes_to_rgb
from vidcolor.editing import FrameColourer
from vidcolor.errors import VidcolorError
from vidcolor.inference import Colorizer
from vidcolor.keyframes import hex_ab
from vidcolor.server import Editor, make_app

from .conftest import make_video
from .test_options import cut_back_film
from .test_segments import cut_film

PORT = 8765
TOKEN = "s3cret-token"
BASE = f"http://127.0.0.1:{PORT}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINT = {"t": 0.5, "x": 0.3, "y": 0.4, "colour": "#2060d0", "size": 0.08}


@pytest.fixture
def editor(tmp_path, tiny_model):
    clip = make_video(tmp_path / "clip.mp4", frames=24, size=(96, 64))
    colourer = FrameColourer(Colorizer.load(tiny_model, "cpu"))
    return Editor(clip, tmp_path / "clip.vidcolor.json", colourer, tmp_path / "out.mp4", tiny_model)


@pytest.fixture
def client(editor):
    return TestClient(make_app(editor, TOKEN, PORT), base_url=BASE, raise_server_exceptions=False)


def decode(response) -> np.ndarray:
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    bgr = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_b64(b64: str) -> np.ndarray:
    """A played frame (base64 JPEG) -> RGB uint8."""
    return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_film_describes_the_clip_and_its_shots(client):
    film = client.get("/api/film", headers=AUTH).json()
    assert film["fps"] == 12 and film["frames"] == 24 and (film["width"], film["height"]) == (96, 64)
    assert film["shots"][0][0] == 0 and film["shots"][-1][1] == pytest.approx(2.0)


def test_a_project_round_trips_and_a_point_colours_its_frame(client, editor):
    assert client.get("/api/project", headers=AUTH).json() == {"vidcolor_project": 1, "points": [], "keyframes": []}
    before = decode(client.get("/api/frame?t=0.5&view=colour", headers=AUTH))
    project = {"vidcolor_project": 1, "points": [POINT], "keyframes": []}
    assert client.put("/api/project", headers=AUTH, content=json.dumps(project)).json() == project
    assert json.loads(editor.project_path.read_text()) == project
    assert client.get("/api/project", headers=AUTH).json() == project
    after = decode(client.get("/api/frame?t=0.5&view=colour", headers=AUTH))
    h, w = after.shape[:2]
    lab = cv2.cvtColor(after.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    assert np.abs(lab[round(0.4 * h), round(0.3 * w), 1:] - hex_ab(POINT["colour"])).max() < 8  # JPEG's error
    assert not np.array_equal(before, after)
    other = decode(client.get("/api/frame?t=1.5&view=colour", headers=AUTH))  # another frame: no point there
    lab = cv2.cvtColor(other.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    assert np.abs(lab[round(0.4 * h), round(0.3 * w), 1:] - hex_ab(POINT["colour"])).max() > 8


@pytest.mark.parametrize("view", ["gray", "uncertainty", "split"])
def test_every_view_is_a_jpeg_of_the_upright_frame(client, view):
    img = decode(client.get(f"/api/frame?t=0.25&view={view}", headers=AUTH))
    assert img.shape[:2] == (64, 96)
    if view == "gray":
        assert np.abs(img.astype(int) - img[..., :1]).max() <= 3


def test_suggestions_are_up_to_eight_distinct_colours_in_gamut(client):
    colours = client.get("/api/suggest?t=0.5&x=0.5&y=0.5", headers=AUTH).json()["colours"]
    assert 1 <= len(colours) <= 8 and len(set(colours)) == len(colours)
    assert all(len(c) == 7 and c.startswith("#") for c in colours)


def test_without_the_token_or_from_another_host_every_route_is_refused(client):
    for path in ["/", "/api/film", "/api/frame?t=0", "/api/project", "/api/suggest?t=0&x=0&y=0", "/static/editor.js"]:
        assert client.get(path).status_code == 403
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(path, headers={**AUTH, "Host": f"evil.example:{PORT}"}).status_code == 403
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and page.headers["content-security-policy"] == "default-src 'self'"
    assert client.get("/api/film").status_code == 200  # the cookie the page set


@pytest.mark.parametrize(
    "body, words",
    [
        ("not json", "not valid JSON"),
        ('{"vidcolor_project": 2, "points": []}', "newer"),
        ('{"vidcolor_project": 1, "points": [{"t": 1, "x": 2, "y": 0, "colour": "#ffffff"}]}', "'x'"),
        ('{"vidcolor_project": 1, "points": [{"t": 1, "x": 0, "y": 0, "colour": "red"}]}', "hex"),
        ('{"vidcolor_project": 1, "keyframes": [{"t": 1}]}', "image"),
    ],
)
def test_an_invalid_project_gets_400_and_nothing_is_saved(client, editor, body, words):
    client.put("/api/project", headers=AUTH, content=json.dumps({"vidcolor_project": 1, "points": [POINT], "keyframes": []}))
    saved = editor.project_path.read_bytes()
    r = client.put("/api/project", headers=AUTH, content=body)
    assert r.status_code == 400 and words in r.json()["error"]
    assert editor.project_path.read_bytes() == saved


def test_a_corrupt_project_file_is_refused_in_one_line_and_left_alone(tmp_path, tiny_model):
    clip = make_video(tmp_path / "clip.mp4")
    project = tmp_path / "clip.vidcolor.json"
    project.write_text('{"vidcolor_project": 1, "points": [')
    with pytest.raises(VidcolorError, match="left as it is"):
        Editor(clip, project, FrameColourer(Colorizer.load(tiny_model, "cpu")), tmp_path / "o.mp4")
    assert project.read_text() == '{"vidcolor_project": 1, "points": ['


def test_a_body_over_the_limit_is_refused(client):
    r = client.put("/api/project", headers=AUTH, content=b" " * (5 << 20))
    assert r.status_code == 400


@pytest.mark.slow
def test_a_thousand_malformed_or_unauthenticated_requests_never_get_500(client, editor):
    project = {"vidcolor_project": 1, "points": [POINT], "keyframes": []}
    client.put("/api/project", headers=AUTH, content=json.dumps(project))
    saved = editor.project_path.read_bytes()
    rng = random.Random(0)
    junk = ["", "-1", "nan", "inf", "1e309", "x", "0.5", "99999", "[]", "{}", "%00", "1" * 400]
    paths = ["/api/frame", "/api/suggest", "/api/project", "/api/film", "/api/render", "/static/x", "/static/editor.js", "/nope"]
    statuses = set()
    for _ in range(1000):
        path = rng.choice(paths)
        query = "&".join(f"{k}={rng.choice(junk)}" for k in rng.sample(["t", "x", "y", "view", "token"], rng.randint(0, 5)))
        headers = rng.choice([AUTH, {}, {"Authorization": "Bearer " + rng.choice(junk)}, {**AUTH, "Host": "127.0.0.1:1"}])
        method = rng.choice(["GET", "PUT", "POST", "DELETE", "PATCH"]) if path != "/api/render" else "GET"
        body = rng.choice(
            [b"", b"{", b"[]", b'{"vidcolor_project": 1, "points": "x"}', bytes(rng.randrange(256) for _ in range(64))]
        )
        r = client.request(method, f"{path}?{query}", headers=headers, content=body if method in ("PUT", "POST") else None)
        statuses.add(r.status_code)
        assert r.status_code < 500, (method, path, query, r.status_code, r.text)
    assert editor.project_path.read_bytes() == saved
    assert client.get("/api/film", headers=AUTH).status_code == 200  # still up
    assert {400, 403, 404, 405} <= statuses


def test_playing_a_shot_gives_its_frames_coloured_with_the_points_carried(client):
    plain = client.get("/api/shot?t=0.5", headers=AUTH).json()
    assert plain["fps"] == 12 and len(plain["frames"]) == 24  # the clip is one shot
    client.put("/api/project", headers=AUTH, content=json.dumps({"vidcolor_project": 1, "points": [POINT], "keyframes": []}))
    hinted = client.get("/api/shot?t=0.5", headers=AUTH).json()

    def ab_at(b64: str) -> np.ndarray:
        rgb = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        h, w = rgb.shape[:2]
        return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[round(0.4 * h), round(0.3 * w), 1:]

    want = hex_ab(POINT["colour"])
    assert np.abs(ab_at(hinted["frames"][6]) - want).max() < 10  # the point's own frame
    # Carried: the frames before and after are nearer the point's colour than without it.
    for i in (2, 10):
        assert np.abs(ab_at(hinted["frames"][i]) - want).sum() < np.abs(ab_at(plain["frames"][i]) - want).sum()


def test_the_other_frames_of_a_pointed_shot_show_its_points_and_the_next_shot_does_not(tmp_path, tiny_model):
    clip = cut_film(tmp_path / "cut.mkv")  # one shot to 1.5 s, then another
    editor = Editor(clip, tmp_path / "cut.vidcolor.json", FrameColourer(Colorizer.load(tiny_model, "cpu")), tmp_path / "o.mp4")
    client = TestClient(make_app(editor, TOKEN, PORT), base_url=BASE, raise_server_exceptions=False)
    times = (0.25, 1.0, 2.5)  # before the points' frame, after it, the next shot
    plain = [client.get(f"/api/frame?t={t}&view=colour", headers=AUTH) for t in times]
    assert all("x-vidcolor-points-from" not in r.headers for r in plain)
    point = {**POINT, "colour": "#d02020", "size": 0.3}
    client.put("/api/project", headers=AUTH, content=json.dumps({"vidcolor_project": 1, "points": [point], "keyframes": []}))
    pointed = [client.get(f"/api/frame?t={t}&view=colour", headers=AUTH) for t in times]

    def off(response) -> float:  # mean distance of the frame's ab from the point's colour, Lab units
        lab = cv2.cvtColor(decode(response).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        return float(np.abs(lab[..., 1:] - hex_ab(point["colour"])).sum(-1).mean())

    for before, after in zip(plain[:2], pointed[:2], strict=True):  # its shot, both sides: nearer the point's colour
        assert off(after) < off(before) - 1.0
        assert after.headers["x-vidcolor-points-from"] == "0.5000"
    assert np.array_equal(decode(plain[2]), decode(pointed[2])) and "x-vidcolor-points-from" not in pointed[2].headers


def test_a_frame_coloured_by_hand_in_the_project_shows_as_painted_and_a_missing_one_is_named(client, editor):
    t, gray = editor.film.gray(0.5)
    lut = gray_to_lightness_lut()
    rgb = lab_planes_to_rgb(lut[gray], np.full(gray.shape + (2,), (35.0, 20.0), np.float32))
    cv2.imwrite(str(editor.project_path.parent / "k.png"), (rgb[..., ::-1] * 255 + 0.5).astype(np.uint8))
    plain = decode(client.get("/api/frame?t=0.5&view=colour", headers=AUTH))
    project = {"vidcolor_project": 1, "points": [], "keyframes": [{"t": 0.5, "image": "k.png"}]}
    client.put("/api/project", headers=AUTH, content=json.dumps(project))
    keyed = decode(client.get("/api/frame?t=0.5&view=colour", headers=AUTH))

    def ab_error(img: np.ndarray) -> float:  # from the painted colour, where the frame is not too dark or light
        lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        mid = (lab[..., 0] > 25) & (lab[..., 0] < 85)
        return float(np.median(np.abs(lab[..., 1:][mid] - (35.0, 20.0)).sum(-1)))

    assert ab_error(keyed) < 8 < ab_error(plain)
    client.put("/api/project", headers=AUTH, content=json.dumps({**project, "keyframes": [{"t": 0.5, "image": "gone.png"}]}))
    r = client.get("/api/frame?t=0.5&view=colour", headers=AUTH)
    assert r.status_code == 404 and "gone.png not found" in r.json()["error"]


def test_with_points_across_shots_the_scene_cut_back_to_is_shown_played_and_rendered_with_its_points(tmp_path, tiny_model):
    clip = cut_back_film(tmp_path / "film.mkv")  # a scene, another, the first again (from 1.33 s)
    point = {**POINT, "t": 0.25, "colour": "#d02020", "size": 0.3}
    red = hex_ab(point["colour"])
    seen = {}
    for across in (False, True):
        editor = Editor(
            clip, tmp_path / f"{across}.json", FrameColourer(Colorizer.load(tiny_model, "cpu")), tmp_path / "o.mp4", tiny_model,
            points_across_shots=across,
        )  # fmt: skip
        client = TestClient(make_app(editor, TOKEN, PORT), base_url=BASE, raise_server_exceptions=False)
        client.put("/api/project", headers=AUTH, content=json.dumps({"vidcolor_project": 1, "points": [point], "keyframes": []}))
        frame = client.get("/api/frame?t=1.5&view=colour", headers=AUTH)
        played = client.get("/api/shot?t=1.5", headers=AUTH).json()["frames"]
        lab = [cv2.cvtColor(decode_b64(f).astype(np.float32) / 255, cv2.COLOR_RGB2Lab) for f in played]
        seen[across] = (
            float(np.abs(cv2.cvtColor(decode(frame).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:] - red).sum(-1).mean()),
            float(np.mean([np.abs(f[..., 1:] - red).sum(-1).mean() for f in lab])),
            frame.headers.get("x-vidcolor-points-from"),
            "--points-across-shots" in editor.render_command(),
        )
    assert seen[False][2] is None and seen[True][2] == "0.2500"  # the page is told whose points these are
    assert seen[True][0] < seen[False][0] - 1 and seen[True][1] < seen[False][1] - 1  # the frame, the shot played
    assert not seen[False][3] and seen[True][3]  # and the render


def test_vidcolor_edit_refuses_a_missing_film_or_a_corrupt_project_in_one_line(tmp_path, tiny_model, monkeypatch, capsys):
    import sys

    from vidcolor.cli import main

    clip = make_video(tmp_path / "clip.mp4")
    (tmp_path / "clip.vidcolor.json").write_text("{broken")
    for args, words in (([str(tmp_path / "none.mp4")], "not found"), ([str(clip)], "left as it is")):
        monkeypatch.setattr(sys, "argv", ["vidcolor", "edit", *args, "--no-browser", "--model", str(tiny_model)])
        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr().err
        assert e.value.code == 1 and words in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "clip.vidcolor.json").read_text() == "{broken"


def test_render_writes_the_film_with_the_points_and_reports_its_state(client, editor):
    import time

    client.put("/api/project", headers=AUTH, content=json.dumps({"vidcolor_project": 1, "points": [POINT], "keyframes": []}))
    idle = client.get("/api/render", headers=AUTH).json()
    assert idle["state"] == "idle" and "--hints" in idle["command"] and str(editor.project_path) in idle["command"]
    assert client.post("/api/render", headers=AUTH).json()["state"] in ("running", "done")
    assert client.post("/api/render", headers=AUTH).status_code in (200, 409)  # a second one waits its turn
    deadline = time.monotonic() + 120
    while (state := client.get("/api/render", headers=AUTH).json())["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state["state"] == "done" and state["progress"] == 1.0, state
    assert editor.output.is_file()


def test_the_render_runs_on_the_editors_engine(editor, tmp_path, tiny_model):
    """vidcolor edit --engine E renders with --engine E too; the default leaves the option out."""
    assert "--engine" not in editor.render_command()
    fp32 = Editor(editor.film_path, tmp_path / "p.vidcolor.json", editor.colourer, tmp_path / "o.mp4", tiny_model, "fp32")
    command = fp32.render_command()
    assert command[command.index("--engine") + 1] == "fp32"
