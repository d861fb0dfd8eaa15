"""`tamegrad similarity`: a copy with renamed variables and reordered functions is flagged
against its original; independent correct solutions written differently are not; the report
shows answer code only (never the instructor's solution or hidden tests) and escapes it."""

from __future__ import annotations

import nbformat
import pytest

from tamegrad.autograde import similarity

from .grade_fixtures.similarity import corpus

ASSIGNMENT = "clip"


def _notebook(answers: list[str], tests: bool = False):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import math\nimport numpy as np"))
    for i, code in enumerate(answers):
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["nbgrader"] = {
            "solution": True,
            "grade": False,
            "grade_id": f"task{i}",
            "locked": False,
            "schema_version": 3,
        }
        nb.cells.append(cell)
        test = nbformat.v4.new_code_cell(f"assert {corpus.INSTRUCTOR_ONLY} is not None  # a hidden test")
        test.metadata["nbgrader"] = {
            "solution": False,
            "grade": True,
            "grade_id": f"test{i}",
            "points": 1,
            "locked": True,
            "schema_version": 3,
        }
        nb.cells.append(test)
    return nb


@pytest.fixture
def course(tmp_path):
    release = tmp_path / "release" / ASSIGNMENT
    release.mkdir(parents=True)
    nbformat.write(_notebook(corpus.RELEASE), release / f"{ASSIGNMENT}.ipynb")
    students = {"alice": corpus.ALICE, "mallory": corpus.MALLORY, **corpus.INDEPENDENT}
    students["eve<img src=x onerror=alert(1)>"] = corpus.RELEASE  # submitted the stubs untouched
    for name, answers in students.items():
        folder = tmp_path / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(_notebook(answers), folder / f"{ASSIGNMENT}.ipynb")
    return tmp_path


def test_the_copy_is_flagged_and_independent_answers_are_not(course):
    answers, release_code = similarity.collect(course / "submitted", course / "release", ASSIGNMENT)
    assert len(answers) == 6
    pairs = similarity.compare(answers, release_code)
    flagged = {frozenset((p.first, p.second)) for p in pairs}
    assert frozenset(("alice", "mallory")) in flagged
    assert pairs[0].score > 0.6 and {pairs[0].first, pairs[0].second} == {"alice", "mallory"}
    independent = ["alice", *corpus.INDEPENDENT]
    for i, a in enumerate(independent):
        for b in independent[i + 1 :]:
            assert frozenset((a, b)) not in flagged, f"{a} and {b} wrote their answers independently"
    # the untouched release shares only boilerplate with everyone: never flagged
    assert not any("eve" in p.first or "eve" in p.second for p in pairs)


def test_report_shows_only_escaped_answer_code(course):
    page = similarity.report(course / "submitted", course / "release", ASSIGNMENT, course / "out")
    text = page.read_text()
    assert "alice ~ mallory" in text or "mallory ~ alice" in text
    assert "<mark>" in text
    assert corpus.INSTRUCTOR_ONLY not in text  # the test cells are never read
    assert "<img" not in text
    assert "http" not in text  # offline: nothing loaded from elsewhere
