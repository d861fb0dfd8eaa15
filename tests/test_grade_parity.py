"""Scores equal sequential `nbgrader autograde` on the same submissions; runs are idempotent."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .grade_fixtures import build

pytestmark = pytest.mark.slow

SQUARE_OK = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2"
SQUARE_BAD = "def square(x):\n    return np.asarray(x, dtype=np.float64) * 2"
SIG_OK = (
    "def sigmoid_grad(z):\n    s = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))\n    return s * (1.0 - s)"
)
SIG_HALF = "def sigmoid_grad(z):\n    return 0.25 * np.ones_like(np.asarray(z, dtype=np.float64))"  # visible test only
STUDENTS = {
    "s1": (SQUARE_OK, SIG_OK),
    "s2": (SQUARE_OK, SIG_HALF),
    "s3": (SQUARE_BAD, SIG_OK),
    "s4": (None, None),
    "s5": (SQUARE_BAD, SIG_HALF),
}


def _gradebook_scores(db_url):
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url) as gb:
        for sub in gb.find_assignment("fx_square").submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[(sub.student.id, g.name)] = (g.score, g.needs_manual_grade)
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    course = build.make_course(tmp / "course")
    release = build.release_notebook(course)
    for student, (sq, sig) in STUDENTS.items():
        build.write_answers(release, course / "submitted", student, sq, sig)
    # the reference: nbgrader autograde, sequential, on a copy of the course
    ref = tmp / "reference"
    shutil.copytree(course, ref)
    subprocess.run(
        [str(build.VENV_BIN / "nbgrader"), "autograde", "fx_square"],
        cwd=ref,
        env=build.env(),
        check=True,
        capture_output=True,
    )
    return course, ref


def test_scores_equal_nbgrader_autograde(course):
    course, ref = course
    proc = build.grade(course, course / "submitted", "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours = _gradebook_scores(f"sqlite:///{course / 'gradebook.db'}")
    theirs = _gradebook_scores(f"sqlite:///{ref / 'gradebook.db'}")
    assert ours == theirs
    assert len(ours) == 2 * len(STUDENTS)
    # and not trivially: the five students do not all score the same
    rows = build.read_grades(course / "grades.csv")
    assert sorted(float(rows[s]["score"]) for s in STUDENTS) == [0.0, 0.0, 2.0, 3.0, 5.0]
    assert (course / "autograded" / "s1" / "fx_square" / "fx_square.ipynb").is_file()
    assert (course / "feedback" / "s1" / "fx_square" / "fx_square.html").is_file()


def test_a_second_run_regrades_nothing_and_keeps_every_row(course):
    course, _ = course
    before = build.read_grades(course / "grades.csv")
    proc = build.grade(course, course / "submitted", "--workers", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(STUDENTS)} unchanged submissions" in proc.stdout
    after = build.read_grades(course / "grades.csv")
    assert after == before
    assert (course / "grades.csv").read_text().count("\n") == len(STUDENTS) + 1


def test_a_changed_submission_is_regraded_and_force_regrades_all(course):
    course, _ = course
    release = build.release_notebook(course)
    build.write_answers(release, course / "submitted", "s5", SQUARE_OK, SIG_OK)
    proc = build.grade(course, course / "submitted", "--workers", "0")
    assert proc.returncode == 0
    assert f"{len(STUDENTS) - 1} unchanged submissions" in proc.stdout
    rows = build.read_grades(course / "grades.csv")
    assert float(rows["s5"]["score"]) == 5.0 and len(rows) == len(STUDENTS)
    stamp = rows["s1"]["graded_at"]
    proc = build.grade(course, course / "submitted", "--workers", "0", "--force", "--out", str(course))
    assert proc.returncode == 0 and "unchanged" not in proc.stdout
    rows = build.read_grades(course / "grades.csv")
    assert len(rows) == len(STUDENTS) and float(rows["s1"]["score"]) == 5.0
    assert rows["s1"]["graded_at"] >= stamp
