"""Submission intake: a folder in nbgrader's layout, or a ``.zip`` of one, or an LMS download.

Accepted forms of ``--submissions PATH``:

* a folder ``PATH/<student>/<assignment>/*.ipynb`` (nbgrader's ``submitted/``), or a
  course folder holding ``PATH/submitted/<student>/<assignment>/``;
* a ``.zip`` whose members are laid out that way (at its root, under ``submitted/``, or
  under any single top folder);
* a ``.zip`` as a learning-management system exports it, flat, one file per student and
  notebook. Its file names are read with nbgrader's ``zip_collect`` conventions: the
  ``FileNameCollectorPlugin.named_regexp`` of the course's ``nbgrader_config.py`` (or
  ``--named-regexp``), which must have ``student_id`` and ``file_id`` groups and may have
  ``timestamp``; a timestamp becomes nbgrader's ``timestamp.txt`` (late penalties).

Zip members are extracted with no absolute paths, no ``..``, no links, and at most
``MAX_UNZIPPED`` bytes in all.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_UNZIPPED = 4 * 1024**3
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+\-]{0,127}$")


class IntakeError(Exception):
    """The submissions cannot be read at all (grading cannot start)."""


@dataclass
class Submission:
    student: str
    folder: Path | None               # submitted/<student>/<assignment>, None if absent
    notebooks: dict[str, Path] = field(default_factory=dict)   # name -> file
    unknown: list[str] = field(default_factory=list)           # other .ipynb files found


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(f"{archive} is not a readable zip file: {exc}") from exc
    total = 0
    with zf:
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if not parts or name.startswith("/") or ".." in parts or parts[0] == "__MACOSX":
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                continue
            total += info.file_size
            if total > MAX_UNZIPPED:
                raise IntakeError(f"{archive} unpacks to more than {MAX_UNZIPPED} bytes")
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _looks_submitted(folder: Path, assignment: str) -> bool:
    return folder.is_dir() and any((d / assignment).is_dir() for d in folder.iterdir() if d.is_dir())


def find_submitted_root(folder: Path, assignment: str) -> Path | None:
    """The folder that holds ``<student>/<assignment>/`` under ``folder``, if any."""
    candidates = [folder, folder / "submitted"]
    subdirs = [d for d in folder.iterdir() if d.is_dir() and d.name != "__MACOSX"] if folder.is_dir() else []
    if len(subdirs) == 1:
        candidates += [subdirs[0], subdirs[0] / "submitted"]
    for c in candidates:
        if _looks_submitted(c, assignment):
            return c
    return None


def collect_flat(extracted: Path, dest: Path, assignment: str, named_regexp: str) -> int:
    """nbgrader's zip_collect, for a flat LMS download: returns how many files it placed."""
    from nbgrader.plugins import FileNameCollectorPlugin

    if not named_regexp:
        raise IntakeError(
            "the zip file is not in nbgrader's <student>/<assignment>/ layout, and no "
            "FileNameCollectorPlugin.named_regexp is configured (nbgrader_config.py or --named-regexp) "
            "to read student ids from its file names")
    plugin = FileNameCollectorPlugin(named_regexp=named_regexp)
    placed = 0
    for path in sorted(p for p in extracted.rglob("*") if p.is_file()):
        found = plugin.collect(str(path.relative_to(extracted)))
        if not found or not found.get("student_id") or not found.get("file_id"):
            continue
        student = found["student_id"]
        if not SAFE_ID.match(student):
            continue
        file_id = found["file_id"]
        if not os.path.splitext(file_id)[1]:
            file_id += path.suffix
        parts = [p for p in file_id.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        if not parts:
            continue
        target = dest.joinpath(student, assignment, *parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if found.get("timestamp"):
            (dest / student / assignment / "timestamp.txt").write_text(found["timestamp"])
        placed += 1
    return placed


def intake(path: Path, assignment: str, workdir: Path, named_regexp: str = "") -> Path:
    """Return the ``submitted`` folder to grade from (extracting a zip into ``workdir``)."""
    path = Path(path).resolve()
    if not path.exists():
        raise IntakeError(f"{path} does not exist")
    if path.is_dir():
        root = find_submitted_root(path, assignment)
        if root is None:
            raise IntakeError(f"{path} holds no <student>/{assignment}/ folder (nbgrader's submitted/ layout)")
        return root
    if path.suffix.lower() != ".zip":
        raise IntakeError(f"{path} is neither a folder nor a .zip file")
    extracted = workdir / "extracted"
    if extracted.exists():
        shutil.rmtree(extracted)
    extracted.mkdir(parents=True)
    _safe_extract(path, extracted)
    root = find_submitted_root(extracted, assignment)
    if root is not None:
        return root
    dest = workdir / "submitted"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    if collect_flat(extracted, dest, assignment, named_regexp) == 0:
        raise IntakeError(f"no file in {path} matched the regular expression {named_regexp!r}")
    return dest


def list_submissions(root: Path, assignment: str, notebook_names: list[str]) -> list[Submission]:
    """One :class:`Submission` per student folder holding ``<assignment>/``."""
    subs = []
    root = root.resolve()
    for student_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        if not SAFE_ID.match(student_dir.name):
            continue
        folder = student_dir / assignment
        if not folder.is_dir():
            continue
        sub = Submission(student=student_dir.name, folder=folder)
        for name in notebook_names:
            nb = folder / f"{name}.ipynb"
            if nb.is_file():
                sub.notebooks[name] = nb
        sub.unknown = sorted(p.name for p in folder.glob("*.ipynb") if p.stem not in notebook_names)
        subs.append(sub)
    return subs


def supporting_files(folder: Path, ignore: list[str], max_bytes: int = 64 * 1024**2) -> dict[str, bytes]:
    """The non-notebook files of an autograded folder, to ship to a worker as data."""
    import fnmatch

    files, total = {}, 0
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.is_symlink() or p.suffix == ".ipynb":
            continue
        rel = p.relative_to(folder).as_posix()
        if any(fnmatch.fnmatch(part, pat) for part in rel.split("/") for pat in ignore):
            continue
        size = p.stat().st_size
        if total + size > max_bytes:
            break
        total += size
        files[rel] = p.read_bytes()
    return files
