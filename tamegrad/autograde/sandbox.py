"""The sandbox one student's kernel runs in.

With bubblewrap (Debian's ``bubblewrap``) the kernel gets:

* a fresh mount namespace holding only the operating system (``/usr``, the dynamic
  linker's files, a few files of ``/etc``), the Python installation and the packages
  it imports, all read-only; its working directory, HOME and TMPDIR on a private
  ``/tmp``, a tmpfs of :attr:`Limits.disk` bytes thrown away afterwards; and one host
  directory it can write, the one of its sockets (watched: the grader stops a kernel
  that writes more than :attr:`Limits.kernel_dir` bytes there);
* no network (its own network namespace with only a loopback of its own);
* its own PID, IPC and UTS namespaces, a user namespace in which it is ``nobody``, no
  capabilities, and it dies with the grading process;
* resource limits (``prlimit``): address space (the memory limit), size of any file it
  writes, open files, CPU seconds.

Without bubblewrap (``--sandbox none``, or ``auto`` on a machine without user
namespaces) only the resource limits, a private working directory and a scrubbed
environment remain: the kernel can then read what the grading user can read, reach the
network and write where the grading user can write. :func:`describe` says which one ran.

The kernel talks to the grader over Unix sockets (ZeroMQ's ``ipc`` transport) in the
scratch directory, which is why it needs no network at all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Files of /etc that a Python kernel reads (dynamic linker, user names, time zone, fonts).
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/fonts",
    "/etc/alternatives",
    "/etc/mime.types",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Sizes in bytes, times in seconds."""

    timeout: int = 30  # wall clock per cell, and per call of a student function
    memory: int = 2 * 1024**3  # address space of each kernel process
    file_size: int = 256 * 1024**2  # largest file a kernel may write
    open_files: int = 256
    total_seconds: int = 0  # wall clock (and CPU) for the whole submission; 0: 10 x timeout
    disk: int = 256 * 1024**2  # the tmpfs that holds the working directory, HOME and /tmp
    kernel_dir: int = 64 * 1024**2  # what the kernel may write where its sockets live (on the host)
    output_chars: int = 2_000_000  # characters of output kept per cell (the rest is dropped)
    notebook_chars: int = 20_000_000  # characters of output kept in one notebook
    error_chars: int = 20_000  # characters of an error's name, value and traceback
    message_bytes: int = 16 * 1024**2  # largest kernel message the grader reads (bigger: refused unread)

    @property
    def total(self) -> int:
        return self.total_seconds or 10 * self.timeout

    @property
    def message_chars(self) -> int:
        """Characters the kernel keeps in one message (:mod:`.launch` cuts longer ones): an
        eighth of :attr:`message_bytes`, since one character is at most 6 bytes of JSON."""
        return self.message_bytes // 8


def parse_size(text: str | int) -> int:
    """``"2G"``, ``"1500M"``, ``"512MiB"``, ``"1e9"`` or a number of bytes."""
    if isinstance(text, int):
        return text
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(float(s))


@lru_cache(maxsize=1)
def python_layout(python: str = sys.executable) -> tuple[str, ...]:
    """Directories a fresh kernel interpreter imports from, asked of that interpreter.

    Asked with ``-I`` from ``/`` so that neither the current directory nor PYTHONPATH
    (which may point into the course repository) sneak in. Packages installed in
    editable mode live outside site-packages: their directories are added by name.
    """
    code = (
        "import sys, json, importlib.util\n"
        "paths = [p for p in sys.path if p]\n"
        "for name in ('tamegrad', 'ipykernel', 'numpy'):\n"
        "    spec = importlib.util.find_spec(name)\n"
        "    if spec and spec.submodule_search_locations:\n"
        "        paths += list(spec.submodule_search_locations)\n"
        "paths += [sys.prefix, sys.base_prefix, sys.exec_prefix]\n"
        "print(json.dumps(paths))\n"
    )
    out = subprocess.run([python, "-I", "-c", code], cwd="/", capture_output=True, text=True, check=True)
    paths = []
    for p in json.loads(out.stdout):
        p = os.path.realpath(p) if os.path.exists(p) else None
        if p and p != "/" and p not in paths:
            paths.append(p)
    # drop directories already inside another one
    paths.sort(key=len)
    kept: list[str] = []
    for p in paths:
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    # the interpreter itself may be a symlink out of the virtual environment
    real_exe = os.path.dirname(os.path.realpath(python))
    if not any(real_exe.startswith(k + "/") or real_exe == k for k in kept):
        kept.append(real_exe)
    return tuple(kept)


def bubblewrap_path() -> str | None:
    return shutil.which("bwrap")


def bubblewrap_argv(
    scratch: Path, python: str = sys.executable, disk: int = 256 * 1024**2, hide: tuple[str, ...] = ()
) -> list[str]:
    """The ``bwrap`` prefix for a kernel of ``scratch`` (see :func:`make_scratch`).

    Inside: ``/tmp`` is a private tmpfs of ``disk`` bytes (the working directory
    ``/tmp/work``, HOME and TMPDIR are in it); ``scratch/files`` is read-only at
    ``/submission`` (the launcher copies it into ``/tmp/work``); ``scratch/kernel`` (the
    connection file and the Unix sockets to the grader) is the only host directory it can
    write. Each directory of ``hide`` (e.g. torch's package) is replaced by an empty one.
    """
    argv = [bubblewrap_path() or "bwrap", "--unshare-all", "--die-with-parent"]
    # become nobody inside (works both as root and as an ordinary user with user namespaces)
    argv += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    # the private /tmp first: the binds below are mounted over it, so a virtual
    # environment or scratch directory under the host's /tmp stays visible
    argv += ["--size", str(disk), "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in ETC_FILES:
        if os.path.exists(f):
            argv += ["--ro-bind", f, f]
    for p in python_layout(python):
        argv += ["--ro-bind", p, p]
    # the tamegrad package this grader runs (the launcher puts its parent first on sys.path);
    # only the package: in a checkout of the course, its siblings hold the solutions
    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not any(own == p or own.startswith(p + "/") for p in python_layout(python)):
        argv += ["--ro-bind", own, own]
    # the virtual environment's own path, if the interpreter is reached through a symlink
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if not any(venv == p or venv.startswith(p + "/") for p in python_layout(python)):
        argv += ["--ro-bind", venv, venv]
    if hide:
        deny = scratch / "deny_init.py"
        deny.write_text('raise ImportError("this package is not available in this assignment\'s sandbox")\n')
        for d in hide:
            argv += ["--size", "65536", "--tmpfs", d, "--ro-bind", str(deny), d + "/__init__.py", "--remount-ro", d]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--ro-bind", str(scratch / "files"), "/submission"]
    kernel = str(scratch / "kernel")
    argv += ["--bind", kernel, kernel]
    # the sandbox's own root (where the mount points were made) becomes read-only too
    argv += ["--remount-ro", "/"]
    argv += ["--chdir", "/tmp", "--"]
    return argv


class NotIsolated(RuntimeError):
    """A kernel that should run inside bubblewrap does not: grading must stop."""


def _namespaces(pid: int | str) -> tuple[int, int]:
    """The (mount, PID) namespaces of process ``pid`` (``"self"``: this one), as inode numbers."""
    return tuple(os.stat(f"/proc/{pid}/ns/{ns}").st_ino for ns in ("mnt", "pid"))


def verify_isolated(pid: int) -> None:
    """Raise :class:`NotIsolated` unless process ``pid`` (the one the grader started: the
    sandbox's outer ``bwrap``) has children and every one of them lives in a mount and a PID
    namespace other than the grader's: the kernel runs inside its sandbox."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
        if not children:
            raise NotIsolated(f"the kernel's process {pid} has no child: the kernel is not inside bubblewrap")
        ours = _namespaces("self")
        for child in children:
            theirs = _namespaces(child.pid)
            if theirs[0] == ours[0] or theirs[1] == ours[1]:
                raise NotIsolated(
                    f"the kernel's process {child.pid} ({' '.join(child.cmdline()[:3])}) shares the grader's "
                    "mount or PID namespace: it is not inside bubblewrap"
                )
    except (psutil.Error, OSError) as exc:
        raise NotIsolated(f"the kernel's process {pid} could not be checked: {exc}") from exc


def hidden_packages(names) -> tuple[str, ...]:
    """The package directories of ``names`` (e.g. ``("torch",)``), to hide from a kernel."""
    out = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            out += [os.path.realpath(p) for p in spec.submodule_search_locations]
    return tuple(out)


def prlimit_argv(limits: Limits, cpu_seconds: int) -> list[str]:
    exe = shutil.which("prlimit")
    if exe is None:
        # the same limits through a Python shim that calls setrlimit and then execs
        return [
            sys.executable,
            "-I",
            "-m",
            "tamegrad.autograde.sandbox",
            "--limits",
            str(limits.memory),
            str(limits.file_size),
            str(limits.open_files),
            str(cpu_seconds),
            "--",
        ]
    return [
        exe,
        f"--as={limits.memory}",
        f"--fsize={limits.file_size}",
        f"--nofile={limits.open_files}",
        f"--cpu={cpu_seconds}",
        "--core=0",
        "--",
    ]


@lru_cache(maxsize=4)
def bubblewrap_works(python: str = sys.executable) -> tuple[bool, str]:
    """Whether bubblewrap can start Python here (user namespaces may be disabled)."""
    if bubblewrap_path() is None:
        return False, "bwrap is not installed (Debian package bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="tamegrad-probe-") as tmp:
        scratch = Path(tmp)
        make_scratch(scratch)
        cmd = bubblewrap_argv(scratch, python) + [python, "-I", "-c", "import sys; print('sandbox-ok')"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap failed to start: {exc}"
    if out.returncode == 0 and "sandbox-ok" in out.stdout:
        return True, "bubblewrap"
    return False, f"bwrap cannot create namespaces here: {out.stderr.strip()[:300]}"


def choose(mode: str) -> tuple[str, str]:
    """Resolve ``--sandbox auto|bwrap|none`` to (``"bwrap"`` or ``"none"``, a reason)."""
    if mode == "none":
        return "none", "sandbox disabled (--sandbox none)"
    ok, why = bubblewrap_works()
    if ok:
        return "bwrap", why
    if mode == "bwrap":
        raise RuntimeError(f"--sandbox bwrap asked for, but {why}")
    return "none", why


def describe(kind: str) -> str:
    if kind == "bwrap":
        return (
            "bubblewrap: no network, read-only system, writes only to a size-limited tmpfs, resource limits; "
            "student code and tests in separate kernels"
        )
    return "NONE: resource limits and a private working directory only (no file-system or network isolation)"


def kernel_env(scratch: Path, kind: str) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's leaks into the kernel."""
    keep = ("LANG", "LC_ALL", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    tmp = tmp_dir(scratch, kind)
    env.update(
        {
            "PATH": os.path.dirname(os.path.abspath(sys.executable)) + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": tmp + "/home",
            "TMPDIR": tmp,
            "IPYTHONDIR": tmp + "/ipython",
            "JUPYTER_RUNTIME_DIR": str(scratch / "kernel"),
            "JUPYTER_CONFIG_DIR": tmp + "/jupyter",
            "JUPYTER_DATA_DIR": tmp + "/jupyter",
            "MPLCONFIGDIR": tmp + "/matplotlib",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "NBGRADER_EXECUTION": "autograde",
            # one thread per kernel: the workers already use every core
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
    )
    return env


def tmp_dir(scratch: Path, kind: str) -> str:
    """The kernel's writable folder (HOME, TMPDIR, the working directory), as the kernel sees it."""
    return "/tmp" if kind == "bwrap" else str(scratch / "tmp")


def work_dir(scratch: Path, kind: str) -> str:
    """The kernel's working directory, as the kernel sees it."""
    return tmp_dir(scratch, kind) + "/work"


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) under ``folder``; a path that would leave it is skipped."""
    root = str(folder.resolve()) + os.sep
    for rel, data in files.items():
        target = (folder / rel).resolve()
        if not str(target).startswith(root):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def make_scratch(root: Path) -> Path:
    """``files`` (copied in by the launcher), ``kernel`` (sockets), ``tmp`` (without bwrap)."""
    for sub in ("files", "kernel", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def _limits_shim(argv: list[str]) -> int:
    """``python -m tamegrad.autograde.sandbox --limits AS FSIZE NOFILE CPU -- cmd...``."""
    memory, fsize, nofile, cpu = (int(x) for x in argv[1:5])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    cmd = argv[6:]
    os.execv(cmd[0], cmd)
    return 127


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--limits":
    sys.exit(_limits_shim(sys.argv[1:]))
