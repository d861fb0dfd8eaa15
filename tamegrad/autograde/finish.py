"""After execution: nbgrader's autograde preprocessors, the autograded notebook, feedback.

The executed notebook comes back from a worker as JSON. Here, in the process that owns
the gradebook, it goes through the rest of ``Autograde.autograde_preprocessors``
(everything after Execute: IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
SaveAutoGrades, AssignLatePenalties, CheckCellMetadata), so its scores are the ones
``nbgrader autograde`` would record, and is written to ``autograded/<student>/<assignment>/``.

Feedback is nbgrader's GenerateFeedback (GetGrades, CSSHTMLHeaderPreprocessor and the
``feedback`` HTML template) with one preprocessor in front, :class:`RedactHiddenTests`:
a test cell's hidden region is cut out of its source (nbgrader's ClearHiddenTests), and
its outputs, whose tracebacks would quote the hidden lines and whose messages often
print the expected values, are replaced by one line saying whether it passed.
"""

from __future__ import annotations

import os
from pathlib import Path


def post_exporter(config, autograde):
    from nbconvert.exporters import NotebookExporter
    from nbgrader.preprocessors import Execute

    exporter = NotebookExporter(config=config)
    exporter._preprocessors = []
    for pp in autograde.autograde_preprocessors:
        if pp is Execute or (isinstance(pp, type) and issubclass(pp, Execute)):
            continue
        exporter.register_preprocessor(pp(parent=autograde))
    return exporter


def _redactor():
    from nbformat.notebooknode import NotebookNode
    from nbgrader import utils
    from nbgrader.preprocessors import ClearHiddenTests

    class RedactHiddenTests(ClearHiddenTests):
        enforce_metadata = False

        def preprocess_cell(self, cell, resources, cell_index):
            if cell.cell_type != "code" or self.begin_test_delimeter not in cell.source:
                return cell, resources
            failed = any(o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")
                         for o in cell.outputs)
            cell, resources = super().preprocess_cell(cell, resources, cell_index)
            names = sorted({o.get("ename") for o in cell.outputs if o.output_type == "error"} - {None})
            if failed:
                what = ", ".join(names) or "output on stderr"
                cell.outputs = [NotebookNode(output_type="error", ename=names[0] if names else "TestFailed",
                                             evalue="a test in this cell failed (details of hidden tests are not shown)",
                                             traceback=[f"Test failed ({what}); details of hidden tests are not shown."])]
            else:
                cell.outputs = []
            return cell, resources

    return RedactHiddenTests, utils


def feedback_exporter(config):
    from nbconvert.exporters import HTMLExporter
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades
    from traitlets.config import Config

    import nbgrader

    RedactHiddenTests, _ = _redactor()
    base = os.path.dirname(nbgrader.__file__)
    cfg = Config(config)
    if "template_name" not in cfg.HTMLExporter:
        cfg.HTMLExporter.template_name = "feedback"
    if "extra_template_basedirs" not in cfg.HTMLExporter:
        cfg.HTMLExporter.extra_template_basedirs = [
            os.path.join(base, "server_extensions", "formgrader", "templates")]
    cfg.HTMLExporter.extra_template_paths = [os.path.join(
        base, "server_extensions", "formgrader", "static", "node_modules", "bootstrap", "dist", "css")]
    exporter = HTMLExporter(config=cfg)
    exporter._preprocessors = []
    for pp in (RedactHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor):
        exporter.register_preprocessor(pp(config=cfg), enabled=True)
    return exporter


def resources_for(coursedir, assignment: str, student: str, notebook: str) -> dict:
    return {"unique_key": notebook, "output_files_dir": f"{notebook}_files",
            "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                         "db_url": coursedir.db_url}}


def save(coursedir, exporter, assignment: str, student: str, notebook: str, nb_text: str) -> Path:
    """Run the post-execution preprocessors (saving the grades) and write the notebook."""
    import nbformat

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
    import nbformat

    nb = nbformat.read(str(autograded), as_version=4)
    html, _ = exporter.from_notebook_node(nb, resources=resources_for(coursedir, assignment, student, notebook))
    dest = Path(coursedir.format_path(coursedir.feedback_directory, student, assignment))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{notebook}.html"
    path.write_text(html, encoding="utf-8")
    return path
