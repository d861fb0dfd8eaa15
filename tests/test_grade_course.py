"""`tamegrad grade` on a real assignment of the course (ex06_clipping).

The solution scores full marks, the untouched student version scores zero, and wrong
answers score the same whether or not the submission also replaces numpy's comparisons
and every public helper of ``tamegrad.grading`` (the replacement earns nothing).
"""

from __future__ import annotations

import copy
import shutil
import subprocess

import nbformat
import pytest

from .grade_fixtures import build

pytestmark = pytest.mark.slow

ASSIGNMENT = "ex06_clipping"
PATCH = """
import numpy as _np, tamegrad.grading as _g
for _k in dir(_g):
    if not _k.startswith("_") and callable(getattr(_g, _k)):
        setattr(_g, _k, lambda *a, **k: None)
        globals()[_k] = getattr(_g, _k)
_np.allclose = lambda *a, **k: True
_np.testing.assert_allclose = lambda *a, **k: None
"""


def _assignment():
    """The committed assignment and the course's nbgrader_config; a missing one is a failure."""
    a = ASSIGNMENT
    for path in (build.REPO / "solutions" / a / f"{a}.ipynb", build.REPO / "nbgrader_config.py"):
        assert path.is_file(), f"{path} is missing: the course assignment this test grades must be committed"
    return a


def _wrong(nb, patch: bool):
    """Every function an answer cell defines is replaced by one that returns 0."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and md.get("solution") and not md.get("grade"):
            cell.source += (
                "\nfor _name, _value in list(globals().items()):\n"
                "    if callable(_value) and getattr(_value, '__module__', '') == '__main__' "
                "and not _name.startswith('_'):\n"
                "        globals()[_name] = lambda *a, **k: 0\n"
            )
            if patch:
                cell.source += PATCH
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    a = _assignment()
    course = tmp_path_factory.mktemp("course")
    shutil.copy(build.REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(build.REPO / "solutions" / a, course / "solutions" / a)
    subprocess.run(
        [str(build.VENV_BIN / "nbgrader"), "generate_assignment", a, "--force"],
        cwd=course,
        env=build.env(),
        check=True,
        capture_output=True,
    )
    solution = nbformat.read(course / "solutions" / a / f"{a}.ipynb", as_version=4)
    release = nbformat.read(course / "exercises" / a / f"{a}.ipynb", as_version=4)
    for student, nb in {
        "solved": solution,
        "blank": release,
        "wrong": _wrong(solution, False),
        "wrong_patched": _wrong(solution, True),
    }.items():
        folder = course / "submitted" / student / a
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{a}.ipynb")
    proc = subprocess.run(
        [str(build.VENV_BIN / "tamegrad"), "grade", a, "--submissions", "submitted", "--workers", "2", "--no-progress"],
        cwd=course,
        env=build.env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build.read_grades(course / "grades.csv")


def test_the_solution_scores_full_marks_and_the_blank_version_zero(graded):
    assert graded["solved"]["status"] == "graded", graded["solved"]
    assert float(graded["solved"]["score"]) == float(graded["solved"]["max_score"]) > 0
    assert float(graded["blank"]["score"]) == 0.0


def test_replacing_the_checkers_earns_nothing(graded):
    wrong, patched = graded["wrong"], graded["wrong_patched"]
    assert float(wrong["score"]) < float(wrong["max_score"])
    assert float(patched["score"]) == float(wrong["score"]), (wrong, patched)
    assert wrong["notes"] == ""
