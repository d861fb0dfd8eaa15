"""`make publish DEST`: the learner-facing course holds no solution and no hidden test, and
its book builds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import publish

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _published_lines(dest: Path) -> dict[str, set[str]]:
    """Every published text file, read back from disk, as its set of stripped lines."""
    out = {}
    for path in dest.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(dest).parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            lines = {ln.strip() for c in nb.cells for ln in c.source.splitlines()}
            lines |= {
                ln.strip()
                for c in nb.cells
                if c.cell_type == "code"
                for o in c.get("outputs", [])
                for ln in str(o.get("text", "")).splitlines()
            }
        else:
            lines = {ln.strip() for ln in text.splitlines()}
        out[path.relative_to(dest).as_posix()] = lines
    return out


def _secret_hits(dest: Path) -> list[str]:
    secrets = publish.secret_lines(REPO / "solutions")
    hits = []
    for rel, lines in _published_lines(dest).items():
        for kind, secret in secrets.items():
            source = rel.removeprefix("colab/")  # a plain copy is judged as the page it copies
            for line in secret & lines:
                shared = kind == "solution" and source.startswith(("book/", "tamegrad/"))
                header = kind == "hidden test" and line.endswith(":") and not source.startswith("exercises/")
                if not (shared or header):
                    hits.append(f"{rel}: {kind}: {line}")
    return hits


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    dest = tmp_path_factory.mktemp("public") / "taming-gradients"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.publish", str(dest)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def test_the_published_tree_has_no_solutions_tests_or_gradebooks(published):
    names = {p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file()}
    assert not [n for n in names if n.startswith(("solutions/", "tests/", ".ci/", "benchmarks/"))]
    assert not [n for n in names if n.endswith((".db", "grades.csv")) or "autograded" in n or "submitted/" in n]
    assert "CONTRIBUTING.md" not in names and "tools/course.py" not in names
    for needed in (
        "README.md",
        "_config.yml",
        "_toc.yml",
        "requirements.txt",
        "constraints.txt",
        "pyproject.toml",
        "Makefile",
        ".gitignore",
        "nbgrader_config.py",
        "tools/book.py",
        "tamegrad/__init__.py",
        "book/exercises.md",
    ):
        assert needed in names, needed
    assert sorted(p.name for p in (published / "exercises").iterdir()) == sorted(
        p.name for p in (REPO / "solutions").iterdir() if p.is_dir()
    )
    tracked = set(publish.tracked(REPO))
    assert names - {"README.md", "Makefile", "nbgrader_config.py", publish.MANIFEST} <= tracked


def test_no_solution_or_hidden_test_line_is_published(published):
    secrets = publish.secret_lines(REPO / "solutions")
    assert len(secrets["solution"]) > 30 and len(secrets["hidden test"]) > 100  # the search has something to find
    assert _secret_hits(published) == []
    for rel, lines in _published_lines(published).items():
        if rel.endswith(".ipynb"):
            assert not any("### BEGIN" in ln or "### END" in ln for ln in lines), rel


def test_the_search_finds_a_leak(published, tmp_path):
    """The check above is shown failing once: a copy with one solution notebook left in it."""
    leaky = tmp_path / "leaky"
    shutil.copytree(published, leaky)
    a = min(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    shutil.copy(REPO / "solutions" / a / f"{a}.ipynb", leaky / "exercises" / a / f"{a}.ipynb")
    assert _secret_hits(leaky)
    texts = {f"exercises/{a}/{a}.ipynb": (REPO / "solutions" / a / f"{a}.ipynb").read_text()}
    found, _ = publish.leaks(texts, publish.secret_lines(REPO / "solutions"))
    assert found  # and publish itself refuses it
    found, _ = publish.leaks({f"colab/{k}": v for k, v in texts.items()}, publish.secret_lines(REPO / "solutions"))
    assert found  # in the Colab copy of an exercise too


def test_learners_get_their_own_readme_makefile_and_nbgrader_config(published):
    readme = (published / "README.md").read_text()
    for instructor_only in ("solutions/", "tamegrad grade", "generate_assignment", "hidden tests are", "gradebook"):
        assert instructor_only not in readme, instructor_only
    assert "nbgrader validate" in readme and "make book" in readme
    makefile = (published / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    assert targets == {"help", "setup", "book", "lab", "clean"}
    assert "--allow-root" in makefile
    config = (published / "nbgrader_config.py").read_text()
    assert "course_id" not in config and "source_directory" not in config and "Exchange.root" in config
    out = subprocess.run(["make", "-n", "lab"], cwd=published, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert ("--allow-root" in out.stdout) == (os.geteuid() == 0)


def test_links_come_from_the_repository_setting(published):
    exercises = (published / "book" / "exercises.md").read_text()
    assert "github.com" not in exercises and "{{ colab_ex01 }}" in exercises and "{{ clone_commands }}" in exercises
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import repository_links
    finally:
        sys.path.pop(0)
    subs = repository_links.substitutions(
        "https://github.com/someone/course", "main", "https://colab.research.google.com", published
    )
    a = sorted(p.name for p in (published / "exercises").iterdir())
    assert subs[f"colab_{a[0][:4]}"] == (
        f"[{a[0][:4]}](https://colab.research.google.com/github/someone/course/blob/main/exercises/{a[0]}/{a[0]}.ipynb)"
    )
    assert "git clone https://github.com/someone/course\ncd course\n" in subs["clone_commands"]
    assert len([k for k in subs if k.startswith("colab_")]) == len(a)


def test_untracked_files_never_ship_and_a_foreign_folder_is_refused(tmp_path):
    source = tmp_path / "instructors"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(source)], check=True)
    (source / "book" / "scratch_notes.md").write_text("my private notes")
    (source / "gradebook.db").write_bytes(b"SQLite format 3\0")
    dest = tmp_path / "public"
    files = publish.publish(dest, source)
    assert "book/scratch_notes.md" not in files and not (dest / "gradebook.db").exists()
    (dest / "book" / "stale.md").write_text("published last time")
    (dest / publish.MANIFEST).write_text((dest / publish.MANIFEST).read_text() + "book/stale.md\n")
    publish.publish(dest, source)  # a second publication removes what is no longer published
    assert not (dest / "book" / "stale.md").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "something.txt").write_text("x")
    with pytest.raises(publish.PublishError):
        publish.publish(foreign, source)


# what a build without execution cannot have: the glued values and the figures that the
# notebooks' outputs define (the instructors' build executes them, warnings as errors)
UNEXECUTED = re.compile(r"No key '[^']+' found in glue data|undefined label: '(fig|tab|eq)-[^']+'")


@pytest.mark.slow
def test_the_published_book_builds(published, tmp_path):
    """Jupyter Book renders the published tree, with execution off to keep it cheap: every
    warning other than those of outputs that were not computed fails the test (a page of
    the table of contents that was not published, a broken {doc} link, an unknown
    substitution)."""
    book = tmp_path / "book"
    shutil.copytree(published, book)
    config = book / "_config.yml"
    text = config.read_text()
    assert "execute_notebooks: cache" in text
    config.write_text(text.replace("execute_notebooks: cache", 'execute_notebooks: "off"'))
    proc = subprocess.run(
        [str(BIN / "jupyter-book"), "build", str(book), "--keep-going"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(book)},
        check=False,
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, log[-4000:]
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert warnings, "a build without execution has glue warnings: is the log captured?"
    unexpected = [ln for ln in warnings if not UNEXECUTED.search(ln)]
    assert unexpected == [], "\n".join(unexpected)
    html = book / "_build" / "html"
    for page in ("book/exercises.html", "book/appendix/instructors.html", "index.html"):
        assert (html / page).is_file(), page
    exercises = (html / "book" / "exercises.html").read_text()
    url = publish_url(book)
    assert exercises.count(
        f"colab.research.google.com/github/{url.split('github.com/')[1]}/blob/main/colab/exercises/"
    ) == len(list((book / "exercises").iterdir()))
    assert f'git<span class="w"> </span>clone<span class="w"> </span>{url}\n' in exercises
    assert "{{" not in exercises


def publish_url(root: Path) -> str:
    match = re.search(
        r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", (root / "_config.yml").read_text(), re.MULTILINE
    )
    return match.group(1)


@pytest.mark.parametrize("which", ["instructors", "learners"])
def test_the_assignments_tab_finds_its_exchange_after_make_lab(which, published, tmp_path):
    """What the Assignments tab asks nbgrader (list the exchange): it fails while the folder
    is missing ("exchange directory does not exist" / "Error fetching courses!") and works
    once `make lab` has made it. Loading the configuration creates nothing."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError, ExchangeFactory
    from traitlets.config.loader import PyFileConfigLoader

    source = REPO if which == "instructors" else published
    shutil.copy(source / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXCHANGE"}

    def listing():
        old = os.environ.pop("NBGRADER_EXCHANGE", None)
        try:
            cfg = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
        finally:
            if old is not None:
                os.environ["NBGRADER_EXCHANGE"] = old
        cfg.CourseDirectory.course_id = "*"
        return (
            ExchangeFactory(config=cfg)
            .List(coursedir=CourseDirectory(config=cfg), authenticator=Authenticator(config=cfg), config=cfg)
            .start()
        )

    with pytest.raises(ExchangeError):
        listing()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbgrader_config.py"]
    makefile = (published / "Makefile").read_text()
    mkdir = re.search(r"^\t@mkdir -p (.+)$", makefile, re.MULTILINE).group(1).replace("$$", "$")  # make's $$
    subprocess.run(f"mkdir -p {mkdir}", shell=True, cwd=tmp_path, env=env, check=True)  # noqa: S602
    assert listing() == []
