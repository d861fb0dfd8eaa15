"""The book: notebooks are committed clean, every page executes and builds with warnings
as errors, no solution leaks into it, and the HTML works in a real browser."""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from tools import course

from .conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_notebooks_are_stripped_and_have_the_current_colab_cell():
    assert course.problems() == []


def test_every_toc_entry_exists():
    toc = (ROOT / "_toc.yml").read_text()
    for entry in re.findall(r"(?:file|root): (\S+)", toc):
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry


# Pages with an interactive plotly figure (a slider over values computed while the page executed).
INTERACTIVE_PAGES = [
    "book/03_math/gradient_descent_stability", "book/03_math/jacobian_products", "book/03_math/initialisation",
    "book/04_practice/learning_rate_sweep", "book/04_practice/depth_heatmaps",
    "book/03_math/activation_derivatives", "book/03_math/batch_normalization", "book/03_math/gradient_clipping",
    "book/05_applications/residual_connections", "book/05_applications/mixed_precision", "book/03_math/bptt",
]
LARGEST_PAGE = 2_000_000  # bytes; plotly.js alone is 4.8 MB, so an inlined copy cannot pass


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build once per session into _build/ (its execution cache makes a rebuild quick).
    TAMEGRAD_BOOK_HTML=DIR tests an existing build instead, e.g. one made with
    ``python -m tools.book --path-output /tmp/b`` (DIR = /tmp/b/_build/html)."""
    if os.environ.get("TAMEGRAD_BOOK_HTML"):
        html = Path(os.environ["TAMEGRAD_BOOK_HTML"])
        assert (html / "searchindex.js").exists(), f"no built book in {html}"
        return html
    result = subprocess.run([sys.executable, "-m", "tools.book"], capture_output=True, text=True, cwd=ROOT)
    log = result.stdout + result.stderr
    assert result.returncode == 0, "the book does not build cleanly:\n" + log[-6000:]
    return HTML


@pytest.mark.slow
def test_every_page_executes_without_error(built_book):
    reports = list((built_book / "reports").glob("**/*.log")) if (built_book / "reports").exists() else []
    assert not reports, f"notebooks failed to execute: {[r.name for r in reports]}"
    for nb_path in course.notebooks(dirs=("book",)):
        html = built_book / nb_path.relative_to(ROOT).with_suffix(".html")
        assert html.exists(), f"{nb_path} was not built"


def _html_pages(root: Path, redirects: bool = True) -> list[Path]:
    """The pages of the current build (Sphinx's docnames: a stale file left in _build/html
    by an older build is not one); with ``redirects`` also the root page that redirects."""
    index = (root / "searchindex.js").read_text(encoding="utf-8")
    docnames = json.loads(re.search(r'"docnames":\s*(\[.*?\])', index).group(1))
    pages = [root / f"{name}.html" for name in docnames]
    return sorted(pages + [root / "index.html"]) if redirects else sorted(pages)


@pytest.mark.slow
def test_no_solution_code_reaches_the_book(built_book):
    text = "\n".join(p.read_text(encoding="utf-8") for p in _html_pages(built_book))
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    released = "\n".join(p.read_text() for p in (ROOT / "exercises").rglob("*.ipynb"))
    for source in (ROOT / "solutions").rglob("*.ipynb"):
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:
            for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                for line in block.splitlines():
                    line = line.strip()
                    if len(line) > 30 and line not in released:  # distinctive lines of the answer
                        assert line not in text, f"{source.name}: solution line in the book: {line!r}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.hrefs.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.hrefs.append((attrs.get("content") or "").partition("url=")[2])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.mark.slow
def test_every_internal_link_resolves(built_book):
    broken = []
    for page in _html_pages(built_book):
        for href in _parse(page).hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//"):
                continue  # external: the launch buttons, the repository, papers
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _parse(target).ids:
                broken.append(f"{page.relative_to(built_book)} -> {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a page closed while an asset was still being sent


@pytest.fixture(scope="module")
def served_book(built_book):
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_in_chromium(built_book, served_book):
    """No console errors, math typeset by MathJax, every image loaded, nothing fetched from outside."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("Chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium); the browser test needs it")
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for html in _html_pages(built_book, redirects=False):
            rel = html.relative_to(built_book).as_posix()
            errors = []
            page = browser.new_page()
            page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("response", lambda r, errors=errors: r.status >= 400 and errors.append(f"HTTP {r.status} for {r.url}"))
            page.on("request", lambda r, errors=errors: (not r.url.startswith(served_book)
                                                          and not r.url.startswith("data:")
                                                          and errors.append(f"external request {r.url}")))
            page.goto(f"{served_book}/{rel}", wait_until="load")
            page.wait_for_function("""() => !document.querySelector('script[src*="mathjax"]')
                || (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)""")
            page.evaluate("""async () => { if (document.querySelector('script[src*="mathjax"]'))
                await window.MathJax.startup.promise; }""")
            state = page.evaluate("""() => ({
                math: document.querySelectorAll('.math').length,
                typeset: document.querySelectorAll('mjx-container').length,
                mathErrors: document.querySelectorAll('mjx-merror').length,
                badImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
            })""")
            if state["math"] and not state["typeset"]:
                errors.append(f"{state['math']} math elements, none typeset by MathJax")
            if state["mathErrors"]:
                errors.append(f"{state['mathErrors']} MathJax errors")
            if state["badImages"]:
                errors.append(f"images that did not load: {state['badImages']}")
            if errors:
                problems.append(f"{rel}: " + "; ".join(errors))
            page.close()
        browser.close()
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_plotly_js_comes_from_the_books_static_folder(built_book):
    """Exactly the pages with a plotly figure load plotly.js, from _static/, and no page inlines it."""
    assert (built_book / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    with_figure = set()
    for page in _html_pages(built_book, redirects=False):
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(built_book).with_suffix("").as_posix()
        scripts = [src for src in _parse(page).hrefs if src.split("?")[0].endswith("plotly.min.js")]
        assert page.stat().st_size < LARGEST_PAGE, f"{rel}: {page.stat().st_size} bytes"
        assert "* plotly.js v" not in text and "cdn.plot.ly" not in text, rel
        if "Plotly.newPlot(" in text:
            with_figure.add(rel)
            assert len(scripts) == 1 and "_static/plotly.min.js" in scripts[0], (rel, scripts)
        else:
            assert not scripts, f"{rel} loads plotly.js but draws no figure"
    assert with_figure == set(INTERACTIVE_PAGES)


# The state of one plotly figure: which traces are visible, what its SVG draws, the slider position.
_FIGURE_STATE = """gd => ({
    visible: gd._fullData.map(t => t.visible === true),
    drawn: Array.from(gd.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.point, .barlayer path'))
               .map(p => p.getAttribute('d')).join('|'),
    active: gd._fullLayout.sliders.length ? gd._fullLayout.sliders[0].active : null,
    steps: gd._fullLayout.sliders.length ? gd._fullLayout.sliders[0].steps.length : 0,
})"""


@pytest.mark.slow
@pytest.mark.browser
def test_interactive_figures_respond_to_their_slider(built_book, served_book):
    """On every interactive page, click another step of each figure's slider: the visible traces
    and the drawn SVG change; no console error, nothing fetched from outside."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("Chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium); the browser test needs it")
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for rel in INTERACTIVE_PAGES:
            errors = []
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("request", lambda r, errors=errors: (not r.url.startswith(served_book)
                                                          and not r.url.startswith("data:")
                                                          and errors.append(f"external request {r.url}")))
            page.goto(f"{served_book}/{rel}.html", wait_until="load")
            figures = page.locator(".js-plotly-plot")
            if figures.count() == 0:
                errors.append("no plotly figure was drawn")
            for i in range(figures.count()):
                gd = figures.nth(i)
                gd.scroll_into_view_if_needed()
                before = gd.evaluate(_FIGURE_STATE)
                if before["steps"] < 2:
                    errors.append(f"figure {i}: no slider")
                    continue
                rail = gd.locator(".slider-rail-touch-rect").bounding_box()
                fraction = 0.97 if before["active"] == 0 else 0.03  # the last or the first step
                page.mouse.click(rail["x"] + fraction * rail["width"], rail["y"] + rail["height"] / 2)
                page.wait_for_timeout(300)
                after = gd.evaluate(_FIGURE_STATE)
                if after["active"] == before["active"]:
                    errors.append(f"figure {i}: the slider did not move")
                if after["visible"] == before["visible"]:
                    errors.append(f"figure {i}: the same traces are visible after the slider moved")
                if not after["drawn"] or after["drawn"] == before["drawn"]:
                    errors.append(f"figure {i}: the plotted data did not change")
            if errors:
                problems.append(f"{rel}: " + "; ".join(errors))
            page.close()
        browser.close()
    assert not problems, "\n".join(problems)
