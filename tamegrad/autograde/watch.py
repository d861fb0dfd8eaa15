"""``tamegrad grade ... --watch SECONDS``: grade submissions as they arrive, until stopped.

Every SECONDS the submissions are staged again (as a batch stages them) and each
submission folder gets its :func:`.batch.fingerprint`. A folder is graded once its
fingerprint is the same on two scans in a row (a folder still being copied changes between
scans, so it waits) and differs from the version this watcher last handed to the grading
loop; the loop itself (:func:`.batch.grade_all`, the batch's one loop) skips a version an
earlier run already graded. So a submission version is graded once, between one and two
intervals after its last file was written.

SIGINT (Ctrl-C) and SIGTERM stop it: nothing more is recorded after the signal (a
submission still running then is graded by the next run), every grade finished before stays
in the gradebook and grades.csv, a summary and a final line are printed, and the exit code is
0. A lost Dask scheduler ends it with exit code 2, as it ends a batch.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from . import report, submissions
from .batch import (
    Grader,
    GradingError,
    LostScheduler,
    Options,
    _say,
    fingerprint,
    grade_all,
    open_pool,
    start_grader,
    summary,
)


def graded_line(row: dict) -> str:
    """The line printed for each recorded submission: ``graded <student>: <score>/<max> (<status>)``."""
    line = f"graded {report.shown(row['student_id'])}: {row['score']}/{row['max_score']} ({row['status']})"
    return line + (f": {report.shown(row['detail'])}" if row.get("detail") else "")


def _scan(grader: Grader, opts: Options, tmp: Path) -> dict:
    """{student: Submission} as staged now (the first scan reuses the Grader's own intake)."""
    regexp = opts.named_regexp or grader.config.get("FileNameCollectorPlugin", {}).get("named_regexp", "")
    try:
        grader.intake = submissions.intake(Path(opts.submissions), opts.assignment, tmp, regexp)
    except submissions.IntakeError:
        return {}  # nothing submitted yet (or the folder is being replaced): look again later
    subs = submissions.list_submissions(grader.intake, opts.assignment, grader.notebooks)
    return {s.student: s for s in subs if not opts.students or s.student in opts.students}


def _watch(grader: Grader, opts: Options, tmp: Path, pool, interval: float, stop: threading.Event) -> None:
    """Scan every ``interval`` seconds and grade each folder whose fingerprint held still over
    one interval and differs from the version last handed to the loop, until ``stop`` is set."""
    seen: dict[str, str] = {}  # fingerprint of each folder at the previous scan
    handed: dict[str, str] = {}  # the version last handed to the grading loop
    while not stop.is_set():
        subs = _scan(grader, opts, tmp)
        now = {s: fingerprint(sub.folder, grader.version) for s, sub in subs.items()}
        ready = [sub for s, sub in subs.items() if seen.get(s) == now[s] and handed.get(s) != now[s]]
        seen = now
        if ready:
            grade_all(grader, ready, pool, stop=stop.is_set)
            if not stop.is_set():
                handed.update({sub.student: now[sub.student] for sub in ready})
        stop.wait(interval)


def run(opts: Options, interval: float) -> int:
    t0 = time.perf_counter()
    stop = threading.Event()
    why: list[str] = []

    def on_signal(signum, _frame):
        why.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    graded: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tamegrad-watch-") as tmp:

            def on_record(row: dict) -> None:
                graded.append(row["student_id"])
                print(graded_line(row), flush=True)

            try:
                grader = start_grader(opts, Path(tmp))
                grader.on_record = on_record
                with open_pool(opts, os.cpu_count() or 1) as (pool, where):
                    print(
                        f"watching {opts.submissions} every {interval:g} s ({where}); Ctrl-C or SIGTERM stops",
                        flush=True,
                    )
                    _watch(grader, opts, Path(tmp), pool, interval, stop)
            except (LostScheduler, GradingError) as exc:  # cannot start, a scheduler lost or never reached
                _say(f"tamegrad grade: {exc}")
                return 2
            print(summary(grader, t0, where))
            n = len(graded)
            print(
                f"tamegrad grade --watch: stopped by {why[0] if why else 'request'}; {n} submission"
                f"{'s' if n != 1 else ''} graded while watching; every finished grade is recorded in "
                f"{grader.grades_path} and the gradebook",
                flush=True,
            )
            return 0
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
