"""`tamegrad report` on a graded batch whose answers are known: the counts must be exact, the
failures grouped by what failed, and nothing of the hidden tests shown."""

from __future__ import annotations

import csv

import pytest

from .grade_fixtures import build

pytestmark = pytest.mark.slow

RIGHT_SQUARE = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2"
WRONG_SQUARE = "def square(x):\n    return np.asarray(x, dtype=np.float64) * 2"
RIGHT_SIGMOID = (
    "def sigmoid_grad(z):\n    s = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))\n    return s * (1.0 - s)"
)
WRONG_SIGMOID = "def sigmoid_grad(z):\n    return np.full(np.shape(z), 0.2)"
CLASS = {  # student: (square, sigmoid_grad); None leaves the release's stub
    "ann": (RIGHT_SQUARE, RIGHT_SIGMOID),
    "ben": (RIGHT_SQUARE, RIGHT_SIGMOID),
    "cat": (RIGHT_SQUARE, WRONG_SIGMOID),
    "dan": (RIGHT_SQUARE, WRONG_SIGMOID),
    "eva": (None, None),
    "fay": (WRONG_SQUARE, RIGHT_SIGMOID),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    course = build.course_with_answers(root / "course", CLASS, root / "submitted")
    result = build.grade(course, root / "submitted", "--workers", "2", "--out", str(root / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tamegrad report fx_square" in result.stdout  # the pointer at the end of grading
    report = build.run_tool(
        "tamegrad", "report", build.ASSIGNMENT, "--course", course, "--out", root / "out", cwd=course
    )
    assert report.returncode == 0, report.stdout + report.stderr
    return root / "out" / "reports"


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_counts_per_test_cell_are_exact(graded):
    cells = {r["test_cell"]: r for r in rows(graded / "fx_square-cells.csv")}
    assert cells["test_square"]["students"] == "6" and cells["test_square"]["full_marks"] == "4"
    assert cells["test_sigmoid_grad"]["students"] == "6" and cells["test_sigmoid_grad"]["full_marks"] == "3"
    statuses = {r["status"]: r["students"] for r in rows(graded / "fx_square-statuses.csv")}
    assert statuses == {"graded": "6"}


def test_failures_are_grouped_by_what_failed(graded):
    failures = rows(graded / "fx_square-failures.csv")
    by_cell = {}
    for r in failures:
        by_cell.setdefault(r["test_cell"], []).append(r)
    sigmoid = sorted(by_cell["test_sigmoid_grad"], key=lambda r: -int(r["students"]))
    assert [int(r["students"]) for r in sigmoid] == [2, 1]  # cat and dan fail alike; eva's stub raises
    assert sigmoid[0]["example"].split("/")[0] in {"cat", "dan"}
    assert "NotImplementedError" in sigmoid[1]["what"] + sigmoid[1]["hint"]
    square = by_cell["test_square"]
    assert sorted(int(r["students"]) for r in square) == [1, 1]  # fay's wrong answer, eva's stub
    assert sum(int(r["students"]) for r in failures) == 5


def test_the_page_links_examples_and_shows_no_hidden_test(graded):
    page = (graded / "fx_square-report.html").read_text()
    assert "data:image/png;base64," in page  # the figures are inside the page: it works offline
    assert "HIDDEN-MARKER" not in page and "hidden_x" not in page and "assert np.allclose" not in page
    assert "autograded/cat/fx_square/fx_square.ipynb" in page or "autograded/dan/fx_square/fx_square.ipynb" in page
    assert "<script" not in page and "src=\x27http" not in page and "href=\x27http" not in page
