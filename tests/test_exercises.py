"""The exercises: nbgrader assignments, proven both ways.

``solutions/<a>/<a>.ipynb`` is the source (solutions, hidden tests); ``exercises/<a>/``
is the student version that ``nbgrader generate_assignment`` makes from it.

* Fast checks read the notebooks: nbgrader metadata, points in the headings, test
  cells that say what they check, student versions without outputs, solutions or
  hidden tests, and a mutant catalogue that covers every graded cell.
* Slow checks run nbgrader itself, always in a temporary copy of the course under
  ``tmp_path`` (never in the repository): the release reproduces the committed
  ``exercises/``; autograding gives the solutions full marks and blank releases zero;
  every realistic wrong answer in ``tests/exercises_mutants.py`` loses exactly the
  points it should; feedback HTML carries the teaching failure messages; grades
  export to CSV. All submissions of one assignment are graded in one ``autograde`` run.
"""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import course

from .exercises_mutants import MUTANTS, Mutant, for_assignment

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = [  # fixed names: the book links to them
    "ex01_gradient_descent", "ex02_activations", "ex03_backprop_mlp", "ex04_initialisation",
    "ex05_batchnorm", "ex06_clipping", "ex07_remedies",
]
FEEDBACK_ASSIGNMENT = "ex05_batchnorm"  # whose feedback HTML and CSV export are checked
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
TASK_HEADING = re.compile(r"^## Task (\d+): .+ \((\d+) points?\)$", re.MULTILINE)


# ------------------------------------------------------------------- helpers
def source_path(a: str) -> Path:
    return ROOT / "solutions" / a / f"{a}.ipynb"


def release_path(a: str) -> Path:
    return ROOT / "exercises" / a / f"{a}.ipynb"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_cells(nb) -> list:
    return [c for c in nb.cells if meta(c).get("grade")]


def answer_cells(nb) -> list:
    return [c for c in nb.cells if meta(c).get("solution")]


def split_regions(source: str) -> tuple[list[str], list[str]]:
    """(lines inside solution or hidden-test regions, lines outside them), markers excluded."""
    inside, outside, depth = [], [], 0
    for line in source.splitlines():
        if line.strip() in (SOLUTION_MARKERS[0], HIDDEN_MARKERS[0]):
            depth += 1
        elif line.strip() in (SOLUTION_MARKERS[1], HIDDEN_MARKERS[1]):
            depth -= 1
        else:
            (inside if depth else outside).append(line)
    return inside, outside


def student_code(solution_source: str) -> str:
    """What a student who wrote the solution would submit: the cell without the markers."""
    return "\n".join(line for line in solution_source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def mutate(code: str, mutant: Mutant) -> str:
    for old, new in mutant.replace:
        if code.count(old) != 1:
            raise ValueError(f"mutant {mutant.name}: {old!r} occurs {code.count(old)} times in {mutant.answer}")
        code = code.replace(old, new)
    return code


def nbgrader(course_dir: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader <args>`` in ``course_dir`` (which holds its nbgrader_config.py)."""
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=course.nbgrader_env(),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


def copy_course(dest: Path, assignments: list[str]) -> Path:
    """A course directory with the configuration, sources and releases of ``assignments``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(ROOT / "solutions" / a, dest / "solutions" / a)
        if (ROOT / "exercises" / a).exists():
            shutil.copytree(ROOT / "exercises" / a, dest / "exercises" / a)
    return dest


def submissions(a: str) -> dict[str, nbformat.NotebookNode]:
    """Student id -> submitted notebook: the committed student version with its answer
    cells filled in by the solution ("solution"), left blank ("blank"), or filled in by
    the solution except for one mutated cell (each mutant)."""
    solution = {meta(c)["grade_id"]: student_code(c.source) for c in answer_cells(read(source_path(a)))}

    def filled(changes: dict[str, str]):
        nb = read(release_path(a))
        for c in answer_cells(nb):
            c.source = changes.get(meta(c)["grade_id"], c.source)
        return nb

    subs = {"solution": filled(solution), "blank": read(release_path(a))}
    for m in for_assignment(a):
        subs[m.name] = filled({**solution, m.answer: mutate(solution[m.answer], m)})
    return subs


def grade(a: str, course_dir: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde every submission of ``a`` in one run; student -> {test cell: (score, max)}."""
    from nbgrader.api import Gradebook

    copy_course(course_dir, [a])
    nbgrader(course_dir, "generate_assignment", a, "--force")  # fills the gradebook (and the hidden tests)
    for student, nb in submissions(a).items():
        folder = course_dir / "submitted" / student / a
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{a}.ipynb")
    nbgrader(course_dir, "autograde", a, "--force")
    scores = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(a):
            scores[sub.student.id] = {g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades}
    return scores


def headings(nb) -> list[tuple[int, str]]:
    found = []
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        in_math = False
        for line in c.source.splitlines():
            if line.strip().startswith("$$"):
                in_math = not in_math if line.strip() == "$$" else in_math
            m = re.match(r"^(#{1,6}) (.+)$", line)
            if m and not in_math:
                found.append((len(m.group(1)), m.group(2)))
    return found


# --------------------------------------------------------------- fast checks
def test_the_seven_assignments_exist():
    assert course.assignments(ROOT) == ASSIGNMENTS
    released = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert released == ASSIGNMENTS, "run `make release` (python -m tools.course release)"
    for a in ASSIGNMENTS:
        assert sorted(p.name for p in (ROOT / "solutions" / a).iterdir()) == [f"{a}.ipynb"]
        assert sorted(p.name for p in (ROOT / "exercises" / a).iterdir()) == [f"{a}.ipynb"]


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_source_has_nbgrader_schema_3_metadata(a):
    nb = read(source_path(a))
    assert nb.metadata.kernelspec.name == "python3"
    ids = [meta(c)["grade_id"] for c in nb.cells if meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for c in nb.cells:
        if not meta(c):
            continue
        m = meta(c)
        assert m["schema_version"] == 3 and m["task"] is False, m
        if m["grade"]:  # an autograded test cell: locked, with points, hidden tests
            assert c.cell_type == "code" and m["locked"] and not m["solution"] and m["points"] > 0, m
            assert c.source.count(HIDDEN_MARKERS[0]) == 1 and c.source.count(HIDDEN_MARKERS[1]) == 1, m["grade_id"]
        elif m["solution"]:  # an answer cell: editable, with one solution region
            assert c.cell_type == "code" and not m["locked"], m
            begins, ends = c.source.count(SOLUTION_MARKERS[0]), c.source.count(SOLUTION_MARKERS[1])
            assert begins == ends >= 1, m["grade_id"]
            for stub in c.source.split(SOLUTION_MARKERS[0])[:-1]:
                assert '"""' in stub.rsplit("def ", 1)[-1], f"{m['grade_id']}: every stub keeps its docstring"
        else:
            assert m["locked"], m


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_points_are_stated_in_the_headings(a):
    """Each '## Task k: ... (P points)' heading states the points of the test cells under it;
    at least 10 points over at least 4 graded cells; the overview's total agrees."""
    nb = read(source_path(a))
    tasks, current = {}, None
    for c in nb.cells:
        if c.cell_type == "markdown":
            for k, p in TASK_HEADING.findall(c.source):
                current = int(k)
                tasks[current] = [int(p), 0]
        elif meta(c).get("grade"):
            assert current is not None, f"{meta(c)['grade_id']} comes before any task heading"
            tasks[current][1] += meta(c)["points"]
    assert tasks, "no '## Task k: ... (P points)' headings"
    assert list(tasks) == list(range(1, len(tasks) + 1))
    for k, (stated, graded) in tasks.items():
        assert stated == graded, f"Task {k}: the heading says {stated} points, its test cells carry {graded}"
    total = sum(meta(c)["points"] for c in graded_cells(nb))
    assert total >= 10 and len(graded_cells(nb)) >= 4
    overview = nb.cells[0].source
    assert re.search(rf"\*\*Total\*\* \| \*\*{total}\*\*", overview), f"the overview's table should total {total}"


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_test_cells_say_what_they_check(a):
    for c in graded_cells(read(source_path(a))):
        first = c.source.lstrip().splitlines()[0]
        assert first.startswith(('"""', "#")), f"{meta(c)['grade_id']} should open with a docstring or comment"


@pytest.mark.parametrize("path", [source_path, release_path], ids=["solution", "release"])
@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_one_title_no_skipped_heading_levels_and_the_colab_cell(a, path):
    nb = read(path(a))
    levels = [level for level, _ in headings(nb)]
    assert levels[0] == 1 and levels.count(1) == 1, "one '#' title, first"
    for before, after in zip(levels, levels[1:]):
        assert after <= before + 1, f"a heading skips a level: {before} -> {after}"
    assert course.colab_cell_is_current(nb, course.repository_url(ROOT / "_config.yml"))


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_student_version_has_no_outputs_solutions_or_hidden_tests(a):
    source, release = read(source_path(a)), read(release_path(a))
    assert not course.has_outputs(release) and not course.has_outputs(source)
    text = "\n".join(c.source for c in release.cells)
    for marker in SOLUTION_MARKERS + HIDDEN_MARKERS:
        assert marker not in text
    # lines that occur only inside solution or hidden-test regions of the source never reach students
    secret, public = set(), set()
    for c in source.cells:
        inside, outside = split_regions(c.source)
        secret |= {line.strip() for line in inside}
        public |= {line.strip() for line in outside}
    leaked = {line.strip() for line in text.splitlines()} & (secret - public - {""})
    assert not leaked, f"solution or hidden-test lines in the student version: {sorted(leaked)[:5]}"
    for c in answer_cells(release):
        assert c.source.rstrip().endswith("raise NotImplementedError()"), meta(c)["grade_id"]


def test_the_mutant_catalogue_covers_every_graded_cell():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)), "mutant names are student ids: they must be unique"
    for a in ASSIGNMENTS:
        nb = read(source_path(a))
        answers = {meta(c)["grade_id"]: student_code(c.source) for c in answer_cells(nb)}
        graded = {meta(c)["grade_id"] for c in graded_cells(nb)}
        lost = set()
        for m in for_assignment(a):
            assert m.answer in answers, m
            assert mutate(answers[m.answer], m) != answers[m.answer]
            assert m.loses and set(m.loses) <= graded, m
            lost |= set(m.loses)
        assert lost == graded, f"{a}: no mutant loses {sorted(graded - lost)}"


def test_the_exercises_page_lists_every_assignment_with_its_points_and_colab_link():
    page = (ROOT / "book" / "exercises.md").read_text(encoding="utf-8")
    url = course.repository_url(ROOT / "_config.yml").removeprefix("https://github.com/").removesuffix(".git")
    branch = re.search(r"^\s+branch:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.MULTILINE).group(1)
    for a in ASSIGNMENTS:
        row = next((line for line in page.splitlines() if f"</exercises/{a}/{a}>`" in line), None)
        assert row, f"book/exercises.md has no row for {a}"
        cells = [c.strip() for c in row.strip("|").split("|")]
        total = sum(meta(c)["points"] for c in graded_cells(read(source_path(a))))
        assert cells[3] == str(total), f"{a}: the page says {cells[3]} points, the notebook {total}"
        colab = f"https://colab.research.google.com/github/{url}/blob/{branch}/exercises/{a}/{a}.ipynb"
        assert f"({colab})" in cells[4], f"{a}: the Colab link should be {colab}"


def test_the_failure_message_quoted_in_the_book_is_real():
    """book/exercises.md quotes a failure message; it must be what tamegrad.grading prints."""
    import numpy as np

    from tamegrad import grading as gr

    x = np.array([-1.0, 0.0, 2.0])
    g = gr.upstream(x.shape, seed=0)
    s = 1 / (1 + np.exp(-x))
    with pytest.raises(AssertionError) as failure:
        gr.check_gradient(s * (1 - s), lambda t: 1 / (1 + (-t).exp()), [x], upstream=g, input_names=["x"],
                          names=["dL/dx"], what="sigmoid_backward(x, grad_out)",
                          hint="differentiate 1 / (1 + e^{-x}), then express e^{-x} through sigma(x); times grad_out.")
    page = (ROOT / "book" / "exercises.md").read_text(encoding="utf-8")
    quoted = page.split("```text\n", 1)[1].split("```", 1)[0]
    assert quoted.strip() == str(failure.value).strip()


# --------------------------------------------------------------- slow checks
def per_course(assignments):
    """One parameter per assignment. `make test` runs a file's tests on one worker
    (--dist loadfile), where the module-scoped `graded` fixture grades each course once."""
    return [pytest.param(a, id=a) for a in assignments]


@pytest.mark.slow
def test_release_reproduces_the_committed_exercises(tmp_path):
    """`python -m tools.course release` in a copy of the course regenerates exercises/ byte
    for byte: nbgrader's checksums are digests of the cell sources, cell ids come from the
    source notebooks and outputs are cleared, so nothing in a release varies from run to run
    and nothing needs ignoring. The release leaves no gradebook or other file behind."""
    course_dir = copy_course(tmp_path / "course", ASSIGNMENTS)
    shutil.copy2(ROOT / "_config.yml", course_dir / "_config.yml")
    shutil.rmtree(course_dir / "exercises")
    before = {p for p in course_dir.rglob("*")}
    course.release(course_dir)
    created = {p.relative_to(course_dir) for p in course_dir.rglob("*") if p not in before}
    expected = {Path("exercises")} | {Path("exercises", a) for a in ASSIGNMENTS} | {
        Path("exercises", a, f"{a}.ipynb") for a in ASSIGNMENTS}
    assert created == expected, f"unexpected files: {sorted(map(str, created - expected))}"
    for a in ASSIGNMENTS:
        fresh = (course_dir / "exercises" / a / f"{a}.ipynb").read_bytes()
        assert fresh == release_path(a).read_bytes(), f"exercises/{a} is stale: run `make release`"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Assignment -> (course directory, scores), autograded once per test module and worker."""
    cache: dict[str, tuple[Path, dict]] = {}

    def get(a: str):
        if a not in cache:
            course_dir = tmp_path_factory.mktemp(a)
            cache[a] = (course_dir, grade(a, course_dir))
        return cache[a]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("a", per_course(ASSIGNMENTS))
def test_autograding_solution_full_blank_zero_each_mutant_exactly_its_cells(a, graded):
    _, scores = graded(a)
    table = {student: {cell: s for cell, (s, _) in cells.items()} for student, cells in scores.items()}
    maximum = {cell: mx for cell, (_, mx) in scores["solution"].items()}
    print(f"\n{a}: " + "  ".join(f"{cell} /{mx:g}" for cell, mx in maximum.items()))  # shown with -s or -rP
    for student in ["solution", "blank"] + [m.name for m in for_assignment(a)]:
        row = table.get(student, {})
        print(f"  {student:40s}" + "".join(f"{row.get(cell, float('nan')):>8g}" for cell in maximum)
              + f"   total {sum(row.values()):g}/{sum(maximum.values()):g}")
    problems = []
    if table["solution"] != maximum:
        problems.append(f"solution: {table['solution']} (expected full marks {maximum})")
    if any(table["blank"].values()):
        problems.append(f"blank: {table['blank']} (expected zero everywhere)")
    for m in for_assignment(a):
        expected = {cell: 0.0 if cell in m.loses else mx for cell, mx in maximum.items()}
        if table[m.name] != expected:
            problems.append(f"{m.name} ({m.why}): {table[m.name]} (expected {expected})")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("a", per_course([FEEDBACK_ASSIGNMENT]))
def test_feedback_teaches_and_grades_export_to_csv(a, graded):
    course_dir, scores = graded(a)
    nbgrader(course_dir, "generate_feedback", a, "--force")
    mutant = next(m for m in for_assignment(a) if "task4_tests" in m.loses)
    page = (course_dir / "feedback" / mutant.name / a / f"{a}.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for piece in ("wrong.", "input:", "expected:", "(from tamegrad autodiff of the forward definition)", "got:",
                  "max relative error", "hint:"):
        assert piece in text, f"the feedback for {mutant.name} lacks {piece!r}"
    solution_page = (course_dir / "feedback" / "solution" / a / f"{a}.html").read_text(encoding="utf-8")
    assert "AssertionError" not in solution_page
    nbgrader(course_dir, "export", "--to", "grades.csv")
    with open(course_dir / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(scores)
    assert all(r["assignment"] == a for r in rows.values())
    assert float(rows["solution"]["score"]) == float(rows["solution"]["max_score"]) > 0
    assert float(rows["blank"]["score"]) == 0.0
    assert 0 < float(rows[mutant.name]["score"]) < float(rows[mutant.name]["max_score"])
