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
# Point the HTML tests at a book built elsewhere, e.g. by `python -m tools.book --path-output /tmp/b`:
# TAMEGRAD_BOOK_HTML=/tmp/b/_build/html (then nothing is built here).
PREBUILT = os.environ.get("TAMEGRAD_BOOK_HTML")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_notebooks_are_stripped_and_have_the_current_colab_cell():
    assert course.problems() == []


def test_sync_writes_the_colab_cell_tagged_to_stay_out_of_the_html(tmp_path):
    url = "https://example.org/course"
    path = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A page"), nbformat.v4.new_code_cell("import numpy as np")]
    )
    nbformat.write(nb, path)
    assert course.sync(path, url) and not course.sync(path, url)  # written once, then current
    cell = _setup_cell(nbformat.read(path, as_version=4), 0)
    assert cell.source == course.colab_cell_source(url) and cell.metadata["tags"] == ["remove-cell"]
    untagged = nbformat.read(path, as_version=4)
    _setup_cell(untagged, 0).metadata["tags"] = []
    assert not course.colab_cell_is_current(untagged, url)  # check notices a lost tag
    nbformat.write(untagged, path)
    assert (
        course.sync(path, url) and "remove-cell" in _setup_cell(nbformat.read(path, as_version=4), 0).metadata["tags"]
    )


def _setup_cell(nb, index=1):
    """The set-up cell of a page: the first code cell after the Colab cell (index 0 is the Colab cell)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return code[index] if len(code) > index else None


def test_set_up_cells_of_book_pages_are_collapsed_in_the_html():
    """The cell after the Colab cell (imports, environment, seeds) is tagged to fold behind a toggle."""
    loose = []
    for path in course.notebooks(dirs=("book",)):
        cell = _setup_cell(nbformat.read(path, as_version=4))
        if cell is None:
            continue
        tags = cell.metadata.get("tags", [])
        if "import " not in cell.source or not {"hide-input", "hide-cell"} & set(tags):
            loose.append(path.relative_to(ROOT).as_posix())
    assert not loose, "set-up cell not an import cell tagged hide-input or hide-cell: " + ", ".join(loose)


SOURCE_FILE_NAME = re.compile(r"\b00[0-4]_[0-9a-f]{16}\.txt|\b[Ss]eeds? 00[0-4]\b|\b00[0-4]-\d\d\b")


def test_pages_name_the_source_articles_by_letter():
    """Learner-facing text says "article C" (the appendix lists the five); file names stay in that appendix."""
    found = []
    for path in sorted((ROOT / "book").rglob("*")):
        if path.suffix not in (".md", ".ipynb") or path.name == "source_articles.md":
            continue
        if path.suffix == ".md":
            texts = [path.read_text(encoding="utf-8")]
        else:
            texts = [c.source for c in nbformat.read(path, as_version=4).cells]
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for t in texts for m in SOURCE_FILE_NAME.finditer(t)]
    assert not found, "name the source articles A to E instead:\n" + "\n".join(found)


def test_every_toc_entry_exists():
    toc = (ROOT / "_toc.yml").read_text()
    for entry in re.findall(r"(?:file|root): (\S+)", toc):
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build once per session into _build/ (its execution cache makes a rebuild quick),
    or use the build that ``TAMEGRAD_BOOK_HTML`` names."""
    if PREBUILT:
        html = Path(PREBUILT).resolve()
        assert (html / "searchindex.js").exists(), f"TAMEGRAD_BOOK_HTML={PREBUILT} holds no built book"
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


# Reprs a cell prints when its last line returns an object nobody meant to show.
STRAY_REPRS = re.compile(r"&lt;torch\._C\.Generator|&lt;Figure size|\[?&lt;matplotlib\.|\bText\(-?[\d.]+, -?[\d.]+, ")


@pytest.mark.slow
def test_no_page_shows_the_colab_cell_or_a_stray_repr(built_book):
    problems = []
    for page in _html_pages(built_book, redirects=False):
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(built_book).as_posix()
        if course.COLAB_MARKER in text:
            problems.append(f"{rel}: shows the Colab cell")
        problems += [f"{rel}: shows {m.group(0)!r}" for m in STRAY_REPRS.finditer(text)]
    assert not problems, "\n".join(problems)


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


@functools.cache
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


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright, closed after the test (skipped when Chromium is
    missing, except in CI, where that is a failure)."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("Chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium); the browser test needs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _watch(page, errors: list, origin: str | None = None, http_errors: bool = False) -> None:
    """Append to ``errors`` every console error and uncaught exception of ``page``; with
    ``origin``, every request elsewhere (except data: URLs); with ``http_errors``, every
    response with status >= 400."""
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    if http_errors:
        page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status} for {r.url}"))
    if origin is not None:
        page.on(
            "request",
            lambda r: (
                not r.url.startswith(origin)
                and not r.url.startswith("data:")
                and errors.append(f"external request {r.url}")
            ),
        )


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_in_chromium(built_book, served_book, browser):
    """No console errors, math typeset by MathJax, every image loaded, nothing fetched from outside."""
    problems = []
    for html in _html_pages(built_book, redirects=False):
        rel = html.relative_to(built_book).as_posix()
        errors = []
        page = browser.new_page()
        _watch(page, errors, origin=served_book, http_errors=True)
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
        page.close()
        if errors:
            problems.append(f"{rel}: " + "; ".join(errors))
    assert not problems, "\n".join(problems)


# At each width: the page is no wider than the viewport, every display equation fits its column
# (no sideways scrolling inside it) with its number inside the column; the Colab cell is not in the
# page, and on chapter pages the first code cell (the set-up cell) is folded behind a toggle.
LAYOUT = """() => {
    const W = window.innerWidth, found = [];
    const box = e => e.getBoundingClientRect();
    const page = document.documentElement.scrollWidth;
    if (page > W + 1) {
        const wide = Array.from(document.querySelectorAll('body *')).filter(e => box(e).right > W + 1
            && e.getClientRects().length).slice(-3).map(e => e.tagName.toLowerCase() + '.' + e.className);
        found.push(`page is ${page} px wide (widest: ${wide.join(', ')})`);
    }
    for (const d of document.querySelectorAll('div.math')) {
        const name = d.id ? d.id.replace(/^equation-/, '') : `"${d.textContent.trim().slice(0, 30)}..."`;
        const mjx = d.querySelector('mjx-container');
        if (mjx && mjx.scrollWidth > mjx.clientWidth + 1)
            found.push(`equation ${name} is ${mjx.scrollWidth} px wide in a ${mjx.clientWidth} px column`);
        const no = d.querySelector('.eqno');
        if (no) {
            const a = box(no), b = box(d);
            if (!a.width || a.left < b.left - 1 || a.right > b.right + 1 || a.right > W + 1)
                found.push(`the number of equation ${name} is clipped`);
        }
    }
    if (document.documentElement.textContent.includes(COLAB))
        found.push('the Colab install cell is in the page');
    const cell = CHAPTER && document.querySelector('div.cell');
    if (cell) {
        const input = cell.querySelector('.cell_input');
        if (!input || !input.textContent.includes('import ') || input.checkVisibility()
            || !cell.querySelector('details > summary'))
            found.push('the set-up cell is not folded behind a toggle');
    }
    return found;
}"""
PAGE_WIDTHS = (1400, 390)  # a laptop, a phone


def _load(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url, wait_until="load")
    page.evaluate("""async () => { if (document.querySelector('script[src*="mathjax"]')) {
        await new Promise(done => { const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
            ? MathJax.startup.promise.then(done) : setTimeout(wait, 20); wait(); }); } }""")
    return page


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("width", PAGE_WIDTHS)
def test_every_page_fits_the_screen_and_hides_set_up_code(built_book, served_book, browser, width):
    """At 1400 and 390 px: no page wider than the viewport, no equation overflowing or with its
    number clipped, no Colab cell, and chapter pages' set-up cells folded."""
    problems = []
    for html in _html_pages(built_book, redirects=False):
        rel = html.relative_to(built_book).as_posix()
        page = _load(browser, f"{served_book}/{rel}", width)
        script = LAYOUT.replace("COLAB", json.dumps(course.COLAB_MARKER)).replace(
            "CHAPTER", json.dumps(rel.startswith("book/"))
        )
        problems += [f"{rel} at {width} px: {found}" for found in page.evaluate(script)]
        page.close()
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)


CHECKPOINT = re.compile(
    r"\A```\{exercise\} Predict\n:label: (?P<label>[\w-]+)\n:nonumber:\n(?P<question>.+?)\n```\n"
    r"```\{solution\} (?P=label)\n:class: dropdown\n(?P<answer>.+?)\n```\Z",
    re.S,
)


def _chapter_pages() -> list[Path]:
    """The notebooks of the preface and chapters 1-7, in the order of _toc.yml."""
    toc = (ROOT / "_toc.yml").read_text()
    entries = re.findall(r"file: (book/0[0-7]_\S+)", toc)
    return [ROOT / f"{e}.ipynb" for e in entries if (ROOT / f"{e}.ipynb").exists()]


def _checkpoints(nb) -> list[tuple[int, re.Match]]:
    return [
        (i, CHECKPOINT.match(c.source))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and "{exercise}" in c.source
    ]


def test_every_chapter_page_has_checkpoint_questions():
    """2-4 "Predict, then check" questions per page, each a well-formed exercise with a dropdown
    solution under the same label, placed just before the code cell that settles it."""
    pages = _chapter_pages()
    assert len(pages) >= 27
    labels = []
    for path in pages:
        nb = nbformat.read(path, as_version=4)
        found = _checkpoints(nb)
        assert 2 <= len(found) <= 4, f"{path.name}: {len(found)} checkpoint questions"
        for n, (i, m) in enumerate(found, start=1):
            assert m, f"{path.name}, cell {i}: not an exercise followed by its dropdown solution"
            assert m["label"] == f"{path.stem}-predict-{n}" == nb.cells[i].get("id"), (path.name, m["label"])
            assert "Predict" in m["question"] and m["answer"].strip(), (path.name, m["label"])
            after = next(c for c in nb.cells[i + 1 :] if "{exercise}" not in c.source)  # questions may share a cell
            assert after.cell_type == "code", f"{path.name}: {m['label']} is not followed by a code cell"
            labels.append(m["label"])
    assert len(labels) == len(set(labels))


def test_checkpoints_become_quotes_and_details_in_the_plain_copies():
    """tools.notebooks (the Colab copies) turns the question into a block quote and hides the
    answer behind <details>, outside the quote."""
    from tools import notebooks

    path = ROOT / "book/03_math/bptt.ipynb"
    nb = nbformat.read(path, as_version=4)
    (i, m), *_ = _checkpoints(nb)
    copy = notebooks.plain_copy(path, notebooks.Index(ROOT, {}), notebooks.bibliography(ROOT), ROOT)
    text = copy.cells[i].source
    question, _, answer = text.partition("<details>")
    assert question.startswith("> **Checkpoint: Predict**") and "{exercise}" not in text
    assert ":label:" not in text and ":nonumber:" not in text
    assert all(line.startswith(">") for line in question.strip().splitlines())
    first_answer_line = m["answer"].splitlines()[0]
    assert first_answer_line not in question and first_answer_line in answer
    assert answer.lstrip().startswith("<summary>Answer</summary>") and answer.rstrip().endswith("</details>")


@pytest.mark.slow
@pytest.mark.browser
def test_checkpoint_answers_are_hidden_until_asked_for(built_book, served_book, browser):
    """On a page with checkpoint questions: every question shows, every answer is hidden, and
    clicking an answer's title reveals it, with no console errors."""
    nb = nbformat.read(ROOT / "book/03_math/bptt.ipynb", as_version=4)
    expected = len(_checkpoints(nb))
    page = browser.new_page()
    errors = []
    _watch(page, errors)
    page.goto(f"{served_book}/book/03_math/bptt.html", wait_until="load")
    questions, answers = page.locator("div.exercise"), page.locator("div.solution")
    assert questions.count() == answers.count() == expected
    for k in range(expected):
        question_text = questions.nth(k).locator("p:not(.admonition-title)").first
        answer_text = answers.nth(k).locator("p:not(.admonition-title)").first
        assert question_text.is_visible() and "Predict" in question_text.inner_text()
        assert not answer_text.is_visible(), f"answer {k + 1} is visible before it is asked for"
        answers.nth(k).locator(".admonition-title").click()
        answer_text.wait_for(state="visible", timeout=5000)
        assert answer_text.inner_text().strip()
    assert not errors, errors


# Pages with an interactive plotly figure (a slider over values computed while the page executed).
INTERACTIVE_PAGES = [
    "book/03_math/gradient_descent_stability",
    "book/03_math/jacobian_products",
    "book/03_math/initialisation",
    "book/04_practice/learning_rate_sweep",
    "book/04_practice/depth_heatmaps",
    "book/03_math/activation_derivatives",
    "book/03_math/batch_normalization",
    "book/03_math/gradient_clipping",
    "book/05_applications/residual_connections",
    "book/05_applications/mixed_precision",
    "book/03_math/bptt",
]
LARGEST_PAGE = 2_000_000  # bytes; plotly.js alone is 4.8 MB, so an inlined copy cannot pass


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
def test_interactive_figures_respond_to_their_slider(built_book, served_book, browser):
    """On every interactive page, click another step of each figure's slider: the visible traces
    and the drawn SVG change; no title is cut off on a phone; no console error, nothing fetched from outside."""
    problems = []
    for rel in INTERACTIVE_PAGES:
        errors = []
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _watch(page, errors, origin=served_book)
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
        page.close()
        errors += _cut_off_titles(browser, f"{served_book}/{rel}.html", width=390)
        if errors:
            problems.append(f"{rel}: " + "; ".join(errors))
    assert not problems, "\n".join(problems)


def _cut_off_titles(browser, url: str, width: int) -> list[str]:
    """The figures of the page whose title runs past the figure's right edge at this width."""
    page = _load(browser, url, width)
    found = page.evaluate(
        """w => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap((gd, i) => {
        const title = gd.querySelector('.gtitle');
        return title && title.getBoundingClientRect().right > gd.getBoundingClientRect().right + 1
            ? [`figure ${i}: the title is cut off at ${w} px`] : [];
    })""",
        width,
    )
    page.close()
    return found


@pytest.mark.slow
def test_the_colab_copies_equal_a_fresh_generation(built_book):
    """colab/ is generated (``make notebooks``), never edited: the committed copies equal what
    tools.notebooks writes from this build, glued values included."""
    build = built_book.parent.parent  # <path-output>/_build/html
    result = subprocess.run(
        [sys.executable, "-m", "tools.notebooks", "--check", "--build", str(build)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, (
        "colab/ is out of date (run make notebooks):\n" + (result.stdout + result.stderr)[-3000:]
    )
