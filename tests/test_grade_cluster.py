"""``tamegrad grade --scheduler``: a real Dask scheduler and workers started with the ``dask``
command line, as the instructors' appendix tells. Each worker runs as ``nobody`` in its own
mount namespace (bubblewrap): its working directory is elsewhere, the course folder (0700,
root's) is not in it, and each notebook still runs in the grader's own sandbox on the worker.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import IN_CI
from .grade_fixtures import build
from .test_grade_parity import STUDENTS, _gradebook_scores

DASK = build.VENV_BIN / "dask"
NOBODY = 65534
pytestmark = [
    pytest.mark.slow,
    # outside CI a machine without bubblewrap or root skips; in CI the test runs and fails instead
    pytest.mark.skipif(
        not IN_CI and (shutil.which("bwrap") is None or os.geteuid() != 0), reason="needs bwrap and root"
    ),
]


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Cluster:
    """Processes of a test cluster; :meth:`stop` kills every one of them (process groups)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[Path] = []

    def _start(self, argv, log: Path) -> subprocess.Popen:
        fh = open(log, "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=build.env())
        fh.close()
        self.procs.append(proc)
        return proc

    def scheduler(self) -> tuple[subprocess.Popen, str]:
        log = self.tmp / f"scheduler-{len(self.procs)}.log"
        proc = self._start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"], log)
        address = _wait(
            lambda: (m := re.search(r"Scheduler at:\s+(tcp://\S+)", log.read_text())) and m.group(1),
            60,
            "the scheduler's address",
        )
        return proc, address

    def worker(self, address: str, name: str) -> subprocess.Popen:
        """``dask worker ADDRESS --nthreads 1`` as nobody under bwrap: / read-only, a private
        /tmp (its working directory) over the host's, /root (the Python build's home) empty; the
        virtual environment and the repository (the installed tamegrad) visible wherever they are."""
        home = Path(tempfile.mkdtemp(prefix=f"tamegrad-{name}-", dir="/var/tmp"))
        os.chown(home, NOBODY, NOBODY)
        self.dirs.append(home)
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
        argv += ["--bind", "/proc", "/proc"]  # the host's: a fresh /proc here would stop the kernels' own bwrap
        argv += ["--bind", str(home), "/tmp", "--chdir", "/tmp", "--die-with-parent"]
        prefix = os.path.realpath(sys.base_prefix)
        if prefix.startswith("/root/"):  # the interpreter lives in root's home: only it is visible
            top = "/root/" + prefix.split("/")[2]
            argv += ["--tmpfs", "/root", "--ro-bind", top, top]
        for needed in (build.VENV_BIN.parent, build.REPO):  # the worker's Python and its editable tamegrad
            if str(needed.resolve()).startswith(("/tmp/", "/root/")):  # hidden above: shown again, read-only
                argv += ["--ro-bind", str(needed.resolve()), str(needed.resolve())]
        argv += ["--", "setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
        argv += ["env", "HOME=/tmp", "TMPDIR=/tmp", str(DASK), "worker", address, "--nthreads", "1"]
        argv += ["--name", name, "--local-directory", "/tmp/dask", "--no-dashboard", "--death-timeout", "60"]
        return self._start(argv, self.tmp / f"{name}.log")

    def kill(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            self.kill(proc)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The parity course, ungraded, and the scores sequential ``nbgrader autograde`` gives it."""
    tmp = tmp_path_factory.mktemp("cluster")
    course = build.course_with_answers(tmp / "course", STUDENTS)
    ref = tmp / "reference"
    shutil.copytree(course, ref)
    build.run_tool("nbgrader", "autograde", build.ASSIGNMENT, cwd=ref, check=True)
    return course, _gradebook_scores(ref)


@pytest.fixture
def course(reference, tmp_path):
    """A fresh copy of the parity course (nothing graded yet), 0700, and nbgrader's reference scores."""
    src, scores = reference
    dest = tmp_path / "course"
    shutil.copytree(src, dest)
    dest.chmod(0o700)
    return dest, scores


def _client(address):
    from distributed import Client

    return Client(address, timeout="30s")


def _workers_up(client, n: int):
    _wait(lambda: len(client.scheduler_info()["workers"]) == n, 90, f"{n} workers")


def _grade_async(course: Path, address: str, out: Path) -> subprocess.Popen:
    cmd = [str(build.VENV_BIN / "tamegrad"), "grade", build.ASSIGNMENT, "--submissions", str(course / "submitted")]
    cmd += ["--course", str(course), "--no-progress", "--scheduler", address]
    with open(out, "w") as fh:
        return subprocess.Popen(cmd, cwd=course, env=build.env(), stdout=fh, stderr=subprocess.STDOUT)


def _rows(course: Path) -> dict:
    path = course / "grades.csv"
    return build.read_grades(path) if path.exists() else {}


def _what_a_worker_sees(course: str, grader_pid: int) -> dict:
    """Run on each worker: every way to the course folder should fail."""
    import os

    seen = {"cwd": os.getcwd(), "uid": os.getuid()}
    for what, attempt in {
        "listdir": lambda: os.listdir(course),
        "read": lambda: open(os.path.join(course, "nbgrader_config.py")).read(),  # noqa: SIM115
        "proc": lambda: os.listdir(f"/proc/{grader_pid}/cwd"),
    }.items():
        try:
            attempt()
            seen[what] = "READ"
        except OSError as exc:
            seen[what] = type(exc).__name__
    return seen


_what_a_worker_sees.__module__ = "__main__"  # so that cloudpickle sends the function itself, not a reference to tests/


def test_workers_cannot_read_the_course_grade_like_nbgrader_and_a_killed_worker_loses_nothing(course, cluster):
    course, reference = course
    assert stat.S_IMODE(course.stat().st_mode) == 0o700
    _, address = cluster.scheduler()
    workers = {name: cluster.worker(address, name) for name in ("w0", "w1")}
    client = _client(address)
    try:
        _workers_up(client, 2)
        seen = client.run(_what_a_worker_sees, str(course), os.getpid())
        assert len(seen) == 2
        for s in seen.values():
            assert s["uid"] == NOBODY and s["cwd"] == "/tmp", s
            assert "READ" not in s.values(), s
            assert s["listdir"] in ("FileNotFoundError", "PermissionError"), s

        out = course.parent / "grade.out"
        proc = _grade_async(course, address, out)
        with build.reaped(proc):
            _wait(lambda: len(_rows(course)) >= 1 or proc.poll() is not None, 300, "the first result")
            busy = _wait(
                lambda: [w for w, keys in client.processing().items() if keys] or proc.poll() is not None,
                60,
                "a worker with a job",
            )
            assert busy is not True, "the batch ended before a worker could be killed: " + out.read_text()
            names = {a: info["name"] for a, info in client.scheduler_info()["workers"].items()}
            victim = names[busy[0]]
            cluster.kill(workers[victim])  # SIGKILL, with the job it was running
            proc.wait(timeout=300)
        text = out.read_text()
        assert proc.returncode == 0, text
        assert len(client.scheduler_info()["workers"]) == 1  # the victim really is gone
    finally:
        client.close()
    assert _gradebook_scores(course) == reference
    rows = _rows(course)
    assert sorted(rows) == sorted(STUDENTS)  # each student once
    assert (course / "grades.csv").read_text().count("\n") == len(STUDENTS) + 1
    assert {r["status"] for r in rows.values()} == {"graded"}, rows
    assert {r["sandbox"] for r in rows.values()} == {"bwrap"}, rows  # the sandbox on each worker


def test_a_lost_scheduler_is_a_clear_error_and_a_rerun_grades_only_the_rest(course, cluster):
    course, reference = course
    sched, address = cluster.scheduler()
    worker = cluster.worker(address, "w0")
    client = _client(address)
    try:
        _workers_up(client, 1)
    finally:
        client.close()
    out = course.parent / "grade.out"
    proc = _grade_async(course, address, out)
    with build.reaped(proc):
        _wait(lambda: len(_rows(course)) >= 1 or proc.poll() is not None, 300, "the first result")
        cluster.kill(sched)
        proc.wait(timeout=120)
    cluster.kill(worker)
    text = out.read_text()
    assert proc.returncode == 2, text
    assert f"lost the Dask scheduler {address}" in text, text
    assert "Traceback" not in text, text
    kept = _rows(course)
    assert 1 <= len(kept) < len(STUDENTS), text
    assert {r["status"] for r in kept.values()} == {"graded"}, kept

    # a new scheduler and worker: the rerun grades only the rest
    _, address = cluster.scheduler()
    cluster.worker(address, "w1")
    client = _client(address)
    try:
        _workers_up(client, 1)
    finally:
        client.close()
    proc = build.grade(course, course / "submitted", "--scheduler", address, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(kept)} unchanged submission" in proc.stdout, proc.stdout
    rows = _rows(course)
    assert sorted(rows) == sorted(STUDENTS)
    assert all(rows[s]["graded_at"] == kept[s]["graded_at"] for s in kept)  # not graded again
    assert _gradebook_scores(course) == reference
