"""Keep the browser console of every page clean (the browser test checks it).

Two known console errors of the Jupyter Book 1.x theme stack:
* the inline configuration scripts of sphinx-thebe and sphinx-togglebutton are written
  twice into each page, so the second ``const THEBE_JS_URL`` throws "Identifier has
  already been declared": after the build, a repeated inline script is removed;
* pydata-sphinx-theme reads an empty ``localStorage.mode`` on a first visit and logs
  "Got invalid theme mode": an inline script sets the mode to "auto" first.
"""

import re
from pathlib import Path

INLINE_SCRIPT = re.compile(r"^[ \t]*<script>[^\n]*</script>\n", re.MULTILINE)


def drop_repeated_inline_scripts(html: str) -> str:
    seen = set()

    def keep_first(match):
        script = match.group(0).strip()
        if script in seen:
            return ""
        seen.add(script)
        return match.group(0)

    head_end = html.find("</head>")
    return INLINE_SCRIPT.sub(keep_first, html[:head_end]) + html[head_end:]


def _clean_pages(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        cleaned = drop_repeated_inline_scripts(text)
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")


def setup(app):
    app.add_js_file(
        None,
        body='if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }',
        priority=0,
    )
    app.connect("build-finished", _clean_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
