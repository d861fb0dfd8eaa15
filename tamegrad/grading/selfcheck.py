"""Self-check in any front end: the visible tests record their outcome, and a last cell
prints a table of it.

A test cell wraps its *visible* tests in a context manager::

    with gr.task("task4", points=3, answers=("batchnorm_backward",)):
        ...visible checks...
    ### BEGIN HIDDEN TESTS (after the block: never recorded, absent from the student's copy)

On leaving the block the task is recorded as passed, or as failed with the first line of
the exception's message; the exception still propagates, so the cell fails as before and
nbgrader counts it. ``gr.summary()`` prints, for every task of the assignment, its points
and whether its visible tests passed, failed, or have not run yet in this session. A task
whose answer was redefined after its tests ran (its answer cell re-run: the name now
points to another function object) shows "not run yet", since the old result no longer
applies. The summary only reads these records: it runs no test and earns no points.
"""

from __future__ import annotations

import sys
import textwrap

from .failure import CheckFailed
from .ladder import load
from .session import SESSION, Record

PASSED, FAILED, NOT_RUN = "passed", "failed", "not run yet"

#: the width of the summary table
TABLE_WIDTH = 88


class task:
    """``with gr.task("task4", points=3, answers=("batchnorm_backward",)):`` around a task's
    visible tests records whether they passed (see the module docstring)."""

    def __init__(self, name: str, points: float, answers: tuple[str, ...] | list[str] = ()):
        self.name, self.points = name, points
        self.answers = (answers,) if isinstance(answers, str) else tuple(answers)
        self.namespace = sys._getframe(1).f_globals  # the notebook's namespace, where the answers live

    def __enter__(self) -> "task":
        self.seen = {a: self.namespace.get(a) for a in self.answers}
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt, SystemExit: the tests did not finish, record nothing
        message = "" if exc is None else _first_line(exc)
        SESSION.records[self.name] = Record(SESSION.assignment, self.name, self.points, exc is None, message, self.seen, self.namespace)
        return False  # never swallow the failure: the cell must fail for nbgrader too


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0].strip()
    if isinstance(exc, CheckFailed):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def status(record: Record | None) -> tuple[str, str]:
    """(passed / failed / not run yet, a note) for a task's record."""
    if record is None:
        return NOT_RUN, ""
    changed = [a for a, obj in record.answers.items() if record.namespace.get(a) is not obj]
    if changed:
        return NOT_RUN, f"{', '.join(changed)} changed after the test ran: run the test cell again"
    if record.passed:
        return PASSED, ""
    return FAILED, record.message


def results(assignment: str | None = None) -> list[dict]:
    """One row per task: task, title, points, status, note (what :func:`summary` prints).
    The tasks are those of the assignment's hint file, in its order, then any other
    task recorded in this session."""
    assignment = assignment or SESSION.assignment
    declared = _declared(assignment)
    recorded = {t: r for t, r in SESSION.records.items() if r.assignment == assignment}
    names = list(declared) + [t for t in recorded if t not in declared]
    rows = []
    for name in names:
        record = recorded.get(name)
        state, note = status(record)
        points = declared.get(name, {}).get("points", record.points if record else 0)
        rows.append({"task": name, "title": declared.get(name, {}).get("title", ""), "points": points,
                     "status": state, "note": note})
    return rows


def _declared(assignment: str | None) -> dict:
    if not assignment:
        return {}
    if assignment in SESSION.declared:
        return SESSION.declared[assignment]
    try:
        return load(assignment)
    except ValueError:  # an assignment without a hint file: list the recorded tasks only
        return {}


def _points(p) -> str:
    return f"{p:g}" if isinstance(p, (int, float)) else str(p)


def summary(assignment: str | None = None) -> None:
    """Print the "Check your work" table of this session's visible tests."""
    rows = results(assignment)
    assignment = assignment or SESSION.assignment
    lines = [f"Check your work{f': {assignment}' if assignment else ''} (visible tests, this kernel session)", ""]
    head = f"{'task':<7} {'points':>6}  {'visible tests':<13}  what"
    lines += [head, "-" * TABLE_WIDTH]
    for r in rows:
        what = r["note"] if r["note"] else r["title"]
        first = f"{r['task']:<7} {_points(r['points']):>6}  {r['status']:<13}  "
        wrapped = textwrap.wrap(what, width=TABLE_WIDTH - len(first)) or [""]
        lines.append(first + wrapped[0])
        lines += [" " * len(first) + w for w in wrapped[1:]]
    count = {s: sum(r["status"] == s for r in rows) for s in (PASSED, FAILED, NOT_RUN)}
    earned = sum(r["points"] for r in rows if r["status"] == PASSED)
    total = sum(r["points"] for r in rows)
    lines += ["", f"{count[PASSED]} passed, {count[FAILED]} failed, {count[NOT_RUN]} not run yet: the visible tests "
              f"of {_points(earned)} of {_points(total)} points pass."]
    if count[FAILED] or count[NOT_RUN]:
        lines.append(textwrap.fill("Run a failed or not-run task's answer cell and then its test cell, or restart "
                                   "and run all cells (a run stops at the first failing test cell).",
                                   width=TABLE_WIDTH))
    lines.append(textwrap.fill("Hidden tests run when your work is graded: passing the visible tests is necessary, "
                               "not sufficient.", width=TABLE_WIDTH))
    print("\n".join(lines))
