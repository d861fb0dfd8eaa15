"""Canvas and Moodle exports, written by nbgrader's own `nbgrader export --exporter=...`, against
samples of each format (tests/grade_fixtures/lms/) and against the scores in the gradebook."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from .grade_fixtures import build

SAMPLES = Path(__file__).parent / "grade_fixtures" / "lms"
ROSTER = """student_id,name,canvas_id,sis_user_id,sis_login_id,section,first_name,last_name,idnumber,email
alice,"Liddell, Alice",101,S-A,alice,Sec 1,Alice,Liddell,S-A,alice@example.edu
bob,"Builder, Bob",102,S-B,bob,Sec 2,Bob,Builder,S-B,bob@example.edu
carol,"Danvers, Carol",103,S-C,carol,Sec 1,Carol,Danvers,S-C,carol@example.edu
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A gradebook with two assignments: alice 7.5/10 and 3/4, bob 10/10 with a late penalty of
    2 on ex02 (3 - 2 = 1), carol never submitted; dave is graded but not in the roster."""
    root = tmp_path_factory.mktemp("lms")
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.root = '.'\n")
    (root / "roster.csv").write_text(ROSTER)
    code = """
from nbgrader.api import Gradebook
gb = Gradebook("sqlite:///gradebook.db")
for name, cells in (("ex01", {"t1": 4, "t2": 6}), ("ex02", {"t1": 4})):
    gb.add_assignment(name)
    gb.add_notebook(name, name)
    for cell, points in cells.items():
        gb.add_grade_cell(cell, name, name, max_score=points, cell_type="code")
for student in ("alice", "bob", "carol", "dave"):
    gb.add_student(student)
def grade(assignment, student, scores, penalty=0.0):
    gb.add_submission(assignment, student)
    for cell, points in scores.items():
        g = gb.find_grade(cell, assignment, assignment, student)
        g.auto_score = points
    gb.find_submission_notebook(assignment, assignment, student).late_submission_penalty = penalty
    gb.db.commit()
grade("ex01", "alice", {"t1": 4, "t2": 3.5})
grade("ex02", "alice", {"t1": 3})
grade("ex01", "bob", {"t1": 4, "t2": 6})
grade("ex02", "bob", {"t1": 3}, penalty=2.0)
grade("ex01", "dave", {"t1": 1, "t2": 0})
gb.close()
"""
    build.run_tool("python", "-c", code, cwd=root, check=True)
    return root


def export(course: Path, exporter: str, *options: str) -> list[list[str]]:
    dest = course / f"{exporter}.csv"
    build.run_tool(
        "nbgrader",
        "export",
        f"--exporter=tamegrad.autograde.lms.{exporter}",
        "--to",
        dest,
        f"--{exporter}.roster=roster.csv",
        *options,
        cwd=course,
        check=True,
    )
    with open(dest, newline="") as fh:
        return list(csv.reader(fh))


def sample(name: str) -> list[list[str]]:
    with open(SAMPLES / name, newline="") as fh:
        return list(csv.reader(fh))


def test_canvas_export_has_canvas_layout_and_the_gradebook_scores(course):
    rows = export(course, "CanvasExport")
    layout = sample("canvas_sample.csv")
    assert rows[0][:5] == layout[0][:5]  # the identity columns, in Canvas's order
    assert rows[0][5:] == ["ex01", "ex02"]
    assert rows[1][0].strip() == layout[1][0].strip() == "Points Possible"
    assert rows[1][5:] == ["10", "4"]
    body = {r[3]: r for r in rows[2:]}  # by SIS Login ID
    assert set(body) == {"alice", "bob", "carol"}  # dave is not in the roster: left out
    assert body["alice"] == ["Liddell, Alice", "101", "S-A", "alice", "Sec 1", "7.5", "3"]
    assert body["bob"][5:] == ["10", "1"]  # late penalty subtracted, as nbgrader export does
    assert body["carol"][5:] == ["0", "0"]  # no submission: 0


def test_moodle_export_has_moodle_layout_and_percentages(course):
    rows = export(course, "MoodleExport", "--MoodleExport.scale=percent")
    layout = sample("moodle_sample.csv")
    assert rows[0][:4] == layout[0][:4]
    assert rows[0][4:] == ["Assignment: ex01 (Real)", "Assignment: ex02 (Real)"]
    assert layout[0][4].startswith("Assignment: ") and layout[0][4].endswith(" (Real)")
    body = {r[3]: r for r in rows[1:]}  # by email address
    assert body["alice@example.edu"] == ["Alice", "Liddell", "S-A", "alice@example.edu", "75.00", "75.00"]
    assert body["bob@example.edu"][4:] == ["100.00", "25.00"]
    assert body["carol@example.edu"][4:] == ["0.00", "0.00"]


def test_a_roster_row_without_student_id_is_a_clear_error(course, tmp_path):
    (course / "bad_roster.csv").write_text("student_id,name\n,Nobody\n")
    result = build.run_tool(
        "nbgrader",
        "export",
        "--exporter=tamegrad.autograde.lms.CanvasExport",
        "--to",
        tmp_path / "x.csv",
        "--CanvasExport.roster=bad_roster.csv",
        cwd=course,
    )
    assert result.returncode != 0
    assert "rows [2] have no student_id" in result.stdout + result.stderr
