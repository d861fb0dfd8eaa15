"""The hostile corpus and honest submissions graded together in one batch.

Every case of tests/grade_fixtures/hostile/cases.toml must end with its expected status,
total and per-cell scores; the honest ones score exactly what their answers deserve; no
request reaches the local server; nothing is written outside the scratch directories; no
feedback shows a hidden test, and no output of the student's kernel holds hidden-test text
(the student's kernel never receives it); the caps say what they stopped.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from tamegrad.autograde import sandbox

from .conftest import IN_CI
from .grade_fixtures import build

pytestmark = pytest.mark.slow


class _Server(http.server.ThreadingHTTPServer):
    hits = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.hits += 1
        body = b"def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    ok, why = sandbox.bubblewrap_works()
    if not ok:
        if IN_CI:
            pytest.fail(f"CI must grade inside bubblewrap: {why}")
        pytest.skip(f"bubblewrap does not work here ({why}); the corpus expects the sandbox")
    tmp = tmp_path_factory.mktemp("hostile")
    course = build.make_course(tmp / "course")
    submitted = tmp / "incoming"
    marker = Path("/tmp") / f"tamegrad-pwned-{uuid.uuid4().hex}"
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    values = {"port": server.server_address[1], "course": course, "submissions": submitted, "marker": marker}
    answers, cases = build.cases()
    release = build.release_notebook(course)
    for case in cases:
        build.write_case(case, answers, release, submitted, values)
    try:
        t0 = time.monotonic()
        proc = build.grade(
            course,
            submitted,
            "--workers",
            "2",
            "--timeout",
            "6",
            "--total-timeout",
            "60",
            "--memory-limit",
            "1500M",
            "--sandbox",
            "bwrap",
        )
        seconds = time.monotonic() - t0
    finally:
        server.shutdown()
    return {
        "proc": proc,
        "course": course,
        "cases": cases,
        "server": server,
        "marker": marker,
        "submitted": submitted,
        "grades": build.read_grades(course / "grades.csv"),
        "seconds": seconds,
    }


def test_the_batch_completes_with_exit_code_0(batch):
    proc = batch["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tamegrad grade fx_square" in proc.stdout
    assert "bubblewrap" in proc.stdout


@pytest.mark.parametrize("index", range(len(build.cases()[1])), ids=[c["student"] for c in build.cases()[1]])
def test_each_case_gets_its_expected_status_and_score(batch, index):
    case = batch["cases"][index]
    row = batch["grades"][case["student"]]
    assert row["status"] == case["status"], (case["about"], row)
    assert float(row["score"]) == case["score"], (case["about"], row)
    assert float(row["max_score"]) == 5.0
    for gid, expected in case.get("cells", {}).items():
        assert float(row[f"fx_square/{gid}"]) == expected, (case["about"], gid, row)


def test_no_request_reached_the_local_server(batch):
    assert batch["server"].hits == 0


def test_nothing_was_written_outside_the_scratch_directories(batch):
    course, submitted = batch["course"], batch["submitted"]
    assert not batch["marker"].exists()
    assert not (course / "PWNED.txt").exists()
    assert not (course / "solutions" / "fx_square" / "PWNED.txt").exists()
    assert not Path("/PWNED.txt").exists()
    # the other student's submission is untouched (it still scores full marks, and is a notebook)
    nbformat.read(submitted / "honest_full" / "fx_square" / "fx_square.ipynb", as_version=4)


def test_honest_mistakes_are_graded_with_a_note_and_honest_rows_have_none(batch):
    grades = batch["grades"]
    assert grades["honest_full"]["notes"] == ""
    assert "HIDDEN TESTS" in grades["hidden_marker_text"]["notes"], grades["hidden_marker_text"]
    assert "multiple times" in grades["pasted_cells"]["notes"] or "copied" in grades["pasted_cells"]["notes"], grades[
        "pasted_cells"
    ]


def test_the_caps_say_what_stopped_a_submission(batch):
    grades = batch["grades"]
    assert "total time limit" in grades["sleepy_cells"]["detail"], grades["sleepy_cells"]
    assert "refused" in grades["oversized_reply"]["notes"], grades["oversized_reply"]
    assert "outside its tmpfs" in grades["fills_socket_dir"]["detail"], grades["fills_socket_dir"]


HIDDEN = ("HIDDEN-MARKER", "hidden_x", "hidden_z", "BEGIN HIDDEN", "numeric =")


def _student_outputs(path: Path) -> str:
    """The outputs of every cell that is not a test cell (what the student's kernel printed)."""
    import json

    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        md = cell.get("metadata", {}).get("nbgrader", {})
        if md.get("grade") and not md.get("solution"):
            continue
        texts.append(json.dumps(cell.get("outputs", [])))
    return "\n".join(texts)


def test_no_hidden_test_reaches_the_students_kernel(batch):
    graded = sorted((batch["course"] / "autograded").rglob("*.ipynb"))
    assert len(graded) > 20
    for path in graded:
        text = _student_outputs(path)
        for marker in HIDDEN:
            assert marker not in text, (path, marker)


def test_feedback_never_shows_hidden_tests(batch):
    feedback = sorted((batch["course"] / "feedback").rglob("*.html"))
    graded = [s for s, r in batch["grades"].items() if r["status"] not in ("missing", "invalid")]
    assert len(feedback) == len(graded)
    for html in feedback:
        text = html.read_text()
        assert "HIDDEN-MARKER" not in text and "hidden_x" not in text and "hidden_z" not in text, html
    # while the autograded notebooks, for the instructor, keep them
    assert (
        "HIDDEN-MARKER-SQUARE"
        in (batch["course"] / "autograded" / "honest_full" / "fx_square" / "fx_square.ipynb").read_text()
    )


def test_huge_output_is_capped(batch):
    for student in ("huge_output", "huge_errors", "huge_messages"):
        path = batch["course"] / "autograded" / student / "fx_square" / "fx_square.ipynb"
        assert path.stat().st_size < 5_000_000, student
        assert "truncated" in path.read_text() or student == "huge_messages", student
    # honest 25 MB errors arrive cut by the kernel; what undoes the cut is refused unread
    autograded = batch["course"] / "autograded"
    assert "MessageRefused" not in (autograded / "huge_errors" / "fx_square" / "fx_square.ipynb").read_text()
    for student in ("huge_messages", "huge_errors_uncut"):
        assert "MessageRefused" in (autograded / student / "fx_square" / "fx_square.ipynb").read_text(), student
    assert "the grader refused it" in batch["grades"]["huge_errors_uncut"]["notes"]
    # each refusal is reported in the cell whose message was refused, never in the next one
    nb = nbformat.read(autograded / "huge_messages" / "fx_square" / "fx_square.ipynb", as_version=4)
    refused = {
        cell.source: any(o.get("ename") == "MessageRefused" for o in cell.outputs)
        for cell in nb.cells
        if cell.cell_type == "code"
    }
    case = next(c for c in batch["cases"] if c["student"] == "huge_messages")
    huge = [cell["source"] for cell in case["append"] if "_000_000" in cell["source"]]
    assert len(huge) == 2 and all(refused[source] for source in huge), refused
    assert sum(refused.values()) == len(huge), refused


def test_the_batch_time_is_bounded_by_the_per_submission_cap(batch):
    # two workers, at most 60 s (+ start-up and shut-down) per submission: no submission holds a
    # worker for minutes; the sleepy one alone would take 220 s without the cap
    n = len(batch["cases"])
    assert batch["seconds"] < n / 2 * 75, batch["seconds"]


WRITES = """
import os, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, os.PathLike)) and os.fspath(args[0]).endswith(".ipynb"):
        mode = args[1] or "r"
        if any(c in mode for c in "wax+"):
            opened.append(os.fspath(args[0]))
sys.addaudithook(hook)
from tamegrad import cli
rc = cli.main(sys.argv[1:])
for path in opened:
    print("WROTE", path)
sys.exit(rc)
"""


def test_each_autograded_notebook_is_written_once(tmp_path):
    """Grading writes ``autograded/<student>/<assignment>/<nb>.ipynb`` once per submission
    (every open of a notebook for writing in the grader's process is recorded)."""
    course = build.make_course(tmp_path / "course")
    answers, cases = build.cases()
    release = build.release_notebook(course)
    honest = [c for c in cases if c["student"] in ("honest_full", "honest_blank")]
    for case in honest:
        build.write_case(case, answers, release, tmp_path / "in", {})
    args = ["grade", build.ASSIGNMENT, "--submissions", str(tmp_path / "in"), "--course", str(course)]
    proc = subprocess.run(
        [sys.executable, "-c", WRITES, *args, "--no-progress", "--workers", "0"],
        cwd=course,
        env=build.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wrote = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("WROTE ")]
    autograded = sorted(p for p in wrote if "/autograded/" in p)
    expected = sorted(
        str(course / "autograded" / c["student"] / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb") for c in honest
    )
    assert autograded == expected, wrote


PEAK = """
import resource, sys
from tamegrad import cli
rc = cli.main(sys.argv[1:])
print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(rc)
"""

UNSANDBOXED = """
import sys
from tamegrad import cli
from tamegrad.autograde import sandbox
sandbox.bubblewrap_argv = lambda *a, **k: []  # a broken build: bwrap asked for, the kernel started bare
sys.exit(cli.main(sys.argv[1:]))
"""


def _grade_in_process(tmp_path: Path, students: tuple[str, ...], script: str) -> subprocess.CompletedProcess:
    """Grade the corpus's ``students`` with ``--workers 0`` (in the grading process itself), run by ``script``."""
    ok, why = sandbox.bubblewrap_works()
    if not ok:
        pytest.skip(f"bubblewrap does not work here ({why})")
    course = build.make_course(tmp_path / "course")
    answers, cases = build.cases()
    release = build.release_notebook(course)
    for case in cases:
        if case["student"] in students:
            build.write_case(case, answers, release, tmp_path / "in", {})
    args = ["grade", build.ASSIGNMENT, "--submissions", str(tmp_path / "in"), "--course", str(course)]
    args += ["--no-progress", "--workers", "0", "--timeout", "6", "--memory-limit", "1500M", "--sandbox", "bwrap"]
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=course, env=build.env(), capture_output=True, text=True, timeout=300
    )


def _peak_bytes(proc: subprocess.CompletedProcess) -> int:
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PEAK_KIB "))
    return int(line.split()[1]) * 1024


def test_the_graders_memory_stays_bounded_whatever_a_kernel_sends(tmp_path):
    """Grading the 40 MB print and 20 MB error of ``huge_messages`` raises the grading
    process's peak memory (its own, not its kernels') far less than one such message,
    compared with grading an honest submission."""
    huge = _grade_in_process(tmp_path / "huge", ("huge_messages",), PEAK)
    honest = _grade_in_process(tmp_path / "honest", ("honest_full",), PEAK)
    grown = _peak_bytes(huge) - _peak_bytes(honest)
    assert grown < sandbox.Limits().message_bytes, f"the grader grew by {grown / 2**20:.0f} MiB"
    row = build.read_grades(tmp_path / "huge" / "course" / "grades.csv")["huge_messages"]
    assert (row["status"], float(row["score"])) == ("graded", 5.0), row
    assert "the grader refused it" in row["notes"], row


def test_a_kernel_outside_its_sandbox_is_never_graded(tmp_path):
    """A build whose bubblewrap prefix is lost starts kernels bare: the grader sees that a
    kernel (the student's, or the tests' fork server) shares its namespaces, stops the batch
    with exit code 2 and records no grade for what it could not grade safely."""
    proc = _grade_in_process(tmp_path, ("honest_full",), UNSANDBOXED)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "not inside bubblewrap" in out and "grading stopped" in out, out[-3000:]
    grades = tmp_path / "course" / "grades.csv"
    assert not grades.exists() or "honest_full" not in build.read_grades(grades), grades.read_text()
