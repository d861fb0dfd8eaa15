"""Feedback that teaches and leaks nothing: a failed visible check keeps its message, a
failure in a hidden region is one line, and nbgrader's own `generate_feedback` (as the
instructors' appendix runs it, with the course's nbgrader_config.py) strips hidden tests
too."""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tamegrad.autograde import finish

from .grade_fixtures import build

SOURCE = """check(f(1), 2)
### BEGIN HIDDEN TESTS
assert f(7) == 49, "expected 49 for the secret input 7"
### END HIDDEN TESTS
check(f(3), 9)"""


def _error(line: int, evalue: str, ename="AssertionError"):
    tb = ["\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
          f"\x1b[0;31m{ename}\x1b[0m                            Traceback (most recent call last)",
          f"Cell \x1b[0;32mIn[4], line {line}\x1b[0m\n\x1b[1;32m----> {line}\x1b[0m ...",
          "File \x1b[0;32m/course/fx_grading.py:14\x1b[0m, in \x1b[0;36mcheck\x1b[0;34m(actual, expected)\x1b[0m",
          f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]
    return new_output("error", ename=ename, evalue=evalue, traceback=tb)


def _redact(outputs, source=SOURCE, test_cell=True):
    cell = new_code_cell(source, outputs=outputs)
    if test_cell:
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "t", "points": 1}
    nb = new_notebook(cells=[cell])
    pp = finish.RedactHiddenTests()
    nb, _ = pp.preprocess(nb, {})
    return nb.cells[0]


def test_a_failed_visible_check_keeps_its_message():
    cell = _redact([_error(1, "f(1): expected 2, got 3 (hint: square it)")])
    assert "BEGIN HIDDEN" not in cell.source and "secret input" not in cell.source
    assert cell.outputs[0].evalue == "f(1): expected 2, got 3 (hint: square it)"
    assert cell.outputs[0].traceback == ["AssertionError: f(1): expected 2, got 3 (hint: square it)"]
    after = _redact([_error(5, "f(3): expected 9, got 6")])  # after the hidden region: still visible
    assert after.outputs[0].evalue == "f(3): expected 9, got 6"


def test_a_failure_in_the_hidden_region_is_one_line():
    cell = _redact([_error(3, "expected 49 for the secret input 7")])
    text = str(cell.outputs)
    assert "49" not in text and "secret" not in text and "details of hidden tests are not shown" in text
    assert len(cell.outputs) == 1 and len(cell.outputs[0].traceback) == 1


def test_a_students_cell_with_the_marker_text_is_left_alone():
    source = "# my notes: ### BEGIN HIDDEN TESTS is what the instructors write\nprint(1)"
    cell = _redact([new_output("stream", name="stdout", text="1\n")], source=source, test_cell=False)
    assert cell.source == source and cell.outputs[0].text == "1\n"
    unbalanced = _redact([], source="check(1)\n### BEGIN HIDDEN TESTS\nsecret = 49")
    assert "secret" not in unbalanced.source and "check(1)" in unbalanced.source


def test_unclear_or_quoting_failures_are_one_line():
    no_frame = new_output("error", ename="RuntimeError", evalue="kernel died", traceback=["RuntimeError: kernel died"])
    assert "not shown" in str(_redact([no_frame]).outputs)
    quoting = _error(1, 'look: assert f(7) == 49, "expected 49 for the secret input 7"')
    assert "secret" not in str(_redact([quoting]).outputs)
    stderr = new_output("stream", name="stderr", text="RuntimeWarning: overflow, expected 49")
    assert "49" not in str(_redact([stderr]).outputs)
    passed = _redact([new_output("stream", name="stdout", text="hidden value 49")])
    assert passed.outputs == []


# -- nbgrader's own path, with the course's configuration -------------------------------
@pytest.fixture(scope="module")
def nbgrader_feedback(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgfeedback") / "course"
    shutil.copytree(build.HERE / "course", course)
    config = (build.REPO / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(config)  # the course's own configuration, as instructors use it
    build.generate(course)
    release = build.release_notebook(course)
    square_ok = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2\n"
    square_visible_wrong = "def square(x):\n    return np.asarray(x, dtype=np.float64) * 2\n"
    # right on the visible input [1, 2, -3] only
    square_hidden_wrong = ("def square(x):\n    x = np.asarray(x, dtype=np.float64)\n"
                           "    return np.where(np.isin(x, [1.0, 2.0, -3.0]), x ** 2, 0.0)\n")
    sig = ("def sigmoid_grad(z):\n    s = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))\n"
           "    return s * (1.0 - s)\n")
    for student, square in {"ok": square_ok, "visible": square_visible_wrong, "hidden": square_hidden_wrong,
                            "edited": square_ok}.items():
        build.write_answers(release, course / "submitted", student, square, sig)
    path = course / "submitted" / "edited" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square").source = "pass"
    nbformat.write(nb, path)
    for cmd in (["autograde", build.ASSIGNMENT], ["generate_feedback", build.ASSIGNMENT]):
        proc = subprocess.run([str(build.VENV_BIN / "nbgrader"), *cmd], cwd=course, env=build.env(),
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (course.parent / f"{cmd[0]}.log").write_text(proc.stdout + proc.stderr)
    # the same submissions through tamegrad grade, its results in tamegrad/
    proc = build.grade(course, course / "submitted", "--workers", "1", "--force", "--out", str(course / "tamegrad"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course


@pytest.mark.slow
def test_untouched_test_cells_raise_no_checksum_alarm(nbgrader_feedback):
    """nbgrader autograde with the course's configuration: no "checksum has changed" for
    the three untouched submissions (2 test cells with hidden tests each), one for the
    student who did edit a test cell, whose cell is restored all the same."""
    log = (nbgrader_feedback.parent / "autograde.log").read_text()
    alarms = [ln for ln in log.splitlines() if "'checksum'" in ln and "has changed" in ln]
    assert len(alarms) == 1 and "test_square" in alarms[0], alarms
    text = (nbgrader_feedback / "autograded" / "edited" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb").read_text()
    assert "HIDDEN-MARKER-SQUARE" in text  # restored, hidden tests included


def _feedback(course, student, where=""):
    return (course / where / "feedback" / student / build.ASSIGNMENT / f"{build.ASSIGNMENT}.html").read_text()


def _hidden_lines():
    nb = nbformat.read(build.HERE / "course" / "solutions" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb",
                       as_version=4)
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside:
                lines.append(line.strip())
    return lines


WHERE = pytest.mark.parametrize("where", ["", "tamegrad"], ids=["nbgrader generate_feedback", "tamegrad grade"])


@pytest.mark.slow
@WHERE
def test_feedback_shows_no_hidden_test(nbgrader_feedback, where):
    hidden = [ln for ln in _hidden_lines() if len(ln) > 12]
    assert len(hidden) >= 6
    for student in ("ok", "visible", "hidden", "edited"):
        html = _feedback(nbgrader_feedback, student, where)
        assert "BEGIN HIDDEN TESTS" not in html, student
        assert "HIDDEN-MARKER" not in html and "hidden_x" not in html and "hidden_z" not in html, student
        for line in hidden:
            assert line not in html and line.replace(">", "&gt;").replace("<", "&lt;") not in html, (student, line)


@pytest.mark.slow
@WHERE
def test_feedback_teaches_on_a_visible_failure(nbgrader_feedback, where):
    visible = _feedback(nbgrader_feedback, "visible", where)
    assert "relative error" in visible and "is above 1e-07" in visible
    hidden = _feedback(nbgrader_feedback, "hidden", where)
    assert "details of hidden tests are not shown" in hidden and "relative error" not in hidden


# -- markup: fast checks of the sanitiser (the browser test is tests/test_grade_markup.py) ----
def test_safe_notebook_neutralises_markup_and_keeps_honest_content():
    from nbconvert.filters import markdown2html

    from tamegrad.autograde import sanitize

    honest = "Task: compute $x < y$ and `a<b`, see [the docs](https://numpy.org) and ![plot](https://x.org/a.png)"
    md = new_notebook(cells=[])
    md.cells.append(nbformat.v4.new_markdown_cell(honest))
    md.cells.append(nbformat.v4.new_markdown_cell(
        "<script>[l](javascript:alert(1))</script>\n\n<img src=x onerror=alert(1)> <a href='JaVaScript:x'>y</a>"))
    code = new_code_cell("x", outputs=[
        new_output("display_data", data={"text/html": "<b>ok</b><script>alert(1)</script>",
                                         "application/javascript": "alert(1)",
                                         "image/svg+xml": "<svg onload=alert(1)/>",
                                         "text/plain": "<b>ok</b>"}),
        new_output("display_data", data={"image/png": 'AAAA" onerror="alert(1)'}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                   metadata={"image/png": {"width": "1 onerror=alert(1)", "height": 20}})])
    md.cells.append(code)
    md.cells[0].metadata["tags"] = ["fine", "x\"><script>"]
    sanitize.safe_notebook(md)
    assert md.cells[0].source == honest and md.cells[0].metadata["tags"] == ["fine"]
    tags = _tags(markdown2html(md.cells[1].source))
    assert {t for t, _ in tags} <= {"div", "p", "img", "a"}, tags
    assert not [(t, a) for t, attrs in tags for a, v in attrs
                if a.startswith("on") or (a in ("href", "src") and "script" in (v or "").lower())], tags
    out = md.cells[2].outputs
    assert set(out[0].data) == {"text/html", "text/plain"} and "<script" not in out[0].data["text/html"]
    assert "<b>ok</b>" in out[0].data["text/html"]
    assert out[1].data == {}
    assert out[2].data == {"image/png": "iVBORw0KGgo="} and out[2].metadata == {"image/png": {"height": 20}}


def _tags(html: str) -> list[tuple[str, list]]:
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Parser().feed(html)
    return found
