"""One grading run: intake, prepare, execute in parallel, save, report.

The process that runs this owns the gradebook: it prepares each submission (nbgrader's
``init_assignment`` and sanitising preprocessors) into an :class:`.execute.Job`, runs it
(in this process, or on Dask workers: the same loop, :func:`_grade`), and, as each
:class:`.execute.JobResult` comes back, saves the grades (nbgrader's SaveAutoGrades),
writes the autograded notebook and the feedback, and updates ``grades.csv``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nbformat

from . import gradebook, report, sandbox, submissions
from .execute import Job, JobResult, execute_job, worst


@dataclass
class Options:
    assignment: str
    submissions: Path
    course: Path = Path(".")
    workers: int | None = None
    scheduler: str | None = None
    db_url: str | None = None
    timeout: int | None = None
    total_timeout: int | None = None
    memory_limit: str = "2G"
    out: Path | None = None
    force: bool = False
    sandbox: str = "auto"
    named_regexp: str = ""
    feedback: bool = True
    progress: bool = True
    students: list[str] = field(default_factory=list)
    grades: Path | None = None  # default: <out>/grades.csv


@dataclass
class Prepared:
    """A submission ready to run, and what the grader keeps of it meanwhile."""

    job: Job
    fingerprint: str
    notes: list[str]
    invalid: dict[str, str]
    missing: list[str]


@dataclass
class Row:
    """A submission that needs no execution: its grades.csv row is known."""

    row: dict


class GradingError(Exception):
    """Grading itself cannot be done (exit code 2)."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fingerprint(folder: Path | None, version: str) -> str:
    h = hashlib.sha256(version.encode())
    if folder is not None:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(folder).as_posix().encode() + b"\0")
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:20]


def _rmtree(path: Path) -> None:
    if path.exists():
        for p in path.rglob("*"):
            try:
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
            except OSError:
                pass
        shutil.rmtree(path, ignore_errors=True)


class Grader:
    def __init__(self, opts: Options, tmp: Path):
        gradebook.ensure_tools_on_path()
        logging.getLogger("traitlets").setLevel(logging.ERROR)
        import warnings

        from sqlalchemy.exc import SAWarning

        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's own, harmless
        self.opts = opts
        self.root = Path(opts.course).resolve()
        self.out = Path(opts.out).resolve() if opts.out else self.root
        self.grades_path = Path(opts.grades).resolve() if opts.grades else self.out / "grades.csv"
        try:
            self.table = report.Table(self.grades_path)
        except report.NotOurs as exc:
            raise GradingError(str(exc)) from exc
        self.config = gradebook.load_config(self.root)
        regexp = opts.named_regexp or self.config.get("FileNameCollectorPlugin", {}).get("named_regexp", "")
        try:
            self.intake = submissions.intake(Path(opts.submissions), opts.assignment, tmp, regexp)
            self.submitted = self.intake.root
        except submissions.IntakeError as exc:
            raise GradingError(str(exc)) from exc
        self.coursedir = gradebook.course_directory(
            self.root, self.config, db_url=opts.db_url, submitted=self.submitted, out=self.out
        )
        self.coursedir.assignment_id = opts.assignment
        try:
            self.notebooks = gradebook.ensure_assignment(self.coursedir, self.config, opts.assignment, _say)
        except LookupError as exc:
            raise GradingError(str(exc)) from exc
        except Exception as exc:  # the database cannot be reached or created
            raise GradingError(f"the gradebook {self.coursedir.db_url} cannot be used: {exc}") from exc
        self.version = gradebook.assignment_version(self.coursedir, opts.assignment)
        self.layout = gradebook.cell_layout(self.coursedir, opts.assignment)
        self.cell_columns = [f"{nb}/{gid}" for nb, gid, _, _ in self.layout]

        from nbgrader.converters import Autograde

        from . import finish, sanitize

        self.autograde = Autograde(coursedir=self.coursedir, config=self.config)
        self.sanitize_exporter = sanitize.sanitize_exporter(self.config, self.autograde)
        self.post_exporter = finish.post_exporter(self.config, self.autograde)
        self.feedback_exporter = finish.feedback_exporter(self.config) if opts.feedback else None
        self.source_dir = Path(self.coursedir.format_path(self.coursedir.source_directory, ".", opts.assignment))

        timeout = opts.timeout or int(self.config.get("Execute", {}).get("timeout", 30) or 30)
        self.limits = sandbox.Limits(
            timeout=timeout, memory=sandbox.parse_size(opts.memory_limit), total_seconds=opts.total_timeout or 0
        )
        self.instructor = instructor_cells(gradebook.source_notebooks(self.coursedir, opts.assignment))
        self.course_files = (
            submissions.supporting_files(self.source_dir, list(self.coursedir.ignore))
            if self.source_dir.is_dir()
            else {}
        )
        self.hide = sandbox.hidden_packages(assignment_settings(self.source_dir).get("hide_packages", []))
        self.sandbox_kind = opts.sandbox
        self.sandbox_used: set[str] = set()
        self.skipped = 0
        self.errors = 0
        self.on_record = None  # called with each row once it is saved (``--watch`` prints it)

    # -- one submission, before execution ---------------------------------------------
    def prepare(self, sub: submissions.Submission) -> Prepared | Row | None:
        """A :class:`Prepared` job, a :class:`Row` when nothing needs executing, or None (unchanged)."""
        from . import sanitize

        opts = self.opts
        student = sub.student
        fp = fingerprint(sub.folder, self.version)
        if sub.invalid:  # an id nbgrader cannot store, or a folder that was a link: a row, no grading
            return Row(self.row(student, "invalid", sub.invalid, "; ".join(sub.notes), fp, ""))
        old = self.table.get(student, opts.assignment)
        dest = Path(self.coursedir.format_path(self.coursedir.autograded_directory, student, opts.assignment))
        if (
            not opts.force
            and old
            and old.get("fingerprint") == fp
            and old.get("status") not in ("error", "")
            and gradebook.scores(self.coursedir, opts.assignment, student) is not None
            and (old["status"] in ("missing", "invalid") or dest.is_dir())
        ):
            self.skipped += 1
            return None
        _rmtree(dest)
        readable, invalid = sanitize.readable_notebooks(sub.notebooks)
        missing = [n for n in self.notebooks if n not in sub.notebooks]
        notes = list(sub.notes)
        if sub.unknown:
            notes.append("ignored notebooks with other names: " + ", ".join(sub.unknown))
        timestamp = self.coursedir.get_existing_timestamp(str(sub.folder)) if sub.folder else None
        if readable:
            self.autograde.notebooks = [str(p) for p in readable.values()]
            self.autograde.init_assignment(opts.assignment, student)
        for name in list(invalid) + missing:
            gradebook.zero_notebook(self.coursedir, opts.assignment, student, name, timestamp)
        prepared = sanitize.prepare(
            self.autograde, self.sanitize_exporter, opts.assignment, student, readable, self.source_dir
        )
        for name, p in prepared.items():
            if "invalid" in p:
                invalid[name] = p["invalid"]
                gradebook.zero_notebook(self.coursedir, opts.assignment, student, name, timestamp)
        texts = {n: p["text"] for n, p in prepared.items() if "text" in p}
        if not texts:
            status = "invalid" if invalid else "missing"
            detail = "; ".join(f"{n}: {why}" for n, why in invalid.items()) or "no notebook named " + ", ".join(
                f"{n}.ipynb" for n in self.notebooks
            )
            return Row(self.row(student, status, detail, "; ".join(notes), fp, ""))
        notes += [
            f"{n}: {why}" for n in texts for why in honest_mistakes(readable[n], texts[n], self.instructor.get(n, {}))
        ]
        files = submissions.supporting_files(dest, list(self.coursedir.ignore)) if dest.is_dir() else {}
        job = Job(
            student=student,
            assignment=opts.assignment,
            notebooks=texts,
            instructor_cells={n: self.instructor.get(n, {}) for n in texts},
            files=files,
            course_files=self.course_files,
            limits=self.limits,
            sandbox=self.sandbox_kind,
            hide=self.hide,
        )
        return Prepared(job, fp, notes, invalid, missing)

    # -- one submission, after execution ----------------------------------------------
    def finish(self, prep: Prepared, result: JobResult | None, failure: str = "") -> dict:
        from . import finish

        student = prep.job.student
        a = self.opts.assignment
        if result is None:
            return self.row(student, "error", failure, "; ".join(prep.notes), prep.fingerprint, "")
        self.sandbox_used.add(result.sandbox)
        statuses, details, notes = [], [], list(prep.notes)
        for name, res in result.notebooks.items():
            statuses.append(res.status)
            if res.detail:
                details.append(f"{name}: {res.detail}" if len(result.notebooks) > 1 else res.detail)
            notes += res.notes
            if res.notebook is None:
                continue
            try:
                path = finish.save(self.coursedir, self.post_exporter, a, student, name, res.notebook)
                if self.feedback_exporter is not None:
                    finish.feedback(self.coursedir, self.feedback_exporter, a, student, name, path)
            except Exception as exc:  # noqa: BLE001 - one bad notebook must not stop the batch
                statuses.append("error")
                details.append(f"{name}: saving the grades failed: {type(exc).__name__}: {exc}")
        for name, why in prep.invalid.items():
            statuses.append("invalid")
            details.append(f"{name}: {why}")
        for name in prep.missing:
            statuses.append("missing")
            details.append(f"{name}.ipynb was not submitted")
        status = worst(*statuses) if statuses else "error"
        return self.row(student, status, "; ".join(details), "; ".join(notes), prep.fingerprint, result.sandbox)

    def row(self, student, status, detail, notes, fp, sandbox_kind) -> dict:
        row = {
            "student_id": student,
            "assignment": self.opts.assignment,
            "status": status,
            "detail": detail,
            "notes": notes,
            "sandbox": sandbox_kind,
            "fingerprint": fp,
            "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        sc = gradebook.scores(self.coursedir, self.opts.assignment, student) if status != "error" else None
        max_score = sum(m for _, _, m, _ in self.layout)
        if sc is None:
            row.update(
                {
                    "score": 0.0 if status != "error" else "",
                    "max_score": max_score,
                    "raw_score": "",
                    "late_penalty": "",
                    "needs_manual_grade": "",
                }
            )
            for c in self.cell_columns:
                row[c] = 0.0 if status in ("missing", "invalid") else ""
        else:
            row.update(
                {
                    "score": sc["score"],
                    "max_score": sc["max_score"],
                    "raw_score": sc["raw_score"],
                    "late_penalty": sc["late_penalty"],
                    "needs_manual_grade": sc["needs_manual_grade"],
                }
            )
            for c in self.cell_columns:
                row[c] = sc["cells"].get(c, "")
        if status == "error":
            self.errors += 1
        return row

    def record(self, row: dict) -> None:
        self.table.put(row, self.cell_columns)
        self.table.save()
        if self.on_record is not None:
            self.on_record(row)


def _quiet_dask() -> None:
    """The Dask client's own log of a lost connection (tracebacks) is noise next to our one-line error."""
    names = [n for n in logging.root.manager.loggerDict if n == "distributed" or n.startswith("distributed.")]
    for name in names or ["distributed"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _start_dask(opts: Options, n_jobs: int):
    from distributed import Client, LocalCluster

    if opts.scheduler:
        _quiet_dask()
        try:
            client = Client(opts.scheduler, timeout="30s")
        except Exception as exc:  # noqa: BLE001
            raise GradingError(f"cannot reach the Dask scheduler at {opts.scheduler}: {exc}") from exc
        _quiet_dask()
        n = len(client.scheduler_info().get("workers", {}))
        return client, None, f"Dask cluster {opts.scheduler} ({n} workers)"
    import os

    workers = opts.workers or min(os.cpu_count() or 1, max(1, n_jobs))
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        memory_limit=0,
        preload=["tamegrad.autograde.startup"],
    )
    return Client(cluster), cluster, f"{workers} local Dask worker{'s' if workers > 1 else ''}"


def run(opts: Options) -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tamegrad-intake-") as tmp:
        try:
            grader = start_grader(opts, Path(tmp))
        except GradingError as exc:
            _say(f"tamegrad grade: {exc}")
            return 2
        return _grade(grader, opts, t0)


def start_grader(opts: Options, tmp: Path) -> Grader:
    """A :class:`Grader` with ``--sandbox`` resolved here (with ``--scheduler`` each worker
    resolves it); :class:`GradingError` when grading cannot start."""
    grader = Grader(opts, tmp)
    if opts.sandbox in ("auto", "bwrap") and not opts.scheduler:
        try:
            kind, why = sandbox.choose(opts.sandbox)
        except RuntimeError as exc:
            raise GradingError(str(exc)) from exc
        grader.sandbox_kind = kind
        if kind == "none":
            _say(
                f"WARNING: grading WITHOUT a sandbox ({why}). Student code can read and write what you can "
                "and reach the network. Install bubblewrap (Debian: apt-get install bubblewrap)."
            )
    return grader


@contextlib.contextmanager
def open_pool(opts: Options, n_jobs: int):
    """``with open_pool(...) as (pool, where)``: the pool that runs the jobs and a description
    of it; shut down on leaving (quietly: a lost scheduler cannot be closed cleanly)."""
    client = cluster = None
    where = "in this process"
    if opts.workers != 0 or opts.scheduler:
        client, cluster, where = _start_dask(opts, n_jobs)
    try:
        yield (_DaskPool(client, opts.assignment, opts.scheduler) if client is not None else _InlinePool()), where
    finally:
        try:
            if client is not None:
                client.close(timeout=10)
            if cluster is not None:
                cluster.close()
        except Exception:  # noqa: BLE001 - a lost scheduler cannot be closed cleanly
            pass


def grade_all(grader: Grader, subs, pool, bar=None, stop=lambda: False) -> None:
    """THE grading loop (a batch and each round of ``--watch``): prepare each submission, run
    it on ``pool``, record each row as its result comes back. Once ``stop()`` is true nothing
    more is recorded (a job still running then is graded by the next run). Raises
    :class:`LostScheduler` when the Dask scheduler goes away; every row recorded before stays."""

    def tick():
        if bar is not None:
            bar.update(1)

    for sub in subs:
        if stop():
            return
        try:
            prep = grader.prepare(sub)
        except Exception as exc:  # noqa: BLE001
            prep = Row(grader.row(sub.student, "error", f"preparing failed: {exc!r}", "", "", ""))
        if isinstance(prep, Prepared):
            pool.submit(prep)
        elif isinstance(prep, Row):
            grader.record(prep.row)
            tick()
        elif prep is None:  # unchanged since the last run: its row stays
            tick()
        else:
            raise TypeError(f"prepare() returned {type(prep).__name__}, not Prepared, Row or None")
        for prep, result, failure in pool.ready():
            if stop():
                return
            grader.record(grader.finish(prep, result, failure))
            tick()
    for prep, result, failure in pool.rest(stop):
        if stop():
            return
        grader.record(grader.finish(prep, result, failure))
        tick()


def _grade(grader: Grader, opts: Options, t0: float) -> int:
    from tqdm import tqdm

    subs = submissions.list_submissions(grader.intake, opts.assignment, grader.notebooks)
    if opts.students:
        subs = [s for s in subs if s.student in opts.students]
    present = {s.student for s in subs}
    roster = [] if opts.students else [s for s in gradebook.roster(grader.coursedir) if s not in present]
    bar = tqdm(
        total=len(subs),
        desc=f"grading {opts.assignment}",
        unit="nb",
        file=sys.stderr,
        disable=not opts.progress,
        dynamic_ncols=True,
    )

    try:
        with open_pool(opts, len(subs)) as (pool, where):
            grade_all(grader, subs, pool, bar)
    except (LostScheduler, GradingError) as exc:  # a scheduler lost, or never reached
        _say(f"tamegrad grade: {exc}")
        return 2
    finally:
        bar.close()

    mark_missing(grader, roster)
    print(summary(grader, t0, where))
    return 1 if grader.errors else 0


def mark_missing(grader: Grader, roster) -> None:
    """A row ``missing`` for each student of the roster with no submission folder."""
    for student in roster:
        old = grader.table.get(student, grader.opts.assignment)
        if old is None or old.get("status") == "missing":
            grader.table.put(grader.row(student, "missing", "no submission folder", "", "", ""), grader.cell_columns)
    grader.table.save()


def summary(grader: Grader, t0: float, where: str) -> str:
    used = ", ".join(sorted(k for k in grader.sandbox_used if k)) or grader.sandbox_kind
    return report.summary(
        list(grader.table.rows.values()),
        assignment=grader.opts.assignment,
        seconds=time.perf_counter() - t0,
        workers=where,
        sandbox=sandbox.describe(used) if used in ("bwrap", "none") else used,
        out=grader.out,
        skipped=grader.skipped,
        intake_notes=grader.intake.general,
        grades=grader.grades_path,
    )


class LostScheduler(Exception):
    """The Dask scheduler went away in the middle of a batch."""


def not_isolated(exc: Exception) -> GradingError:
    return GradingError(
        f"a kernel was not inside its sandbox ({exc}); grading stopped, nothing of that submission was "
        "recorded. Check bubblewrap (`tamegrad grade --sandbox bwrap` on one submission) before grading again."
    )


class _InlinePool:
    """Runs each job in this process as it is submitted (``--workers 0``)."""

    def __init__(self):
        self.done: list = []

    def submit(self, prep: Prepared) -> None:
        try:
            self.done.append((prep, execute_job(prep.job), ""))
        except sandbox.NotIsolated as exc:
            raise not_isolated(exc) from exc
        except Exception as exc:  # noqa: BLE001
            self.done.append((prep, None, f"execution failed: {exc!r}"))

    def ready(self):
        while self.done:
            yield self.done.pop(0)

    def rest(self, stop=lambda: False):
        return self.ready()


class _DaskPool:
    """Runs jobs on Dask workers; yields results as they complete. A worker that dies takes
    no result with it (the scheduler runs its job again elsewhere); a scheduler that goes
    away raises :class:`LostScheduler` (its jobs have no result to record)."""

    GRACE = 10.0  # seconds the client may spend reconnecting before the scheduler counts as lost

    def __init__(self, client, assignment: str, address: str | None = None):
        from distributed import as_completed

        self.client, self.assignment, self.address = client, assignment, address
        self.pending: dict = {}
        self.done = as_completed()
        self.lost_since: float | None = None

    def submit(self, prep: Prepared) -> None:
        fut = self.client.submit(
            execute_job, prep.job, pure=False, key=f"grade-{self.assignment}-{prep.job.student}-{time.time_ns()}"
        )
        self.pending[fut.key] = prep
        self.done.add(fut)

    def _lost(self) -> LostScheduler:
        n = len(self.pending)
        return LostScheduler(
            f"lost the Dask scheduler {self.address or '(local cluster)'}; {n} submission"
            f"{'s' if n != 1 else ''} being graded there {'were' if n != 1 else 'was'} not recorded. Every "
            "grade recorded before stays in the gradebook and grades.csv: start a scheduler and workers "
            "again and rerun the same command, it grades only the rest."
        )

    def _check(self) -> None:
        status = getattr(self.client, "status", "running")
        if status == "running":
            self.lost_since = None
            return
        if status in ("closed", "closing", "failed") or (
            self.lost_since is not None and time.monotonic() - self.lost_since > self.GRACE
        ):
            raise self._lost()
        if self.lost_since is None:
            self.lost_since = time.monotonic()

    def _result(self, fut):
        prep = self.pending[fut.key]
        try:
            result = fut.result()
        except sandbox.NotIsolated as exc:
            raise not_isolated(exc) from exc
        except Exception as exc:  # noqa: BLE001 - the task failed, or the scheduler went away
            if fut.cancelled() or self.client.status != "running":
                raise self._lost() from None
            self.pending.pop(fut.key)
            return prep, None, f"execution failed on the worker: {exc!r}"
        self.pending.pop(fut.key)
        return prep, result, ""

    def ready(self):
        self._check()
        while self.done.has_ready():
            for fut in self.done.next_batch(block=False):
                yield self._result(fut)

    def rest(self, stop=lambda: False):
        while self.pending and not stop():
            if self.done.has_ready():
                for fut in self.done.next_batch(block=False):
                    yield self._result(fut)
            else:
                self._check()
                time.sleep(0.1)


# ------------------------------------------------------------------------------ the assignment
def instructor_cells(paths) -> dict[str, dict[str, tuple[str, str]]]:
    """The instructor's code cells of each source notebook: {notebook: {grade_id: (role, source)}},
    role ``"test"`` (graded, not an answer) or ``"setup"`` (locked, not graded, not an answer)."""
    out = {}
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        cells = {}
        for cell in nb.cells:
            md = cell.get("metadata", {}).get("nbgrader", {})
            gid = md.get("grade_id")
            if cell.cell_type != "code" or not gid or md.get("solution"):
                continue
            if md.get("grade"):
                cells[gid] = ("test", cell.source)
            elif md.get("locked"):
                cells[gid] = ("setup", cell.source)
        out[Path(path).stem] = cells
    return out


def assignment_settings(source_dir: Path) -> dict:
    """``grading.toml`` of the assignment's source folder, e.g. ``hide_packages = ["torch"]``:
    packages the student's kernel cannot import (its sandbox does not mount them)."""
    import tomllib

    path = source_dir / "grading.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def honest_mistakes(raw: Path, text: str, instructor: dict[str, tuple[str, str]]) -> list[str]:
    """Notes for the instructor about a notebook that is graded normally all the same: cells
    copy-pasted with their nbgrader metadata (nbgrader's DeduplicateIds keeps the last of
    each), and student cells that contain nbgrader's hidden-test markers (they run as the
    student's code)."""
    from collections import Counter

    notes = []
    try:
        ids = Counter(
            c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            for c in nbformat.read(str(raw), as_version=4).cells
        )
    except Exception:  # noqa: BLE001 - it was read once already; nothing to add
        ids = Counter()
    twice = sorted(str(g) for g, n in ids.items() if g and n > 1)
    if twice:
        notes.append(
            "cells copied with their nbgrader metadata (the last copy of each was graded): " + ", ".join(twice)
        )
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        md = cell.get("metadata", {}).get("nbgrader", {})
        gid = md.get("grade_id") if isinstance(md, dict) else None
        if cell.cell_type == "code" and gid not in instructor and "BEGIN HIDDEN TESTS" in cell.source:
            notes.append("a student cell contains '### BEGIN HIDDEN TESTS' (it ran as the student's code)")
    return notes
