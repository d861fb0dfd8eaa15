"""Run one submission's notebooks in sandboxed kernels: the part that runs on a worker.

:func:`execute_job` takes plain data (notebook JSON, supporting files, limits) and returns
plain data (executed notebook JSON, a status, notes), so it runs the same in this process,
in a local Dask worker or on another machine with no shared file system.

Execution is nbgrader's own ``Execute`` preprocessor (nbclient underneath: same per-cell
timeout, same interrupt on timeout, same error outputs), with three additions:

* the kernel starts inside :mod:`.sandbox` and talks over Unix sockets;
* the :mod:`.guard` is installed before the first cell and called before and after every
  test cell (silent executions that leave no trace in the notebook);
* the outcome is decided here: a kernel that dies or stops answering leaves every cell it
  did not run with an error output (``NotExecuted``), so that nbgrader gives those tests
  zero instead of full marks for an empty output, and the status says what happened.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

# Statuses, worst first. One notebook's status is the worst thing that happened in it.
STATUS_ORDER = ("error", "invalid", "missing", "crashed", "memory", "timeout", "graded")
MEMORY_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")


def worst(*statuses: str) -> str:
    return min(statuses, key=STATUS_ORDER.index)


def _not_run_output(reason: str):
    from nbformat.notebooknode import NotebookNode

    return NotebookNode(output_type="error", ename="NotExecuted", evalue=reason,
                        traceback=[f"NotExecuted: {reason}"])


def _is_test_cell(cell) -> bool:
    md = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(md.get("grade")) and not md.get("solution")


def _client_classes():
    """Built on first use: importing nbgrader and jupyter_client is not free."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbformat.notebooknode import NotebookNode
    from nbgrader.preprocessors import Execute

    from . import guard

    class SandboxedKernelManager(AsyncKernelManager):
        """A kernel started as ``prlimit ... bwrap ... python -E -s .../ipykernel_launcher.py``.

        The launcher is run by its path, not with ``-m``: ``-m`` would put the working
        directory first on ``sys.path``, and a student's ``ipykernel_launcher.py`` would
        then be the kernel. IPython adds the working directory after the standard library
        once the kernel is up, as in any notebook.
        """

        prefix: list[str] = []

        def format_kernel_cmd(self, extra_arguments=None):
            import ipykernel_launcher

            cmd = [sys.executable, "-E", "-s", ipykernel_launcher.__file__, "-f", self.connection_file,
                   "--HistoryManager.hist_file=:memory:", "--IPKernelApp.parent_handle=0"]
            return list(self.prefix) + cmd

    class GradingClient(Execute):
        """nbgrader's Execute, with the guard around test cells and capped outputs."""

        def __init__(self, nb, km, *, guard_config, output_chars, **kw):
            super().__init__(**kw)
            NotebookClient.__init__(self, nb, km)  # as nbconvert's ExecutePreprocessor.preprocess does
            self.guard_config = guard_config
            self.output_chars = output_chars
            self.notes: list[str] = []
            self._chars: dict[int, int] = {}
            self._truncated: set[int] = set()

        # -- the guard ------------------------------------------------------------------
        async def _silent(self, expression: str, timeout: float = 30.0):
            msg_id = self.kc.execute("", silent=True, store_history=False,
                                     user_expressions={"r": expression})
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    msg = await self.kc.shell_channel.get_msg(timeout=min(remaining, 1.0))
                except Exception:  # queue.Empty
                    if not await self.km.is_alive():
                        return None
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg

        async def guard_step(self, step: str, cell_id: str = ""):
            cfg = self.guard_config
            if step == "install":
                expr = guard.install_expression(cfg)
            else:
                expr = guard.call_expression(cfg["nonce"], step, cell_id)
            reply = await self._silent(expr)
            return guard.parse_report(reply, cfg["token"]) if reply is not None else None

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if not (self.guard_config and _is_test_cell(cell) and cell.source.strip()):
                return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            grade_id = cell.metadata.nbgrader.get("grade_id", "")
            before = await self.guard_step("before", grade_id)
            problems = []
            if before is None:
                problems.append("the grading guard did not answer before the test (it was removed or replaced)")
            else:
                if before["restored"] or before["rebound"]:
                    self.notes.append(f"{grade_id}: restored {', '.join(before['restored'] + before['rebound'])}")
                if before["threads"]:
                    problems.append(f"threads started by student code were running: {', '.join(before['threads'])}")
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            after = await self.guard_step("after", grade_id)
            if after is None:
                problems.append("the grading guard did not answer after the test (it was removed or replaced)")
            else:
                if after["changed"]:
                    problems.append(f"checking code was replaced while the test ran: {', '.join(after['changed'][:8])}")
                if after["threads"] and not before or (before and after["threads"] and not before["threads"]):
                    problems.append(f"threads started by student code were running: {', '.join(after['threads'])}")
            if problems:
                self.notes.append(f"{grade_id}: tampering: {'; '.join(problems)}")
                cell.outputs.append(NotebookNode(
                    output_type="error", ename="TamperingDetected", evalue="; ".join(problems),
                    traceback=["TamperingDetected: " + "; ".join(problems)]))
            return cell

        # -- outputs: a cap on what one cell may send ----------------------------------
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
            used = self._chars.get(cell_index, 0) + size
            self._chars[cell_index] = used
            if used > self.output_chars and msg["msg_type"] in ("stream", "display_data", "execute_result",
                                                                 "update_display_data"):
                if cell_index not in self._truncated:
                    self._truncated.add(cell_index)
                    self.notes.append(f"cell {cell_index}: output truncated after {self.output_chars} characters")
                    outs.append(NotebookNode(output_type="stream", name="stdout",
                                             text=f"\n[output truncated by the grader after {self.output_chars} characters]\n"))
                return None
            return super().output(outs, msg, display_id, cell_index)

    return SandboxedKernelManager, GradingClient


def _kernel_prefix(kind: str, scratch: Path, limits, n_cells: int) -> list[str]:
    from . import sandbox

    cpu = limits.cpu_seconds or max(60, limits.timeout * (n_cells + 2))
    prefix = sandbox.prlimit_argv(limits, cpu)
    if kind == "bwrap":
        prefix += sandbox.bubblewrap_argv(scratch)
    return prefix


async def _run_notebook(nb, scratch: Path, limits, kind: str, guard_config: dict | None):
    """Execute ``nb`` in place; return (status, detail, notes)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    SandboxedKernelManager, GradingClient = _client_classes()
    kernel_dir = scratch / "kernel"
    for leftover in kernel_dir.glob("k-*"):
        leftover.unlink()
    km = SandboxedKernelManager(transport="ipc", ip=str(kernel_dir / "k"),
                                connection_file=str(kernel_dir / "kernel.json"))
    km.prefix = _kernel_prefix(kind, scratch, limits, len(nb.cells))
    # interrupt through the control channel: a SIGINT to the process group would also
    # reach bubblewrap, which would take the kernel down with it
    km.kernel_spec.interrupt_mode = "message"
    log_path = kernel_dir / "kernel.log"
    client = GradingClient(
        nb, km, guard_config=guard_config, output_chars=limits.output_chars,
        timeout=limits.timeout, interrupt_on_timeout=True, allow_errors=True,
        raise_on_iopub_timeout=True, iopub_timeout=4, startup_timeout=60, record_timing=False,
        shutdown_kernel="immediate",
    )
    from . import sandbox

    status, detail = "graded", ""
    started = False
    peak = [0]
    watch = None
    with open(log_path, "wb") as log:
        try:
            await km.start_kernel(env=sandbox.kernel_env(scratch), cwd=str(scratch / "work"),
                                  stdout=log, stderr=log)
            started = True
            watch = asyncio.ensure_future(_watch_memory(km, peak))
            await client.async_start_new_kernel_client()
            info = await client.async_wait_for_reply(client.kc.kernel_info())
            if info and "language_info" in info["content"]:
                nb.metadata["language_info"] = info["content"]["language_info"]
            if guard_config:
                installed = await client.guard_step("install")
                if installed is None:
                    raise RuntimeError("the grading guard could not be installed in the kernel")
                if installed.get("errors"):
                    client.notes.append("guard: could not import " + "; ".join(installed["errors"]))
        except Exception as exc:  # the kernel never ran student code: the grader's problem
            if watch is not None:
                watch.cancel()
            await _shutdown(client, km, started)
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            return "error", f"the kernel did not start: {exc!r} {tail}".strip(), client.notes

        timed_out = False
        for index, cell in enumerate(nb.cells):
            try:
                cell = await client.async_execute_cell(cell, index, store_history=True)
            except DeadKernelError:
                code = km.provisioner.process.poll() if km.provisioner and km.provisioner.process else None
                status, detail = _death(code, log_path, peak[0], limits.memory, kind)
                _mark_not_run(nb, index, f"the kernel stopped ({detail}) before this cell finished")
                break
            except CellTimeoutError:
                # the cell ran past the timeout and the kernel did not answer the interrupt
                status, detail = "timeout", f"a cell ran past {limits.timeout} s and the kernel did not respond to an interrupt"
                _mark_not_run(nb, index, "the kernel stopped answering (timeout) before this cell finished")
                break
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []) if o.output_type == "error"):
                timed_out = True
            if not await km.is_alive():
                code = km.provisioner.process.poll() if km.provisioner and km.provisioner.process else None
                status, detail = _death(code, log_path, peak[0], limits.memory, kind)
                _mark_not_run(nb, index + 1, f"the kernel stopped ({detail}) before this cell ran")
                break
        if status == "graded" and timed_out:
            status, detail = "timeout", f"a cell ran past the {limits.timeout} s limit and was interrupted"
        if status == "graded" and _memory_error(nb):
            status, detail = "memory", "a cell ran out of memory (MemoryError)"
        client.set_widgets_metadata() if client.widget_state else None
        watch.cancel()
        await _shutdown(client, km, True)
    return status, detail, client.notes


async def _shutdown(client, km, started: bool):
    try:
        if client.kc is not None:
            client.kc.stop_channels()
    except Exception:  # noqa: BLE001
        pass
    if started:
        try:
            await km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001
            pass
        try:
            await km.cleanup_resources()
        except Exception:  # noqa: BLE001
            pass


async def _watch_memory(km, peak: list) -> None:
    """Record the largest address space of the kernel's process tree (sampled)."""
    import psutil

    while True:
        try:
            proc = psutil.Process(km.provisioner.process.pid)
            total = max([p.memory_info().vms for p in [proc, *proc.children(recursive=True)]] or [0])
            peak[0] = max(peak[0], total)
        except Exception:  # noqa: BLE001 - the process is gone or not started yet
            pass
        await asyncio.sleep(0.1)


def _death(code, log_path: Path, peak: int = 0, limit: int = 0, kind: str = "none") -> tuple[str, str]:
    tail = log_path.read_bytes()[-4000:].decode(errors="replace") if log_path.exists() else ""
    if any(sign in tail for sign in MEMORY_SIGNS) or (limit and peak >= 0.85 * limit):
        return "memory", f"the kernel ran out of memory (limit {limit / 2**20:.0f} MiB)"
    if code is None:
        return "crashed", "the kernel died"
    if kind == "bwrap" and code > 128:
        code = -(code - 128)  # bubblewrap reports a child killed by signal N as 128 + N
    if code < 0:
        import signal

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


def _memory_error(nb) -> bool:
    return any(o.get("output_type") == "error" and o.get("ename") == "MemoryError"
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def _mark_not_run(nb, start: int, reason: str) -> None:
    """Cells from ``start`` on did not run: give each code cell an error output."""
    for cell in nb.cells[start:]:
        if cell.cell_type == "code" and cell.source.strip():
            if not any(o.get("ename") == "NotExecuted" for o in cell.get("outputs", [])):
                cell.outputs = list(cell.get("outputs", [])) + [_not_run_output(reason)]


def execute_job(job: dict) -> dict:
    """Grade-side execution of one submission. Plain data in, plain data out.

    ``job``: ``student``, ``assignment``, ``notebooks`` ({name: notebook JSON text}),
    ``files`` ({relative path: bytes}), ``limits`` (dict for :class:`.sandbox.Limits`),
    ``sandbox`` (``"bwrap"``, ``"none"`` or ``"auto"``), ``guard`` (from
    :func:`.guard.import_bindings`, or ``None`` to run without it).
    """
    import nbformat

    from . import sandbox

    t0 = time.perf_counter()
    limits = sandbox.Limits(**job.get("limits", {}))
    kind = job.get("sandbox", "auto")
    if kind not in ("bwrap", "none"):
        kind, _ = sandbox.choose(kind)
    results = {}
    base = Path(tempfile.mkdtemp(prefix="tamegrad-grade-"))
    try:
        for name, text in job["notebooks"].items():
            scratch = sandbox.make_scratch(base / name)
            work = scratch / "work"
            for rel, data in job.get("files", {}).items():
                target = (work / rel).resolve()
                if not str(target).startswith(str(work.resolve()) + os.sep):
                    continue  # a path that would leave the scratch directory
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            nb = nbformat.reads(text, as_version=4)
            guard_config = None
            if job.get("guard") is not None:
                g = job["guard"]
                guard_config = {"nonce": secrets.token_hex(8), "token": secrets.token_hex(16),
                                "preimport": g["preimport"], "packages": g["packages"],
                                "bindings": [list(b) for b in g["bindings"]]}
            n0 = time.perf_counter()
            status, detail, notes = asyncio.run(_run_notebook(nb, scratch, limits, kind, guard_config))
            results[name] = {"notebook": nbformat.writes(nb), "status": status, "detail": detail,
                             "notes": notes, "seconds": time.perf_counter() - n0}
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"student": job["student"], "assignment": job["assignment"], "notebooks": results,
            "sandbox": kind, "host": socket.gethostname(), "seconds": time.perf_counter() - t0}
