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

from pathlib import Path


def _classes():
    from nbgrader import utils
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

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

    class ReaddingOverwriteCells(OverwriteCells):
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
                present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
                           if utils.is_grade(c) or utils.is_solution(c) or utils.is_locked(c)}
                if grade_cell.name in present:
                    continue
                self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_cell.name)
                new = self.missing_cell_transform(source_cells[grade_cell.name], grade_cell.max_score,
                                                  is_solution=grade_cell.name in solution_ids)
                at = 0
                idx = source_ids.index(grade_cell.name) if grade_cell.name in source_ids else 0
                for prev in reversed(source_ids[:idx]):
                    pos = next((i for i, c in enumerate(nb.cells)
                                if c.metadata.get("nbgrader", {}).get("grade_id") == prev), None)
                    if pos is not None:
                        at = pos + 1
                        break
                nb.cells.insert(at, new)
            return nb, resources

    return RestoreCellMetadata, ReaddingOverwriteCells


def _source_order(resources) -> dict[str, int]:
    path = resources.get("tamegrad", {}).get("source_notebook")
    if not path:
        return {}
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def sanitize_exporter(config, autograde):
    """A NotebookExporter with nbgrader's sanitize preprocessors (hardened as above)."""
    from nbconvert.exporters import NotebookExporter
    from nbgrader.preprocessors import OverwriteCells

    RestoreCellMetadata, ReaddingOverwriteCells = _classes()
    exporter = NotebookExporter(config=config)
    exporter._preprocessors = []
    exporter.register_preprocessor(RestoreCellMetadata(parent=autograde), enabled=True)
    for pp in autograde.sanitize_preprocessors:
        if pp is OverwriteCells:
            inst = ReaddingOverwriteCells(parent=autograde)
            inst.add_missing_cells = True
            exporter.register_preprocessor(inst, enabled=True)
        else:
            exporter.register_preprocessor(pp(parent=autograde))
    return exporter


def prepare(autograde, exporter, assignment: str, student: str, notebooks: dict[str, Path],
            source_dir: Path) -> dict[str, dict]:
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
    import nbformat

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
