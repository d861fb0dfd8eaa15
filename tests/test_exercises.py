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
    "ex05_batchnorm", "ex06_clipping", "ex07_remedies", "ex08_transformer_stability",
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
def test_every_assignment_exists():
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
    assert course.colab_cell_is_current(nb, course.repository_url(ROOT))


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
    url = course.repository_url(ROOT).removeprefix("https://github.com/").removesuffix(".git")
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


# ------------------------------------------- hints, self-check, nothing given away
SELF_CHECKED = ["ex01_gradient_descent", "ex02_activations", "ex03_backprop_mlp", "ex04_initialisation", "ex05_batchnorm",
                "ex06_clipping", "ex07_remedies", "ex08_transformer_stability"]
WITH_TASK = re.compile(r'^with gr\.task\("(task\d+)", points=(\d+), answers=\(([^)]*)\)\):$', re.MULTILINE)

#: results of the derivation tasks, as they would be written out: none may appear in the student
#: version's markdown, docstrings or visible tests, nor in the first level of the task's hints
GIVEAWAYS = {
    "ex01_gradient_descent": {"task1": ["A + A^T", "A + A.T", "A^\\top", "A @ w - b"],
                              "task3": ["2 / lambda", "2/lambda", "2/\\lambda", "\\frac{2}{\\lambda", "1 - \\eta\\lambda",
                                        "I - lr H", "I - \\eta H", "1.0 - lr", "1 - lr"],
                              "task5": ["lambda_min + lambda_max", "\\lambda_{\\min} + \\lambda_{\\max}", "kappa - 1",
                                        "\\kappa - 1"]},
    "ex02_activations": {"task2": ["(1 - s)", "(1 - sigma", "1 - \\sigma", "1 - tanh", "1 - \\tanh", "\\sigma(x)\\,\\bigl(1"],
                         "task4": ["alpha e^x", "alpha * e^x", "\\alpha\\, e^{x}", "alpha * np.exp"],
                         "task5": ["1 + x * (1", "x * s * (1", "x \\sigma(x) (1", "\\sigma(x)(1 +"]},
    "ex04_initialisation": {"task1": ["sqrt(2 / (1 + slope", "\\sqrt{2/(1 +", "2 / (1 + slope", "sqrt(2.0 / (1.0"]},
    "ex07_remedies": {"task1": ["diag(1 - tanh", "I + diag", "\\operatorname{diag}\\bigl(1", "(1.0 - t * t)"]},
    # ex03 and ex05 (exercises-b)
    "ex03_backprop_mlp": {"task1": ["probs - onehot", "-1 / N", "-1.0 / N", "counts_sum ** 2", "/ probs"],
                          "task2": ["1 - h1 ** 2", "1 - h1^2", "1 - h^2", "1 - tanh^2", "dlogits @ W2", "dlogits.T @ h1"],
                          "task3": ["-0.5 * (var + EPS)", "2 * centred / N", "2 centred_n / N", "da1 * gamma"],
                          "task4": ["np.add.at", "dz1 @ W1", "dz1.T @ x"],
                          "task5": ["probs - np.eye", "da1 - da1.mean", "(da1 * xhat)"]},
    "ex05_batchnorm": {"task4": ["g - g.mean", "g - mean(g", "mean(g * xhat", "(g * xhat).mean", "xhat * mean(g",
                                 "\\frac{\\gamma}{\\sqrt", "sum_k g_k", "\\sum_{k} g_k", "(g * xhat).sum"],
                       "task5": ["delta_nk - 1/N", "\\delta_{nk} -", "np.eye(N) -", "np.outer(xhat"]},
    "ex08_transformer_stability": {
        "task2": ["g_hat - g_hat.mean", "x_hat * (g_hat * x_hat)", "\\hat{x}_i \\hat{x}_j", "x_hat_i x_hat_j",
                  "mean of g_hat * x_hat"],
        "task3": ["(g_hat - x_hat", "x_hat * (g_hat * x_hat)", "delta_ij - x_hat_i x_hat_j", "x_j / (D r)"],
        "task5": ["np.abs(gain_q * gain_k).max()", "max |w|", "max_m |w_m|", "\\max_m", "length sqrt(d)",
                  "length of u is sqrt(d)"]},
}


def student_text(nb) -> str:
    """What a learner reads in the student version: markdown, answer stubs with their docstrings,
    and the visible tests."""
    return "\n".join(c.source for c in nb.cells)


@pytest.mark.parametrize("a", SELF_CHECKED)
def test_every_task_has_a_hint_ladder_with_its_points(a):
    from tamegrad.grading import ladder

    nb = read(source_path(a))
    headings = {f"task{k}": int(p) for c in nb.cells if c.cell_type == "markdown" for k, p in TASK_HEADING.findall(c.source)}
    tasks = ladder.load(a)
    assert list(tasks) == list(headings), f"{a}: the hint file's tasks should be the notebook's, in order"
    for task, table in tasks.items():
        assert table["points"] == headings[task], f"{a} {task}: hint file {table['points']}, heading {headings[task]}"
        assert len(table["levels"]) >= 3, f"{a} {task}: a nudge, the structure, a worked step"


@pytest.mark.parametrize("a", SELF_CHECKED)
def test_the_visible_tests_record_their_task_and_a_last_cell_checks_your_work(a):
    nb = read(source_path(a))
    setup = next(c for c in nb.cells if meta(c).get("grade_id") == "setup")
    assert f'hint = gr.hints("{a}")' in setup.source
    for c in graded_cells(nb):
        visible, _, hidden = c.source.partition(HIDDEN_MARKERS[0])
        found = WITH_TASK.findall(visible)
        task = meta(c)["grade_id"].removesuffix("_tests")
        assert len(found) == 1 and found[0][0] == task and int(found[0][1]) == meta(c)["points"], meta(c)["grade_id"]
        assert "gr.task(" not in hidden and "gr.summary" not in hidden
        # the hidden tests run after the block, never inside it: the record is the visible tests' alone
        assert not c.source.split(HIDDEN_MARKERS[0])[1].split("\n", 1)[1].startswith((" ", "\t")), meta(c)["grade_id"]
        for name in re.findall(r'"([^"]+)"', found[0][2]):
            assert re.search(rf"^def {name}\(", "\n".join(x.source for x in answer_cells(nb)), re.MULTILINE), name
    last = nb.cells[-1]
    assert last.cell_type == "code" and last.source.strip() == "gr.summary()"
    assert meta(last) == {"grade": False, "grade_id": "summary", "locked": True, "schema_version": 3,
                          "solution": False, "task": False}, "the summary earns no points"
    assert "Check your work" in nb.cells[-2].source and "Runtime → Run all" in nb.cells[0].source
    assert 'hint("task2")' in nb.cells[0].source


@pytest.mark.parametrize("a", sorted(GIVEAWAYS))
def test_no_derivation_task_gives_its_result_away(a):
    """The derivation tasks' results appear in no markdown, docstring or visible test of the
    student version, and in no first-level hint (later levels may show them)."""
    from tamegrad.grading import ladder

    text = student_text(read(release_path(a)))
    tasks = ladder.load(a)
    for task, results in GIVEAWAYS[a].items():
        nudge = tasks[task]["levels"][0]
        for result in results:
            assert result not in text, f"{a} {task}: the student version shows {result!r}"
            assert result not in nudge, f"{a} {task}: the first hint shows {result!r}"


# ----------------------------------------------- headless runs of the self-check
def execute(nb, tmp_path: Path):
    """Run a notebook as nbconvert --execute does (nbclient), continuing past errors as a learner
    who runs every cell would; returns the executed notebook."""
    import nbclient

    nbclient.NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def text_of(cell) -> str:
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts.append("\n".join(o.traceback))
    return "".join(parts)


def table_rows(output: str) -> dict[str, tuple[str, str]]:
    """task -> (points, status) from the printed summary table."""
    rows = {}
    for line in output.splitlines():
        m = re.match(r"^(task\d+) +(\d+) +(passed|failed|not run yet)", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


SELF_CHECK_ASSIGNMENT = "ex02_activations"


@pytest.mark.slow
def test_self_check_and_hints_headless_on_the_solution(tmp_path):
    """The solution: every task passed; the hint ladder prints its levels in order; re-running an
    answer cell after its test marks that task "not run yet"."""
    from nbformat.v4 import new_code_cell

    a = SELF_CHECK_ASSIGNMENT
    nb = submissions(a)["solution"]
    task1_answer = next(c.source for c in answer_cells(read(source_path(a))) if meta(c)["grade_id"] == "task1_answer")
    extra = [new_code_cell('hint("task2")'), new_code_cell('hint("task2")'), new_code_cell('hint("task2")'),
             new_code_cell('hint("task2")'), new_code_cell('hint("task2", level=1)'),
             new_code_cell(student_code(task1_answer)), new_code_cell("gr.summary()")]
    nb.cells += extra
    nb = execute(nb, tmp_path)
    first_summary = next(c for c in nb.cells if meta(c).get("grade_id") == "summary")
    rows = table_rows(text_of(first_summary))
    points = {f"task{k}": p for k, p in TASK_HEADING.findall(nb.cells[0].source + "\n".join(
        c.source for c in nb.cells if c.cell_type == "markdown"))}
    assert rows == {t: (p, "passed") for t, p in points.items()}, rows
    assert "Hidden tests run when your work is graded" in text_of(first_summary)
    outs = [text_of(c) for c in nb.cells[-len(extra):]]
    assert [o.split("\n", 1)[0] for o in outs[:3]] == [f"Hint {k} of 3 for task2 (the derivatives of sigmoid and tanh):"
                                                        for k in (1, 2, 3)]
    assert outs[3].startswith("You have seen all 3 hints for task2") and outs[4].startswith("Hint 1 of 3")
    assert all(len(line) <= 88 for o in outs[:5] for line in o.splitlines())
    rows = table_rows(outs[-1])
    stale = {"task1", "task2", "task5"}  # the tasks whose tests called sigmoid (gr.task(..., answers=...))
    assert {t for t, (_, state) in rows.items() if state == "not run yet"} == stale, outs[-1]
    assert all(state == "passed" for t, (_, state) in rows.items() if t not in stale)
    assert "sigmoid changed after the test ran" in " ".join(outs[-1].split())


@pytest.mark.slow
def test_self_check_headless_on_a_blank_and_a_half_right_notebook(tmp_path):
    """A blank release: no task passes. A half-right one (a wrong Task 2, Task 6 not written): those
    two fail, with the first line of their failure; the others pass. A failed check is rendered
    without the checking helpers' frames, in lines nbgrader validate does not cut."""
    a = SELF_CHECK_ASSIGNMENT
    blank = execute(submissions(a)["blank"], tmp_path)
    rows = table_rows(text_of(blank.cells[-1]))
    assert len(rows) == 6 and all(s in ("failed", "not run yet") for _, s in rows.values()), rows

    solution = {meta(c)["grade_id"]: student_code(c.source) for c in answer_cells(read(source_path(a)))}
    wrong = next(m for m in for_assignment(a) if m.name == "sigmoid-backward-without-upstream")
    half = read(release_path(a))
    for c in answer_cells(half):
        gid = meta(c)["grade_id"]
        if gid == "task2_answer":
            c.source = mutate(solution[gid], wrong)
        elif gid != "task6_answer":
            c.source = solution[gid]
    half = execute(half, tmp_path)
    out = text_of(half.cells[-1])
    rows = table_rows(out)
    assert {t: s for t, (_, s) in rows.items()} == {"task1": "passed", "task2": "failed", "task3": "passed",
                                                    "task4": "passed", "task5": "passed", "task6": "failed"}, out
    assert re.search(r"task2 +2 +failed +sigmoid_backward\(x, grad_out\), dL/dx: wrong\.", out), out
    failed = next(c for c in half.cells if meta(c).get("grade_id") == "task2_tests")
    error = next(o for o in failed.outputs if o.output_type == "error")
    shown = "\n".join(error.traceback)
    assert "wrong." in shown and "input:" in shown and "Check failed at Cell In[" in shown
    assert "tamegrad/grading" not in shown and "_fail(" not in shown and "\x1b[" not in shown
    assert all(len(line) <= 83 for line in shown.splitlines()), "nbgrader validate cuts longer lines"


@pytest.mark.slow
def test_the_table_never_shows_the_hidden_tests(tmp_path):
    """In the source (hidden tests present, as when grading), an answer that passes the visible tests
    and fails a hidden one is recorded as passed, and nothing of the hidden failure is printed by
    the summary."""
    a = SELF_CHECK_ASSIGNMENT
    nb = read(source_path(a))
    wrong = next(m for m in for_assignment(a) if m.name == "elu-backward-missing-alpha")
    for c in answer_cells(nb):
        if meta(c)["grade_id"] == wrong.answer:
            c.source = mutate(student_code(c.source), wrong)
    nb = execute(nb, tmp_path)
    hidden_failure = text_of(next(c for c in nb.cells if meta(c).get("grade_id") == "task4_tests"))
    assert "alpha=0.5" in hidden_failure  # the hidden test did fail, in its own cell
    out = text_of(nb.cells[-1])
    assert table_rows(out)["task4"] == ("3", "passed") and "alpha=0.5" not in out
