"""How a failed check reaches the learner: a readable message, wrapped to fit every front end.

A failed check raises :class:`CheckFailed`, an ``AssertionError``. IPython (JupyterLab,
Colab, VS Code, classic Notebook, ``jupyter nbconvert --execute``) renders an exception
through its ``_render_traceback_`` method when it has one: ours shows the line of the
test cell that failed and the message, without the frames inside ``tamegrad.grading``
(``__tracebackhide__`` hides them only in pytest and IPython's verbose modes). The
kernel still reports an error output, which is what nbgrader counts as a failed cell.

Every line is wrapped at :data:`WIDTH` columns: ``nbgrader validate`` indents each
line by 4 spaces and cuts it at 87 characters.
"""

from __future__ import annotations

import linecache
import os
import re
import textwrap
import traceback

#: the widest line of a failure message (nbgrader validate cuts at 87 with a 4-space indent)
WIDTH = 80

_HERE = os.path.dirname(os.path.abspath(__file__))


def wrap_lines(text: str, width: int = WIDTH) -> str:
    """Wrap every line of ``text`` at ``width`` columns. A wrapped line continues under
    the start of its text: after its indent and a leading label such as ``input:``."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        m = _LABEL.match(line)
        hang = len(m.group(0)) if m.group(2) else len(m.group(1)) + 2
        if hang > width // 2:
            hang = len(m.group(1)) + 2
        out += textwrap.wrap(line, width=width, subsequent_indent=" " * hang, break_on_hyphens=False)
    return "\n".join(out)


_LABEL = re.compile(r"^( *)([A-Za-z][\w ]{0,24}?: +)?")


def _internal(filename: str) -> bool:
    """Frames of the checking helpers and of IPython's own machinery."""
    path = os.path.abspath(filename) if filename and not filename.startswith("<") else filename or ""
    if path.startswith(_HERE + os.sep):
        return True
    return any(f"{os.sep}{pkg}{os.sep}" in path for pkg in ("IPython", "ipykernel"))


def _label(filename: str, lineno: int) -> str:
    """"Cell In[7], line 3" for a notebook cell (as IPython names it), else "file, line 3"."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        count = shell.compile._filename_map.get(filename) if shell is not None else None
    except Exception:  # no IPython, or a version without the map
        count = None
    if count is not None:
        return f"Cell In[{count}], line {lineno}"
    return f"{filename}, line {lineno}"


def test_frames(tb) -> list[str]:
    """The frames of ``tb`` outside the checking helpers: where in the learner's or the
    test's code the failed check was called, innermost last."""
    frames = []
    for frame in traceback.extract_tb(tb):
        if _internal(frame.filename):
            continue
        line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
        # the code on its own line, so a long path never splits it
        frames.append(f"{_label(frame.filename, frame.lineno)}:\n    {line}" if line else _label(frame.filename, frame.lineno))
    return frames


class CheckFailed(AssertionError):
    """A check of an exercise failed; ``str(err)`` is the whole teaching message."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the failed check's line, then the message."""
        frames = test_frames(self.__traceback__)
        lines = []
        if frames:
            lines.append(wrap_lines(f"Check failed at {frames[-1]}", WIDTH))
            lines.append("")
        lines.append(str(self))
        return lines
