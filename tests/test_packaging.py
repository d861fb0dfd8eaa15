"""The package as an instructor installs it: the wheel holds every module of ``tamegrad``
(the learner's package and its grader) and nothing of the repository's tools, tests or
solutions; installed non-editable in a fresh virtual environment, ``tamegrad grade``
grades a submission there."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .grade_fixtures import build

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # a copy of the tracked files: the build never writes into the checkout
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("tamegrad-*.whl")
    return found


def test_wheel_holds_the_package_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    expected = {p.relative_to(REPO).as_posix() for p in (REPO / "tamegrad").rglob("*.py")}
    assert modules == expected, f"missing: {sorted(expected - modules)}; extra: {sorted(modules - expected)}"
    assert "tamegrad/autograde/execute.py" in modules  # the grader travels with the package
    assert not any(n.split("/")[0] in {"tools", "tests", "solutions", "exercises", "book"} for n in names)


@pytest.mark.slow
def test_installed_wheel_grades_a_submission(wheel, tmp_path):
    """A fresh venv with the wheel installed non-editable. Its dependencies come from this
    environment's site-packages through a .pth line and its data files through JUPYTER_PATH
    (no network; a plain path line does not run this environment's editable-install hook, so
    ``tamegrad`` is the wheel's)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "deps-from-the-course-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = subprocess.run(
        [str(python), "-c", "import tamegrad, tamegrad.autograde.execute; print(tamegrad.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), where  # the installed copy, not the checkout

    course = build.make_course(tmp_path / "course")
    submitted = tmp_path / "submitted"
    build.write_answers(
        build.release_notebook(course),
        submitted,
        "alice",
        "def square(x):\n    return np.asarray(x, dtype=np.float64) ** 2",
        None,
    )
    env = build.env()
    env["PATH"] = f"{env_dir / 'bin'}:{env['PATH']}"  # the fresh venv's tamegrad first; nbgrader's alembic after
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert's templates, with the deps
    result = subprocess.run(
        [
            str(env_dir / "bin" / "tamegrad"),
            "grade",
            build.ASSIGNMENT,
            "--submissions",
            str(submitted),
            "--course",
            str(course),
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    grades = build.read_grades(next((tmp_path / "out").glob("*grades*.csv")))
    assert grades["alice"]["status"] == "graded"
    assert float(grades["alice"]["score"]) == 2.0  # square right (2 points), sigmoid_grad blank (0 of 3)
