"""Fast checks of `tamegrad grade`: the import stays light, options, intake."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tamegrad.autograde import sandbox, submissions

from .grade_fixtures import build


def test_import_tamegrad_does_not_import_the_grading_stack():
    code = ("import sys, tamegrad, tamegrad.cli, tamegrad.autograde\n"
            "heavy = [m for m in ('dask', 'distributed', 'nbgrader', 'torch', 'nbclient', 'jupyter_client') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_the_options():
    out = subprocess.run([str(build.VENV_BIN / "tamegrad"), "grade", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--submissions", "--workers", "--scheduler", "--db-url", "--timeout", "--memory-limit",
                   "--out", "--force"):
        assert option in out.stdout


def test_grading_that_cannot_start_exits_2(tmp_path):
    out = subprocess.run([str(build.VENV_BIN / "tamegrad"), "grade", "fx_square", "--submissions",
                          str(tmp_path / "nowhere"), "--course", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "does not exist" in out.stderr


@pytest.mark.parametrize("text, expected", [("2G", 2 * 1024**3), ("1500M", 1500 * 1024**2),
                                            ("512MiB", 512 * 1024**2), ("1000", 1000)])
def test_parse_size(text, expected):
    assert sandbox.parse_size(text) == expected


def _layout(root, students):
    for s in students:
        folder = root / s / "fx_square"
        folder.mkdir(parents=True)
        (folder / "fx_square.ipynb").write_text("{}")


def test_folder_intake_finds_the_submitted_layout(tmp_path):
    _layout(tmp_path / "course" / "submitted", ["ann", "bo"])
    root = submissions.intake(tmp_path / "course", "fx_square", tmp_path / "work")
    assert root == (tmp_path / "course" / "submitted").resolve()
    subs = submissions.list_submissions(root, "fx_square", ["fx_square"])
    assert [s.student for s in subs] == ["ann", "bo"]


def test_zip_intake_of_the_layout_and_of_a_flat_lms_download(tmp_path):
    layout = tmp_path / "layout.zip"
    with zipfile.ZipFile(layout, "w") as zf:
        zf.writestr("submitted/ann/fx_square/fx_square.ipynb", "{}")
        zf.writestr("../evil.txt", "escape")
    root = submissions.intake(layout, "fx_square", tmp_path / "w1")
    assert (root / "ann" / "fx_square" / "fx_square.ipynb").is_file()
    assert not (tmp_path / "evil.txt").exists()

    flat = tmp_path / "lms.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("fx_square_ann_attempt_2026-11-20-10-00-00_fx_square.ipynb", "{}")
        zf.writestr("fx_square_bo_attempt_2026-11-21-09-30-00_fx_square.ipynb", "{}")
    regexp = r"fx_square_(?P<student_id>\w+?)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
    root = submissions.intake(flat, "fx_square", tmp_path / "w2", named_regexp=regexp)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.ipynb")) == [
        "ann/fx_square/fx_square.ipynb", "bo/fx_square/fx_square.ipynb"]
    assert (root / "bo" / "fx_square" / "timestamp.txt").read_text() == "2026-11-21-09-30-00"
    with pytest.raises(submissions.IntakeError):
        submissions.intake(flat, "fx_square", tmp_path / "w3", named_regexp="")
