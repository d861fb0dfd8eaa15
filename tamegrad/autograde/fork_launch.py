"""The fork server's program, and the stub that stands for one forked kernel.

Two ways to run it, both by path:

``python -E -s fork_launch.py --serve SOCKET SRC TMP CHARS isolated|shared -- MODULE ...``
    inside the tests' sandbox: imports ipykernel and each MODULE (what the setup cells
    import: numpy, torch, tamegrad), then listens on the Unix socket SOCKET and runs no code
    of anyone else's. Each request (one JSON line: the ipykernel arguments) is answered by a
    fork; the child starts as :func:`launch.main` starts a kernel (SRC copied into a fresh
    working directory under TMP, messages cut to CHARS characters): a kernel that has run
    no cell, without paying for the imports again. One kernel at a time: when it has
    exited, the server kills whatever it left running in the sandbox (``isolated``: the
    sandbox has a PID namespace of its own, where the server's only other processes are
    what its kernels left) and empties TMP, so nothing one kernel leaves behind (a
    process, a file, an IPython start-up file) reaches the next.

``python -I -S fork_launch.py --stub SOCKET -- IPYKERNEL-ARGS``
    the grader's kernel command: asks the server for a kernel and stays until that kernel
    exits, then exits with its exit code; the kernel manager watches, and kills, the stub.
    When the stub's connection closes, the server kills the kernel.

Request and answers, one JSON line each: ``{"argv": [...]}`` -> ``{"pid": N}``, later
``{"exit": CODE}`` (CODE as :attr:`subprocess.Popen.returncode` gives it).
"""

import json
import os
import socket
import sys

REQUEST_BYTES = 1 << 16


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < REQUEST_BYTES:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def stub(path: str, argv: list[str]) -> int:
    """Ask the server at ``path`` for a kernel with ``argv``; wait for it; its exit code."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendall(json.dumps({"argv": argv}).encode() + b"\n")
    answers = conn.makefile("rb")
    for line in answers:
        reply = json.loads(line)
        if "exit" in reply:
            code = reply["exit"]
            return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says
    return 1  # the server went away


# ------------------------------------------------------------------------- in the sandbox
def _fresh_random_state() -> None:
    """What a fresh interpreter would have: torch's default generator reseeded (Python's
    ``random`` and numpy's global generator reseed themselves after a fork)."""
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def _child(request: bytes, src: str, workdir: str, chars: str) -> None:
    """In the forked process, whose every socket of the server's is closed: start the kernel."""
    import launch  # the sibling launcher (imported by the server, from this directory)

    try:
        argv = json.loads(request)["argv"]
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise ValueError("argv must be a list of strings")
        _fresh_random_state()
        launch.main([src, workdir, chars, "--", *argv])
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the server
        print(f"fork server: the kernel failed: {exc!r}", file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(0)


def _status(code: int) -> int:
    if os.WIFSIGNALED(code):
        return -os.WTERMSIG(code)
    return os.WEXITSTATUS(code)


def _clean_up(tmp: str, isolated: bool) -> None:
    """Empty ``tmp``; in a sandbox of its own (``isolated``: a PID namespace), first kill every
    process there but this one and the sandbox's init (without one, ``kill(-1)`` would reach
    every process of the grading user)."""
    import signal

    if isolated:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    break
            except ChildProcessError:
                break
    _empty(tmp, os.lstat(tmp).st_dev)


def _empty(folder: str, device: int) -> None:
    """Remove what ``folder`` holds on ``device``; never what is mounted there (the host
    folders the sandbox binds under ``/tmp``, e.g. this server's own socket folder)."""
    for entry in os.scandir(folder):
        try:
            if entry.stat(follow_symlinks=False).st_dev != device:
                continue
            if entry.is_dir(follow_symlinks=False):
                _empty(entry.path, device)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:  # a folder that holds a mount point stays
            pass


def serve(path: str, src: str, modules: list[str], tmp: str, chars: str, isolated: bool) -> None:
    """Import ``modules``, then fork one kernel per request, one kernel at a time.

    A request waits until the kernel before it has exited and the sandbox is clean. A
    stub's connection that closes (the stub was killed) gets its kernel a SIGKILL from
    here, where no kernel's code runs."""
    import importlib
    import selectors
    import signal

    import launch  # noqa: F401 - puts the grader's tamegrad first on sys.path

    importlib.import_module("ipykernel.kernelapp")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the kernel will meet the same error and report it
            pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    events = selectors.DefaultSelector()
    events.register(server, selectors.EVENT_READ)
    running: dict[int, socket.socket] = {}  # pid -> its stub's connection
    waiting: list[tuple[socket.socket, bytes]] = []
    count = 0
    while True:
        for key, _ in events.select(timeout=0.05):
            if key.fileobj is server:
                conn, _ = server.accept()
                conn.settimeout(10)
                try:
                    waiting.append((conn, _read_line(conn)))
                except OSError:
                    conn.close()
                continue
            try:
                gone = not key.fileobj.recv(4096)
            except OSError:
                gone = True
            if gone:  # the stub is gone: so is its kernel
                events.unregister(key.fileobj)
                try:
                    os.kill(key.data, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid, conn in list(running.items()):
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                del running[pid]
                try:
                    events.unregister(conn)
                except KeyError:  # already, when its stub went away
                    pass
                try:
                    conn.sendall(json.dumps({"exit": _status(code)}).encode() + b"\n")
                except OSError:
                    pass
                conn.close()
                _clean_up(tmp, isolated)
        if running or not waiting:
            continue
        conn, request = waiting.pop(0)
        count += 1
        pid = os.fork()
        if pid == 0:
            events.close()
            for sock in [server, conn, *(c for c, _ in waiting)]:
                sock.close()
            _child(request, src, os.path.join(tmp, f"work-{count}"), chars)
        conn.settimeout(None)
        running[pid] = conn
        events.register(conn, selectors.EVENT_READ, pid)
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:
            pass


def main(argv: list[str]) -> int:
    mode, path, *rest = argv
    if mode == "--stub":
        return stub(path, rest[rest.index("--") + 1 :])
    if mode == "--serve":
        src, tmp, chars, isolated, sep, *modules = rest
        assert sep == "--"
        serve(path, src, modules, tmp, chars, isolated == "isolated")
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
