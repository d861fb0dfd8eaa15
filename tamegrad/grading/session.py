"""The state of one kernel session: which assignment is open, the hints shown so far,
and the outcome of every visible test run. It lives in this module, so re-running an
exercise's setup cell keeps it and restarting the kernel clears it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Record:
    """The outcome of one task's visible tests, as last run."""

    assignment: str | None  # the session's assignment when the tests ran
    task: str
    points: float
    passed: bool
    message: str  # the first line of the first failure ("" when passed)
    answers: dict  # answer name -> the object it named when the tests ran (None if undefined)
    namespace: dict  # where the answers are looked up again at summary time


@dataclass
class Session:
    assignment: str | None = None
    declared: dict = field(default_factory=dict)  # assignment -> its tasks (from the hint file)
    hint_levels: dict = field(default_factory=dict)  # (assignment, task) -> last level shown
    records: dict = field(default_factory=dict)  # task -> Record


SESSION = Session()


def reset() -> None:
    """Forget everything (what a kernel restart does); for tests."""
    SESSION.assignment = None
    SESSION.declared.clear()
    SESSION.hint_levels.clear()
    SESSION.records.clear()
