"""The editor's project file: validated, written atomically with a backup, never written over when bad."""

from __future__ import annotations

import json

import pytest

from vidcolor.project import Point, Project, ProjectError, default_project_path, load_project, parse, save_project


def test_the_project_sits_beside_the_film_by_default(tmp_path):
    assert default_project_path(tmp_path / "film.mp4") == tmp_path / "film.vidcolor.json"
    assert default_project_path(tmp_path / "reel.2.mkv") == tmp_path / "reel.2.vidcolor.json"


def test_saving_keeps_the_version_before_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "f.vidcolor.json"
    first = Project((Point(1.0, 0.5, 0.5, "#ff0000"),))
    second = Project((Point(2.0, 0.1, 0.9, "#00ff00", 0.05),))
    save_project(path, first)
    save_project(path, second)
    assert load_project(path) == second and parse((tmp_path / "f.vidcolor.json.bak").read_text()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.vidcolor.json", "f.vidcolor.json.bak"]


def test_no_file_yet_is_an_empty_project(tmp_path):
    assert load_project(tmp_path / "none.vidcolor.json") == Project()


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"vidcolor_project": 3}, "newer"),
        ({"vidcolor_project": "1"}, "must be 1"),
        ({"vidcolor_project": 1, "points": {}}, "must be a list"),
        ({"vidcolor_project": 1, "points": [{"t": True, "x": 0, "y": 0, "colour": "#000000"}]}, "'t'"),
        ({"vidcolor_project": 1, "points": [{"t": 1, "x": 0, "y": 0, "colour": "#000000", "size": 2}]}, "'size'"),
        ({"vidcolor_project": 1, "points": [{"t": float("nan"), "x": 0, "y": 0, "colour": "#000000"}]}, "'t'"),
        ([1, 2], "JSON object"),
    ],
)
def test_what_is_wrong_is_said_in_one_line(doc, words):
    with pytest.raises(ProjectError, match=words) as e:
        parse(json.dumps(doc))
    assert "\n" not in str(e.value)


def test_a_bad_file_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "f.vidcolor.json"
    path.write_text('{"vidcolor_project": 9, "points": []}')
    with pytest.raises(ProjectError, match="left as it is"):
        load_project(path)
    assert path.read_text() == '{"vidcolor_project": 9, "points": []}'
