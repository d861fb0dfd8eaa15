"""Interactive plotly figures that work in the built HTML without a kernel.

The display rule, stated once: a page draws an interactive figure with plain plotly and
ends the cell with ``fig.show()``. Where it runs decides how the figure is shown:

* in JupyterLab and Colab plotly picks its own renderer (``plotly_mimetype`` / ``colab``),
  so the notebooks need nothing from this module;
* in the book build ``tools/book.py`` points ``PYTHONSTARTUP`` at ``kernel_startup.py``,
  which every kernel runs at start; it calls :func:`use_book_renderer`, and ``fig.show()``
  then emits ``fig.to_html(include_plotlyjs=False, full_html=False)`` as ``text/html``:
  the figure's data and slider steps, computed while the page executed, without the
  4.8 MB plotly.js library.

Why here and not in a module the pages import: kernels run in the page's folder and on
Colab only the notebook exists, so an imported helper needs ``sys.path`` edits in every
set-up cell and still fails on Colab; ``tamegrad`` is the learner's autodiff package and
holds no plotting. With the renderer chosen by the build, the page code is the ordinary
plotly idiom and reads the same everywhere.

The Sphinx half (:func:`setup`): plotly.js is copied once from plotly's wheel
(``plotly/package_data/plotly.min.js``) into the book's ``_static/`` and loaded, from
there, only by the pages that draw a plotly figure (never a CDN, never inlined). A page
whose HTML carries an inlined copy of plotly.js or a CDN address is a build warning
(an error with ``-W``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

RENDERER = "taming_gradients_book"
PLOTLY_JS = "plotly.min.js"
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}
INLINED_MARKERS = ("* plotly.js v", "cdn.plot.ly")  # plotly.js's own banner; plotly's CDN


TITLE_LINE = 40  # characters of a title line: plotly does not wrap titles, and a phone's column is ~330 px
TITLE_FONT_SIZE = 14  # px; with TITLE_LINE, a line is about 300 px wide


def wrapped_title(text: str, width: int = TITLE_LINE) -> str:
    """``text`` with ``<br>`` between words so that no line is longer than ``width`` (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def figure_html(fig_dict: dict) -> str:
    """The HTML of one figure: a div and the ``Plotly.newPlot`` call, without plotly.js; a long
    title is broken into lines that fit the book's column."""
    import plotly.io as pio

    title = fig_dict.get("layout", {}).get("title", {})
    if isinstance(title, dict) and "<br>" not in title.get("text", "<br>"):
        title["text"] = wrapped_title(title["text"])
        title.setdefault("font", {}).setdefault("size", TITLE_FONT_SIZE)
    height = fig_dict.get("layout", {}).get("height", 450)  # a page's div has no height of its own
    return pio.to_html(
        fig_dict,
        include_plotlyjs=False,
        full_html=False,
        config=PLOTLY_CONFIG,
        validate=False,
        default_width="100%",
        default_height=f"{height}px",
    )


def use_book_renderer() -> None:
    """Make ``fig.show()`` emit :func:`figure_html` as ``text/html`` (run by the build's kernels)."""
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class BookHtmlRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return {"text/html": figure_html(fig_dict)}

    pio.renderers[RENDERER] = BookHtmlRenderer()
    pio.renderers.default = RENDERER


def plotly_js_source() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / PLOTLY_JS


def uses_plotly(body: str) -> bool:
    return "Plotly.newPlot(" in body


def _add_plotly_js(app, pagename, templatename, context, doctree):
    body = context.get("body", "")
    for marker in INLINED_MARKERS:
        if marker in body:
            from sphinx.util import logging

            logging.getLogger(__name__).warning(
                f"{pagename}: the page carries {marker!r}: plotly.js must come from _static/{PLOTLY_JS} "
                "(build with python -m tools.book so that fig.show() leaves the library out)"
            )
    if uses_plotly(body):
        app.add_js_file(PLOTLY_JS, priority=600)  # after the theme's scripts, before the body's figures


def _copy_plotly_js(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(exist_ok=True)
        shutil.copyfile(plotly_js_source(), static / PLOTLY_JS)


def setup(app):
    app.connect("html-page-context", _add_plotly_js)
    app.connect("build-finished", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
