"""Fork servers for the tests' kernels: one per worker process and assignment.

Starting a kernel and importing what the setup cells import (numpy, torch, tamegrad) costs
about 1.3 CPU-seconds; every submission paid it twice, once per kernel. The tests' kernel
runs only the instructor's cells and data that came from the student's kernel by value
(:mod:`.wire`), so it is forked instead from a server (:mod:`.fork_launch`) that has done
the imports once, inside a sandbox like the one a directly started tests' kernel gets
(:func:`.sandbox.bubblewrap_argv`, the course's files read-only at ``/submission``, the
same limits, each forked kernel counting its own CPU seconds from zero). Each fork is a
kernel that has run no cell, and it serves one submission: the server forks the next only
after it has exited, and kills what it left running and empties the sandbox's ``/tmp``
in between (:func:`.fork_launch.serve`).

The student's kernel is never forked: each student gets a sandbox of their own.

A server lives as long as its worker process (bubblewrap's ``--die-with-parent``, and
:func:`close_all` at exit); one that died is started again on the next request.
"""

from __future__ import annotations

import ast
import atexit
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

from . import fork_launch, launch, sandbox

# what every tests' kernel imports: the kernel, and the proxies the grader binds
ALWAYS = ("ipykernel.kernelapp", "tamegrad.autograde.proxy")


def imported_modules(sources) -> tuple[str, ...]:
    """The modules the ``import`` statements of ``sources`` name, in order, once each."""
    found: list[str] = list(ALWAYS)
    for text in sources:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found += [n for n in names if n not in found]
    return tuple(found)


class ForkServer:
    """One fork server: its sandbox, its socket, the slots of the kernels it forks."""

    def __init__(self, files: dict[str, bytes], limits: sandbox.Limits, kind: str, modules: tuple[str, ...]):
        self.root = sandbox.make_scratch(Path(tempfile.mkdtemp(prefix="tamegrad-forkserver-")))
        sandbox.write_files(self.root / "files", files)
        self.kind = kind
        self.socket = str(self.root / "kernel" / "server.sock")
        self._slots = count(1)
        prefix = sandbox.prlimit_argv(limits, limits.total + 30)
        if kind == "bwrap":
            prefix += sandbox.bubblewrap_argv(self.root, disk=limits.disk)
            src, isolated = "/submission", "isolated"
        else:
            src, isolated = str(self.root / "files"), "shared"
        tmp = sandbox.tmp_dir(self.root, kind)
        chars = str(limits.message_chars)
        argv = [sys.executable, "-E", "-s", fork_launch.__file__, "--serve", self.socket, src, tmp, chars, isolated]
        self.log_path = self.root / "kernel" / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*prefix, *argv, "--", *modules],
                env=sandbox.kernel_env(self.root, kind),
                cwd=str(self.root),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self._wait_until_listening(timeout=120)
        if kind == "bwrap":
            try:
                sandbox.verify_isolated(self.process.pid)
            except sandbox.NotIsolated:
                self.close()
                raise

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not Path(self.socket).exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_bytes()[-2000:].decode(errors="replace")
                self.close()
                raise RuntimeError(f"the tests' fork server did not start: {tail}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.process.poll() is None

    def slot(self) -> Path:
        """A fresh folder, inside the server's sandbox, for one kernel's connection file and sockets."""
        path = self.root / "kernel" / f"slot-{next(self._slots)}"
        path.mkdir()
        return path

    def launcher(self) -> list[str]:
        """The kernel command's start (the stub); the ipykernel arguments follow ``--``."""
        return [sys.executable, "-I", "-S", fork_launch.__file__, "--stub", self.socket]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


_servers: dict[str, ForkServer] = {}


def server_for(files: dict[str, bytes], limits: sandbox.Limits, kind: str, modules: tuple[str, ...]) -> ForkServer:
    """This process's server for these course files, limits, sandbox and imports (started if need be)."""
    digest = hashlib.sha256(repr((sorted(files.items()), limits, kind, modules, launch.__file__)).encode())
    key = digest.hexdigest()
    server = _servers.get(key)
    if server is not None and not server.alive():
        server.close()
        server = None
    if server is None:
        server = _servers[key] = ForkServer(files, limits, kind, modules)
    return server


@atexit.register
def close_all() -> None:
    while _servers:
        _servers.popitem()[1].close()
