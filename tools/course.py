"""Course maintenance: the Colab cell of every notebook, and output stripping.

    python -m tools.course sync [NOTEBOOK ...]   # rewrite the Colab cell from _config.yml
    python -m tools.course strip [NOTEBOOK ...]  # remove outputs and execution counts
    python -m tools.course check   # fail if any notebook is out of date on either count
    python -m tools.course release # regenerate exercises/ from solutions/ with nbgrader

The Colab cell is the first code cell of every book page and exercise. It installs
``tamegrad`` from ``repository.url`` in ``_config.yml`` (the one setting behind the
launch buttons too) when it runs on Colab, and does nothing anywhere else. It carries the
tag ``remove-cell``, so the HTML book does not show it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("book", "solutions", "exercises")
COLAB_MARKER = "# Colab only:"
COLAB_TAG = "remove-cell"  # Jupyter Book leaves the cell out of the HTML


def book_config(root: Path = ROOT) -> dict:
    """The Jupyter Book configuration, ``_config.yml``, as a dict."""
    with open(root / "_config.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` from the Jupyter Book configuration."""
    url = (book_config(root).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} has no repository.url")
    return url


def colab_cell_source(url: str) -> str:
    return (
        f"{COLAB_MARKER} install the course package, tamegrad, from the course repository.\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install --quiet \"tamegrad @ git+{url}\"\n"
    )


def notebooks(root: Path = ROOT, dirs=NOTEBOOK_DIRS) -> list[Path]:
    found = []
    for d in dirs:
        found += [p for p in sorted((root / d).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return found


def _first_code_cell(nb):
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def has_outputs(nb) -> bool:
    return any(c.cell_type == "code" and (c.get("outputs") or c.get("execution_count")) for c in nb.cells)


def colab_cell_is_current(nb, url: str) -> bool:
    """The first code cell is the current Colab cell and is tagged to stay out of the HTML."""
    cell = _first_code_cell(nb)
    return (cell is not None and cell.source == colab_cell_source(url)
            and COLAB_TAG in cell.metadata.get("tags", []))


def _tag_colab_cell(cell) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if COLAB_TAG not in tags:
        tags.append(COLAB_TAG)


def sync(path: Path, url: str) -> bool:
    """Make the first code cell the Colab cell (replacing an older one); True if changed."""
    nb = nbformat.read(path, as_version=4)
    if colab_cell_is_current(nb, url):
        return False
    cell = _first_code_cell(nb)
    if cell is not None and cell.source.startswith(COLAB_MARKER):
        cell.source = colab_cell_source(url)
    else:
        cell = nbformat.v4.new_code_cell(colab_cell_source(url))
        if nb.nbformat_minor < 5:
            del cell["id"]  # cell ids exist from nbformat 4.5 on
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        nb.cells.insert(first_code, cell)
    _tag_colab_cell(cell)
    nbformat.write(nb, path)
    return True


def strip(path: Path) -> bool:
    """Remove outputs and execution counts; True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    if not has_outputs(nb):
        return False
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.write(nb, path)
    return True


def problems(root: Path = ROOT) -> list[str]:
    url = repository_url(root)
    found = []
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        rel = path.relative_to(root)
        if has_outputs(nb):
            found.append(f"{rel}: committed with outputs (python -m tools.course strip)")
        if not colab_cell_is_current(nb, url):
            found.append(f"{rel}: first code cell is not the current Colab cell (python -m tools.course sync)")
    return found


def assignments(root: Path = ROOT) -> list[str]:
    """The assignments: folders of ``solutions/`` that hold a notebook."""
    source = root / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if source.is_dir() else []


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader commands: this interpreter's scripts first on PATH
    (nbgrader runs ``alembic`` as a subprocess when it touches a gradebook)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def release(root: Path = ROOT) -> list[Path]:
    """Regenerate ``exercises/`` (student versions) from ``solutions/`` with nbgrader.

    Runs ``nbgrader generate_assignment <name> --force --no-db`` in ``root`` for every
    assignment (``nbgrader_config.py`` there names the two folders), so no gradebook is
    written, and removes released folders whose source no longer exists. Returns the
    released assignment folders.
    """
    names = assignments(root)
    for name in names:
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--no-db", "--log-level=ERROR"],
            cwd=root, env=nbgrader_env(), check=True,
        )
    released = root / "exercises"
    for folder in sorted(released.iterdir()) if released.is_dir() else []:
        if folder.is_dir() and folder.name not in names:
            shutil.rmtree(folder)
    return [released / name for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    for name, what in (("sync", "rewrite the Colab cell from _config.yml"), ("strip", "remove outputs")):
        sub = commands.add_parser(name, help=what)
        sub.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    commands.add_parser("check", help="fail if any notebook is out of date (the default)")
    commands.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    args = parser.parse_args(argv)
    chosen = [p.resolve() for p in getattr(args, "notebooks", [])]
    if args.command == "sync":
        url = repository_url()
        # exercises/ is generated from solutions/ by nbgrader: sync the sources, then release
        changed = [p for p in chosen or notebooks(dirs=("book", "solutions")) if sync(p, url)]
    elif args.command == "strip":
        changed = [p for p in chosen or notebooks() if strip(p)]
    elif args.command == "release":
        changed = release()
    else:
        found = problems()
        print("\n".join(found) or "every notebook is stripped and has the current Colab cell")
        return 1 if found else 0
    for p in changed:
        print(f"updated {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
