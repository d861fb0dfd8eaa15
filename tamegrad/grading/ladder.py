"""Hints on request, in levels: a nudge, then the structure of the answer, then a worked
step (the last level may show the formula).

An exercise's setup cell runs ``hint = gr.hints("ex05_batchnorm")``; the learner calls
``hint("task4")`` to print the next level of Task 4's ladder, and ``hint("task4", level=2)``
to print level 2 again. The hints are package data, ``tamegrad/grading/hints/<assignment>.toml``,
one table per task::

    [task4]
    title = "the backward pass of BatchNorm"
    points = 4
    levels = ["a nudge", "the structure of the answer", "a worked step"]

Hints are printed with plain ``print``: paragraphs wrapped at 88 columns, lines that
start with four spaces (formulas, code) kept as written, no colour codes, so they read
the same in JupyterLab, Colab, VS Code and a terminal. Which level was shown last is
remembered for the kernel session (:mod:`tamegrad.grading.session`).
"""

from __future__ import annotations

import textwrap
import tomllib
from importlib import resources

from .session import SESSION

#: the width hints are wrapped at
HINT_WIDTH = 88


def load(assignment: str) -> dict:
    """The tasks of ``assignment``'s hint file: {task: {"title", "points", "levels"}}."""
    try:
        text = resources.files(__package__).joinpath("hints", f"{assignment}.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no hints for the assignment {assignment!r}") from None
    tasks = tomllib.loads(text)
    for name, table in tasks.items():
        if not isinstance(table, dict) or not table.get("levels") or not all(isinstance(s, str) for s in table["levels"]):
            raise ValueError(f"hints/{assignment}.toml: [{name}] needs a non-empty list of strings `levels`")
    return tasks


def format_hint(text: str, width: int = HINT_WIDTH) -> str:
    """Wrap the paragraphs of ``text`` at ``width`` columns; keep lines indented by four
    spaces (formulas, code) as they are."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("    ") or not line.strip() for line in lines):
            out.append("\n".join(lines))
        else:
            bullet = block.lstrip().startswith(("- ", "* "))
            items = _split_items(block) if bullet else [" ".join(line.strip() for line in lines)]
            out.append("\n".join(textwrap.fill(item, width=width, subsequent_indent="  " if bullet else "",
                                               break_on_hyphens=False) for item in items))
    return "\n\n".join(out)


def _split_items(block: str) -> list[str]:
    items: list[str] = []
    for line in block.split("\n"):
        if line.lstrip().startswith(("- ", "* ")) or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    return items


class Hints:
    """``hint(task)`` prints the next level of the task's hints; ``hint(task, level=k)``
    prints level k (1 = the first) again."""

    def __init__(self, assignment: str, tasks: dict | None = None):
        self.assignment = assignment
        self.tasks = load(assignment) if tasks is None else tasks
        SESSION.assignment = assignment
        SESSION.declared[assignment] = self.tasks

    def __repr__(self) -> str:
        return (f"Hints for {self.assignment}: call hint(task), e.g. hint({next(iter(self.tasks), 'task1')!r}); "
                f"tasks: {', '.join(self.tasks)}")

    def text(self, task: str, level: int) -> str:
        """Level ``level`` (1-based) of ``task``'s hints, formatted as :meth:`__call__` prints it."""
        levels = self._levels(task)
        if not 1 <= level <= len(levels):
            raise ValueError(f"{task} has hint levels 1 to {len(levels)}; there is no level {level}")
        title = self.tasks[task].get("title", "")
        head = f"Hint {level} of {len(levels)} for {task}" + (f" ({title})" if title else "") + ":"
        tail = (f'(hint("{task}") again for the next one)' if level < len(levels)
                else "(this is the last hint for this task)")
        return "\n".join([head, "", format_hint(levels[level - 1]), "", tail])

    def __call__(self, task: str, level: int | None = None) -> None:
        levels = self._levels(task)
        key = (self.assignment, task)
        shown = SESSION.hint_levels.get(key, 0)
        if level is None:
            if shown >= len(levels):
                print(textwrap.fill(f"You have seen all {len(levels)} hints for {task}. "
                                    f'hint("{task}", level=k) shows level k again (k = 1 to {len(levels)}).',
                                    width=HINT_WIDTH))
                return
            level = shown + 1
        print(self.text(task, level))
        SESSION.hint_levels[key] = max(shown, level)

    def _levels(self, task: str) -> list[str]:
        if task not in self.tasks:
            raise ValueError(f"no hints for {task!r} in {self.assignment}; the tasks are: {', '.join(self.tasks)}")
        return self.tasks[task]["levels"]


def hints(assignment: str) -> Hints:
    """The hint ladder of ``assignment``: ``hint = gr.hints("ex02_activations")``, then ``hint("task1")``."""
    return Hints(assignment)
