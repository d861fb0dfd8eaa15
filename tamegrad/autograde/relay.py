"""The grader's relay between the tests' kernel and the student's kernel.

Transport: each kernel connects, from inside its own sandbox, to a Unix socket that the
grader listens on in that kernel's socket directory (the only host directory the sandbox
can write, and already needed for ZeroMQ's ``ipc`` transport); the two sandboxes share
nothing, and neither needs a network. The grader, which owns both ends, forwards frames
(:mod:`.wire`) and is where the caps are enforced, since neither kernel can be made to
enforce them on itself:

* a frame over :data:`.wire.MAX_MESSAGE` bytes from the student's side is not read: the
  student's connection is closed and the pending call fails with ``WireError``;
* a call (or a ``describe``) the student's side does not answer within ``timeout`` seconds
  (time the tests' side spends on call-backs excluded) interrupts the student's kernel;
  if it has not answered ``grace`` seconds later, the call fails with ``TimeoutError`` and
  every later call fails at once (the kernel stopped answering);
* a student side that is gone (the kernel died, ``serve`` was replaced) fails calls at once.

The relay parses only the tests' frames (to know which call is pending); the student's
frames are forwarded unparsed except for the few fields that say whether the pending call
was answered, and the tests' side decodes them strictly.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass, field

from . import wire


@dataclass
class RelayStats:
    calls: int = 0
    timeouts: int = 0  # calls the student's side did not answer in time
    cell_timeouts: int = 0  # cells (either kernel) interrupted at the per-cell limit
    too_large: int = 0
    notes: list[str] = field(default_factory=list)


class Relay:
    def __init__(
        self,
        student_path: str,
        trusted_path: str,
        *,
        timeout: float,
        interrupt,
        grace: float = 3.0,
        max_message: int = wire.MAX_MESSAGE,
    ):
        self.student_path, self.trusted_path = student_path, trusted_path
        self.timeout, self.grace, self.max_message = timeout, grace, max_message
        self.interrupt = interrupt  # async callable: interrupt the student's kernel
        self.stats = RelayStats()
        self.dead = ""  # why the student's side no longer answers
        self._student: asyncio.StreamWriter | None = None
        self._student_ready = asyncio.Event()
        self._trusted: asyncio.StreamWriter | None = None
        self._pending: int | None = None  # id of the call the student's side must answer
        self._deadline: float | None = None
        self._answered = asyncio.Event()
        self._servers: list = []
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        self._servers = [
            await asyncio.start_unix_server(self._on_student, path=self.student_path, limit=1 << 16),
            await asyncio.start_unix_server(self._on_trusted, path=self.trusted_path, limit=1 << 16),
        ]
        self._watch = asyncio.ensure_future(self._watchdog())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        for w in (self._student, self._trusted):
            if w is not None:
                w.close()
        for s in self._servers:
            s.close()

    @property
    def pending(self) -> int | None:
        """The id of the call the student's side has not answered yet."""
        return self._pending

    # -- sessions ---------------------------------------------------------------------
    async def wait_for_student(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._student_ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def end_session(self) -> None:
        """Tell the student's ``serve`` to return (after a test cell)."""
        if self._student is not None:
            try:
                self._student.write(wire.dumps({"op": "done"}))
                await self._student.drain()
            except (ConnectionError, OSError):
                pass

    def mark_dead(self, why: str) -> None:
        if not self.dead:
            self.dead = why

    # -- frames -----------------------------------------------------------------------
    async def _frame(self, reader: asyncio.StreamReader) -> bytes:
        (n,) = struct.unpack(">I", await reader.readexactly(4))
        if n > self.max_message:
            raise wire.WireError(f"a message of {n} bytes is over the limit of {self.max_message}")
        return await reader.readexactly(n)

    async def _to_trusted(self, body: bytes) -> None:
        if self._trusted is not None:
            self._trusted.write(struct.pack(">I", len(body)) + body)
            await self._trusted.drain()

    async def _fail_pending(self, kind: str, message: str) -> None:
        rid, self._pending, self._deadline = self._pending, None, None
        if rid is not None:
            await self._to_trusted(
                json.dumps({"op": "raise", "id": rid, "type": kind, "message": message, "stdout": ""}).encode()
            )

    async def _on_trusted(self, reader, writer) -> None:
        self._trusted = writer
        try:
            while True:
                body = await self._frame(reader)
                msg = wire.loads(body)
                op = msg["op"]
                if op in ("call", "describe"):
                    self.stats.calls += op == "call"
                    self._pending, self._deadline = msg.get("id"), time.monotonic() + self.timeout
                    self._answered.clear()
                elif op in ("result", "raise") and self._pending is not None:
                    self._deadline = time.monotonic() + self.timeout  # the student's turn again
                if self.dead or not await self.wait_for_student(10.0 if not self.dead else 0):
                    self.mark_dead(self.dead or "the student's kernel did not connect")
                    await self._fail_pending("ConnectionError", f"the student's kernel does not answer: {self.dead}")
                    continue
                try:
                    self._student.write(struct.pack(">I", len(body)) + body)
                    await self._student.drain()
                except (ConnectionError, OSError):
                    await self._fail_pending("ConnectionError", "the student's kernel closed the connection")
        except (asyncio.IncompleteReadError, ConnectionError, wire.WireError):
            pass
        finally:
            writer.close()
            self._trusted = None

    async def _on_student(self, reader, writer) -> None:
        if self._student is not None:  # one session at a time
            writer.close()
            return
        self._student = writer
        self._student_ready.set()
        try:
            while True:
                try:
                    body = await self._frame(reader)
                except wire.WireError as exc:
                    self.stats.too_large += 1
                    self.stats.notes.append(f"a reply from the student's kernel was refused: {exc}")
                    await self._fail_pending("WireError", str(exc))
                    break
                rid, op = _peek(body)
                if rid is not None and rid == self._pending and op in ("result", "raise", "described"):
                    self._pending, self._deadline = None, None
                    self._answered.set()
                elif op == "callback" and self._pending is not None:
                    self._deadline = None  # the tests' side is computing
                await self._to_trusted(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._student = None
            self._student_ready.clear()
            if self._pending is not None:
                await self._fail_pending("ConnectionError", "the student's kernel stopped before it answered")

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self._deadline is None or time.monotonic() < self._deadline:
                continue
            rid = self._pending
            self.stats.timeouts += 1
            self._deadline = None
            try:
                await self.interrupt()
            except Exception:  # noqa: BLE001
                pass
            try:
                await asyncio.wait_for(self._answered.wait(), self.grace)
                continue  # it answered the interrupt (with KeyboardInterrupt)
            except TimeoutError:
                pass
            if self._pending == rid:
                self.mark_dead(f"a call did not return within {self.timeout:g} s and the kernel ignored the interrupt")
                await self._fail_pending("TimeoutError", f"the call did not return within {self.timeout:g} s")


def _peek(body: bytes) -> tuple[int | None, str | None]:
    """The id and op of a student frame (just enough to follow the pending call)."""
    try:
        msg = json.loads(body)
    except ValueError:
        return None, None
    if type(msg) is not dict:
        return None, None
    rid, op = msg.get("id"), msg.get("op")
    return (rid if type(rid) is int else None), (op if type(op) is str else None)
