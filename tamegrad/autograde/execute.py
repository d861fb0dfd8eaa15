"""Run one submission's notebooks: the part that runs on a worker.

:func:`execute_job` takes a :class:`Job` (notebook JSON, the submission's files, the
course's files, the instructor's cells, limits) and returns a :class:`JobResult`, so it
runs the same in this process, in a local Dask worker or on another machine.

Each notebook runs in TWO sandboxed kernels (:mod:`.sandbox`), driven with nbgrader's own
``Execute`` (nbclient underneath: same per-cell timeout, same interrupt, same error
outputs as ``nbgrader autograde``):

* the **student's kernel** runs the notebook's cells except the test cells: the setup cells
  (the instructor's locked cells) and the student's cells, in order; their outputs are
  the notebook's outputs. It never receives test code, expected values or checking code.
* the **tests' kernel** starts in a fresh directory holding the course's own files (never
  the submission's); it runs the setup cells (as the gradebook holds them) and the test
  cells, in the same order. A setup cell runs there while the student's kernel runs it and
  the student's cells after it (the two kernels share nothing); the next test cell waits
  for it. Before each test cell, the names the student's cells define
  (read from their source) are bound to proxies (:mod:`.proxy`) whose calls cross, as data
  (:mod:`.wire`), through the grader's :mod:`.relay` to the student's kernel, where
  :func:`.serve.serve` answers them while the test cell runs.

Outcome, worst first (:data:`STATUS_ORDER`): a kernel that dies or stops answering leaves
every cell it did not run with an error output (``NotExecuted``), so that nbgrader gives
those tests zero; a submission past its total time (:attr:`.sandbox.Limits.total`) stops
there with status ``timeout``; everything that comes back is capped (:class:`Budget`).
The grader's sockets to a kernel never read a message over
:attr:`.sandbox.Limits.message_bytes` (:func:`capped_context`): such a message ends its
cell with an error output (:meth:`Kernel.execute`) and grading goes on.
"""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import zmq
import zmq.asyncio
from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from zmq.utils.monitor import recv_monitor_message

from ..grading.integrity import CELL_SEPARATOR
from . import forkserver, launch, sandbox
from .relay import Relay

# Statuses, worst first. One notebook's status is the worst thing that happened in it.
STATUS_ORDER = ("error", "invalid", "missing", "crashed", "memory", "timeout", "graded")
# messages the grader's socket to a kernel may hold unread (ZeroMQ's receive high-water
# mark): beyond it the kernel's side waits, so at most this many capped messages are queued
RECEIVE_QUEUE = 4
# a send on a socket whose connection was just refused (not yet reconnected) fails after this
# many milliseconds instead of blocking the grader; it is tried again after RECONNECT_WAIT s
SEND_TIMEOUT_MS = 500
RECONNECT_WAIT = 0.5
MEMORY_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")
SERVE = "import tamegrad.autograde.serve as _tg_serve\n_tg_serve.serve({path!r}, get_ipython().user_ns)"
BIND = (
    "import tamegrad.autograde.proxy as _tg_proxy\n"
    "_tg_proxy.bind(get_ipython().user_ns, {path!r}, {names!r}, {source!r})"
)


def worst(*statuses: str) -> str:
    return min(statuses, key=STATUS_ORDER.index)


# ------------------------------------------------------------------------------ data
@dataclass
class Job:
    """One submission, as the worker receives it."""

    student: str
    assignment: str
    notebooks: dict[str, str]  # name -> sanitised notebook JSON
    instructor_cells: dict[str, dict[str, tuple[str, str]]]  # name -> grade_id -> (role, source)
    files: dict[str, bytes] = field(default_factory=dict)  # the submission's other files
    course_files: dict[str, bytes] = field(default_factory=dict)  # the assignment's source files
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    sandbox: str = "auto"
    hide: tuple[str, ...] = ()  # packages the student's kernel must not import


@dataclass
class NotebookResult:
    notebook: str | None  # executed notebook JSON (None: not executed)
    status: str
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class JobResult:
    student: str
    notebooks: dict[str, NotebookResult]
    sandbox: str
    host: str = ""
    seconds: float = 0.0


# ------------------------------------------------------------------------------ cells
def roles(nb, instructor: dict[str, tuple[str, str]]) -> list[str]:
    """``"test"``, ``"setup"``, ``"student"`` or ``""`` (not code) for each cell.

    A cell is a test or setup cell only if the gradebook knows its ``grade_id`` as one
    (``instructor``); a cell a student marked as a test cell is the student's."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            out.append("")
            continue
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        role = instructor.get(gid, ("student", ""))[0] if isinstance(gid, str) else "student"
        out.append(role)
    return out


def python_source(text: str) -> str:
    """A cell's source as Python (IPython's magics and ``!`` lines transformed)."""
    try:
        return TransformerManager().transform_cell(text)
    except Exception:  # noqa: BLE001
        return text


def _tree(text: str):
    try:
        return ast.parse(python_source(text))
    except (SyntaxError, ValueError):
        return None


def defined_names(text: str) -> set[str]:
    """Names a cell binds at module level (def, class, assignment, import, for, with)."""
    tree = _tree(text)
    if tree is None:
        return set()
    found: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def used_names(text: str) -> set[str]:
    tree = _tree(text)
    return set() if tree is None else {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


# ------------------------------------------------------------------------------ caps
class Budget:
    """Characters of output one notebook may keep: per cell and in all."""

    def __init__(self, limits: sandbox.Limits):
        self.limits = limits
        self.total = 0
        self.per_cell: dict[int, int] = {}
        self.cut: set[int] = set()
        self.notes: list[str] = []

    def take(self, index: int, size: int) -> bool:
        used = self.per_cell.get(index, 0) + size
        self.per_cell[index] = used
        self.total += size
        return used <= self.limits.output_chars and self.total <= self.limits.notebook_chars

    def note_cut(self, index: int, outs: list) -> None:
        if index in self.cut:
            return
        self.cut.add(index)
        self.notes.append(f"cell {index}: output truncated")
        outs.append(NotebookNode(output_type="stream", name="stdout", text="\n[output truncated by the grader]\n"))


def _cap_error(content: dict, chars: int) -> None:
    content["ename"] = str(content.get("ename", ""))[:200]
    content["evalue"] = str(content.get("evalue", ""))[: chars // 2]
    tb, kept, used = [str(t) for t in content.get("traceback", [])], [], 0
    for line in reversed(tb):  # keep the end of a traceback: where it failed
        if used + len(line) > chars // 2:
            kept.append("[traceback truncated by the grader]")
            break
        kept.append(line)
        used += len(line)
    content["traceback"] = kept[::-1]


def _size(content: dict) -> int:
    size = len(str(content.get("text", ""))) + len(str(content.get("metadata", "")))
    size += sum(len(str(v)) for v in content.get("data", {}).values())
    size += len(str(content.get("ename", ""))) + len(str(content.get("evalue", "")))
    return size + sum(len(str(t)) for t in content.get("traceback", []))


class GradingClient(Execute):
    """nbgrader's Execute for one kernel, with every output capped by a :class:`Budget`."""

    def __init__(self, nb, km, *, budget: Budget, **kw):
        super().__init__(**kw)
        NotebookClient.__init__(self, nb, km)  # as nbconvert's ExecutePreprocessor.preprocess does
        self.budget = budget

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            _cap_error(content, self.budget.limits.error_chars)
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "update_display_data", "error"):
            if not self.budget.take(cell_index, _size(content)):
                self.budget.note_cut(cell_index, outs)
                if msg["msg_type"] != "error":
                    return None
                content["traceback"] = content["traceback"][-3:]
                content["evalue"] = content["evalue"][:500]
        return super().output(outs, msg, display_id, cell_index)


def capped_context(message_bytes: int) -> zmq.asyncio.Context:
    """A ZeroMQ context whose sockets refuse any message over ``message_bytes``
    (``ZMQ_MAXMSGSIZE``: read from its size header, before its body is read; the
    connection is dropped) and queue at most :data:`RECEIVE_QUEUE` messages unread; a
    send with no connection fails after :data:`SEND_TIMEOUT_MS` (see :func:`_sent`)."""
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, message_bytes)
    context.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
    context.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
    return context


async def _sent(request):
    """``await request()`` (it sends to a kernel), tried once more after :data:`RECONNECT_WAIT`
    if the socket had no connection (its watcher reconnects it meanwhile)."""
    try:
        return await request()
    except zmq.Again:
        await asyncio.sleep(RECONNECT_WAIT)
        return await request()


def refused_output(limit: int):
    text = f"the kernel sent a message over {limit / 2**20:.0f} MiB; the grader refused it"
    return NotebookNode(output_type="error", ename="MessageRefused", evalue=text, traceback=[f"MessageRefused: {text}"])


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel started as ``PREFIX LAUNCHER -- <ipykernel arguments>``: ``prlimit … bwrap …
    python -E -s launch.py SRC DST CHARS``, or the stub of a fork server (:mod:`.forkserver`)."""

    prefix: list[str] = []
    launcher: list[str] = []

    def format_kernel_cmd(self, extra_arguments=None):
        kernel = ["-f", self.connection_file, "--HistoryManager.hist_file=:memory:", "--IPKernelApp.parent_handle=0"]
        return [*self.prefix, *self.launcher, "--", *kernel]


# ------------------------------------------------------------------------------ one kernel
class Kernel:
    """One sandboxed kernel and the nbgrader client that runs cells in it."""

    def __init__(
        self,
        role: str,
        nb,
        scratch: Path,
        files: dict[str, bytes],
        limits: sandbox.Limits,
        kind: str,
        budget: Budget,
        hide: tuple[str, ...] = (),
        server: forkserver.ForkServer | None = None,
    ):
        self.role, self.limits, self.kind, self.server = role, limits, kind, server
        self.scratch = sandbox.make_scratch(server.slot() if server is not None else scratch)
        sandbox.write_files(self.scratch / "files", files)
        self.kernel_dir = self.scratch / "kernel"
        # every socket to this kernel (the manager's control socket, the client's channels)
        # is made by one capped context
        self.context = capped_context(limits.message_bytes)
        km = SandboxedKernelManager(
            transport="ipc",
            ip=str(self.kernel_dir / "k"),
            connection_file=str(self.kernel_dir / "kernel.json"),
            context=self.context,
        )
        if server is not None:  # forked inside the server's sandbox, with its limits
            km.launcher = server.launcher()
        else:
            km.prefix = sandbox.prlimit_argv(limits, limits.total + 30)
            if kind == "bwrap":
                km.prefix += sandbox.bubblewrap_argv(self.scratch, disk=limits.disk, hide=hide)
            copy_from = "/submission" if kind == "bwrap" else str(self.scratch / "files")
            work = sandbox.work_dir(self.scratch, kind)
            km.launcher = [sys.executable, "-E", "-s", launch.__file__, copy_from, work, str(limits.message_chars)]
        # interrupt through the control channel: a SIGINT to the process group would also
        # reach bubblewrap, which would take the kernel down with it
        km.kernel_spec.interrupt_mode = "message"
        self.km = km
        self.budget = budget
        self.refused = asyncio.Event()  # set when a socket dropped a message over the cap
        self.dropped = False  # a socket lost its connection during this cell (a refusal, or a death)
        self._monitors: list[asyncio.Future] = []
        self.client = GradingClient(
            nb,
            km,
            budget=budget,
            timeout=limits.timeout,
            interrupt_on_timeout=True,
            allow_errors=True,
            raise_on_iopub_timeout=True,
            iopub_timeout=4,
            startup_timeout=60,
            record_timing=False,
            shutdown_kernel="immediate",
        )
        self.log_path = self.kernel_dir / "kernel.log"
        self.peak = 0
        self.over_disk = False
        self.started = False
        self._watch = None
        self._log = None

    async def start(self) -> dict:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in shutdown
        await self.km.start_kernel(
            env=sandbox.kernel_env(self.scratch, self.kind), cwd=str(self.scratch), stdout=self._log, stderr=self._log
        )
        self.started = True
        self._watch = asyncio.ensure_future(self._watchdog())
        await self._connect()
        if self.kind == "bwrap" and self.server is None:  # a fork server is checked when it starts
            sandbox.verify_isolated(self.km.provisioner.process.pid)
        info = await self.client.async_wait_for_reply(self.client.kc.kernel_info())
        return info["content"] if info else {}

    async def _connect(self) -> None:
        """nbclient's ``async_start_new_kernel_client``, with the client's sockets made by the
        capped context and watched for refused messages."""
        kc = self.client.kc = self.km.client(context=self.context)
        kc.start_channels()
        for channel in (kc.shell_channel, kc.iopub_channel, kc.stdin_channel, kc.control_channel):
            self._monitors.append(asyncio.ensure_future(self._watch_refusals(channel.socket)))
        await kc.wait_for_ready(timeout=self.client.startup_timeout)
        kc.allow_stdin = False

    async def _watch_refusals(self, sock) -> None:
        """ZeroMQ drops the connection of a socket that was sent a message over the cap and
        does not reconnect it (a DEALER without a connection would then block the grader
        on its next send): connect again, and tell :meth:`execute`, unless the kernel died
        (a dead kernel drops its connections too: not a refusal)."""
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            while True:
                event = await recv_monitor_message(monitor)
                self.dropped = True
                endpoint = event["endpoint"].decode()
                sock.disconnect(endpoint)
                sock.connect(endpoint)
                await asyncio.sleep(0.2)
                if await self.km.is_alive():
                    self.refused.set()
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)

    async def _watchdog(self) -> None:
        """Sample the address space of the kernel's processes and what it wrote on the host."""
        watched = self.kernel_dir if self.kind == "bwrap" else self.scratch
        limit = self.limits.kernel_dir if self.kind == "bwrap" else self.limits.kernel_dir + self.limits.disk
        tick = 0
        while True:
            try:
                proc = psutil.Process(self.km.provisioner.process.pid)
                total = max([p.memory_info().vms for p in [proc, *proc.children(recursive=True)]] or [0])
                self.peak = max(self.peak, total)
            except Exception:  # noqa: BLE001 - the process is gone or not started yet
                pass
            tick += 1
            if tick % 5 == 0 and _du(watched) > limit:
                self.over_disk = True
                await self.kill()
                return
            await asyncio.sleep(0.1)

    async def alive(self) -> bool:
        return self.started and await self.km.is_alive()

    async def kill(self) -> None:
        """SIGKILL to the sandbox (bubblewrap takes the kernel with it: --die-with-parent)."""
        try:
            self.km.provisioner.process.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass

    async def interrupt(self) -> None:
        await self.km.interrupt_kernel()

    def exit_code(self):
        p = self.km.provisioner.process if self.km.provisioner else None
        return p.poll() if p is not None else None

    async def execute(self, cell, index: int, timeout: float):
        """Run ``cell``; a message over the cap ends it at once with a :func:`refused_output`
        (its reply or the rest of its output cannot come: no wait for them). A cell that
        finished although one of its messages was dropped gets the refusal too (the kernel
        is alive: the drop was a refusal), not the cell after it."""
        self.client.timeout = max(1, int(timeout))
        self.refused.clear()
        self.dropped = False
        run = asyncio.ensure_future(_sent(lambda: self.client.async_execute_cell(cell, index, store_history=True)))
        refused = asyncio.ensure_future(self.refused.wait())
        await asyncio.wait({run, refused}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            refused.cancel()
            if self.dropped and run.exception() is None and await self._refusal_confirmed():
                cell = run.result()
                self._note_refused(cell, index)
                self.refused.clear()
                return cell
            return run.result()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)  # nbclient reports the cancel as DeadKernelError
        self._note_refused(cell, index)
        await self._settle(timeout)
        return cell

    def _note_refused(self, cell, index: int) -> None:
        refusal = refused_output(self.limits.message_bytes)
        cell.outputs = list(cell.get("outputs", [])) + [refusal]
        self.budget.notes.append(f"cell {index}: {refusal.evalue}")

    async def _refusal_confirmed(self, within: float = 2.0) -> bool:
        """Whether the watcher, after a dropped connection, found the kernel alive (a refusal)."""
        try:
            await asyncio.wait_for(self.refused.wait(), within)
        except TimeoutError:
            return False
        return True

    async def _settle(self, timeout: float) -> None:
        """Wait for the kernel to finish the cell whose message was refused: the reply to a
        ``kernel_info_request`` (shell requests are answered in order) comes after that cell's
        own reply, refused or not. Past ``timeout``, interrupt the cell."""
        if not await self.alive():
            return
        deadline = time.monotonic() + timeout

        async def ask():
            return self.client.kc.kernel_info()

        msg_id = await _sent(ask)
        while True:
            self.refused.clear()
            if await self.reply(msg_id, deadline - time.monotonic()) is not None:
                self.refused.clear()
                return
            if not self.refused.is_set():  # past the deadline, or the kernel died
                break
        if await self.alive():
            await self.interrupt()

    async def silent(self, code: str, timeout: float):
        """Run ``code`` without a trace in the notebook; the reply, or None."""
        kc = self.client.kc
        msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        return await self.reply(msg_id, timeout)

    async def reply(self, msg_id: str, timeout: float):
        kc = self.client.kc
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg = await kc.shell_channel.get_msg(timeout=min(remaining, 1.0))
            except Exception:  # noqa: BLE001 - queue.Empty
                if not await self.km.is_alive() or self.refused.is_set():
                    return None  # dead, or the reply may have been refused
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def death(self) -> tuple[str, str]:
        if self.over_disk:
            return "crashed", f"the kernel wrote more than {self.limits.kernel_dir / 2**20:.0f} MiB outside its tmpfs"
        return _death(self.exit_code(), self.log_path, self.peak, self.limits.memory, self.kind)

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for monitor in self._monitors:
            monitor.cancel()
        await asyncio.gather(*self._monitors, return_exceptions=True)
        try:
            if self.client.kc is not None:
                self.client.kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        if self.started:
            for step in (lambda: self.km.shutdown_kernel(now=True), self.km.cleanup_resources):
                try:
                    await step()
                except Exception:  # noqa: BLE001
                    pass
        if self._log is not None:
            self._log.close()
        self.context.destroy(linger=0)


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _death(code, log_path: Path, peak: int = 0, limit: int = 0, kind: str = "none") -> tuple[str, str]:
    tail = log_path.read_bytes()[-4000:].decode(errors="replace") if log_path.exists() else ""
    if any(sign in tail for sign in MEMORY_SIGNS) or (limit and peak >= 0.85 * limit):
        return "memory", f"the kernel ran out of memory (limit {limit / 2**20:.0f} MiB)"
    if code is None:
        return "crashed", "the kernel died"
    if kind == "bwrap" and code > 128:
        code = -(code - 128)  # bubblewrap reports a child killed by signal N as 128 + N
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return "memory", "the kernel was killed (SIGKILL, usually the memory limit)"
        if -code == signal.SIGXCPU:
            return "timeout", "the kernel used up its CPU time limit"
        return "crashed", f"the kernel died from {name}"
    return "crashed", f"the kernel exited with code {code}"


def _not_run_output(reason: str):
    return NotebookNode(output_type="error", ename="NotExecuted", evalue=reason, traceback=[f"NotExecuted: {reason}"])


def _mark_not_run(nb, start: int, reason: str) -> None:
    """Cells from ``start`` on did not run: give each code cell an error output."""
    for cell in nb.cells[start:]:
        if cell.cell_type == "code" and cell.source.strip():
            if not any(o.get("ename") == "NotExecuted" for o in cell.get("outputs", [])):
                cell.outputs = list(cell.get("outputs", [])) + [_not_run_output(reason)]


def _memory_error(nb) -> bool:
    return any(
        o.get("output_type") == "error" and o.get("ename") == "MemoryError"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def _timed_out(cell) -> bool:
    return any(
        o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])
    )


# ------------------------------------------------------------------------------ one notebook
async def run_notebook(nb, job: Job, instructor: dict[str, tuple[str, str]], base: Path, kind: str) -> NotebookResult:
    """Execute ``nb`` in place in the two kernels; the outcome."""
    limits = job.limits
    budget = Budget(limits)
    notes: list[str] = []
    student = Kernel("student", nb, base / "student", job.files, limits, kind, budget, job.hide)
    # the tests' client writes its cells into a notebook of its own, of the same length
    shadow = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell() for _ in nb.cells])
    server, why = _tests_server(job, instructor, kind)
    if why:
        notes.append(why)
    files = {} if server is not None else job.course_files  # a server holds them already
    tests = Kernel("tests", shadow, base / "tests", files, limits, kind, budget, server=server)
    started = time.monotonic()
    deadline = started + limits.total
    relay = Relay(
        str(student.kernel_dir / "relay.sock"),
        str(tests.kernel_dir / "relay.sock"),
        timeout=limits.timeout,
        interrupt=student.interrupt,
    )
    try:
        try:
            infos = await asyncio.gather(student.start(), tests.start())
            if "language_info" in infos[0]:
                nb.metadata["language_info"] = infos[0]["language_info"]
            await relay.start()
        except sandbox.NotIsolated:
            raise  # never grade outside the sandbox
        except Exception as exc:  # the kernel never ran student code: the grader's problem
            tail = b"".join(k.log_path.read_bytes()[-1000:] for k in (student, tests) if k.log_path.exists())
            return NotebookResult(None, "error", f"a kernel did not start: {exc!r} {tail.decode(errors='replace')}")
        status, detail = await _run_cells(nb, instructor, student, tests, relay, deadline, notes)
        if status == "graded" and relay.stats.cell_timeouts:
            status, detail = "timeout", f"a cell ran past the {limits.timeout} s limit and was interrupted"
        if status == "graded" and relay.stats.timeouts:
            status, detail = "timeout", f"a call of a student function ran past the {limits.timeout} s limit"
        if status == "graded" and _memory_error(nb):
            status, detail = "memory", "a cell ran out of memory (MemoryError)"
        notes += relay.stats.notes + budget.notes
        if student.client.widget_state:
            student.client.set_widgets_metadata()
    finally:
        await relay.close()
        await asyncio.gather(student.shutdown(), tests.shutdown())
        if server is not None:
            shutil.rmtree(tests.scratch, ignore_errors=True)
    return NotebookResult(nbformat.writes(nb), status, detail, notes, time.monotonic() - started)


def _tests_server(job: Job, instructor: dict[str, tuple[str, str]], kind: str):
    """The fork server for this notebook's tests' kernel, or None and why (then the kernel
    is started directly, as the student's is)."""
    setup = [python_source(src) for role, src in instructor.values() if role == "setup"]
    try:
        return forkserver.server_for(job.course_files, job.limits, kind, forkserver.imported_modules(setup)), ""
    except sandbox.NotIsolated:
        raise  # never grade outside the sandbox
    except (OSError, RuntimeError) as exc:
        return None, f"the tests' kernel was started directly (its fork server failed: {str(exc)[:300]})"


async def _run_cells(
    nb, instructor, student: Kernel, tests: Kernel, relay, deadline: float, notes: list[str]
) -> tuple[str, str]:
    # the tests' kernel runs each setup cell while the student's kernel runs it and the
    # student's cells after it: a chain of tasks, awaited before the next test cell
    setup = _SetupChain(tests, notes)
    try:
        return await _run_cells_in_order(nb, instructor, student, tests, relay, deadline, setup)
    finally:
        await setup.cancel()


class _SetupChain:
    """The setup cells of the tests' kernel, run in order, in the background."""

    def __init__(self, tests: Kernel, notes: list[str]):
        self.tests, self.notes = tests, notes
        self.task: asyncio.Task | None = None

    def add(self, trusted, index: int, gid: str, timeout: float) -> None:
        self.task = asyncio.ensure_future(self._run(self.task, trusted, index, gid, timeout))

    async def _run(self, before, trusted, index: int, gid: str, timeout: float) -> None:
        if before is not None:
            await before
        done = await self.tests.execute(trusted, index, timeout)
        err = next((o for o in done.outputs if o.get("output_type") == "error"), None)
        if err is not None:
            self.notes.append(
                f"the setup cell {gid} failed in the tests' kernel: {err.get('ename')}: {str(err.get('evalue'))[:200]}"
            )

    async def wait(self) -> None:
        """Every setup cell so far has run in the tests' kernel (its errors are raised here)."""
        if self.task is not None:
            await self.task

    async def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _run_cells_in_order(nb, instructor, student: Kernel, tests: Kernel, relay, deadline: float, setup):
    limits = student.limits
    kinds = roles(nb, instructor)
    defined: set[str] = set()  # names the student's cells bind
    setup_names: set[str] = set()  # names the instructor's setup cells bind
    source: list[str] = []  # setup and student cells so far, as text (for check_not_autodiff)
    for index, cell in enumerate(nb.cells):
        role = kinds[index]
        if not role:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            _mark_not_run(nb, index, f"the submission used up its total time limit of {limits.total} s")
            return "timeout", f"the submission ran past its total time limit of {limits.total} s"
        timeout = min(limits.timeout, remaining)
        if role == "test":
            gid = cell.metadata.nbgrader.grade_id
            names = sorted((defined - setup_names) & used_names(instructor[gid][1]))
            await setup.wait()
            stop = await _run_test(
                cell, index, instructor[gid][1], names, CELL_SEPARATOR.join(source), student, tests, relay, timeout
            )
            if stop is not None:
                _mark_not_run(nb, index + 1, f"the kernel stopped ({stop[1]}) before this cell ran")
                return stop
            continue
        if role == "setup":
            gid = cell.metadata.nbgrader.grade_id
            trusted = NotebookNode(
                cell_type="code", source=instructor[gid][1], metadata={}, outputs=[], execution_count=None
            )
            setup_names |= defined_names(trusted.source)
            source.append(python_source(trusted.source))
            setup.add(trusted, index, gid, timeout)
        else:
            defined |= defined_names(cell.source)
            source.append(python_source(cell.source))
        try:
            cell = await student.execute(cell, index, timeout)
        except DeadKernelError:
            status, detail = student.death()
            _mark_not_run(nb, index, f"the kernel stopped ({detail}) before this cell finished")
            return status, detail
        except CellTimeoutError:
            _mark_not_run(nb, index, "the kernel stopped answering (timeout) before this cell finished")
            return "timeout", f"a cell ran past {limits.timeout} s and the kernel did not respond to an interrupt"
        if not await student.alive():
            status, detail = student.death()
            _mark_not_run(nb, index + 1, f"the kernel stopped ({detail}) before this cell ran")
            return status, detail
        if _timed_out(cell):
            relay.stats.cell_timeouts += 1
    await setup.wait()
    return "graded", ""


async def _run_test(cell, index, test_source, names, source, student: Kernel, tests: Kernel, relay, timeout: float):
    """One test cell in the tests' kernel, with the student's kernel serving its calls.
    Returns a status when grading must stop, else None."""
    serving = None
    if not relay.dead and await student.alive():
        serving = student.client.kc.execute(
            SERVE.format(path=str(relay.student_path)), silent=True, store_history=False, allow_stdin=False
        )
        if not await relay.wait_for_student(10.0):
            relay.mark_dead("the student's kernel did not start serving the tests")
    bind = await tests.silent(BIND.format(path=str(relay.trusted_path), names=names, source=source), 30.0)
    if bind is None or bind["content"].get("status") != "ok":
        raise RuntimeError(f"binding the student's names in the tests' kernel failed: {bind and bind['content']}")
    test = NotebookNode(cell_type="code", source=test_source, metadata={}, outputs=[], execution_count=None)
    try:
        done = await tests.execute(test, index, timeout)
    except DeadKernelError:
        return "error", "the tests' kernel stopped"
    except CellTimeoutError:
        return "timeout", f"a test cell ran past {timeout:.0f} s and the tests' kernel did not respond to an interrupt"
    cell.outputs = done.outputs
    cell.execution_count = done.execution_count
    if _timed_out(done):
        relay.stats.cell_timeouts += 1
    if serving is not None:
        if relay.pending is not None:  # the test was interrupted during a call: stop the call too
            await student.interrupt()
        await relay.end_session()
        if await student.reply(serving, relay.grace + 2.0) is None:
            if await student.alive():
                await student.interrupt()
            relay.mark_dead("the student's kernel kept running after a test cell")
    if serving is not None and not await student.alive():
        status, detail = student.death()
        relay.mark_dead(f"the kernel stopped ({detail})")
        return status, detail
    return None


# ------------------------------------------------------------------------------ one submission
def execute_job(job: Job) -> JobResult:
    """Execute every notebook of ``job`` (plain data in, plain data out)."""
    t0 = time.perf_counter()
    kind = job.sandbox
    if kind not in ("bwrap", "none"):
        kind, _ = sandbox.choose(kind)
    results = {}
    base = Path(tempfile.mkdtemp(prefix="tamegrad-grade-"))
    try:
        for name, text in job.notebooks.items():
            nb = nbformat.reads(text, as_version=4)
            where = base / name
            results[name] = asyncio.run(run_notebook(nb, job, job.instructor_cells.get(name, {}), where, kind))
            shutil.rmtree(where, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return JobResult(job.student, results, kind, socket.gethostname(), time.perf_counter() - t0)
