"""Grades where the institution keeps them: nbgrader export plugins for Canvas and Moodle.

    nbgrader export --exporter=tamegrad.autograde.lms.CanvasExport --to canvas.csv \\
        --CanvasExport.roster=roster.csv
    nbgrader export --exporter=tamegrad.autograde.lms.MoodleExport --to moodle.csv \\
        --MoodleExport.roster=roster.csv --MoodleExport.scale=percent

Both write one row per student in the roster and one column per assignment, the score being
nbgrader's (raw score minus the late penalty, never below 0, as ``nbgrader export`` computes it;
0 for a missing submission), as points (``scale=points``, the default) or as a percentage of
the assignment's maximum (``scale=percent``).

The roster maps nbgrader's student ids to the LMS's. It is a CSV with a header and the column
``student_id`` (nbgrader's id) and, as the LMS needs them:

* Canvas: ``name``, ``canvas_id`` (Canvas's numeric user id), ``sis_user_id``, ``sis_login_id``,
  ``section``. Canvas matches a row by any one of ID, SIS User ID or SIS Login ID.
* Moodle: ``first_name``, ``last_name``, ``idnumber``, ``email``. Moodle's import maps one
  identifier column (ID number or email address) to its users; choose it on the import page.

Students in the gradebook but not in the roster are left out with a warning (the LMS could not
match them); roster students with no gradebook entry get 0.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Enum, Unicode

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_IDENTITY = ("First name", "Last name", "ID number", "Email address")


@dataclass(frozen=True)
class Score:
    points: float
    max_points: float

    def value(self, scale: str) -> str:
        """The score as the LMS reads it: points, or 100 * points / max_points."""
        if scale == "percent":
            return f"{100.0 * self.points / self.max_points:.2f}" if self.max_points else "0.00"
        return f"{self.points:g}"


def read_roster(path: str) -> list[dict[str, str]]:
    """The roster's rows, in file order; each must have a ``student_id``."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    missing = [i + 2 for i, row in enumerate(rows) if not (row.get("student_id") or "").strip()]
    if missing:
        raise ValueError(f"{path}: rows {missing} have no student_id")
    return rows


def score(gradebook: Gradebook, assignment, student_id: str) -> Score:
    """nbgrader's score of one submission: max(0, raw score - late penalty); 0 if none."""
    try:
        submission = gradebook.find_submission(assignment.name, student_id)
    except MissingEntry:
        return Score(0.0, assignment.max_score)
    points = max(0.0, submission.score - (submission.late_submission_penalty or 0.0))
    return Score(points, assignment.max_score)


class _LmsExport(ExportPlugin):
    roster = Unicode("roster.csv", help="CSV mapping nbgrader's student_id to the LMS's identifiers").tag(config=True)
    scale = Enum(["points", "percent"], default_value="points", help="points, or percent of the maximum").tag(
        config=True
    )
    default_name = "lms.csv"

    def header(self, assignments) -> list[str]:
        raise NotImplementedError

    def identity(self, row: dict[str, str]) -> list[str]:
        raise NotImplementedError

    def preamble(self, assignments) -> list[list[str]]:
        return []

    def export(self, gradebook: Gradebook) -> None:
        assignments = [a for a in gradebook.assignments if not self.assignment or a.name in self.assignment]
        roster = read_roster(self.roster)
        if self.student:
            roster = [r for r in roster if r["student_id"] in self.student]
        listed = {r["student_id"] for r in roster}
        unmatched = sorted(s.id for s in gradebook.students if s.id not in listed)
        if unmatched:
            self.log.warning("not in the roster %s, left out: %s", self.roster, ", ".join(unmatched))
        dest = self.to or self.default_name
        with open(dest, "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(self.header(assignments))
            out.writerows(self.preamble(assignments))
            for row in roster:
                scores = [score(gradebook, a, row["student_id"]).value(self.scale) for a in assignments]
                out.writerow(self.identity(row) + scores)
        self.log.info("wrote %d students x %d assignments to %s", len(roster), len(assignments), dest)


class CanvasExport(_LmsExport):
    """Canvas's gradebook CSV: the identity columns of a Canvas gradebook export (Student, ID,
    SIS User ID, SIS Login ID, Section), one column per assignment, and the "Points Possible"
    row under the header (the maximum, or 100 with ``scale=percent``). A new column name makes
    Canvas create the assignment on import."""

    default_name = "canvas.csv"

    def header(self, assignments) -> list[str]:
        return [*CANVAS_IDENTITY, *(a.name for a in assignments)]

    def preamble(self, assignments) -> list[list[str]]:
        possible = ["100" if self.scale == "percent" else f"{a.max_score:g}" for a in assignments]
        return [["Points Possible", "", "", "", "", *possible]]

    def identity(self, row: dict[str, str]) -> list[str]:
        return [
            row.get("name", ""),
            row.get("canvas_id", ""),
            row.get("sis_user_id", ""),
            row.get("sis_login_id", ""),
            row.get("section", ""),
        ]


class MoodleExport(_LmsExport):
    """Moodle's grade import CSV: the identity columns of a Moodle grade export (First name,
    Last name, ID number, Email address) and one column per assignment, named as Moodle's export
    names a grade item, "Assignment: NAME (Real)"."""

    default_name = "moodle.csv"

    def header(self, assignments) -> list[str]:
        return [*MOODLE_IDENTITY, *(f"Assignment: {a.name} (Real)" for a in assignments)]

    def identity(self, row: dict[str, str]) -> list[str]:
        return [row.get("first_name", ""), row.get("last_name", ""), row.get("idnumber", ""), row.get("email", "")]
