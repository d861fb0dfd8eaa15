"""Submission intake: a folder in nbgrader's layout, a ``.zip`` or tar archive of one, or an
LMS download, copied into a private staging folder that holds regular files only.

Accepted forms of ``--submissions PATH``:

* a folder ``PATH/<student>/<assignment>/*`` (nbgrader's ``submitted/``), or a course
  folder holding ``PATH/submitted/<student>/<assignment>/``;
* a ``.zip`` or a tar archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``)
  whose members are laid out that way (at its root, under ``submitted/``, or under any
  single top folder);
* a ``.zip`` as a learning-management system exports it, flat, one file per student and
  notebook. Its file names are read with nbgrader's ``zip_collect`` conventions: the
  ``FileNameCollectorPlugin.named_regexp`` of the course's ``nbgrader_config.py`` (or
  ``--named-regexp``), which must have ``student_id`` and ``file_id`` groups and may have
  ``timestamp``; a timestamp becomes nbgrader's ``timestamp.txt`` (late penalties).

**Only regular files travel.** Whatever the form, grading reads a copy in the run's
private staging folder, never the submitted tree itself: a symbolic link, a hard link
to a file outside the submitted tree (a regular file whose link count is larger than
the number of its names inside the tree), a device, a fifo or a socket is skipped and
noted, and nothing is ever opened through a link (``O_NOFOLLOW``; the inode opened must
be the one listed). Archive members are extracted with no absolute paths, no ``..``,
no links and no special files, and at most ``MAX_TOTAL`` bytes in all (``MAX_FILE`` per
file).

**Every student folder is a submission.** A folder without ``<assignment>/`` is one
with no notebook (the grader's status ``missing``, with a note of what the folder holds).
Ids nbgrader cannot store or find again
(:func:`id_problem`) become a :class:`Submission` with ``invalid`` set to the reason, so
that the grader writes a row with status ``invalid`` for them instead of dropping them.
A ``timestamp.txt`` that nbgrader cannot parse is left out of the staged copy with a note:
the submission is graded as if it had no timestamp (no late penalty).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import stat
import tarfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_TOTAL = 4 * 1024**3
MAX_FILE = 512 * 1024**2
MAX_ID = 128                          # nbgrader's Student.id is String(128)
GLOB_CHARS = set("*?[]")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# kept for callers that want nbgrader's most conservative ids (ASCII, no spaces)
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+\-]{0,127}$")


class IntakeError(Exception):
    """The submissions cannot be read at all (grading cannot start)."""


@dataclass
class Submission:
    student: str
    folder: Path | None               # staged submitted/<student>/<assignment>, None if absent
    notebooks: dict[str, Path] = field(default_factory=dict)   # name -> file
    unknown: list[str] = field(default_factory=list)           # other .ipynb files found
    notes: list[str] = field(default_factory=list)             # for the instructor (grades.csv notes)
    invalid: str = ""                 # why this id cannot be graded ("" when it can)


@dataclass
class Intake:
    """The staged ``submitted`` folder to grade from, and what intake left out."""
    root: Path
    notes: dict[str, list[str]] = field(default_factory=dict)  # student folder name -> notes
    general: list[str] = field(default_factory=list)           # notes that belong to no student


def id_problem(student: str) -> str:
    """Why nbgrader cannot store or find ``student`` as a student id ("" when it can).

    nbgrader stores ids of at most 128 characters (``String(128)``; PostgreSQL enforces
    it) as UTF-8 text, and its own commands find submissions by glob patterns built from
    the id. So an id is refused when it is longer than 128 characters, is not valid
    UTF-8 (a folder name in another encoding), contains a control or format character
    (ANSI escapes, bidirectional overrides, line breaks), starts or ends with white space,
    or contains one of the glob characters ``* ? [ ]``. Unicode letters, inner spaces and
    a leading dash are stored and graded like any other id.
    """
    if not student:
        return "the student id is empty"
    try:
        student.encode("utf-8")
    except UnicodeEncodeError:
        return "the folder name is not valid UTF-8, so nbgrader cannot store it as a student id"
    if len(student) > MAX_ID:
        return f"the student id has {len(student)} characters; nbgrader's gradebook stores at most {MAX_ID}"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in student):
        return "the student id contains control characters (terminal escapes, line breaks, direction marks)"
    if student != student.strip():
        return "the student id starts or ends with white space"
    bad = sorted(GLOB_CHARS & set(student))
    if bad:
        return ("the student id contains " + " ".join(bad) + ", which nbgrader's own commands "
                "(generate_feedback, export) read as glob patterns")
    return ""


# -- archives ----------------------------------------------------------------------------
def _member_parts(name: str) -> list[str] | None:
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts or parts[0] == "__MACOSX":
        return None
    return parts


class _Budget:
    def __init__(self, archive: Path):
        self.archive, self.total = archive, 0

    def take(self, size: int) -> None:
        self.total += size
        if self.total > MAX_TOTAL:
            raise IntakeError(f"{self.archive} unpacks to more than {MAX_TOTAL} bytes")


def _copy_limited(src, out, name: str) -> None:
    copied = 0
    while chunk := src.read(1024 * 1024):
        copied += len(chunk)
        if copied > MAX_FILE:
            raise IntakeError(f"{name} unpacks to more than {MAX_FILE} bytes")
        out.write(chunk)


def _extract_zip(archive: Path, dest: Path) -> list[tuple[str, str]]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(f"{archive} is not a readable zip file: {exc}") from exc
    skipped, budget = [], _Budget(archive)
    with zf:
        for info in zf.infolist():
            parts = _member_parts(info.filename)
            if parts is None:
                continue
            mode = info.external_attr >> 16
            if info.is_dir():
                dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # no type bits: a plain file
                skipped.append(("/".join(parts), _kind(mode) + " (not extracted)"))
                continue
            if info.file_size > MAX_FILE:
                skipped.append(("/".join(parts), f"larger than {MAX_FILE} bytes (not extracted)"))
                continue
            budget.take(info.file_size)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                _copy_limited(src, out, info.filename)
    return skipped


def _extract_tar(archive: Path, dest: Path) -> list[tuple[str, str]]:
    skipped, budget = [], _Budget(archive)
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed by the with below; open errors reported here
    except (tarfile.TarError, OSError) as exc:
        raise IntakeError(f"{archive} is not a readable tar archive: {exc}") from exc
    with tf:
        for member in tf:
            parts = _member_parts(member.name)
            if parts is None:
                continue
            if member.isdir():
                dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isreg():
                what = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                        else "a device" if member.ischr() or member.isblk()
                        else "a fifo" if member.isfifo() else "not a regular file")
                skipped.append(("/".join(parts), what + " (not extracted)"))
                continue
            if member.size > MAX_FILE:
                skipped.append(("/".join(parts), f"larger than {MAX_FILE} bytes (not extracted)"))
                continue
            budget.take(member.size)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            with src, open(target, "wb") as out:
                _copy_limited(src, out, member.name)
    return skipped


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".zip") or name.endswith(TAR_SUFFIXES)


# -- the layout --------------------------------------------------------------------------
def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _looks_submitted(folder: Path, assignment: str) -> bool:
    return folder.is_dir() and any(_real_dir(d) and _real_dir(d / assignment) for d in folder.iterdir())


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


def collect_flat(extracted: Path, dest: Path, assignment: str, named_regexp: str,
                 general: list[str] | None = None) -> int:
    """nbgrader's zip_collect, for a flat LMS download: returns how many files it placed.

    A student id that cannot be a folder name (empty, ``.``/``..``, a path separator) is
    noted in ``general``; any other id gets its folder (and later a row, ``invalid`` when
    :func:`id_problem` refuses it).
    """
    from nbgrader.plugins import FileNameCollectorPlugin

    if not named_regexp:
        raise IntakeError(
            "the archive is not in nbgrader's <student>/<assignment>/ layout, and no "
            "FileNameCollectorPlugin.named_regexp is configured (nbgrader_config.py or --named-regexp) "
            "to read student ids from its file names")
    general = general if general is not None else []
    plugin = FileNameCollectorPlugin(named_regexp=named_regexp)
    placed = 0
    for path in sorted(p for p in extracted.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = str(path.relative_to(extracted))
        found = plugin.collect(rel)
        if not found or not found.get("student_id") or not found.get("file_id"):
            continue
        student = found["student_id"]
        if student in (".", "..") or "/" in student or "\\" in student or "\0" in student:
            general.append(f"{rel}: the student id {student!r} cannot be a folder name; file skipped")
            continue
        file_id = found["file_id"]
        if not os.path.splitext(file_id)[1]:
            file_id += path.suffix
        parts = [p for p in file_id.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        if not parts:
            continue
        target = dest.joinpath(student, assignment, *parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            if found.get("timestamp"):
                (dest / student / assignment / "timestamp.txt").write_text(found["timestamp"])
        except OSError as exc:
            general.append(f"{rel}: cannot be placed ({exc.strerror}); file skipped")
            continue
        placed += 1
    return placed


# -- staging: regular files only ----------------------------------------------------------
def _scan(root: Path) -> tuple[list[tuple[Path, os.stat_result]], list[tuple[Path, str]], list[Path]]:
    """Walk ``root`` without following links: (regular files, skipped entries, folders)."""
    files, skipped, dirs = [], [], []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((folder, f"cannot be listed ({exc.strerror})"))
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append((path, f"cannot be read ({exc.strerror})"))
                continue
            if stat.S_ISDIR(st.st_mode):
                dirs.append(path)
                stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                files.append((path, st))
            else:
                skipped.append((path, _kind(st.st_mode)))
    return files, skipped, dirs


def _copy_regular(src: Path, st: os.stat_result, dest: Path) -> str:
    """Copy one regular file without following links; return why not ("" when copied)."""
    if st.st_size > MAX_FILE:
        return f"larger than {MAX_FILE} bytes"
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return f"cannot be opened ({exc.strerror})"
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fh.fileno())
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return "changed while it was read"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            _copy_limited(fh, out, str(src))
    return ""


def _timestamp_problem(path: Path) -> str:
    """Why nbgrader could not read this ``timestamp.txt`` ("" when it can)."""
    from nbgrader.utils import parse_utc

    raw = path.read_bytes()[:4096]
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "is not text"
    if not text:
        return ""  # nbgrader reads an empty timestamp as none, with a warning
    try:
        parse_utc(text)
    except Exception:  # noqa: BLE001 - dateutil raises ValueError, OverflowError, ParserError...
        shown = text[:40].encode("unicode_escape").decode("ascii")
        return f"cannot be read as a date ({shown!r})"
    return ""


def stage(src_root: Path, dest_root: Path, assignment: str, intake_: Intake) -> None:
    """Copy the regular files of each ``src_root/<student>/<assignment>/`` into ``dest_root``.

    Nothing is followed: a student folder or ``<assignment>/`` folder that is a link is
    noted (and the student still gets a row); below it, :func:`_scan` lists entries with
    ``lstat``. Notes go to ``intake_.notes[<student>]``.
    """
    dest_root.mkdir(parents=True, exist_ok=True)
    found: dict[str, tuple[list, list]] = {}
    for entry in sorted(os.scandir(src_root), key=lambda e: e.name):
        student = entry.name
        if entry.name == "__MACOSX":
            continue
        if not entry.is_dir(follow_symlinks=False):
            if entry.is_symlink() and os.path.isdir(os.path.join(entry.path, assignment)):
                intake_.notes.setdefault(student, []).append("the student folder is a symbolic link, not followed")
                (dest_root / student).mkdir(parents=True, exist_ok=True)
            continue
        if student.startswith("."):
            intake_.general.append(f"{student}/: a hidden folder, not a student; skipped")
            continue
        folder = Path(entry.path) / assignment
        try:
            mode = os.lstat(folder).st_mode
        except OSError:  # a student without this assignment: a row "missing" that says what is there
            found_names = sorted(e.name for e in os.scandir(entry.path))[:5]
            intake_.notes.setdefault(student, []).append(
                f"no folder {assignment}/ (found: {', '.join(found_names) or 'nothing'})")
            (dest_root / student).mkdir(parents=True, exist_ok=True)
            continue
        if not stat.S_ISDIR(mode):
            intake_.notes.setdefault(student, []).append(f"{assignment}/ is {_kind(mode)}, not followed")
            (dest_root / student).mkdir(parents=True, exist_ok=True)
            continue
        files, skipped, dirs = _scan(folder)
        found[student] = (files, skipped)
        target = dest_root / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        for d in dirs:
            (target / d.relative_to(folder)).mkdir(parents=True, exist_ok=True)
    # a regular file has a hard link outside the tree when it has more names than the tree holds
    names: dict[tuple[int, int], int] = {}
    for files, _ in found.values():
        for _, st in files:
            names[(st.st_dev, st.st_ino)] = names.get((st.st_dev, st.st_ino), 0) + 1
    for student, (files, skipped) in found.items():
        folder = src_root / student / assignment
        notes = intake_.notes.setdefault(student, [])
        for path, why in skipped:
            notes.append(f"{path.relative_to(folder).as_posix()} is {why}; skipped")
        for path, st in files:
            rel = path.relative_to(folder)
            if st.st_nlink > names[(st.st_dev, st.st_ino)]:
                notes.append(f"{rel.as_posix()} is a hard link to a file outside the submissions; skipped")
                continue
            why = _copy_regular(path, st, dest_root / student / assignment / rel)
            if why:
                notes.append(f"{rel.as_posix()}: {why}; skipped")
        ts = dest_root / student / assignment / "timestamp.txt"
        if ts.is_file():
            why = _timestamp_problem(ts)
            if why:
                ts.unlink()
                notes.append(f"timestamp.txt {why}: graded with no submission time (no late penalty)")
        if not notes:
            del intake_.notes[student]


def intake(path: Path, assignment: str, workdir: Path, named_regexp: str = "") -> Intake:
    """Stage the submissions into ``workdir/submitted`` (regular files only) and return it."""
    path = Path(path).absolute()
    if not path.exists() and not path.is_symlink():
        raise IntakeError(f"{path} does not exist")
    workdir = Path(workdir)
    result = Intake(root=(workdir / "submitted"))
    if result.root.exists():
        shutil.rmtree(result.root)
    if path.is_dir():
        root = find_submitted_root(path, assignment)
        if root is None:
            raise IntakeError(f"{path} holds no <student>/{assignment}/ folder (nbgrader's submitted/ layout)")
        stage(root, result.root, assignment, result)
        result.root = result.root.resolve()
        return result
    if not is_archive(path):
        raise IntakeError(f"{path} is neither a folder nor a .zip or tar archive")
    extracted = workdir / "extracted"
    if extracted.exists():
        shutil.rmtree(extracted)
    extracted.mkdir(parents=True)
    skipped = (_extract_zip if path.name.lower().endswith(".zip") else _extract_tar)(path, extracted)
    root = find_submitted_root(extracted, assignment)
    if root is not None:
        for member, why in skipped:
            target = (extracted / member)
            try:
                rel = target.relative_to(root).parts
            except ValueError:
                rel = ()
            if len(rel) >= 3 and rel[1] == assignment:
                result.notes.setdefault(rel[0], []).append(f"{'/'.join(rel[2:])} is {why}; skipped")
            else:
                result.general.append(f"{member}: {why}")
        stage(root, result.root, assignment, result)
    else:
        flat = workdir / "collected"
        if flat.exists():
            shutil.rmtree(flat)
        flat.mkdir()
        result.general += [f"{member}: {why}" for member, why in skipped]
        if collect_flat(extracted, flat, assignment, named_regexp, result.general) == 0:
            raise IntakeError(f"no file in {path} matched the regular expression {named_regexp!r}")
        stage(flat, result.root, assignment, result)
    result.root = result.root.resolve()
    return result


def list_submissions(staged: Intake | Path, assignment: str, notebook_names: list[str]) -> list[Submission]:
    """One :class:`Submission` per student folder, those with an id nbgrader cannot store
    included (with ``invalid`` set)."""
    intake_ = staged if isinstance(staged, Intake) else Intake(root=Path(staged))
    root = intake_.root.resolve()
    subs = []
    for student_dir in sorted(d for d in root.iterdir() if _real_dir(d)):
        student = student_dir.name
        notes = list(intake_.notes.get(student, []))
        folder = student_dir / assignment
        if not _real_dir(folder):
            # no folder for this assignment (status missing), or one the intake did not follow (invalid)
            followed = not any("not followed" in n for n in notes)
            subs.append(Submission(student=student, folder=None, notes=notes,
                                   invalid=id_problem(student) or ("" if followed else "; ".join(notes))))
            continue
        sub = Submission(student=student, folder=folder, notes=notes, invalid=id_problem(student))
        for name in notebook_names:
            nb = folder / f"{name}.ipynb"
            if nb.is_file():
                sub.notebooks[name] = nb
        sub.unknown = sorted(p.name for p in folder.glob("*.ipynb") if p.stem not in notebook_names)
        subs.append(sub)
    return subs


def supporting_files(folder: Path, ignore: list[str], max_bytes: int = 64 * 1024**2) -> dict[str, bytes]:
    """The non-notebook files of an autograded folder, to ship to a worker as data."""
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
