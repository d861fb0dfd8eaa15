"""The grader's processes skip an import nothing of theirs uses, and remember the safe form
of repeated markup; neither changes a result."""

from __future__ import annotations

import subprocess
import sys

from tamegrad.autograde import sanitize

SKIPPED = """
import sys
from tamegrad.autograde.startup import skip_unused_imports
skip_unused_imports()
import jsonschema, nbformat
from nbformat.v4 import new_notebook, new_code_cell
nbformat.validate(new_notebook(cells=[new_code_cell("x = 1")]))
broken = new_notebook(cells=[new_code_cell("x = 1")])
broken.cells[0]["outputs"] = "not a list"
try:
    nbformat.validate(broken)
except nbformat.ValidationError:
    print("invalid notebook refused")
print("rfc3987_syntax loaded:", sys.modules.get("rfc3987_syntax") is not None)
"""


def test_the_grader_skips_the_iri_grammar_and_still_validates_notebooks():
    proc = subprocess.run([sys.executable, "-c", SKIPPED], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "invalid notebook refused" in proc.stdout
    assert "rfc3987_syntax loaded: False" in proc.stdout, proc.stdout


def test_a_process_that_imported_jsonschema_first_keeps_it_whole():
    code = "import jsonschema, sys\n" + SKIPPED.split("import sys\n", 1)[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rfc3987_syntax loaded: True" in proc.stdout, proc.stdout


def test_remembered_markup_is_the_markup_computed_afresh():
    texts = [
        "Plain *text* with a [link](https://example.org).",
        "<script>alert(1)</script> and <img src=x onerror=alert(2)>",
        "[x](javascript:alert(3))",
    ]
    for fn in (sanitize.safe_markdown, sanitize.clean_html):
        before = fn.cache_info().hits
        for text in texts * 2:
            assert fn(text) == fn.__wrapped__(text)
        assert fn.cache_info().hits >= before + len(texts)
        long = "<b>x</b>" * (sanitize.MEMO_CHARS // 8 + 1)
        size = fn.cache_info().currsize
        assert fn(long) == fn.__wrapped__(long)
        assert fn.cache_info().currsize == size  # long texts are not kept
