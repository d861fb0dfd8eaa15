"""Plain-Markdown copies of every page and exercise, for front ends without MyST (Colab, VS Code,
GitHub's viewer): ``make notebooks`` (after ``make book``, whose executed notebooks supply the
values the pages ``glue`` into their text).

    python -m tools.notebooks [--check] [--build PATH_OUTPUT]

Each notebook under ``book/`` and ``exercises/`` is written to ``colab/<same path>`` with its
code cells unchanged and its Markdown cells rewritten:

* ``{cite:p}`` -> "(Author, year; ...)", ``{cite:t}`` -> "Author (year)", and a "References"
  cell at the end listing the entries cited on the page;
* ``{doc}`` -> a link to the other page's copy (or to the Markdown page in the repository),
  with the page's title as text; ``{ref}`` -> the section's title, linked; ``{numref}`` -> "Fig. N";
* labelled equations ``$$ ... $$ (label)`` -> ``$$ ... \\tag{N} $$`` and ``{eq}`` -> "(N)", N
  counted per page as the book numbers them; every equation stays LaTeX;
* ``{glue:text}`` -> the value the page computed, formatted as the role asks;
* directives (``admonition``, ``note``, ``exercise``, ``solution``, ``dropdown``...) -> block
  quotes, and solutions behind ``<details>`` so they stay hidden until asked for.

``repository.path_to_book: colab`` in ``_config.yml`` makes the book's launch buttons open these
copies. They are generated, never edited by hand; ``--check`` fails if any differs from a fresh
generation (the test suite runs it after the book build).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

from tools.book import cache_path
from tools.layout import ROOT, notebooks

OUT = "colab"
SOURCES = ("book", "exercises")
ROLE = re.compile(r"\{(?P<role>[a-z:]+)\}`(?P<body>[^`]*)`")
LABELLED_EQUATION = re.compile(r"\$\$(?P<tex>.+?)\$\$[ \t]*\((?P<label>[\w:.-]+)\)", re.S)
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})[ \t]*\{(?P<name>[a-z-]+)\}[ \t]*(?P<arg>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.S | re.M,
)
TARGET = re.compile(r"^\((?P<label>[\w:.-]+)\)=[ \t]*\n+#+[ \t]*(?P<title>[^\n]+)", re.M)
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


# ------------------------------------------------------------------ citations
def bibliography(root: Path = ROOT) -> dict:
    from pybtex.database import parse_file

    return parse_file(str(root / "book" / "references.bib")).entries


def _surnames(entry) -> list[str]:
    return [" ".join(p.last_names) for p in entry.persons.get("author", entry.persons.get("editor", []))]


def author_year(entry) -> tuple[str, str]:
    """("Ioffe and Szegedy", "2015"): one or two surnames, else the first and "et al."."""
    names = _surnames(entry)
    who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return _plain(who), entry.fields.get("year", "n.d.")


def reference_line(entry) -> str:
    """Authors (year). Title. *Venue*."""
    people = entry.persons.get("author", [])
    authors = ", ".join(
        _plain(" ".join(p.last_names) + ", " + " ".join(n[0] + "." for n in p.first_names)) for p in people
    )
    venue = entry.fields.get("journal") or entry.fields.get("booktitle") or entry.fields.get("publisher") or ""
    title = _plain(entry.fields.get("title", ""))
    stop = "" if title.endswith((".", "?", "!")) else "."
    return f"{authors} ({entry.fields.get('year', 'n.d.')}). {title}{stop}" + (f" *{_plain(venue)}*." if venue else "")


def _plain(text: str) -> str:
    return re.sub(r"[{}]", "", text).replace("\\&", "&").replace("--", "–")


# ----------------------------------------------------------------- the index
class Index:
    """What the roles point at, across the book: page titles, section labels, glued values."""

    def __init__(self, root: Path, executed: dict[Path, nbformat.NotebookNode]):
        self.root = root
        self.titles: dict[str, str] = {}
        self.sections: dict[str, tuple[str, str]] = {}  # label -> (page, title)
        self.equations: dict[str, tuple[str, int]] = {}  # label -> (page, number on that page)
        self.figures: dict[str, tuple[str, int]] = {}  # label -> (page, number on that page)
        self.glued: dict[str, str] = {}
        for path in sorted((root / "book").rglob("*.md")) + notebooks(root, SOURCES):
            page = path.relative_to(root).with_suffix("").as_posix()
            nb = nbformat.read(path, as_version=4) if path.suffix == ".ipynb" else None
            text = (
                path.read_text(encoding="utf-8")
                if nb is None
                else "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            )
            heading = re.search(r"^#[ \t]+(.+)$", text, re.M)
            self.titles[page] = heading.group(1).strip() if heading else page.rsplit("/", 1)[-1]
            for m in TARGET.finditer(text):
                self.sections[m.group("label")] = (page, m.group("title").strip())
            for number, label in enumerate(dict.fromkeys(m.group("label") for m in LABELLED_EQUATION.finditer(text))):
                self.equations[label] = (page, number + 1)
            for number, label in enumerate(figure_names(nb) if nb is not None else []):
                self.figures[label] = (page, number + 1)
        for nb in executed.values():
            for cell in nb.cells:
                for out in cell.get("outputs", []):
                    record = out.get("metadata", {}).get("scrapbook", {})  # what myst-nb's glue() wrote
                    text = out.get("data", {}).get(record.get("mime_prefix", "") + "text/plain")
                    if record.get("name") and text is not None:
                        self.glued[record["name"]] = text

    def link(self, page: str, here: str, anchor: str = "") -> str:
        """A relative link from the copy of ``here`` to the copy of ``page`` (or the source .md)."""
        is_notebook = (self.root / f"{page}.ipynb").exists()
        target = (Path(OUT) / f"{page}.ipynb") if is_notebook else Path(f"{page}.md")
        start = (Path(OUT) / here).parent
        return os.path.relpath(target, start).replace(os.sep, "/") + (f"#{anchor}" if anchor else "")


def figure_names(nb) -> list[str]:
    """The names of the page's figures (``mystnb.figure.name``), in the order the page numbers them."""
    return [
        c.metadata["mystnb"]["figure"]["name"]
        for c in nb.cells
        if c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
    ]


# ----------------------------------------------------------- one page's text
class Page:
    def __init__(self, index: Index, bib, page: str):
        self.index, self.bib, self.page = index, bib, page
        self.cited: list[str] = []
        self.equations = {label: n for label, (where, n) in index.equations.items() if where == page}

    def markdown(self, text: str) -> str:
        text = DIRECTIVE.sub(self._directive, text)
        text = LABELLED_EQUATION.sub(
            lambda m: f"$${m.group('tex').rstrip()} \\tag{{{self.equations[m.group('label')]}}}$$", text
        )
        text = re.sub(r"^\([\w:.-]+\)=[ \t]*\n", "", text, flags=re.M)  # targets: the heading stays
        return ROLE.sub(self._role, text)

    def _directive(self, m: re.Match) -> str:
        name, arg = m.group("name"), m.group("arg").strip()
        lines = m.group("body").splitlines()
        options = {}
        while lines and re.match(r"^:[\w-]+:", lines[0]):
            key, _, value = lines.pop(0)[1:].partition(":")
            options[key] = value.strip()
        body = self.markdown("\n".join(lines).strip("\n"))
        if name == "solution" or "dropdown" in options.get("class", "") or name == "dropdown":
            title = arg if name != "solution" else "Answer"
            return f"<details>\n<summary>{title or 'Show'}</summary>\n\n{body}\n\n</details>\n"
        title = arg if name in {"admonition", "exercise"} else name.capitalize()
        if name == "exercise":
            title = f"Checkpoint: {arg}" if arg else "Checkpoint"
        quoted = "\n".join("> " + line if line else ">" for line in body.splitlines())
        return f"> **{self.markdown(title)}**\n>\n{quoted}\n"

    def _role(self, m: re.Match) -> str:
        role, body = m.group("role"), m.group("body")
        explicit = EXPLICIT.match(body)
        text, target = (explicit.group("text"), explicit.group("target")) if explicit else ("", body)
        if role in {"cite:p", "cite", "cite:t"}:
            keys = [k.strip() for k in target.split(",")]
            self.cited += [k for k in keys if k not in self.cited]
            pairs = [author_year(self.bib[k]) for k in keys]
            if role == "cite:t":
                return "; ".join(f"{who} ({year})" for who, year in pairs)
            return "(" + "; ".join(f"{who}, {year}" for who, year in pairs) + ")"
        if role == "doc":
            page = target.lstrip("/") if target.startswith("/") else os.path.normpath(Path(self.page).parent / target)
            return f"[{text or self.index.titles[page]}]({self.index.link(page, self.page)})"
        if role == "ref":
            page, title = self.index.sections[target]
            anchor = re.sub(r"[^\w -]", "", title).strip().lower().replace(" ", "-")
            return f"[{text or title}]({self.index.link(page, self.page, anchor)})"
        if role == "numref":
            page, number = self.index.figures[target]
            if page == self.page:
                return f"Fig. {number}"
            return f"Fig. {number} of [{self.index.titles[page]}]({self.index.link(page, self.page)})"
        if role == "eq":
            page, number = self.index.equations[target]
            return f"({number})" if page == self.page else f"[({number})]({self.index.link(page, self.page)})"
        if role == "glue:text":
            name, _, spec = target.partition(":")
            value = self.index.glued[name]
            try:
                return format(float(value), spec) if spec else value
            except ValueError:
                return value.strip("'\"")
        if role == "math":
            return f"${target}$"
        raise ValueError(f"{self.page}: no plain-Markdown form for the role {{{role}}}")

    def references_cell(self) -> str | None:
        if not self.cited:
            return None
        lines = [f"- {reference_line(self.bib[k])}" for k in sorted(self.cited, key=lambda k: author_year(self.bib[k]))]
        return "## References\n\n" + "\n".join(lines)


# ------------------------------------------------------------------- driver
def executed_notebooks(root: Path, build: Path) -> dict[Path, nbformat.NotebookNode]:
    """The book's notebooks as the build into ``build`` executed them (from its jupyter-cache)."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_path(build))
    found = {}
    for record in cache.list_project_records():
        try:
            _, nb = cache.merge_match_into_file(record.uri)
        except KeyError:  # not executed (yet), or its code changed since
            continue
        found[Path(record.uri)] = nb
    return found


def plain_copy(path: Path, index: Index, bib, root: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    page = Page(index, bib, path.relative_to(root).with_suffix("").as_posix())
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = page.markdown(cell.source)
    references = page.references_cell()
    if references:
        cell = nbformat.v4.new_markdown_cell(references)
        cell.pop("id", None) if nb.nbformat_minor < 5 else cell.update(id="references")
        nb.cells.append(cell)
    nb.metadata.pop("mystnb", None)
    return nb


def generate(root: Path = ROOT, build: Path = ROOT) -> dict[Path, str]:
    """Every copy's path (under ``colab/``) and text, with the values glued by the book built in ``build``
    (the ``--path-output`` of ``tools.book``)."""
    executed = executed_notebooks(root, build)
    missing = [
        p
        for p in notebooks(root, ("book",))
        if p not in executed and any("{glue:text}" in c.source for c in nbformat.read(p, as_version=4).cells)
    ]
    if missing:
        raise SystemExit(f"build the book first (make book): no executed copy of {', '.join(str(p) for p in missing)}")
    index, bib = Index(root, executed), bibliography(root)
    return {
        root / OUT / p.relative_to(root): nbformat.writes(plain_copy(p, index, bib, root)) + "\n"
        for p in notebooks(root, SOURCES)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if colab/ differs from a fresh generation")
    parser.add_argument(
        "--build", type=Path, default=ROOT, help="the --path-output of the book build to read (default: the repository)"
    )
    args = parser.parse_args(argv)
    copies = generate(ROOT, args.build.resolve())
    stale = [p for p, text in copies.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = [p for p in (ROOT / OUT).rglob("*.ipynb") if p not in copies] if (ROOT / OUT).is_dir() else []
    if args.check:
        for p in stale + extra:
            print(f"out of date: {p.relative_to(ROOT)} (run make notebooks)")
        return 1 if stale or extra else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(copies[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    for p in extra:
        p.unlink()
        print(f"removed {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
