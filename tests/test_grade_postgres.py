"""The gradebook on a real PostgreSQL server (Debian's package), started by the test.

initdb and pg_ctl run as an ordinary user (the ``postgres`` account when the tests run as
root) on a free port of 127.0.0.1, in a temporary directory, torn down afterwards.
Outside CI the test is skipped when the server binaries are missing; in CI it fails.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import IN_CI
from .grade_fixtures import build

pytestmark = pytest.mark.slow


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    bindir = _bindir()
    if bindir is None:
        msg = "PostgreSQL server binaries (Debian package postgresql) are not installed"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else pwd.getpwuid(os.geteuid()).pw_name
    if as_root:
        try:
            pwd.getpwnam(user)
        except KeyError:
            pytest.fail("running as root, but there is no 'postgres' account to run the server as")
    tmp = Path(tempfile.mkdtemp(prefix="tamegrad-pg-"))
    data = tmp / "data"
    port = _free_port()

    def run(*cmd):
        cmd = [str(c) for c in cmd]
        if as_root:
            cmd = ["runuser", "-u", user, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    if as_root:
        shutil.chown(tmp, user)
        os.chmod(tmp, 0o700)
    run(bindir / "initdb", "-D", data, "-U", "grader", "--auth=trust", "-E", "UTF8")
    run(
        bindir / "pg_ctl",
        "-D",
        data,
        "-l",
        tmp / "server.log",
        "-w",
        "-t",
        "60",
        "-o",
        f"-h 127.0.0.1 -p {port} -k {tmp}",
        "start",
    )
    try:
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "grader", "gradebook")
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"  # as an instructor would type it
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def _sqlite_state(db: Path) -> dict | None:
    """The course's SQLite gradebook as the test can see it: None when absent, else its
    size, mtime (ns), content hash and the row count of every table."""
    if not db.exists():
        return None
    stat = db.stat()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": hashlib.sha256(db.read_bytes()).hexdigest(),
        "rows": rows,
    }


def test_grading_into_postgresql(postgres, tmp_path):
    from nbgrader.api import Gradebook

    from tamegrad.autograde.gradebook import normalise_db_url

    course = build.make_course(tmp_path / "course")
    release = build.release_notebook(course)
    sq = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2"
    build.write_answers(release, course / "submitted", "pg_full", sq, None)
    build.write_answers(release, course / "submitted", "pg_blank", None, None)
    sqlite_db = course / "gradebook.db"  # where nbgrader_config (nbgrader's default) puts it
    sqlite_before = _sqlite_state(sqlite_db)  # generate_assignment has written the assignment there
    assert sqlite_before is not None and sqlite_before["rows"]["submitted_assignment"] == 0
    out = tmp_path / "results"
    proc = build.grade(course, course / "submitted", "--db-url", postgres, "--workers", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Gradebook(normalise_db_url(postgres)) as gb:
        assert gb.find_submission("fx_square", "pg_full").score == 2.0
        assert gb.find_submission("fx_square", "pg_blank").score == 0.0
    rows = build.read_grades(out / "grades.csv")
    assert float(rows["pg_full"]["score"]) == 2.0
    assert (out / "autograded" / "pg_full" / "fx_square" / "fx_square.ipynb").is_file()
    # a second machine (a second run against the same server) finds the work done
    proc = build.grade(course, course / "submitted", "--db-url", postgres, "--workers", "0", "--out", str(out))
    assert proc.returncode == 0 and "2 unchanged submissions" in proc.stdout
    # the course's SQLite gradebook was not written by either run: same bytes, same mtime
    assert _sqlite_state(sqlite_db) == sqlite_before
