"""What did the class get wrong? ``tamegrad report ASSIGNMENT`` reads what grading recorded and
writes an offline HTML report with matplotlib figures, and the same numbers as CSV.

It reads three things, all written by grading: the gradebook (each student's score per test cell,
through nbgrader's API), the grader's grade table (each student's status: graded, timeout,
memory, crashed, ...; without it every submission in the gradebook counts as graded), and the
autograded notebooks (the error each failed test cell raised). A failure is grouped by what
failed, the first line of a ``tamegrad.grading`` message ("<what>: wrong.") and its hint; the
inputs, expected values and tracebacks are left out, so no hidden test's code or expected value
reaches the report. Each group links to one example autograded notebook.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_GROUPS = 8  # failure groups shown per test cell


@dataclass(frozen=True)
class Failure:
    """One group of failures of a test cell: the check's ``what`` and its ``hint``."""

    what: str
    hint: str


@dataclass
class CellSummary:
    name: str
    max_points: float
    scores: dict[str, float] = field(default_factory=dict)  # student -> points
    failures: Counter = field(default_factory=Counter)  # Failure -> students
    examples: dict[Failure, str] = field(default_factory=dict)  # Failure -> one student

    @property
    def passed(self) -> int:
        return sum(1 for s in self.scores.values() if s >= self.max_points)


@dataclass
class ClassReport:
    assignment: str
    totals: dict[str, float]  # student -> score
    max_score: float
    statuses: Counter
    cells: list[CellSummary]


def failure_of(output: dict) -> Failure:
    """The ``what`` and ``hint`` of an error output: the first line of the message, minus
    ": wrong." / ": not accepted.", and the text after "hint:" up to the next blank line."""
    text = ANSI.sub("", str(output.get("evalue", "")))
    lines = [ln.rstrip() for ln in text.splitlines()]
    first = next((ln.strip() for ln in lines if ln.strip()), "") or output.get("ename", "error")
    what = re.sub(r":\s*(wrong|not accepted)\.?$", "", first)
    hint, collecting = [], False
    for ln in lines:
        if not collecting and ln.strip().startswith("hint:"):
            collecting, ln = True, ln.strip()[len("hint:") :]
        elif collecting and not ln.strip():
            break
        if collecting:
            hint.append(ln.strip())
    if not hint and output.get("ename") not in (None, "AssertionError", "CheckFailed"):
        hint = [f"raised {output.get('ename')}"]  # an error of the student's code, not a failed check
    return Failure(what[:200], " ".join(hint)[:300])


def test_cell_failures(nb) -> dict[str, Failure]:
    """grade_id -> the failure of every test cell of an autograded notebook that raised."""
    found = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                found[meta["grade_id"]] = failure_of(errors[0])
    return found


def read_statuses(table: Path | None) -> dict[str, str]:
    if table is None or not table.is_file():
        return {}
    with open(table, newline="", encoding="utf-8") as fh:
        return {row["student_id"]: row.get("status", "graded") for row in csv.DictReader(fh)}


def collect(gradebook, assignment: str, autograded: Path, table: Path | None = None) -> ClassReport:
    """Everything the report shows, from the gradebook, the grade table and the notebooks."""
    statuses = read_statuses(table)
    record = gradebook.find_assignment(assignment)
    cells: dict[str, CellSummary] = {}
    for notebook in record.notebooks:
        for cell in notebook.grade_cells:
            if cell.cell_type == "code":
                cells[cell.name] = CellSummary(cell.name, cell.max_score)
    totals = {}
    for submission in gradebook.assignment_submissions(assignment):
        student = submission.student.id
        totals[student] = submission.score
        statuses.setdefault(student, "graded")
        for nb_sub in submission.notebooks:
            for grade in nb_sub.grades:
                if grade.name in cells:
                    cells[grade.name].scores[student] = grade.score
            path = autograded / student / assignment / f"{nb_sub.name}.ipynb"
            if path.is_file():
                failures = test_cell_failures(nbformat.read(path, as_version=4))
                for name, failure in failures.items():
                    if name in cells and cells[name].scores.get(student, 0) < cells[name].max_points:
                        cells[name].failures[failure] += 1
                        cells[name].examples.setdefault(failure, path.relative_to(autograded).as_posix())
    return ClassReport(assignment, totals, record.max_score, Counter(statuses.values()), list(cells.values()))


# ------------------------------------------------------------------- output
def _figure(draw) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.style.use("tableau-colorblind10")
    fig, ax = plt.subplots(figsize=(6, 3))
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def write_csv(report: ClassReport, out: Path) -> list[Path]:
    cells_csv, failures_csv, statuses_csv = (
        out / f"{report.assignment}-{n}.csv" for n in ("cells", "failures", "statuses")
    )
    with open(cells_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["test_cell", "max_points", "students", "full_marks", "fraction_full_marks"])
        for c in report.cells:
            n = len(c.scores)
            w.writerow([c.name, f"{c.max_points:g}", n, c.passed, f"{c.passed / n:.3f}" if n else ""])
    with open(failures_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["test_cell", "what", "hint", "students", "example"])
        for c in report.cells:
            for failure, count in c.failures.most_common():
                w.writerow([c.name, failure.what, failure.hint, count, c.examples[failure]])
    with open(statuses_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["status", "students"])
        for status, count in sorted(report.statuses.items()):
            w.writerow([status, count])
    return [cells_csv, failures_csv, statuses_csv]


def render(report: ClassReport, autograded_link: str) -> str:
    e = html.escape
    scores = list(report.totals.values())
    hist = _figure(
        lambda ax: (
            ax.hist(  # up to 20 points, one bar per whole point, centred on it
                scores,
                bins=max(1, min(20, int(report.max_score) + 1)),
                range=(-0.5, report.max_score + 0.5) if report.max_score <= 20 else (0, report.max_score),
                edgecolor="white",
            ),
            ax.set_xlabel(f"score (of {report.max_score:g} points)"),
            ax.set_ylabel("students"),
            ax.yaxis.get_major_locator().set_params(integer=True),
        )
    )
    names = [c.name for c in report.cells]
    fractions = [c.passed / len(c.scores) if c.scores else 0.0 for c in report.cells]
    bars = _figure(
        lambda ax: (
            ax.barh(names[::-1], fractions[::-1]),
            ax.set_xlim(0, 1),
            ax.set_xlabel("fraction of students with full marks"),
        )
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(report.assignment)}: class report</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{e(report.assignment)}: what the class got wrong</h1>",
        f"<p>{len(report.totals)} submissions; mean score "
        f"{(sum(scores) / len(scores) if scores else 0):.2f} of {report.max_score:g}.</p>",
        "<h2>Statuses</h2><table><tr><th>status</th><th>students</th></tr>",
        *(f"<tr><td>{e(s)}</td><td>{n}</td></tr>" for s, n in sorted(report.statuses.items())),
        "</table>",
        f"<h2>Scores</h2><img alt='Histogram of the students\\' total scores' src='data:image/png;base64,{hist}'>",
        f"<h2>Test cells</h2><img alt='Fraction of students with full marks per test cell' "
        f"src='data:image/png;base64,{bars}'>",
    ]
    for c in report.cells:
        n = len(c.scores)
        parts.append(f"<h3>{e(c.name)} ({c.max_points:g} points): {c.passed} of {n} full marks</h3>")
        if not c.failures:
            parts.append("<p>No failures recorded.</p>")
            continue
        parts.append("<table><tr><th>students</th><th>what failed</th><th>hint</th><th>example</th></tr>")
        for failure, count in c.failures.most_common(MAX_GROUPS):
            link = f"{autograded_link}/{c.examples[failure]}"
            parts.append(
                f"<tr><td>{count}</td><td>{e(failure.what)}</td><td>{e(failure.hint)}</td>"
                f"<td><a href='{e(link)}'>{e(c.examples[failure].split('/')[0])}</a></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(report: ClassReport, out: Path, autograded: Path) -> Path:
    """``out/<assignment>-report.html`` and its CSVs; returns the HTML's path."""
    import os

    out.mkdir(parents=True, exist_ok=True)
    write_csv(report, out)
    page = out / f"{report.assignment}-report.html"
    page.write_text(render(report, os.path.relpath(autograded, out)), encoding="utf-8")
    return page
