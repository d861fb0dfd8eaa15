"""Fast checks of `tamegrad grade`: the import stays light, options, intake."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tamegrad.autograde import report, sandbox, submissions

from .grade_fixtures import build


def test_import_tamegrad_does_not_import_the_grading_stack():
    code = (
        "import sys, tamegrad, tamegrad.cli, tamegrad.autograde\n"
        "heavy = [m for m in ('dask', 'distributed', 'nbgrader', 'torch', 'nbclient', 'jupyter_client')\n"
        "         if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_the_options():
    out = subprocess.run([str(build.VENV_BIN / "tamegrad"), "grade", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in (
        "--submissions",
        "--workers",
        "--scheduler",
        "--db-url",
        "--timeout",
        "--memory-limit",
        "--out",
        "--force",
    ):
        assert option in out.stdout


def test_grading_that_cannot_start_exits_2(tmp_path):
    out = build.run_tool("tamegrad", "grade", "fx_square", "--submissions", tmp_path / "nowhere", "--course", tmp_path)
    assert out.returncode == 2
    assert "does not exist" in out.stderr


@pytest.mark.parametrize(
    "text, expected", [("2G", 2 * 1024**3), ("1500M", 1500 * 1024**2), ("512MiB", 512 * 1024**2), ("1000", 1000)]
)
def test_parse_size(text, expected):
    assert sandbox.parse_size(text) == expected


def _layout(root, students):
    for s in students:
        folder = root / s / "fx_square"
        folder.mkdir(parents=True)
        (folder / "fx_square.ipynb").write_text("{}")


def test_folder_intake_finds_the_submitted_layout(tmp_path):
    _layout(tmp_path / "course" / "submitted", ["ann", "bo"])
    result = submissions.intake(tmp_path / "course", "fx_square", tmp_path / "work")
    assert (result.root / "ann" / "fx_square" / "fx_square.ipynb").is_file()
    subs = submissions.list_submissions(result, "fx_square", ["fx_square"])
    assert [s.student for s in subs] == ["ann", "bo"]


def test_zip_intake_of_the_layout_and_of_a_flat_lms_download(tmp_path):
    layout = tmp_path / "layout.zip"
    with zipfile.ZipFile(layout, "w") as zf:
        zf.writestr("submitted/ann/fx_square/fx_square.ipynb", "{}")
        zf.writestr("../evil.txt", "escape")
    root = submissions.intake(layout, "fx_square", tmp_path / "w1").root
    assert (root / "ann" / "fx_square" / "fx_square.ipynb").is_file()
    assert not (tmp_path / "evil.txt").exists()

    flat = tmp_path / "lms.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("fx_square_ann_attempt_2026-11-20-10-00-00_fx_square.ipynb", "{}")
        zf.writestr("fx_square_bo_attempt_2026-11-21-09-30-00_fx_square.ipynb", "{}")
    regexp = r"fx_square_(?P<student_id>\w+?)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
    root = submissions.intake(flat, "fx_square", tmp_path / "w2", named_regexp=regexp).root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.ipynb")) == [
        "ann/fx_square/fx_square.ipynb",
        "bo/fx_square/fx_square.ipynb",
    ]
    assert (root / "bo" / "fx_square" / "timestamp.txt").read_text() == "2026-11-21-09-30-00"
    with pytest.raises(submissions.IntakeError):
        submissions.intake(flat, "fx_square", tmp_path / "w3", named_regexp="")


# -- intake: only regular files travel ---------------------------------------------------
def _student(root, student, files=None):
    folder = root / student / "fx_square"
    folder.mkdir(parents=True)
    (folder / "fx_square.ipynb").write_text("{}")
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def test_folder_intake_copies_regular_files_only(tmp_path):
    secret = tmp_path / "solutions.ipynb"
    secret.write_text("SECRET SOLUTION")
    sub = tmp_path / "submitted"
    ann = _student(sub, "ann", {"data.csv": "1,2"})
    (ann / "peek.ipynb").symlink_to(secret)
    (ann / "dir_link").symlink_to(tmp_path, target_is_directory=True)
    os.link(secret, ann / "hard.txt")  # a hard link out of the tree
    os.mkfifo(ann / "pipe")
    bo = _student(sub, "bo")
    os.link(bo / "fx_square.ipynb", bo / "copy.txt")  # a hard link inside the tree is fine
    (sub / "cy").mkdir()
    (sub / "cy" / "fx_square").symlink_to(ann, target_is_directory=True)
    result = submissions.intake(sub, "fx_square", tmp_path / "work")
    staged = result.root
    assert staged != sub.resolve() and staged.is_relative_to((tmp_path / "work").resolve())
    ann_files = sorted(p.relative_to(staged / "ann").as_posix() for p in (staged / "ann").rglob("*"))
    assert ann_files == ["fx_square", "fx_square/data.csv", "fx_square/fx_square.ipynb"]
    assert all(not p.is_symlink() for p in staged.rglob("*"))
    assert "SECRET" not in "".join(p.read_text() for p in staged.rglob("*") if p.is_file())
    assert (staged / "bo" / "fx_square" / "copy.txt").read_text() == "{}"
    notes = " | ".join(result.notes["ann"])
    for what in (
        "peek.ipynb is a symbolic link",
        "dir_link is a symbolic link",
        "hard.txt is a hard link to a file outside",
        "pipe is a fifo",
    ):
        assert what in notes, notes
    subs = {s.student: s for s in submissions.list_submissions(result, "fx_square", ["fx_square"])}
    assert sorted(subs) == ["ann", "bo", "cy"]
    assert subs["ann"].invalid == "" and subs["ann"].unknown == []  # peek.ipynb never arrived
    assert "not followed" in subs["cy"].invalid and subs["cy"].folder is None


def test_a_device_in_a_submission_is_skipped(tmp_path):
    ann = _student(tmp_path / "submitted", "ann")
    try:
        os.mknod(ann / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot create a device node here (not root)")
    result = submissions.intake(tmp_path / "submitted", "fx_square", tmp_path / "work")
    assert not (result.root / "ann" / "fx_square" / "null").exists()
    assert any("null is a device" in n for n in result.notes["ann"])


def _zip_symlink(zf, name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def test_archive_intake_extracts_regular_files_only(tmp_path):
    layout = tmp_path / "layout.zip"
    with zipfile.ZipFile(layout, "w") as zf:
        zf.writestr("submitted/ann/fx_square/fx_square.ipynb", "{}")
        _zip_symlink(zf, "submitted/ann/fx_square/peek.ipynb", "/etc/passwd")
        fifo = zipfile.ZipInfo("submitted/ann/fx_square/pipe")
        fifo.create_system = 3
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(fifo, "")
    result = submissions.intake(layout, "fx_square", tmp_path / "w1")
    assert sorted(p.name for p in (result.root / "ann" / "fx_square").iterdir()) == ["fx_square.ipynb"]
    assert any("peek.ipynb is a symbolic link" in n for n in result.notes["ann"])
    assert any("pipe is a fifo" in n for n in result.notes["ann"])

    tar = tmp_path / "layout.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:

        def add(name, kind=tarfile.REGTYPE, data=b"{}", link=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("bo/fx_square/fx_square.ipynb")
        add("bo/fx_square/sym.ipynb", tarfile.SYMTYPE, link="/etc/passwd")
        add("bo/fx_square/hard.txt", tarfile.LNKTYPE, link="bo/fx_square/fx_square.ipynb")
        add("bo/fx_square/dev", tarfile.CHRTYPE)
        add("bo/fx_square/pipe", tarfile.FIFOTYPE)
        add("../../escape.txt")
    result = submissions.intake(tar, "fx_square", tmp_path / "w2")
    assert sorted(p.name for p in (result.root / "bo" / "fx_square").iterdir()) == ["fx_square.ipynb"]
    notes = " | ".join(result.notes["bo"])
    for what in ("sym.ipynb is a symbolic link", "hard.txt is a hard link", "dev is a device", "pipe is a fifo"):
        assert what in notes, notes
    assert not (tmp_path / "escape.txt").exists()


# -- every student folder gets a row -------------------------------------------------------
ODD_IDS = {
    "zoë-ünïcødé": "",  # stored and graded
    "ann lee": "",
    "-dash": "",
    "x" * 129: "at most 128",
    "evil\x1b[2Jname": "control characters",
    " padded": "white space",
    "star*": "glob patterns",
}


def test_every_student_folder_is_a_submission_and_bad_ids_say_why(tmp_path):
    for student in ODD_IDS:
        _student(tmp_path / "submitted", student)
    result = submissions.intake(tmp_path / "submitted", "fx_square", tmp_path / "work")
    subs = {s.student: s for s in submissions.list_submissions(result, "fx_square", ["fx_square"])}
    assert sorted(subs) == sorted(ODD_IDS)
    for student, why in ODD_IDS.items():
        if why:
            assert why in subs[student].invalid, (student, subs[student].invalid)
        else:
            assert subs[student].invalid == "" and subs[student].notebooks, student


def test_a_garbage_timestamp_is_dropped_with_a_note(tmp_path):
    _student(tmp_path / "submitted", "ann", {"timestamp.txt": "next tuesday-ish \x00\x01"})
    _student(tmp_path / "submitted", "bo", {"timestamp.txt": "2026-11-20 10:00:00.000000 UTC"})
    result = submissions.intake(tmp_path / "submitted", "fx_square", tmp_path / "work")
    assert not (result.root / "ann" / "fx_square" / "timestamp.txt").exists()
    assert "cannot be read as a date" in result.notes["ann"][0]
    assert (result.root / "bo" / "fx_square" / "timestamp.txt").is_file() and "bo" not in result.notes


def test_the_summary_escapes_names():
    rows = [
        {
            "student_id": "evil\x1b[2K\rtamegrad grade fx_square: 0 students",
            "assignment": "a",
            "status": "invalid",
            "score": 0.0,
            "max_score": 2,
            "detail": "bad\nline\u202e",
            "notes": "",
        }
    ]
    text = report.summary(
        rows,
        assignment="a",
        seconds=1,
        workers="w",
        sandbox="s",
        out=Path("/o"),
        skipped=0,
        intake_notes=["x\x1b[31m: a symbolic link"],
    )
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "\\x1b[2K\\x0dtamegrad" in text and "bad\\x0aline\\u202e" in text
    assert len(text.splitlines()) == 8, text  # no line a name could add: the 8 lines of the summary


def test_a_grades_csv_written_by_nbgrader_export_is_never_overwritten(tmp_path):
    export = "assignment,duedate,timestamp,student_id,last_name,first_name,email,raw_score\nfx,,,ann,,,,5\n"
    (tmp_path / "grades.csv").write_text(export)
    with pytest.raises(report.NotOurs):
        report.Table(tmp_path / "grades.csv")
    out = subprocess.run(
        [
            str(build.VENV_BIN / "tamegrad"),
            "grade",
            "fx_square",
            "--submissions",
            str(tmp_path),
            "--course",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "not written by tamegrad grade" in out.stderr and "--grades" in out.stderr
    assert (tmp_path / "grades.csv").read_text() == export
    table = report.Table(tmp_path / "ours.csv")  # its own file: read back and rewritten
    table.put({"student_id": "ann", "assignment": "fx", "score": 1.0, "max_score": 5, "status": "graded"}, [])
    table.save()
    assert report.Table(tmp_path / "ours.csv").get("ann", "fx")["score"] == "1"


def test_a_student_folder_without_the_assignment_is_a_missing_submission(tmp_path):
    _student(tmp_path / "submitted", "ann")
    (tmp_path / "submitted" / "bo" / "fx_Square").mkdir(parents=True)  # a misnamed folder
    (tmp_path / "submitted" / ".ipynb_checkpoints").mkdir()
    result = submissions.intake(tmp_path / "submitted", "fx_square", tmp_path / "work")
    subs = {s.student: s for s in submissions.list_submissions(result, "fx_square", ["fx_square"])}
    assert sorted(subs) == ["ann", "bo"]
    assert subs["bo"].folder is None and subs["bo"].invalid == "" and not subs["bo"].notebooks
    assert subs["bo"].notes == ["no folder fx_square/ (found: fx_Square)"]
