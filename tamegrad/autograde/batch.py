"""One grading run: intake, prepare, execute in parallel, save, report.

The process that runs this owns the gradebook: it prepares each submission (nbgrader's
``init_assignment`` and sanitising preprocessors), sends the sanitised notebooks to
Dask workers as JSON, and, as each result comes back, saves the grades (nbgrader's
SaveAutoGrades), writes the autograded notebook and the feedback, and updates
``grades.csv``. Preparing, executing and saving overlap: with one worker the grader
prepares and saves the neighbours of the submission that is running.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import gradebook, report, sandbox, submissions
from .execute import worst


@dataclass
class Options:
    assignment: str
    submissions: Path
    course: Path = Path(".")
    workers: int | None = None
    scheduler: str | None = None
    db_url: str | None = None
    timeout: int | None = None
    memory_limit: str = "2G"
    out: Path | None = None
    force: bool = False
    sandbox: str = "auto"
    named_regexp: str = ""
    guard: bool = True
    feedback: bool = True
    progress: bool = True
    students: list[str] = field(default_factory=list)
    grades: Path | None = None          # default: <out>/grades.csv


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
        self.coursedir = gradebook.course_directory(self.root, self.config, db_url=opts.db_url,
                                                    submitted=self.submitted, out=self.out)
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
        self.limits = sandbox.Limits(timeout=timeout, memory=sandbox.parse_size(opts.memory_limit))
        self.guard = None
        if opts.guard:
            import nbformat

            from . import guard

            sources = [c.source for p in gradebook.source_notebooks(self.coursedir, opts.assignment)
                       for c in nbformat.read(str(p), as_version=4).cells if c.cell_type == "code"]
            pre, packages, bindings = guard.import_bindings(sources)
            self.guard = {"preimport": pre, "packages": packages, "bindings": bindings}
        self.sandbox_kind = opts.sandbox
        self.sandbox_used: set[str] = set()
        self.skipped = 0
        self.errors = 0

    # -- one submission, before execution ---------------------------------------------
    def prepare(self, sub: submissions.Submission):
        """Return ("row", row) when nothing needs executing, or ("job", job)."""
        from . import sanitize

        opts = self.opts
        student = sub.student
        fp = fingerprint(sub.folder, self.version)
        if sub.invalid:  # an id nbgrader cannot store, or a folder that was a link: a row, no grading
            return "row", self.row(student, "invalid", sub.invalid, "; ".join(sub.notes), fp, "")
        old = self.table.get(student, opts.assignment)
        dest = Path(self.coursedir.format_path(self.coursedir.autograded_directory, student, opts.assignment))
        if (not opts.force and old and old.get("fingerprint") == fp and old.get("status") not in ("error", "")
                and gradebook.scores(self.coursedir, opts.assignment, student) is not None
                and (old["status"] in ("missing", "invalid") or dest.is_dir())):
            self.skipped += 1
            return "skip", None
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
        prepared = sanitize.prepare(self.autograde, self.sanitize_exporter, opts.assignment, student,
                                    readable, self.source_dir)
        for name, p in prepared.items():
            if "invalid" in p:
                invalid[name] = p["invalid"]
                gradebook.zero_notebook(self.coursedir, opts.assignment, student, name, timestamp)
        base = {"fingerprint": fp, "notes": "; ".join(notes), "invalid": invalid, "missing": missing}
        texts = {n: p["text"] for n, p in prepared.items() if "text" in p}
        if not texts:
            status = "invalid" if invalid else "missing"
            detail = "; ".join(f"{n}: {why}" for n, why in invalid.items()) or \
                "no notebook named " + ", ".join(f"{n}.ipynb" for n in self.notebooks)
            return "row", self.row(student, status, detail, base["notes"], fp, "")
        files = submissions.supporting_files(dest, list(self.coursedir.ignore)) if dest.is_dir() else {}
        job = {"student": student, "assignment": opts.assignment, "notebooks": texts, "files": files,
               "limits": self.limits.__dict__, "sandbox": self.sandbox_kind, "guard": self.guard}
        return "job", (job, base)

    # -- one submission, after execution ----------------------------------------------
    def finish(self, job: dict, base: dict, result: dict | None, failure: str = "") -> dict:
        from . import finish

        student = job["student"]
        a = self.opts.assignment
        if result is None:
            return self.row(student, "error", failure, base["notes"], base["fingerprint"], "")
        self.sandbox_used.add(result.get("sandbox", ""))
        statuses, details, notes = [], [], [base["notes"]] if base["notes"] else []
        for name, res in result["notebooks"].items():
            statuses.append(res["status"])
            if res["detail"]:
                details.append(f"{name}: {res['detail']}" if len(result["notebooks"]) > 1 else res["detail"])
            notes += res.get("notes", [])
            if res["status"] == "error":
                continue
            try:
                path = finish.save(self.coursedir, self.post_exporter, a, student, name, res["notebook"])
                if self.feedback_exporter is not None:
                    finish.feedback(self.coursedir, self.feedback_exporter, a, student, name, path)
            except Exception as exc:  # noqa: BLE001 - one bad notebook must not stop the batch
                statuses.append("error")
                details.append(f"{name}: saving the grades failed: {type(exc).__name__}: {exc}")
        for name, why in base["invalid"].items():
            statuses.append("invalid")
            details.append(f"{name}: {why}")
        for name in base["missing"]:
            statuses.append("missing")
            details.append(f"{name}.ipynb was not submitted")
        status = worst(*statuses) if statuses else "error"
        return self.row(student, status, "; ".join(details), "; ".join(notes), base["fingerprint"],
                        result.get("sandbox", ""))

    def row(self, student, status, detail, notes, fp, sandbox_kind) -> dict:
        row = {"student_id": student, "assignment": self.opts.assignment, "status": status,
               "detail": detail, "notes": notes, "sandbox": sandbox_kind, "fingerprint": fp,
               "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        sc = gradebook.scores(self.coursedir, self.opts.assignment, student) if status != "error" else None
        max_score = sum(m for _, _, m, _ in self.layout)
        if sc is None:
            row.update({"score": 0.0 if status != "error" else "", "max_score": max_score, "raw_score": "",
                        "late_penalty": "", "needs_manual_grade": ""})
            for c in self.cell_columns:
                row[c] = 0.0 if status in ("missing", "invalid") else ""
        else:
            row.update({"score": sc["score"], "max_score": sc["max_score"], "raw_score": sc["raw_score"],
                        "late_penalty": sc["late_penalty"], "needs_manual_grade": sc["needs_manual_grade"]})
            for c in self.cell_columns:
                row[c] = sc["cells"].get(c, "")
        if status == "error":
            self.errors += 1
        return row

    def record(self, row: dict) -> None:
        self.table.put(row, self.cell_columns)
        self.table.save()


def _start_dask(opts: Options, n_jobs: int):
    from distributed import Client, LocalCluster

    if opts.scheduler:
        try:
            client = Client(opts.scheduler, timeout="30s")
        except Exception as exc:  # noqa: BLE001
            raise GradingError(f"cannot reach the Dask scheduler at {opts.scheduler}: {exc}") from exc
        n = len(client.scheduler_info().get("workers", {}))
        return client, None, f"Dask cluster {opts.scheduler} ({n} workers)"
    import os

    workers = opts.workers or min(os.cpu_count() or 1, max(1, n_jobs))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR, memory_limit=0)
    return Client(cluster), cluster, f"{workers} local Dask worker{'s' if workers > 1 else ''}"


def run(opts: Options) -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tamegrad-intake-") as tmp:
        try:
            grader = Grader(opts, Path(tmp))
        except GradingError as exc:
            _say(f"tamegrad grade: {exc}")
            return 2
        return _grade(grader, opts, t0)


def _grade(grader: Grader, opts: Options, t0: float) -> int:
    from tqdm import tqdm

    if opts.sandbox in ("auto", "bwrap") and not opts.scheduler:
        try:
            kind, why = sandbox.choose(opts.sandbox)
        except RuntimeError as exc:
            _say(f"tamegrad grade: {exc}")
            return 2
        grader.sandbox_kind = kind
        if kind == "none":
            _say(f"WARNING: grading WITHOUT a sandbox ({why}). Student code can read and write what you can "
                 "and reach the network. Install bubblewrap (Debian: apt-get install bubblewrap).")
    subs = submissions.list_submissions(grader.intake, opts.assignment, grader.notebooks)
    if opts.students:
        subs = [s for s in subs if s.student in opts.students]
    present = {s.student for s in subs}
    roster = [] if opts.students else [s for s in gradebook.roster(grader.coursedir) if s not in present]
    bar = tqdm(total=len(subs), desc=f"grading {opts.assignment}", unit="nb", file=sys.stderr,
               disable=not opts.progress, dynamic_ncols=True)

    client = cluster = None
    where = "in this process"
    pending = {}
    try:
        if opts.workers != 0 or opts.scheduler:
            client, cluster, where = _start_dask(opts, len(subs))
            from distributed import as_completed

            done = as_completed()
        for sub in subs:
            try:
                kind, payload = grader.prepare(sub)
            except Exception as exc:  # noqa: BLE001
                kind, payload = "row", grader.row(sub.student, "error", f"preparing failed: {exc!r}", "",
                                                  "", "")
            if kind == "skip":
                bar.update(1)
                continue
            if kind == "row":
                grader.record(payload)
                bar.update(1)
                continue
            job, base = payload
            if client is None:
                from .execute import execute_job

                try:
                    result, failure = execute_job(job), ""
                except Exception as exc:  # noqa: BLE001
                    result, failure = None, f"execution failed: {exc!r}"
                grader.record(grader.finish(job, base, result, failure))
                bar.update(1)
                continue
            from .execute import execute_job

            fut = client.submit(execute_job, job, pure=False, key=f"grade-{opts.assignment}-{sub.student}-{time.time_ns()}")
            pending[fut.key] = (job, base)
            done.add(fut)
            while done.has_ready():
                for f in done.next_batch(block=False):
                    _collect(grader, pending, f)
                    bar.update(1)
        if client is not None:
            for f in done:
                _collect(grader, pending, f)
                bar.update(1)
    finally:
        bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    for student in roster:
        old = grader.table.get(student, opts.assignment)
        if old is None or old.get("status") == "missing":
            grader.table.put(grader.row(student, "missing", "no submission folder", "", "", ""), grader.cell_columns)
    grader.table.save()
    used = ", ".join(sorted(k for k in grader.sandbox_used if k)) or grader.sandbox_kind
    print(report.summary(list(grader.table.rows.values()), assignment=opts.assignment,
                         seconds=time.perf_counter() - t0, workers=where,
                         sandbox=sandbox.describe(used) if used in ("bwrap", "none") else used,
                         out=grader.out, skipped=grader.skipped, intake_notes=grader.intake.general,
                         grades=grader.grades_path))
    return 1 if grader.errors else 0


def _collect(grader: Grader, pending: dict, fut) -> None:
    job, base = pending.pop(fut.key)
    try:
        result, failure = fut.result(), ""
    except Exception as exc:  # noqa: BLE001 - a worker died or the task failed
        result, failure = None, f"execution failed on the worker: {exc!r}"
    grader.record(grader.finish(job, base, result, failure))
