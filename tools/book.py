"""Build the book: execute its notebooks in parallel, then let Jupyter Book render them.

    python -m tools.book [--path-output DIR]

Jupyter Book 1.x executes notebooks one after another while Sphinx reads them. Here the
notebooks that need it are first executed over a pool of processes (one per core) into
the same jupyter-cache that Jupyter Book's ``execute_notebooks: cache`` uses, so the
Sphinx build finds every result cached and only renders. A notebook that fails here is
left uncached, and Jupyter Book runs it again and reports the error as usual.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from tools.layout import ROOT, book_config, notebooks

EXECUTED_DIRS = ("book",)  # exercises/ are shown, not run


def cache_path(path_output: Path) -> Path:
    return path_output / "_build" / ".jupyter_cache"


def execute_in_parallel(path_output: Path = ROOT, root: Path = ROOT) -> list[str]:
    """Execute every book notebook whose code is not cached yet; return those that failed."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one kernel per core: BLAS threads would only contend
    os.environ["PYTHONSTARTUP"] = str(root / "book" / "_ext" / "kernel_startup.py")  # fig.show() -> HTML, no plotly.js
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(cache_path(path_output))
    for nb in notebooks(root, EXECUTED_DIRS):
        cache.add_nb_to_project(str(nb))
    logger = logging.getLogger("tools.book")
    timeout = book_config(root)["execute"]["timeout"]  # per cell, as Jupyter Book applies it
    result = load_executor("local-parallel", cache=cache, logger=logger).run_and_cache(timeout=timeout)
    return [str(Path(uri).relative_to(root)) for uri in result.errored + result.excepted]


def build(path_output: Path = ROOT, root: Path = ROOT) -> int:
    failed = execute_in_parallel(path_output, root)
    if failed:
        print("failed to execute (Jupyter Book will run them again and show why):", *failed, sep="\n  ")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "-W", "--keep-going"]
    if path_output != root:
        command += ["--path-output", str(path_output)]
    return subprocess.run(command).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the book's notebooks in parallel, then build the HTML.")
    parser.add_argument("--path-output", type=Path, default=ROOT, help="where _build/ goes (default: the repository)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return build(args.path_output.resolve())


if __name__ == "__main__":
    sys.exit(main())
