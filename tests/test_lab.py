"""`make lab`'s JupyterLab has the extensions the course relies on, enabled and compatible:
nbgrader's (Assignments tab, Validate, formgrader) and jupyterlab-myst (the book's MyST roles
and directives render in notebooks)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

WANTED = ("jupyterlab-myst", "@jupyter/nbgrader")


def test_lab_extensions_are_enabled_and_compatible():
    jupyter = Path(sys.executable).with_name("jupyter")
    out = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # drop the colours
    for name in WANTED:
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(name + " ")), None)
        if line is None:
            pytest.fail(f"{name} is not installed:\n{text}")
        assert re.search(r"\benabled\s+OK\b", line), line  # "disabled", or "X" when incompatible, fail
    assert "is not compatible" not in text, text
