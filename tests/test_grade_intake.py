"""Intake and bookkeeping, end to end: one batch of the fixture course in which every
student folder gets a row (odd ids included), links never travel, a garbage timestamp is
graded with a note, and the summary cannot be forged by a name."""

from __future__ import annotations

import os

import nbformat
import pytest

from .grade_fixtures import build

pytestmark = pytest.mark.slow

SQUARE = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2\n"
SIGMOID = ("def sigmoid_grad(z):\n    s = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))\n"
           "    return s * (1.0 - s)\n")
READ_LINK = SQUARE + ("try:\n    print('LEAKED', open('peek.txt').read()[:80])\nexcept OSError as exc:\n"
                      "    print('no peek', type(exc).__name__)\n")
FORGED = "evil\x1b[2K\rtamegrad grade fx_square: 1 students"
GRADED = {"zoë ünïcødé": 5, "-leading-dash": 5, "ann lee": 5, "link_peek": 5, "late_garbage": 5, "marker_text": 5}
MARKER = SQUARE + "# I saw '### BEGIN HIDDEN TESTS' in the instructors' notes\n"
INVALID = {"x" * 129: "at most 128", FORGED: "control characters", "star*": "glob patterns"}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intake")
    course = build.make_course(tmp / "course")
    release = build.release_notebook(course)
    incoming = tmp / "incoming"
    for student in list(GRADED) + list(INVALID):
        answer = {"link_peek": READ_LINK, "marker_text": MARKER}.get(student, SQUARE)
        build.write_answers(release, incoming, student, answer, SIGMOID)
    peek = incoming / "link_peek" / build.ASSIGNMENT / "peek.txt"
    peek.symlink_to(course / "solutions" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb")
    (incoming / "late_garbage" / build.ASSIGNMENT / "timestamp.txt").write_text("the day after the deadline")
    (incoming / "misnamed" / "fx_Square").mkdir(parents=True)
    proc = build.grade(course, incoming, "--workers", "1")
    return proc, build.read_grades(course / "grades.csv"), course


def test_every_folder_has_a_row(batch):
    proc, grades, _ = batch
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(grades) == sorted(list(GRADED) + list(INVALID) + ["misnamed"])
    assert grades["misnamed"]["status"] == "missing" and "found: fx_Square" in grades["misnamed"]["notes"]
    for student, score in GRADED.items():
        assert grades[student]["status"] == "graded", grades[student]
        assert float(grades[student]["score"]) == score, grades[student]
    for student, why in INVALID.items():
        assert grades[student]["status"] == "invalid" and why in grades[student]["detail"], grades[student]
        assert float(grades[student]["score"]) == 0.0


def test_links_do_not_travel_and_garbage_timestamps_are_noted(batch):
    _, grades, course = batch
    assert "peek.txt is a symbolic link" in grades["link_peek"]["notes"]
    autograded = course / "autograded" / "link_peek" / build.ASSIGNMENT
    assert not (autograded / "peek.txt").exists()
    nb = nbformat.read(autograded / f"{build.ASSIGNMENT}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "LEAKED" not in printed and "no peek FileNotFoundError" in printed, printed
    assert "timestamp.txt cannot be read as a date" in grades["late_garbage"]["notes"]
    assert float(grades["late_garbage"]["late_penalty"] or 0) == 0.0


def test_the_summary_shows_names_escaped(batch):
    proc, _, _ = batch
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    assert "evil\\x1b[2K\\x0dtamegrad" in proc.stdout
    assert sum(line.startswith("tamegrad grade fx_square:") for line in proc.stdout.splitlines()) == 1
    assert os.linesep not in FORGED
