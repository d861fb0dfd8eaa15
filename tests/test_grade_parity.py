"""Scores equal sequential `nbgrader autograde` on the same submissions; runs are idempotent.

The course is graded once (a module fixture); every test that grades again works on its own
copy of that graded course, so that each test passes alone and in any order.
"""

from __future__ import annotations

import shutil
import sqlite3

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


def _gradebook_scores(course):
    """(student, grade cell): (score, needs_manual_grade) from the course's SQLite gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment("fx_square").submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[(sub.student.id, g.name)] = (g.score, g.needs_manual_grade)
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fixture course graded once by ``tamegrad grade``, and a copy graded by
    sequential ``nbgrader autograde`` (the reference): (course, reference, grader's output)."""
    tmp = tmp_path_factory.mktemp("parity")
    course = build.course_with_answers(tmp / "course", STUDENTS)
    ref = tmp / "reference"
    shutil.copytree(course, ref)
    build.run_tool("nbgrader", "autograde", build.ASSIGNMENT, cwd=ref, check=True)
    proc = build.grade(course, course / "submitted", "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course, ref, proc


@pytest.fixture
def regraded_copy(graded, tmp_path):
    """A copy of the graded course, for a test that grades it again."""
    course = tmp_path / "course"
    shutil.copytree(graded[0], course)
    return course


def test_scores_equal_nbgrader_autograde(graded):
    course, ref, proc = graded
    assert "unchanged" not in proc.stdout
    ours, theirs = _gradebook_scores(course), _gradebook_scores(ref)
    assert ours == theirs
    assert len(ours) == 2 * len(STUDENTS)
    # and not trivially: the five students do not all score the same
    rows = build.read_grades(course / "grades.csv")
    assert sorted(float(rows[s]["score"]) for s in STUDENTS) == [0.0, 0.0, 2.0, 3.0, 5.0]
    assert (course / "autograded" / "s1" / "fx_square" / "fx_square.ipynb").is_file()
    assert (course / "feedback" / "s1" / "fx_square" / "fx_square.html").is_file()


def test_a_second_run_regrades_nothing_and_keeps_every_row(regraded_copy):
    course = regraded_copy
    before = build.read_grades(course / "grades.csv")
    proc = build.grade(course, course / "submitted", "--workers", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(STUDENTS)} unchanged submissions" in proc.stdout
    after = build.read_grades(course / "grades.csv")
    assert after == before
    assert (course / "grades.csv").read_text().count("\n") == len(STUDENTS) + 1


def test_a_changed_submission_is_regraded(regraded_copy):
    course = regraded_copy
    build.write_answers(build.release_notebook(course), course / "submitted", "s5", SQUARE_OK, SIG_OK)
    proc = build.grade(course, course / "submitted", "--workers", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(STUDENTS) - 1} unchanged submissions" in proc.stdout
    rows = build.read_grades(course / "grades.csv")
    assert float(rows["s5"]["score"]) == 5.0 and len(rows) == len(STUDENTS)


def _zero_every_grade(course) -> None:
    """Overwrite every automatic score in the gradebook with 0: only a regrade restores them."""
    con = sqlite3.connect(course / "gradebook.db")
    try:
        with con:
            assert con.execute("UPDATE grade SET auto_score = 0").rowcount == 2 * len(STUDENTS)
    finally:
        con.close()


def test_force_regrades_every_submission(graded, regraded_copy):
    course = regraded_copy
    expected = _gradebook_scores(graded[1])  # the reference's
    assert any(score for score, _ in expected.values())  # zeroing the scores is visible
    _zero_every_grade(course)
    # without --force the zeroed scores stay: nothing was submitted again
    proc = build.grade(course, course / "submitted", "--workers", "0")
    assert proc.returncode == 0 and f"{len(STUDENTS)} unchanged submissions" in proc.stdout
    assert all(score == 0 for score, _ in _gradebook_scores(course).values())
    # with --force every submission is graded again, and every score is back
    proc = build.grade(course, course / "submitted", "--workers", "0", "--force", "--out", str(course))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unchanged" not in proc.stdout
    assert _gradebook_scores(course) == expected
    rows = build.read_grades(course / "grades.csv")
    assert sorted(float(rows[s]["score"]) for s in STUDENTS) == [0.0, 0.0, 2.0, 3.0, 5.0]
