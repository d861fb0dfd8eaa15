"""``grades.csv`` and the closing summary.

One row per (student, assignment), merged into the existing file: grading again
replaces a row and never duplicates or drops one. Columns: ``student_id, assignment,
score, max_score, status`` first, then ``raw_score, late_penalty, needs_manual_grade,
detail, notes, sandbox, fingerprint, graded_at``, then one column per graded cell named
``<notebook>/<grade_id>``.
"""

from __future__ import annotations

import csv
import os
import statistics
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

FIXED = ["student_id", "assignment", "score", "max_score", "status", "raw_score", "late_penalty",
         "needs_manual_grade", "detail", "notes", "sandbox", "fingerprint", "graded_at"]
STATUS_MEANING = {
    "graded": "ran to the end (wrong answers included)",
    "timeout": "a cell ran past the time limit; it was interrupted, the rest still ran",
    "memory": "ran out of memory",
    "crashed": "the kernel died (os._exit, a segfault, ...); cells that did not run score 0",
    "invalid": "not gradable: the notebook is not valid JSON or not a notebook, or the student id "
               "cannot be stored by nbgrader (the reason is in 'detail'); 0",
    "missing": "no notebook submitted; 0",
    "error": "the grader itself failed on this submission (not the student's doing)",
}


def read(path: Path) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        return [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def write(path: Path, rows: list[dict], cell_columns: list[str]) -> None:
    """Write all rows atomically (a crash mid-write leaves the old file)."""
    columns = FIXED + [c for c in cell_columns if c not in FIXED]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    rows = sorted(rows, key=lambda r: (r.get("assignment", ""), r.get("student_id", "")))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".grades-", suffix=".csv", dir=path.parent)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k, "")) for k in columns})
    os.replace(tmp, path)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return ""
    return value


class NotOurs(Exception):
    """The file exists and was not written by ``tamegrad grade``."""


def written_by_us(columns: list[str]) -> bool:
    """Whether a CSV header is this module's (it starts with ``FIXED[:5]``). nbgrader
    export's ``grades.csv`` starts ``assignment, duedate, timestamp, student_id``."""
    return columns[:5] == FIXED[:5]


class Table:
    """The rows of grades.csv, keyed by (student_id, assignment).

    An existing file that ``tamegrad grade`` did not write (``nbgrader export --to
    grades.csv`` writes the same name with other columns) is never overwritten:
    :class:`NotOurs` is raised instead.
    """

    def __init__(self, path: Path):
        self.path = path
        columns, rows = read(path)
        if path.is_file() and path.stat().st_size and not written_by_us(columns):
            raise NotOurs(
                f"{path} exists and was not written by tamegrad grade (its columns begin "
                f"{', '.join(columns[:4]) or '(none)'}; nbgrader export writes grades.csv too). It is left "
                "alone: move it, or choose another file with --grades FILE.")
        self.cell_columns = [c for c in columns if c not in FIXED]
        self.rows = {(r["student_id"], r["assignment"]): r for r in rows}

    def get(self, student: str, assignment: str) -> dict | None:
        return self.rows.get((student, assignment))

    def put(self, row: dict, cell_columns: list[str]) -> None:
        for c in cell_columns:
            if c not in self.cell_columns:
                self.cell_columns.append(c)
        self.rows[(row["student_id"], row["assignment"])] = row

    def save(self) -> None:
        write(self.path, list(self.rows.values()), self.cell_columns)


def shown(text) -> str:
    """``text`` safe to print on a terminal: every control or format character (ESC of
    an ANSI sequence, carriage return, line break, bidirectional override) becomes a
    visible escape such as ``\\x1b`` or ``\\u202e``, so a student's file or folder name
    cannot move the cursor, recolour or forge a line of the summary."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def summary(rows: list[dict], *, assignment: str, seconds: float, workers: str, sandbox: str,
            out: Path, skipped: int, intake_notes: list[str] = (), grades: Path | None = None) -> str:
    mine = [r for r in rows if r["assignment"] == assignment]
    counts = Counter(r["status"] for r in mine)
    scores = [float(r["score"]) for r in mine if r.get("score") not in ("", None)]
    max_score = next((r["max_score"] for r in mine if r.get("max_score") not in ("", None)), "?")
    lines = [f"tamegrad grade {assignment}: {len(mine)} students, {seconds:.1f} s, {workers}"]
    lines.append(f"  sandbox: {sandbox}")
    if skipped:
        lines.append(f"  {skipped} unchanged submissions kept from the last run (--force regrades them)")
    for status in STATUS_MEANING:
        if counts.get(status):
            lines.append(f"  {status:8s} {counts[status]:4d}  {STATUS_MEANING[status]}")
    if scores:
        lines.append(f"  score: mean {statistics.fmean(scores):.2f}, median {statistics.median(scores):g}, "
                     f"min {min(scores):g}, max {max(scores):g} (out of {max_score})")
    for note in list(intake_notes)[:10]:
        lines.append(f"  intake: {shown(note)[:200]}")
    if len(intake_notes) > 10:
        lines.append(f"  intake: ... and {len(intake_notes) - 10} more")
    odd = [r for r in mine if r["status"] != "graded" or r.get("notes")]
    for r in odd[:30]:
        why = r.get("detail") or r.get("notes") or ""
        lines.append(f"  - {shown(r['student_id'])[:80]}: {r['status']}, {r.get('score', '')}  {shown(why)[:160]}")
    if len(odd) > 30:
        lines.append(f"  ... and {len(odd) - 30} more (see grades.csv)")
    lines.append(f"  grades: {grades or out / 'grades.csv'}; notebooks: {out / 'autograded'}; feedback: {out / 'feedback'}")
    return "\n".join(lines)
