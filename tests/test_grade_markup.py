"""Nothing a student wrote runs in a browser: an attacking submission (scripts, event
handlers, javascript: URLs, SVG scripts, iframes, <object>/<embed>, meta refresh, forged
image data and metadata, cell tags) is graded with an honest one; its feedback page and its
autograded notebook as the formgrader renders it are opened in Chromium, and no payload
runs. Each payload would append its name to ``window.name``."""

from __future__ import annotations

import copy
import os
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from tamegrad.autograde import gradebook, sanitize

from .conftest import IN_CI
from .grade_fixtures import build

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

MARKDOWN = """Here is my answer.

<script>window.name += 'md-script;'</script>
<img src=x onerror="window.name += 'md-img;'">
[click me](javascript:window.name+='md-link;')
[tab link](java&#09;script:window.name+='md-tablink;')
<svg onload="window.name += 'md-svg;'"><script>window.name += 'md-svgscript;'</script></svg>
<iframe srcdoc="<script>parent.window.name += 'md-iframe;'</script>"></iframe>
<object data="javascript:window.name += 'md-object;'"></object><embed src="javascript:window.name += 'md-embed;'">
<meta http-equiv="refresh" content="0;url=javascript:window.name += 'md-meta;'">
<details open ontoggle="window.name += 'md-toggle;'">x</details>
<a href="#" style="position:fixed;top:0;left:0;width:100%;height:100%" onmouseover="window.name+='md-hover;'">x</a>
<script>[escaped link](javascript:window.name+='md-relink;')</script>
"""

OUTPUTS = r'''
from IPython.display import display, HTML, Javascript, SVG, Markdown
display(HTML("<script>window.name += 'out-html;'</script><img src=x onerror=\"window.name += 'out-img;'\">"))
display(Javascript("window.name += 'out-js;'"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="window.name += \'out-svg;\'">'
            '<script>window.name += \'out-svgscript;\'</script></svg>'))
display(Markdown("<script>window.name += 'out-md;'</script> [l](javascript:window.name+='out-mdlink;')"))
display({"image/png": 'iVBOR" onerror="window.name += \'out-png;\'" x="'}, raw=True)
display({"image/png": "iVBORw0KGgo="}, raw=True,
        metadata={"image/png": {"width": "1 onerror=window.name+='out-width;'"}})
display({"text/latex": "<script>window.name += 'out-latex;'</script>"}, raw=True)
display({"text/html": "<iframe src=\"javascript:parent.window.name += 'out-iframe;'\"></iframe>"}, raw=True)
'''

SQUARE = "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2\n"
SIGMOID = ("def sigmoid_grad(z):\n    s = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))\n"
           "    return s * (1.0 - s)\n")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("Chromium is missing in CI")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("markup")
    course = build.make_course(tmp / "course")
    release = build.release_notebook(course)
    incoming = tmp / "incoming"
    build.write_answers(release, incoming, "honest", SQUARE, SIGMOID)
    nb = copy.deepcopy(release)
    for gid, src in (("square", SQUARE), ("sigmoid_grad", SIGMOID)):
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid).source = src
    md = new_markdown_cell(MARKDOWN)
    md.metadata["tags"] = ["ok-tag", "x\"><script>window.name += 'tag;'</script>"]
    nb.cells += [md, new_code_cell(OUTPUTS)]
    folder = incoming / "attacker" / build.ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{build.ASSIGNMENT}.ipynb")
    proc = build.grade(course, incoming, "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course, build.read_grades(course / "grades.csv")


def _formgrade_html(course, student) -> str:
    """The autograded notebook as the formgrader renders it (its exporter, built from the
    repository's nbgrader_config.py, with the formgrade template)."""
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    config = gradebook.load_config(build.REPO)
    assert "tamegrad.autograde.sanitize.SafeMarkup" in config.HTMLExporter.preprocessors
    extra = Config()
    extra.HTMLExporter.template_name = "formgrade"
    extra.HTMLExporter.extra_template_basedirs = [
        os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates")]
    config.merge(extra)
    path = course / "autograded" / student / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb"
    resources = {"assignment_id": build.ASSIGNMENT, "notebook_id": build.ASSIGNMENT, "submission_id": "x",
                 "index": 0, "total": 1, "base_url": "", "student": student, "last_name": "", "first_name": "",
                 "notebook_path": str(path)}
    html, _ = HTMLExporter(config=config).from_filename(str(path), resources=resources)
    return html


def _open(page_file) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())
        page.goto(page_file.as_uri(), wait_until="load")
        title = page.title()
        page.mouse.move(200, 200)
        for link in page.query_selector_all(".text_cell a, .output_area a, .rendered_html a"):
            try:
                link.click(timeout=300, no_wait_after=True)
            except Exception:  # noqa: BLE001, S110 - hidden or covered links: clicking is best effort
                pass
        page.wait_for_timeout(1500)
        state = page.evaluate("""() => ({name: window.name, url: location.href,
            unsafe: [...document.querySelectorAll('iframe, object, embed, svg, meta[http-equiv]')].length,
            js_urls: [...document.querySelectorAll('[href], [src]')].filter(e =>
                /^\\s*(javascript|vbscript):/i.test(e.getAttribute('href') || e.getAttribute('src') || '')).length,
            handlers: [...document.querySelectorAll('.text_cell *, .output_area *')].filter(e =>
                [...e.attributes].some(a => a.name.startsWith('on'))).length})""")
        state["title_before"], state["title_after"], state["dialogs"] = title, page.title(), dialogs
        browser.close()
    return state


def _assert_nothing_ran(state, where):
    assert state["name"] == "", f"{where}: payloads ran: {state['name']}"
    assert state["dialogs"] == [] and state["title_after"] == state["title_before"], (where, state)
    assert state["js_urls"] == 0 and state["handlers"] == 0 and state["unsafe"] == 0, (where, state)


def test_both_are_graded(graded):
    _, grades = graded
    assert grades["honest"]["status"] == "graded" and float(grades["honest"]["score"]) == 5
    assert grades["attacker"]["status"] == "graded" and float(grades["attacker"]["score"]) == 5


def test_no_payload_runs_in_the_feedback(graded):
    course, _ = graded
    page = course / "feedback" / "attacker" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.html"
    _assert_nothing_ran(_open(page), "feedback")
    assert "Here is my answer." in page.read_text()


def test_no_payload_runs_in_the_formgrader_view(graded, tmp_path):
    course, _ = graded
    page = tmp_path / "formgrade.html"
    page.write_text(_formgrade_html(course, "attacker"))
    _assert_nothing_ran(_open(page), "formgrader")


def test_the_payloads_would_run_without_the_sanitiser(graded, tmp_path, monkeypatch):
    """The check is shown failing once: the same page rendered with SafeMarkup disabled."""
    course, _ = graded
    monkeypatch.setattr(sanitize, "safe_notebook", lambda nb: nb)
    path = course / "autograded" / "attacker" / build.ASSIGNMENT / f"{build.ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-2].source = MARKDOWN  # as the student wrote it (the autograded copy is already neutralised)
    raw = tmp_path / "raw.ipynb"
    nbformat.write(nb, raw)
    from nbconvert.exporters import HTMLExporter

    html, _ = HTMLExporter(template_name="classic").from_filename(str(raw))
    page = tmp_path / "raw.html"
    page.write_text(html)
    state = _open(page)
    assert "md-script;" in state["name"] and "md-img;" in state["name"], state
