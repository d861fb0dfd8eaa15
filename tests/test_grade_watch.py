"""``tamegrad grade --watch``: submissions added or changed while it runs are graded once per
version, a folder still being copied waits, and Ctrl-C (SIGINT) leaves every grade recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import nbformat
import pytest

from .grade_fixtures import build
from .test_grade_parity import SIG_HALF, SIG_OK, SQUARE_BAD, SQUARE_OK

pytestmark = pytest.mark.slow


def _wait(pred, timeout: float, what: str, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the watcher exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _graded(out_path) -> Counter:
    lines = out_path.read_text().splitlines() if out_path.exists() else []
    return Counter(line.split()[1].rstrip(":") for line in lines if line.startswith("graded "))


def _gradebook(course) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(build.ASSIGNMENT).submissions}


def test_watch_grades_each_version_once_and_waits_for_a_folder_being_copied(tmp_path):
    course = build.make_course(tmp_path / "course")
    release = build.release_notebook(course)
    inbox = tmp_path / "inbox"
    build.write_answers(release, inbox, "s1", SQUARE_OK, SIG_OK)
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    cmd = [str(build.VENV_BIN / "tamegrad"), "grade", build.ASSIGNMENT, "--submissions", str(inbox)]
    cmd += ["--course", str(course), "--no-progress", "--workers", "0", "--watch", "1"]
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen(cmd, cwd=course, env=build.env(), stdout=fo, stderr=fe)
    with build.reaped(proc):
        _wait(lambda: _graded(out)["s1"] == 1, 180, "s1 to be graded", proc)
        # a new submission while it runs
        build.write_answers(release, inbox, "s2", SQUARE_OK, SIG_HALF)
        _wait(lambda: _graded(out)["s2"] == 1, 180, "s2 to be graded", proc)

        # a folder still being copied: its notebook grows for 4 s (4 intervals), then is complete
        nb = nbformat.read(inbox / "s1" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "square":
                cell.source = SQUARE_BAD
        full = nbformat.writes(nb)
        folder = inbox / "s3" / build.ASSIGNMENT
        folder.mkdir(parents=True)
        target = folder / f"{build.ASSIGNMENT}.ipynb"
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < 4.0:
            k += 1
            target.write_text(full[: min(len(full) - 1, len(full) * k // 16)])
            assert _graded(out)["s3"] == 0, "a half-copied folder was graded"
            time.sleep(0.3)
        assert _graded(out)["s3"] == 0, "a half-copied folder was graded"
        rows = build.read_grades(course / "grades.csv")
        assert "s3" not in rows
        target.write_text(full)
        json.loads(target.read_text())
        _wait(lambda: _graded(out)["s3"] == 1, 180, "s3 to be graded", proc)

        # a changed submission: graded again, once
        build.write_answers(release, inbox, "s2", SQUARE_OK, SIG_OK)
        _wait(lambda: _graded(out)["s2"] == 2, 180, "the new s2 to be graded", proc)
        time.sleep(3.0)  # three more scans: nothing is graded again
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    text, log = out.read_text(), err.read_text()
    assert proc.returncode == 0, text + log
    assert "Traceback" not in log, log
    assert _graded(out) == Counter({"s1": 1, "s2": 2, "s3": 1}), text
    final = text.strip().splitlines()[-1]
    assert final.startswith("tamegrad grade --watch: stopped by SIGINT; 4 submissions graded"), final

    rows = build.read_grades(course / "grades.csv")
    assert sorted(rows) == ["s1", "s2", "s3"]
    scores = {s: float(r["score"]) for s, r in rows.items()}
    assert scores["s1"] == 5.0 and scores["s2"] == 5.0 and 0.0 < scores["s3"] < 5.0, scores
    assert all(r["status"] == "graded" for r in rows.values()), rows
    assert _gradebook(course) == scores
    # and the record is consistent: a batch run afterwards finds nothing to grade
    proc = build.grade(course, inbox, "--workers", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 unchanged submissions" in proc.stdout, proc.stdout


def test_sigterm_while_a_submission_runs_keeps_the_finished_grades_and_records_nothing_half_done(tmp_path):
    import psutil

    course = build.make_course(tmp_path / "course")
    release = build.release_notebook(course)
    inbox = tmp_path / "inbox"
    build.write_answers(release, inbox, "s1", SQUARE_OK, SIG_OK)
    out = tmp_path / "watch.out"
    cmd = [str(build.VENV_BIN / "tamegrad"), "grade", build.ASSIGNMENT, "--submissions", str(inbox)]
    cmd += ["--course", str(course), "--no-progress", "--workers", "0", "--watch", "1"]
    with open(out, "w") as fo:
        proc = subprocess.Popen(cmd, cwd=course, env=build.env(), stdout=fo, stderr=subprocess.STDOUT)
    with build.reaped(proc):
        _wait(lambda: _graded(out)["s1"] == 1, 180, "s1 to be graded", proc)
        slow = "import time\ntime.sleep(8)\n" + SQUARE_OK  # still running when the signal comes
        build.write_answers(release, inbox, "s2", slow, SIG_OK)
        watcher = psutil.Process(proc.pid)
        _wait(lambda: len(watcher.children(recursive=True)) > 0, 60, "s2's kernels to start", proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    text = out.read_text()
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    assert _graded(out) == Counter({"s1": 1}), text
    assert text.strip().splitlines()[-1].startswith("tamegrad grade --watch: stopped by SIGTERM; 1 submission graded")
    rows = build.read_grades(course / "grades.csv")
    assert sorted(rows) == ["s1"] and float(rows["s1"]["score"]) == 5.0
    assert _gradebook(course)["s1"] == 5.0
    # the next run grades only the one that was running
    again = build.grade(course, inbox, "--workers", "0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 unchanged submissions" in again.stdout, again.stdout
    rows = build.read_grades(course / "grades.csv")
    assert sorted(rows) == ["s1", "s2"] and float(rows["s2"]["score"]) == 5.0
