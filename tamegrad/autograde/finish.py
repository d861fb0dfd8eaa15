"""After execution: nbgrader's autograde preprocessors, the autograded notebook, feedback.

The executed notebook comes back from a worker as JSON. Here, in the process that owns
the gradebook, it goes through the rest of ``Autograde.autograde_preprocessors``
(everything after Execute: IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
SaveAutoGrades, AssignLatePenalties, CheckCellMetadata), so its scores are the ones
``nbgrader autograde`` would record, and is written to ``autograded/<student>/<assignment>/``.

Feedback is nbgrader's GenerateFeedback (GetGrades, CSSHTMLHeaderPreprocessor and the
``feedback`` HTML template) with one preprocessor in front, :class:`RedactHiddenTests`:
a test cell's hidden region is cut out of its source (nbgrader's ClearHiddenTests); a
failure of a visible check keeps its message, a failure in the hidden region becomes one
line. The course's ``nbgrader_config.py`` registers the same preprocessor for
``nbgrader generate_feedback``. Both the autograded notebook (last preprocessor of
:func:`post_exporter`) and the feedback (first) go through :class:`.sanitize.SafeMarkup`:
no script, handler, ``javascript:`` URL, SVG, iframe, object or meta refresh of a
student's reaches a browser.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import nbgrader
from nbconvert.exporters import HTMLExporter, NotebookExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, Execute, GetGrades
from traitlets import Bool
from traitlets.config import Config

from .sanitize import SafeMarkup


def post_exporter(config, autograde):
    exporter = NotebookExporter(config=config)
    exporter._preprocessors = []
    for pp in autograde.autograde_preprocessors:
        if pp is Execute or (isinstance(pp, type) and issubclass(pp, Execute)):
            continue
        exporter.register_preprocessor(pp(parent=autograde))
    # last: the autograded notebook that the formgrader renders holds no working markup
    exporter.register_preprocessor(SafeMarkup(parent=autograde), enabled=True)
    return exporter


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# the frame of the cell itself in an IPython traceback ("Cell In[7], line 12"), or of code
# compiled from a cell by another runner ('File "<cell>", line 12')
CELL_FRAME = re.compile(r"Cell In\s*\[\s*\d*\s*\],?\s*line (\d+)|File \"<[^>]*>\", line (\d+)")
MAX_MESSAGE = 4000
HIDDEN_NOTE = "details of hidden tests are not shown"


def hidden_lines(source: str, begin: str, end: str) -> set[int]:
    """The 1-based line numbers of ``source`` from a ``begin`` marker to its ``end`` marker."""
    out, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            inside = True
        if inside:
            out.add(number)
        if end in line:
            inside = False
    return out


def failing_line(traceback: list[str]) -> int | None:
    """The line of the cell at which an error was raised: the first frame of the cell in
    its traceback (the outermost frame is the cell's own code), None when there is none."""
    for entry in traceback or []:
        match = CELL_FRAME.search(ANSI.sub("", str(entry)))
        if match:
            return int(match.group(1) or match.group(2))
    return None


class RedactHiddenTests(ClearHiddenTests):
    """Feedback that teaches without showing a hidden test.

    For every test cell (nbgrader ``grade`` and not ``solution``) with a hidden region
    (``### BEGIN HIDDEN TESTS`` .. ``### END HIDDEN TESTS``): the region is cut out of the source (nbgrader's
    ClearHiddenTests) and the outputs are replaced by one of

    * nothing, when the cell passed;
    * the error's name and message (no frames, no source context), when the error was
      raised on a line *outside* the hidden region: a visible check, whose message names
      only visible inputs, expected values and a hint; a message that quotes a line of the
      hidden region is cut to one line instead;
    * one line, "Test failed (<error names>); details of hidden tests are not shown",
      when the error was raised inside the hidden region, when its traceback shows no
      line of the cell, or when the cell only wrote to stderr.

    Registered in ``GenerateFeedback.preprocessors`` by the course's ``nbgrader_config.py``
    too, so that ``nbgrader generate_feedback`` redacts the same way (nbgrader #917).
    """

    enforce_metadata = Bool(False).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        md = cell.get("metadata", {}).get("nbgrader", {})
        if (
            cell.cell_type != "code"
            or self.begin_test_delimeter not in cell.source
            or not md.get("grade")
            or md.get("solution")
        ):
            # only test cells hold hidden tests: a student's cell that merely contains the
            # marker text is the student's own and is shown as it is
            return cell, resources
        hidden = hidden_lines(cell.source, self.begin_test_delimeter, self.end_test_delimeter)
        secret = [
            ln.strip()
            for i, ln in enumerate(cell.source.split("\n"), start=1)
            if i in hidden
            and len(ln.strip()) >= 8
            and self.begin_test_delimeter not in ln
            and self.end_test_delimeter not in ln
        ]
        outputs = list(cell.get("outputs", []))
        errors = [o for o in outputs if o.get("output_type") == "error"]
        stderr = any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs)
        try:
            cell, resources = super().preprocess_cell(cell, resources, cell_index)
        except RuntimeError:  # unbalanced markers: nothing from the first one on is shown
            cell.source = cell.source.split(self.begin_test_delimeter, 1)[0].rsplit("\n", 1)[0]
        if not errors and not stderr:
            cell.outputs = []
            return cell, resources
        if errors:
            first = errors[0]
            line = failing_line(first.get("traceback", []))
            ename, evalue = str(first.get("ename", "Error")), str(first.get("evalue", ""))
            visible = line is not None and line not in hidden
            if visible and not any(s in evalue or s in ename for s in secret):
                shown = evalue if len(evalue) <= MAX_MESSAGE else evalue[:MAX_MESSAGE] + " [...]"
                cell.outputs = [
                    NotebookNode(output_type="error", ename=ename, evalue=shown, traceback=[f"{ename}: {shown}"])
                ]
                return cell, resources
        names = sorted({str(o.get("ename")) for o in errors if o.get("ename")})
        what = ", ".join(names) or "output on stderr"
        cell.outputs = [
            NotebookNode(
                output_type="error",
                ename=names[0] if names else "TestFailed",
                evalue=f"a test in this cell failed ({HIDDEN_NOTE})",
                traceback=[f"Test failed ({what}); {HIDDEN_NOTE}."],
            )
        ]
        return cell, resources


def feedback_exporter(config):
    base = os.path.dirname(nbgrader.__file__)
    cfg = Config(config)
    if "template_name" not in cfg.HTMLExporter:
        cfg.HTMLExporter.template_name = "feedback"
    if "extra_template_basedirs" not in cfg.HTMLExporter:
        cfg.HTMLExporter.extra_template_basedirs = [os.path.join(base, "server_extensions", "formgrader", "templates")]
    cfg.HTMLExporter.extra_template_paths = [
        os.path.join(base, "server_extensions", "formgrader", "static", "node_modules", "bootstrap", "dist", "css")
    ]
    exporter = HTMLExporter(config=cfg)
    exporter._preprocessors = []
    for pp in (SafeMarkup, RedactHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor):
        exporter.register_preprocessor(pp(config=cfg), enabled=True)
    return exporter


def resources_for(coursedir, assignment: str, student: str, notebook: str) -> dict:
    return {
        "unique_key": notebook,
        "output_files_dir": f"{notebook}_files",
        "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook, "db_url": coursedir.db_url},
    }


def save(coursedir, exporter, assignment: str, student: str, notebook: str, nb_text: str) -> Path:
    """Run the post-execution preprocessors (saving the grades) and write the notebook."""
    nb = nbformat.reads(nb_text, as_version=4)
    output, _ = exporter.from_notebook_node(nb, resources=resources_for(coursedir, assignment, student, notebook))
    dest = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{notebook}.ipynb"
    if path.exists():
        path.chmod(0o644)
        path.unlink()
    path.write_text(output, encoding="utf-8")
    return path


def feedback(coursedir, exporter, assignment: str, student: str, notebook: str, autograded: Path) -> Path:
    nb = nbformat.read(str(autograded), as_version=4)
    html, _ = exporter.from_notebook_node(nb, resources=resources_for(coursedir, assignment, student, notebook))
    dest = Path(coursedir.format_path(coursedir.feedback_directory, student, assignment))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{notebook}.html"
    path.write_text(html, encoding="utf-8")
    return path
