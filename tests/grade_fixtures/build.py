"""Helpers of the grading tests: a fixture course, student submissions, running the grader."""

from __future__ import annotations

import contextlib
import copy
import csv
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

from tamegrad.autograde.gradebook import with_tools_on_path

HERE = Path(__file__).parent
REPO = HERE.parent.parent
VENV_BIN = Path(sys.executable).parent
ASSIGNMENT = "fx_square"


def env() -> dict:
    return with_tools_on_path(os.environ)


def run_tool(name: str, *args: str, cwd: Path | None = None, check: bool = False, timeout: int | None = None):
    """``<venv>/bin/<name> *args`` with the grading tests' environment, output captured as text."""
    return subprocess.run(
        [str(VENV_BIN / name), *map(str, args)],
        cwd=cwd,
        env=env(),
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def generate(course: Path, assignment: str = ASSIGNMENT) -> None:
    """nbgrader generate_assignment: the student version and the gradebook's record."""
    run_tool("nbgrader", "generate_assignment", assignment, "--force", cwd=course, check=True)


def make_course(dest: Path) -> Path:
    shutil.copytree(HERE / "course", dest)
    generate(dest)
    return dest


def release_notebook(course: Path, assignment: str = ASSIGNMENT, release: str = "exercises"):
    return nbformat.read(course / release / assignment / f"{assignment}.ipynb", as_version=4)


def cases() -> tuple[dict, list[dict]]:
    data = tomllib.loads((HERE / "hostile" / "cases.toml").read_text())
    return data["answers"], data["case"]


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def write_case(case: dict, answers: dict, release, submitted: Path, values: dict) -> None:
    folder = submitted / case["student"] / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ASSIGNMENT}.ipynb"
    if case.get("no_notebook"):
        (folder / "notes.txt").write_text("I forgot to upload it")
        return
    if "raw" in case:
        target.write_text(case["raw"])
        return
    nb = copy.deepcopy(release)
    base = answers.get(case.get("answers", "none"), {})
    for gid in ("square", "sigmoid_grad"):
        src = case.get(gid, base.get(gid))
        if src is not None or case.get(f"{gid}_extra"):
            cell = _cell(nb, gid)
            body = (src if src is not None else cell.source).strip("\n")
            extra = case.get(f"{gid}_extra", "")
            cell.source = fill(body + ("\n" + extra.strip("\n") if extra else ""), values)
    for gid, src in case.get("edit", {}).items():
        _cell(nb, gid).source = src
    for gid in case.get("delete", []):
        nb.cells.remove(_cell(nb, gid))
    for gid in case.get("unmark", []):
        cell = _cell(nb, gid)
        del cell.metadata["nbgrader"]
        cell.source = "pass"
    for gid in case.get("flip", []):
        md = _cell(nb, gid).metadata["nbgrader"]
        md.update({"grade": False, "solution": True, "points": 0})
        _cell(nb, gid).source = "pass"
    for gid in case.get("duplicate", []):  # a copy-pasted cell, nbgrader metadata and all
        cell = _cell(nb, gid)
        nb.cells.insert(nb.cells.index(cell) + 1, copy.deepcopy(cell))
    for block in case.get("append", []):
        for _ in range(block.get("times", 1)):
            nb.cells.append(nbformat.v4.new_code_cell(fill(block["source"], values)))
    for rel, text in case.get("files", {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill(text, values))
    if case.get("rename"):
        target = folder / case["rename"]
    nbformat.write(nb, target)


def write_answers(release, submitted: Path, student: str, square: str | None, sigmoid_grad: str | None) -> None:
    nb = copy.deepcopy(release)
    if square is not None:
        _cell(nb, "square").source = square
    if sigmoid_grad is not None:
        _cell(nb, "sigmoid_grad").source = sigmoid_grad
    folder = submitted / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")


def course_with_answers(dest: Path, answers: dict, submitted: Path | None = None) -> Path:
    """A fixture course at ``dest`` and one submission per student of ``answers``
    (student: (square, sigmoid_grad), None keeps the release's stub) in ``submitted``
    (default ``dest/submitted``)."""
    course = make_course(dest)
    release = release_notebook(course)
    for student, (square, sigmoid_grad) in answers.items():
        write_answers(release, submitted or course / "submitted", student, square, sigmoid_grad)
    return course


def grade(course: Path, submissions: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [
        str(VENV_BIN / "tamegrad"),
        "grade",
        ASSIGNMENT,
        "--submissions",
        str(submissions),
        "--course",
        str(course),
        "--no-progress",
        *args,
    ]
    return subprocess.run(cmd, cwd=course, env=env(), capture_output=True, text=True, timeout=timeout)


def read_grades(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}


@contextlib.contextmanager
def reaped(proc: subprocess.Popen):
    """``with reaped(proc):`` the process is killed (and waited for) on leaving if it still runs."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
