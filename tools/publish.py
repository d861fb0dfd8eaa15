"""Write the learner-facing course, the public repository, from this instructors' one.

    python -m tools.publish DEST [--source DIR]       (make publish DEST=...)

The instructors' repository holds ``solutions/`` (nbgrader sources with the solutions and
hidden tests), the grading fixtures and the test suite. Learners clone the public
repository, and Colab installs ``tamegrad`` from it (``repository.url`` of
``_config.yml``), so it must hold none of them. DEST receives:

* from the files git tracks (``git ls-files``: untracked files never ship), as they are in
  the working tree: ``book/``, ``exercises/``, ``colab/`` (the plain-Markdown copies the
  launch buttons open), ``tamegrad/`` (whole: the grader in
  ``tamegrad/autograde`` holds no solution, and ``pip install`` of the repository, as the
  Colab cell does, needs the package as ``pyproject.toml`` describes it), ``_config.yml``,
  ``_toc.yml``, ``requirements.txt``, ``constraints.txt``, ``pyproject.toml``,
  ``.gitignore``, and ``tools/book.py`` with ``tools/layout.py`` (``make book``);
* written here: ``README.md`` (``tools/learner/README.md``), ``nbgrader_config.py``
  (``tools/learner/nbgrader_config.py``: the exchange only, no course id), and a
  ``Makefile`` made of the learner targets of this one (:data:`LEARNER_TARGETS`);
* never: ``solutions/``, ``tests/`` (fixtures included), ``benchmarks/``, ``.ci/``,
  ``CONTRIBUTING.md``, ``tools/course.py`` (release needs the solutions), gradebooks.

Before anything is written, every published text is searched for every line of the
solution regions (``### BEGIN SOLUTION`` .. ``### END SOLUTION``) and hidden-test
regions of ``solutions/`` (:func:`secret_lines`); a leak (:func:`leaks`) stops the
publication.

DEST may be missing, empty, a clone of the public repository (its ``.git`` is kept), or
an earlier publication: the files of the previous publication (listed in
``.published-files``) that are no longer published are removed; anything else already
in DEST is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEARNER = Path(__file__).resolve().parent / "learner"
PUBLISHED_DIRS = ("book/", "exercises/", "colab/", "tamegrad/")
PUBLISHED_FILES = (
    "_config.yml",
    "_toc.yml",
    "requirements.txt",
    "constraints.txt",
    "pyproject.toml",
    ".gitignore",
    "tools/__init__.py",
    "tools/layout.py",
    "tools/book.py",
)
WRITTEN = {"README.md": LEARNER / "README.md", "nbgrader_config.py": LEARNER / "nbgrader_config.py"}
LEARNER_TARGETS = {"help", "setup", "book", "lab", "clean", "$(READY)"}
MANIFEST = ".published-files"
# a region line shorter than this (after stripping) is too generic to be a leak on its own:
# "return out", "x = 0", "pass", "else:" also occur in the book's own code
MIN_SECRET_CHARS = 16
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


class PublishError(Exception):
    pass


def tracked(source: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=source, capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0") if p)


def selected(files: list[str]) -> list[str]:
    """The tracked files that are published as they are."""
    return [f for f in files if f.startswith(PUBLISHED_DIRS) or f in PUBLISHED_FILES]


def learner_makefile(text: str) -> str:
    """This Makefile with only the rules of :data:`LEARNER_TARGETS` (and its variables).

    A paragraph (lines between blank lines) is kept when it defines no rule, or when
    every rule it defines has a learner target; ``.PHONY`` lists the kept targets.
    """
    kept, targets = [], []
    for para in re.split(r"\n\s*\n", text.strip("\n")):
        if para.startswith(".PHONY"):
            kept.append(None)
            continue
        rules = [m.group(1).split()[0] for m in re.finditer(r"^([^\s#][^:=]*):(?!=)", para, re.MULTILINE)]
        if not all(r in LEARNER_TARGETS for r in rules):
            continue
        targets += [r for r in rules if not r.startswith("$(")]
        kept.append(para)
    phony = ".PHONY: " + " ".join(dict.fromkeys(targets))
    return "\n\n".join(phony if p is None else p for p in kept) + "\n"


def _split(source: str) -> tuple[dict[str, list[str]], set[str]]:
    """The stripped lines of a cell: those inside each kind of region, and the others."""
    inside, regions, public = None, {"solution": [], "hidden test": []}, set()
    for line in source.splitlines():
        if SOLUTION[0] in line or HIDDEN[0] in line:
            inside = "solution" if SOLUTION[0] in line else "hidden test"
        elif SOLUTION[1] in line or HIDDEN[1] in line:
            inside = None
        elif inside:
            regions[inside].append(line.strip())
        else:
            public.add(line.strip())
    return regions, public


def secret_lines(solutions: Path) -> dict[str, set[str]]:
    """Every line of a solution or hidden-test region of ``solutions/*/*.ipynb``, by kind.

    Left out: lines the same notebooks also show outside their regions (the visible tests
    and set-up cells are public: ``rng = np.random.default_rng(seed)``), and lines of fewer
    than :data:`MIN_SECRET_CHARS` characters.
    """
    import nbformat

    found, public = {"solution": set(), "hidden test": set()}, set()
    for path in sorted(solutions.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            regions, outside = _split(cell.source)
            public |= outside
            for kind, lines in regions.items():
                found[kind] |= {ln for ln in lines if len(ln) >= MIN_SECRET_CHARS}
    return {kind: lines - public for kind, lines in found.items()}


def _lines(path: str, text: str) -> set[str]:
    if path.endswith(".ipynb"):
        import nbformat

        try:
            nb = nbformat.reads(text, as_version=4)
        except Exception:  # noqa: BLE001 - not a notebook after all: search its text
            return {ln.strip() for ln in text.splitlines()}
        return {ln.strip() for c in nb.cells for ln in c.source.splitlines()}
    return {ln.strip() for ln in text.splitlines()}


def leaks(texts: dict[str, str], secrets: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(leaks, shared): ``path: kind: line`` for every secret line in a published text.

    A leak is any secret line in ``exercises/`` or its copy ``colab/exercises/`` (generated from
    the solutions: nothing of a region belongs there), any region marker in a notebook, and elsewhere any hidden-test
    line other than a bare block header (``with torch.no_grad():``). *Shared* are the
    solution lines that the book's own code or the ``tamegrad`` package also contain: they
    teach or implement the same formula (``mu = x.mean(axis=0)``), and are reported, not
    refused.
    """
    out, shared = [], []
    for path, text in sorted(texts.items()):
        lines = _lines(path, text)
        if path.endswith(".ipynb") and any(m in text for m in SOLUTION + HIDDEN):
            out.append(f"{path}: an nbgrader region marker")
        source = path.removeprefix("colab/")  # a plain copy is held to the rules of the page it copies
        for kind, secret in secrets.items():
            for line in sorted(secret & lines):
                entry = f"{path}: {kind}: {line}"
                if source.startswith("exercises/") or (kind == "hidden test" and not line.endswith(":")):
                    out.append(entry)
                elif kind == "solution" and source.startswith(("book/", "tamegrad/")):
                    shared.append(entry)
                elif kind == "solution":
                    out.append(entry)
    return out, shared


def plan(source: Path) -> dict[str, bytes]:
    """Every published file (relative path -> content)."""
    files = {f: (source / f).read_bytes() for f in selected(tracked(source)) if (source / f).is_file()}
    for name, template in WRITTEN.items():
        files[name] = template.read_bytes()
    files["Makefile"] = learner_makefile((source / "Makefile").read_text()).encode()
    banned = [
        f
        for f in files
        if f.startswith(("solutions/", "tests/", ".ci/", "benchmarks/"))
        or f in ("CONTRIBUTING.md", "tools/course.py")
        or f.endswith((".db", ".db-journal"))
    ]
    if banned:
        raise PublishError("refusing to publish " + ", ".join(banned))
    return files


def _texts(files: dict[str, bytes]) -> dict[str, str]:
    out = {}
    for path, data in files.items():
        try:
            out[path] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _prepare_dest(dest: Path, force: bool) -> list[str]:
    """The files of an earlier publication in ``dest`` (to remove if not published again)."""
    if not dest.exists():
        dest.mkdir(parents=True)
        return []
    if not dest.is_dir():
        raise PublishError(f"{dest} is not a folder")
    manifest = dest / MANIFEST
    previous = manifest.read_text().splitlines() if manifest.is_file() else []
    others = [p.name for p in dest.iterdir() if p.name not in (".git", MANIFEST)]
    if others and not previous and not force:
        raise PublishError(
            f"{dest} holds files of no earlier publication ({', '.join(sorted(others)[:5])}); "
            "use an empty folder or a clone of the public repository, or --force"
        )
    return previous


def publish(dest: Path, source: Path = ROOT, force: bool = False) -> list[str]:
    """Write the public course to ``dest``; return the published paths."""
    dest, source = Path(dest).resolve(), Path(source).resolve()
    if dest == source or source in dest.parents:
        raise PublishError(f"{dest} is inside the instructors' repository {source}")
    files = plan(source)
    found, shared = leaks(_texts(files), secret_lines(source / "solutions"))
    if found:
        raise PublishError("solution or hidden-test text in the published files:\n  " + "\n  ".join(found[:20]))
    for entry in shared:
        print(f"publish: note: a solution line the course's own code also has: {entry}", file=sys.stderr)
    previous = _prepare_dest(dest, force)
    for old in previous:
        if old not in files:
            target = dest / old
            if target.is_file() or target.is_symlink():
                target.unlink()
    for path, data in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_bytes(data)
        mode = (source / path).stat().st_mode & 0o777 if (source / path).is_file() else 0o644
        target.chmod(mode)
    for folder in sorted(
        (p for p in dest.rglob("*") if p.is_dir() and ".git" not in p.relative_to(dest).parts), reverse=True
    ):
        if not any(folder.iterdir()):
            folder.rmdir()
    (dest / MANIFEST).write_text("\n".join(sorted(files)) + "\n")
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="the public repository's folder (created if missing)")
    parser.add_argument("--source", type=Path, default=ROOT, help="the instructors' repository (default: this one)")
    parser.add_argument("--force", action="store_true", help="publish into a folder that holds other files")
    args = parser.parse_args(argv)
    try:
        files = publish(args.dest, args.source, args.force)
    except (PublishError, subprocess.CalledProcessError) as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 2
    print(f"published {len(files)} files to {args.dest.resolve()}: no solutions/, no hidden tests, no test fixtures")
    print("the Colab links and install cells point at repository.url of _config.yml; push this folder there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
