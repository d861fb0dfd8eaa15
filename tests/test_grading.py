"""tamegrad.grading's learner-facing machinery: readable failures, hints on request, and the
self-check table. Fast (no kernel); the headless notebook runs are in test_exercises.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tamegrad import grading as gr
from tamegrad.grading import failure, ladder, selfcheck, session

ANSI = re.compile(r"\x1b\[")
TASKS = {
    "task1": {"title": "a warm-up", "points": 1, "levels": ["Think about the chain rule. " * 8, "The structure.",
                                                            "A worked step:\n\n    dL/dx = g * 2 x\n\nThat is all."]},
    "task2": {"title": "the core", "points": 3, "levels": ["Only one level."]},
}


@pytest.fixture(autouse=True)
def fresh_session():
    session.reset()
    yield
    session.reset()


def lines_of(text: str) -> list[str]:
    return text.split("\n")


# ------------------------------------------------------------ failures
def test_failure_lines_fit_nbgrader_validate_and_keep_every_word():
    long_hint = "the derivative has a path through the mean and one through the variance; " * 3
    x = np.linspace(-3, 3, 40)
    with pytest.raises(gr.CheckFailed) as err:
        gr.check_close(x * 2, x * 3, what="f(x) " * 25, source="the forward definition " * 5, inputs={"x": x},
                       hint=long_hint)
    text = str(err.value)
    assert max(len(line) for line in lines_of(text)) <= failure.WIDTH
    assert " ".join(text.split()).count("a path through the mean") == 3  # wrapped, nothing cut
    hint_lines = text.split("hint: ", 1)[1].split("\n")
    assert all(line.startswith(" " * 8) for line in hint_lines[1:]), "a wrapped hint continues under its text"
    for piece in ("wrong.", "input:", "expected:", "got:", "max relative error"):
        assert piece in text


def test_wrap_lines_leaves_short_lines_alone():
    text = "a: wrong.\n\n  input:     x = 1"
    assert failure.wrap_lines(text) == text


def broken_square_test():
    x = np.array([1.0, 2.0])
    gr.check_close(x * 3, x * 2, what="square(x)", source="the definition", inputs={"x": x})


def test_ipython_shows_the_failed_line_and_message_without_the_helpers_frames():
    with pytest.raises(gr.CheckFailed) as err:
        broken_square_test()
    assert isinstance(err.value, AssertionError)
    shown = "\n".join(err.value._render_traceback_())
    assert "gr.check_close(x * 3, x * 2" in shown and "square(x): wrong." in shown
    assert "tamegrad/grading" not in shown and "report.py" not in shown and "_fail" not in shown
    assert not ANSI.search(shown)


def test_an_interactive_shell_renders_a_failed_check_as_an_error_without_internal_frames(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        result = shell.run_cell("import numpy as np\nfrom tamegrad import grading as gr\n"
                                "gr.check_close(np.ones(2), np.zeros(2), what='f(x)', source='zero')")
        out = capsys.readouterr().out
    finally:
        InteractiveShell.clear_instance()
    assert not result.success and isinstance(result.error_in_exec, gr.CheckFailed)
    assert "f(x): wrong." in out and "(from zero)" in out
    assert "report.py" not in out and "check_close(got" not in out


def test_an_overflow_is_reported_at_its_input():
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    x = np.array([0.5, -1000.0, 2.0, -800.0])
    with pytest.raises(gr.CheckFailed) as err:
        gr.call_quietly(sigmoid, x, what="sigmoid(x)")
    text = " ".join(str(err.value).split())
    assert "Overflow at x[1] = -1000.0 (and 1 more entry)" in text
    assert "overflow encountered in exp" in text and "got: None" not in text and "got: no result" in text
    assert gr.call_quietly(lambda x: np.tanh(x), x, what="tanh") is not None


def test_an_overflow_in_a_function_that_is_not_elementwise_is_still_reported():
    def norm_then_exp(x):
        return np.exp(x.sum() * 1000.0)

    with pytest.raises(gr.CheckFailed, match="Overflow") as err:
        gr.call_quietly(norm_then_exp, np.array([1.0, 2.0]), what="f")
    assert "got:       no result" in str(err.value)


def test_the_structural_check_says_the_task_asks_for_the_derivation():
    import tamegrad as tg

    def backward(x, g):
        t = tg.Tensor(x, requires_grad=True)
        (t * t).backward(g)
        return t.grad

    with pytest.raises(gr.CheckFailed) as err:
        gr.check_not_autodiff(backward)
    text = str(err.value)
    assert "asks for the derivation" in text and "`backward`" in text
    assert max(len(line) for line in lines_of(text)) <= failure.WIDTH
    gr.check_not_autodiff(lambda x, g: 2 * x * g)


# --------------------------------------------------------------- hints
def test_each_call_prints_the_next_level_then_says_it_was_the_last(capsys):
    hint = gr.Hints("demo", tasks=TASKS)
    hint("task1")
    first = capsys.readouterr().out
    assert first.startswith("Hint 1 of 3 for task1 (a warm-up):") and "Think about the chain rule." in first
    hint("task1")
    assert capsys.readouterr().out.startswith("Hint 2 of 3 for task1")
    hint("task1")
    third = capsys.readouterr().out
    assert third.startswith("Hint 3 of 3") and "\n    dL/dx = g * 2 x\n" in third and "last hint" in third
    hint("task1")
    assert "You have seen all 3 hints for task1" in capsys.readouterr().out
    hint("task1", level=2)
    assert capsys.readouterr().out.startswith("Hint 2 of 3 for task1")
    hint("task2")
    assert capsys.readouterr().out.startswith("Hint 1 of 1 for task2")


def test_hints_are_plain_and_wrapped_at_88_columns(capsys):
    hint = gr.Hints("demo", tasks=TASKS)
    hint("task1")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= ladder.HINT_WIDTH
    assert " ".join(out.split()).count("Think about the chain rule.") == 8
    assert not ANSI.search(out)


def test_the_hint_state_lasts_the_session_and_survives_a_new_hints_object(capsys):
    gr.Hints("demo", tasks=TASKS)("task1")
    capsys.readouterr()
    gr.Hints("demo", tasks=TASKS)("task1")  # the setup cell run again
    assert capsys.readouterr().out.startswith("Hint 2 of 3 for task1")
    assert session.SESSION.hint_levels[("demo", "task1")] == 2


def test_unknown_tasks_and_levels_are_refused():
    hint = gr.Hints("demo", tasks=TASKS)
    with pytest.raises(ValueError, match="the tasks are: task1, task2"):
        hint("task9")
    with pytest.raises(ValueError, match="levels 1 to 3"):
        hint("task1", level=4)
    with pytest.raises(ValueError, match="no hints for the assignment"):
        gr.hints("no_such_assignment")


def test_every_packaged_hint_file_loads_with_a_ladder_of_at_least_three_levels():
    from importlib import resources

    files = sorted(p.name for p in resources.files("tamegrad.grading").joinpath("hints").iterdir()
                   if p.name.endswith(".toml"))
    assert files, "no hint files in tamegrad/grading/hints/"
    for name in files:
        tasks = ladder.load(name.removesuffix(".toml"))
        for task, table in tasks.items():
            assert len(table["levels"]) >= 3, f"{name} [{task}]: nudge, structure, worked step"
            assert table.get("title") and table.get("points", 0) > 0, f"{name} [{task}]"
            hint = gr.Hints(name.removesuffix(".toml"), tasks=tasks)
            for level in range(1, len(table["levels"]) + 1):
                text = hint.text(task, level)
                assert max(len(line) for line in text.splitlines()) <= ladder.HINT_WIDTH, f"{name} [{task}] {level}"
                assert not ANSI.search(text)


# ----------------------------------------------------------- self-check
def run_task(name, points, answers, ok, namespace):
    """A test cell: the visible checks inside gr.task, as exec'd in a notebook namespace."""
    code = (f"with gr.task({name!r}, points={points}, answers={answers!r}):\n"
            f"    gr.check({ok!r}, what='{name} check', expected='true', got={ok!r})\n")
    exec(compile(code, "<test cell>", "exec"), namespace)


def test_the_table_shows_passed_failed_and_not_run(capsys):
    gr.Hints("demo", tasks=TASKS)
    ns = {"gr": gr}
    exec("def f(x):\n    return x\n", ns)
    run_task("task1", 1, ("f",), True, ns)
    rows = {r["task"]: r["status"] for r in gr.results()}
    assert rows == {"task1": "passed", "task2": "not run yet"}
    with pytest.raises(gr.CheckFailed):  # the failure still reaches the cell (and nbgrader)
        run_task("task2", 3, (), False, ns)
    rows = {r["task"]: (r["status"], r["note"]) for r in gr.results()}
    assert rows["task2"] == ("failed", "task2 check: wrong.")
    gr.summary()
    out = capsys.readouterr().out
    assert re.search(r"task1 +1 +passed", out) and re.search(r"task2 +3 +failed +task2 check: wrong\.", out)
    assert "Hidden tests run when your work is graded" in out and "1 of 4 points" in out
    assert max(len(line) for line in out.splitlines()) <= selfcheck.TABLE_WIDTH


def test_an_answer_redefined_after_its_test_makes_the_task_not_run_yet():
    gr.Hints("demo", tasks=TASKS)
    ns = {"gr": gr}
    exec("def f(x):\n    return x\n", ns)
    run_task("task1", 1, ("f",), True, ns)
    exec("def f(x):\n    return x\n", ns)  # the answer cell run again
    row = gr.results()[0]
    assert row["status"] == "not run yet" and "f changed" in row["note"]
    run_task("task1", 1, ("f",), True, ns)
    assert gr.results()[0]["status"] == "passed"


def test_a_non_check_error_is_recorded_and_an_interrupt_is_not():
    gr.Hints("demo", tasks=TASKS)
    with pytest.raises(NameError):
        with gr.task("task1", points=1, answers=("f",)):
            f(1)  # noqa: F821 (the answer cell raised NotImplementedError, so f is undefined)
    assert gr.results()[0]["status"] == "failed" and gr.results()[0]["note"].startswith("NameError")
    with pytest.raises(KeyboardInterrupt):
        with gr.task("task2", points=3):
            raise KeyboardInterrupt
    assert gr.results()[1]["status"] == "not run yet"


def test_only_the_block_is_recorded_not_what_follows_it_in_the_cell():
    """nbgrader's source puts the hidden tests after the block: they must never reach the record."""
    gr.Hints("demo", tasks=TASKS)
    with pytest.raises(AssertionError, match="hidden"):
        with gr.task("task1", points=1):
            pass
        raise AssertionError("a hidden test failed")
    row = gr.results()[0]
    assert row["status"] == "passed" and "hidden" not in row["note"]


def test_the_summary_without_a_hint_file_lists_the_recorded_tasks(capsys):
    with gr.task("task7", points=2):
        pass
    gr.summary()
    assert re.search(r"task7 +2 +passed", capsys.readouterr().out)
