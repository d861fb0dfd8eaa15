"""nbgrader's course settings and gradebook, as ``nbgrader autograde`` sees them.

The gradebook is nbgrader's own (``nbgrader.api.Gradebook``): SQLite at the course root
by default, or any SQLAlchemy URL given with ``--db-url`` (PostgreSQL for grading from
several machines). Only the process that runs ``tamegrad grade`` writes to it; workers
never see it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path


def with_tools_on_path(env) -> dict[str, str]:
    """A copy of ``env`` with this interpreter's scripts first on PATH: nbgrader runs
    ``alembic`` as a subprocess whenever it opens or creates a gradebook. The one rule, used
    by the grader, the repository's tools and the tests."""
    env = dict(env)
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    if bindir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def ensure_tools_on_path() -> None:
    """:func:`with_tools_on_path` applied to this process's environment."""
    os.environ["PATH"] = with_tools_on_path(os.environ)["PATH"]


def load_config(root: Path):
    """The course's ``nbgrader_config.py`` (if any), as a traitlets Config."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = Config()
    if (root / "nbgrader_config.py").is_file():
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    return cfg


def normalise_db_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; the course pins
    psycopg2-binary. An explicit driver (``postgresql+psycopg://``) is kept as given.
    """
    import importlib.util

    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
                return "postgresql+psycopg2://" + rest
            return "postgresql://" + rest
    return url


def course_directory(root: Path, config, *, db_url: str | None, submitted: Path, out: Path):
    """nbgrader's CourseDirectory with our folders: submissions in, results under ``out``."""
    from nbgrader.coursedir import CourseDirectory

    cd = CourseDirectory(config=config)
    cd.root = str(root)
    if db_url:
        cd.db_url = normalise_db_url(db_url)
    elif "db_url" not in config.get("CourseDirectory", {}):
        cd.db_url = f"sqlite:///{root / 'gradebook.db'}"
    cd.submitted_directory = str(submitted.resolve())
    cd.autograded_directory = str((out / "autograded").resolve())
    cd.feedback_directory = str((out / "feedback").resolve())
    return cd


def source_notebooks(coursedir, assignment: str) -> list[Path]:
    src = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
    return sorted(p for p in src.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def ensure_assignment(coursedir, config, assignment: str, log) -> list[str]:
    """Make sure the gradebook knows the assignment; return its notebook names.

    If ``nbgrader generate_assignment`` has not been run against this gradebook, run
    nbgrader's GenerateAssignment converter with a throw-away release folder: it records
    the source cells, checksums and points in the gradebook (what OverwriteCells and the
    scores rely on) and leaves the course's release folder alone.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            names = []
    if names:
        return names
    if not source_notebooks(coursedir, assignment):
        raise LookupError(
            f"assignment {assignment!r} is not in the gradebook ({coursedir.db_url}) and has no "
            f"source notebook in {coursedir.format_path(coursedir.source_directory, '.', assignment)}"
        )
    from nbgrader.converters import GenerateAssignment
    from traitlets.config import Config

    log(f"recording {assignment} in the gradebook from its source (nbgrader generate_assignment)")
    with tempfile.TemporaryDirectory(prefix="tamegrad-release-") as tmp:
        cfg = Config(config)
        cfg.CourseDirectory.release_directory = tmp
        from nbgrader.coursedir import CourseDirectory

        cd = CourseDirectory(config=cfg)
        cd.root = coursedir.root
        cd.db_url = coursedir.db_url
        cd.source_directory = coursedir.source_directory
        cd.release_directory = tmp
        cd.assignment_id = assignment
        conv = GenerateAssignment(coursedir=cd, config=cfg)
        conv.force = True
        conv.start()
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        return [nb.name for nb in gb.find_assignment(assignment).notebooks]


def assignment_version(coursedir, assignment: str) -> str:
    """A fingerprint of the assignment as the gradebook records it (cells, points, checksums)."""
    from nbgrader.api import Gradebook

    h = hashlib.sha256()
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        a = gb.find_assignment(assignment)
        for nb in sorted(a.notebooks, key=lambda n: n.name):
            h.update(nb.name.encode())
            for c in sorted(nb.source_cells, key=lambda c: c.name):
                h.update(f"{c.name}|{c.checksum}|{c.locked}".encode())
            for c in sorted(nb.grade_cells, key=lambda c: c.name):
                h.update(f"{c.name}|{c.max_score}".encode())
    return h.hexdigest()[:16]


def cell_layout(coursedir, assignment: str) -> list[tuple[str, str, float, bool]]:
    """Every graded cell as (notebook, grade_id, max_score, autograded), in notebook order."""
    from nbgrader.api import Gradebook

    out = []
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        a = gb.find_assignment(assignment)
        for nb in sorted(a.notebooks, key=lambda n: n.name):
            order = {c.name: i for i, c in enumerate(nb.source_cells)}
            for c in sorted(nb.grade_cells, key=lambda c: order.get(c.name, 1e9)):
                out.append(
                    (nb.name, c.name, float(c.max_score), c.cell_type == "code" and not _is_solution(nb, c.name))
                )
    return out


def _is_solution(nb, name: str) -> bool:
    return any(s.name == name for s in nb.solution_cells)


def roster(coursedir) -> list[str]:
    from nbgrader.api import Gradebook

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        return sorted(s.id for s in gb.students)


def zero_notebook(coursedir, assignment: str, student: str, notebook: str, timestamp=None) -> None:
    """A notebook that could not be graded (missing, invalid): every grade 0, as nbgrader
    does for a missing notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        gb.update_or_create_student(student)
        if timestamp:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)
        sub = gb.find_submission_notebook(notebook, assignment, student)
        for grade in sub.grades:
            grade.auto_score = 0
            grade.needs_manual_grade = False
        gb.db.commit()


def scores(coursedir, assignment: str, student: str) -> dict | None:
    """Total, maximum, late penalty and per-cell scores from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells = {}
        for nb in sub.notebooks:
            for g in nb.grades:
                cells[f"{nb.name}/{g.name}"] = g.score
        penalty = sub.late_submission_penalty or 0.0
        return {
            "raw_score": float(sub.score),
            "late_penalty": float(penalty),
            "score": float(sub.score) - float(penalty),
            "max_score": float(sub.max_score),
            "needs_manual_grade": bool(sub.needs_manual_grade),
            "cells": cells,
        }
