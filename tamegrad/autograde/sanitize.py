"""Before execution: nbgrader's ``init_assignment`` and sanitising preprocessors.

Exactly what ``nbgrader autograde`` does before it executes a notebook (its
``Autograde.init_assignment`` and ``Autograde.sanitize_preprocessors``: ClearOutput,
DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata), with two
hardening changes a hostile submission needs:

* :class:`RestoreCellMetadata` first puts back the nbgrader metadata of every cell whose
  ``grade_id`` the gradebook knows (a student who flips ``grade`` to ``false`` on a test
  cell would otherwise make OverwriteCells stop with "Inconsistent checksums");
* :class:`ReaddingOverwriteCells` is nbgrader's OverwriteCells with ``add_missing_cells``
  on: deleted test cells come back from the gradebook; its placement also survives the
  deletion of neighbouring cells (nbgrader's own raises a KeyError there).

Edited test cells are restored by OverwriteCells itself (they are locked; a changed
checksum brings the gradebook's source back).
"""

from __future__ import annotations

import functools
import html
import re
import uuid
from pathlib import Path

import bleach
import nbformat
from bleach import html5lib_shim
from nbconvert.exporters import NotebookExporter
from nbconvert.filters import markdown2html
from nbconvert.preprocessors import Preprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import (
    ClearHiddenTests,
    NbGraderPreprocessor,
    OverwriteCells,
)
from traitlets import Bool
from traitlets.utils.importstring import import_item


class RestoreCellMetadata(NbGraderPreprocessor):
    """Give cells the gradebook knows their recorded nbgrader metadata back."""

    def preprocess(self, nb, resources):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            try:
                source = gb.find_notebook(notebook_id, assignment_id)
            except MissingEntry:
                return nb, resources
            grade = {c.name: c for c in source.grade_cells}
            solution = {c.name for c in source.solution_cells}
            task = {c.name: c for c in source.task_cells}
            cells = {c.name: c for c in source.source_cells}
            for cell in nb.cells:
                md = cell.get("metadata", {}).get("nbgrader")
                if not isinstance(md, dict):
                    continue
                gid = md.get("grade_id")
                if not isinstance(gid, str) or gid not in cells:
                    continue
                src = cells[gid]
                md["grade"] = gid in grade
                md["solution"] = gid in solution
                md["locked"] = bool(src.locked)
                if gid in task:
                    md["task"] = True
                else:
                    md.pop("task", None)
                if gid in grade:
                    md["points"] = float(grade[gid].max_score)
                elif gid in task:
                    md["points"] = float(task[gid].max_score)
                else:
                    md.pop("points", None)
                md["schema_version"] = 3
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def _released_source(source: str) -> str:
    """A test cell's source as nbgrader releases it: its hidden regions cut out."""
    cell = NotebookNode(cell_type="code", source=source, metadata={}, outputs=[], execution_count=None)
    ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
    return cell.source


class QuietOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, without its false alarm about hidden tests.

    The gradebook records a test cell's checksum *with* its hidden tests; the released cell
    has them cut out, so every untouched test cell with hidden tests reads as changed, and
    OverwriteCells warns "Attribute 'checksum' for cell ... has changed!" while it puts the
    recorded source (hidden tests included) back, which is how hidden tests return at
    grading. This class says nothing in that case (the submitted source is exactly the
    released one) and warns, as nbgrader does, when a student did edit the cell.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        self._released = None
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                src = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
                self._released = (
                    src.locked and cell.source == _released_source(src.source) and cell.source != src.source
                )
            except MissingEntry:
                pass
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr == "checksum" and getattr(self, "_released", False):
            self.log.debug("restoring the hidden tests of %s", name)
            return
        super().report_change(name, attr, old, new)


class ReaddingOverwriteCells(QuietOverwriteCells):
    """OverwriteCells that re-adds missing grade cells after the nearest surviving
    cell that precedes them in the source."""

    def preprocess(self, nb, resources):
        # DeduplicateIds leaves ``nbgrader: {}`` on the earlier copies of a copy-pasted
        # cell, which nbgrader's add_missing_task_cells cannot read (KeyError)
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader", None) == {}:
                del cell.metadata["nbgrader"]
        return super().preprocess(nb, resources)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_ids = [c.name for c in source_nb.source_cells]
        # source_cells are stored in no particular order: order them as the source notebook
        order = _source_order(resources)
        if order:
            source_ids.sort(key=lambda n: order.get(n, len(order)))
        source_cells = {c.name: c for c in source_nb.source_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = {
                c.metadata.get("nbgrader", {}).get("grade_id")
                for c in nb.cells
                if utils.is_grade(c) or utils.is_solution(c) or utils.is_locked(c)
            }
            if grade_cell.name in present:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_cell.name)
            new = self.missing_cell_transform(
                source_cells[grade_cell.name], grade_cell.max_score, is_solution=grade_cell.name in solution_ids
            )
            at = 0
            idx = source_ids.index(grade_cell.name) if grade_cell.name in source_ids else 0
            for prev in reversed(source_ids[:idx]):
                pos = next(
                    (i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == prev), None
                )
                if pos is not None:
                    at = pos + 1
                    break
            nb.cells.insert(at, new)
        return nb, resources


def _source_order(resources) -> dict[str, int]:
    path = resources.get("tamegrad", {}).get("source_notebook")
    if not path:
        return {}

    nb = nbformat.read(path, as_version=4)
    return {
        c.metadata.get("nbgrader", {}).get("grade_id"): i
        for i, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id")
    }


def sanitize_exporter(config, autograde):
    """A NotebookExporter with nbgrader's sanitize preprocessors (hardened as above)."""
    exporter = NotebookExporter(config=config)
    exporter._preprocessors = []
    exporter.register_preprocessor(RestoreCellMetadata(parent=autograde), enabled=True)
    for pp in autograde.sanitize_preprocessors:
        pp = import_item(pp) if isinstance(pp, str) else pp
        if isinstance(pp, type) and issubclass(pp, OverwriteCells):
            inst = ReaddingOverwriteCells(parent=autograde)
            inst.add_missing_cells = True
            exporter.register_preprocessor(inst, enabled=True)
        else:
            exporter.register_preprocessor(pp(parent=autograde))
    return exporter


def prepare(
    autograde, exporter, assignment: str, student: str, notebooks: dict[str, Path], source_dir: Path
) -> dict[str, dict]:
    """Sanitise each submitted notebook: {name: {"text": json} or {"invalid": reason}}."""
    out = {}
    for name, path in notebooks.items():
        resources = autograde.init_single_notebook_resources(str(path))
        src = source_dir / f"{name}.ipynb"
        resources["tamegrad"] = {"source_notebook": str(src) if src.is_file() else None}
        try:
            text, _ = exporter.from_filename(str(path), resources=resources)
        except Exception as exc:  # noqa: BLE001 - not valid JSON, not a notebook, bad metadata
            out[name] = {"invalid": f"{type(exc).__name__}: {str(exc)[:300]}"}
            continue
        out[name] = {"text": text}
    return out


def readable_notebooks(notebooks: dict[str, Path]) -> tuple[dict[str, Path], dict[str, str]]:
    """Split notebooks into those that parse as notebooks and those that do not."""
    ok, bad = {}, {}
    for name, path in notebooks.items():
        try:
            nb = nbformat.read(str(path), as_version=4)
            if not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except Exception as exc:  # noqa: BLE001
            bad[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        ok[name] = path
    return ok, bad


# -- markup: nothing a student wrote runs in a browser ---------------------------------------
SAFE_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
        "var",
    }
)
SAFE_ATTRIBUTES = {"class", "title", "align", "colspan", "rowspan", "alt", "width", "height"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r ")
KEPT_OUTPUTS = {"text/plain", "text/latex", "image/png", "image/jpeg"}  # the template escapes them
CLEANED_OUTPUTS = {"text/html", "text/markdown"}  # kept after bleach


# markup texts up to this many characters are remembered (at most MEMO_ENTRIES of them): a
# class's submissions repeat the assignment's markdown cells, and each notebook is made
# safe twice (the autograded notebook, then its feedback)
MEMO_CHARS = 100_000
MEMO_ENTRIES = 2048


def _memo_short_text(fn):
    """``fn`` (a pure function of one string) remembering its results for short texts."""
    remembered = functools.lru_cache(maxsize=MEMO_ENTRIES)(fn)

    @functools.wraps(fn)
    def call(text: str) -> str:
        return remembered(text) if isinstance(text, str) and len(text) <= MEMO_CHARS else fn(text)

    call.cache_info = remembered.cache_info
    return call


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute filter: no event handler, no style, and URLs only of a safe kind
    (``a href``: http, https, mailto or a fragment; ``img src``: http(s) or a base64
    ``data:image/{png,jpeg,gif}``)."""
    if tag == "a" and name == "href":
        return value.startswith("#") or value.split(":", 1)[0].strip().lower() in ("http", "https", "mailto")
    if tag == "img" and name == "src":
        v = value.strip().lower()
        return v.startswith(("http://", "https://")) or any(v.startswith(f"data:{t};base64,") for t in IMAGE_TYPES)
    return name in SAFE_ATTRIBUTES


@_memo_short_text
def clean_html(html: str) -> str:
    """``html`` through bleach with the course's allow-list (:data:`SAFE_TAGS`,
    :func:`_allowed_attribute`): every other tag (script, iframe, object, embed, svg, meta,
    style, form, ...) is escaped to visible text, every other attribute (``on*`` handlers,
    ``style``, ``javascript:``/``data:`` URLs) is removed, comments are dropped."""

    return bleach.clean(
        html,
        tags=SAFE_TAGS,
        attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"},
        strip=False,
        strip_comments=True,
    )


def _markup_is_safe(html: str) -> bool:
    """Whether bleach with the allow-list leaves ``html`` as bleach with no restriction would
    (same normalisation): nothing in it needs neutralising."""

    free = bleach.clean(
        html,
        tags=frozenset(html5lib_shim.HTML_TAGS) | {"svg", "math", "script"},
        attributes=lambda tag, name, value: True,
        protocols={"http", "https", "mailto", "data", "javascript", "vbscript", "file"},
        strip=False,
        strip_comments=True,
    )
    return free == clean_html(html)


@_memo_short_text
def safe_markdown(source: str) -> str:
    """A markdown text that renders to nothing unsafe.

    The text itself when its rendering (nbconvert's ``markdown2html``, as the feedback and
    formgrader templates render it) is safe; else that rendering through
    :func:`clean_html`, as one raw-HTML block (a ``<div>`` with no blank line, so that the
    templates' markdown pass leaves it verbatim and cannot turn escaped text back into a
    link); if even that did not render safely, the text escaped in a ``<pre>``. The result
    is always checked by rendering it again.
    """

    if _markup_is_safe(markdown2html(source)):
        return source
    cleaned = clean_html(markdown2html(source))
    block = "<div>\n" + "\n".join(ln if ln.strip() else "&#32;" for ln in cleaned.strip("\n").split("\n")) + "\n</div>"
    if _markup_is_safe(markdown2html(block)):
        return block
    return "<pre>" + html.escape(source).replace("\n\n", "\n&#32;\n") + "</pre>"


def _base64_image(value) -> bool:
    return isinstance(value, str) and set(value) <= BASE64


def safe_notebook(nb):
    """Neutralise, in place, everything in ``nb`` that a browser could run when nbconvert's
    templates (feedback, formgrade) render it, and return ``nb``:

    * markdown and raw cells, and ``text/markdown``/``text/html`` outputs: :func:`safe_markdown`
      or :func:`clean_html`;
    * other outputs: only ``text/plain``, ``text/latex`` (escaped by the templates) and
      base64 PNG/JPEG images stay; ``image/svg+xml``, JavaScript, widgets and every other
      type are dropped; output metadata keeps only numeric ``width``/``height`` (the
      templates write them into unquoted attributes);
    * attachments: base64 PNG/JPEG/GIF only; cell tags: letters, digits, ``_`` and ``-``
      only (they become class names); cell ids: nbformat's pattern, else a new id.
    """

    cell_id = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
    tag_ok = re.compile(r"^[\w-]{1,64}$")
    for cell in nb.cells:
        if "id" in cell and not (isinstance(cell.id, str) and cell_id.match(cell.id)):
            cell.id = uuid.uuid4().hex[:8]
        md = cell.get("metadata", {})
        if "tags" in md:
            md["tags"] = [t for t in md.get("tags") or [] if isinstance(t, str) and tag_ok.match(t)]
        if cell.cell_type == "markdown":
            cell.source = safe_markdown(cell.source)
        elif cell.cell_type == "raw":
            cell.source = clean_html(cell.source)
        if "attachments" in cell:
            cell.attachments = {
                name: {t: v for t, v in (bundle or {}).items() if t in IMAGE_TYPES and _base64_image(v)}
                for name, bundle in (cell.attachments or {}).items()
                if isinstance(bundle, dict)
            }
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = out.get("data", {})
            for key in list(data):
                value = data[key]
                if key in CLEANED_OUTPUTS and isinstance(value, str):
                    data[key] = safe_markdown(value) if key == "text/markdown" else clean_html(value)
                elif (
                    key not in KEPT_OUTPUTS
                    or not isinstance(value, str)
                    or (key.startswith("image/") and not _base64_image(value))
                ):
                    del data[key]
            meta = out.get("metadata", {}) or {}
            kept = {}
            for key in ("image/png", "image/jpeg"):
                sizes = meta.get(key) if isinstance(meta.get(key), dict) else {}
                sizes = {
                    k: int(v)
                    for k, v in sizes.items()
                    if k in ("width", "height") and isinstance(v, (int, float)) and not isinstance(v, bool)
                }
                if sizes:
                    kept[key] = sizes
            out["metadata"] = kept
    return nb


class SafeMarkup(Preprocessor):
    """:func:`safe_notebook` as an nbconvert preprocessor, enabled wherever it is registered
    (``HTMLExporter.preprocessors`` in ``nbgrader_config.py``: the formgrader and
    ``nbgrader generate_feedback``; the feedback exporter of ``tamegrad grade``)."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        return safe_notebook(nb), resources
