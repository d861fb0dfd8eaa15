"""The student's side of a test cell: answer the tests' calls, as data, until told to stop.

The grader runs ``serve(path, namespace)`` in the student's kernel while a test cell runs in
the tests' kernel. It connects to the grader's relay at ``path`` and answers:

* ``{"op": "describe", "id", "names"}``: for each name, ``{"kind": "callable"}``,
  ``{"kind": "value", "value": …}`` (data, see :mod:`.wire`), ``{"kind": "opaque"}`` or
  ``{"kind": "absent"}``;
* ``{"op": "call", "id", "name", "args", "kwargs", "errstate"}``: calls the student's
  function with the decoded arguments (numpy's error state set as the caller's), and
  answers ``{"op": "result", "id", "value", "args", "kwargs", "stdout"}`` (the arguments
  as they are after the call, so that in-place changes travel back) or ``{"op": "raise",
  "id", "type", "message", "stdout"}``. A callable argument is a stand-in that asks the
  tests' side to call the original: ``{"op": "callback", "id", "fn", "args", "kwargs"}``,
  answered by ``result`` or ``raise`` with the same id;
* ``{"op": "done"}``: returns.

Everything here runs in the student's interpreter, so the student can change any of it:
that is allowed for. The tests' side only ever receives data it decodes strictly.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import itertools
import socket

from . import wire

STDOUT_CHARS = 20_000
MESSAGE_CHARS = 2_000


class _Capped(io.StringIO):
    def write(self, s):
        if self.tell() < STDOUT_CHARS:
            return super().write(s[: STDOUT_CHARS - self.tell()])
        return len(s)


def _exception(exc: BaseException) -> tuple[str, str]:
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "(the exception could not be shown)"
    return type(exc).__name__[:100], message[:MESSAGE_CHARS]


class _Session:
    def __init__(self, sock, namespace):
        self.sock = sock
        self.ns = namespace
        self.ids = itertools.count(1_000_000)

    def stand_in(self, index: int):
        def call_back(*args, **kwargs):
            cid = next(self.ids)
            cb: list = []
            wire.send(
                self.sock,
                {
                    "op": "callback",
                    "id": cid,
                    "fn": index,
                    "args": wire.encode(list(args)),
                    "kwargs": wire.encode(dict(kwargs)),
                },
            )
            while True:
                reply = wire.recv(self.sock)
                if reply.get("id") == cid and reply["op"] == "result":
                    return wire.decode(reply["value"])
                if reply.get("id") == cid and reply["op"] == "raise":
                    cls = getattr(builtins, str(reply.get("type")), None)
                    if not (isinstance(cls, type) and issubclass(cls, Exception)):
                        cls = RuntimeError
                    raise cls(reply.get("message", ""))
                if reply["op"] == "call":  # a nested call to another student function
                    self.answer(reply)
                cb.append(reply)

        return call_back

    def describe(self, msg) -> dict:
        out = {}
        for name in msg.get("names", []):
            if name not in self.ns:
                out[name] = {"kind": "absent"}
                continue
            value = self.ns[name]
            if callable(value) and not isinstance(value, type):
                out[name] = {"kind": "callable"}
                continue
            try:
                out[name] = {"kind": "value", "value": wire.encode(value)}
            except Exception:  # noqa: BLE001
                out[name] = {"kind": "opaque"}
        return {"op": "described", "id": msg.get("id"), "names": out}

    def answer(self, msg) -> None:
        import numpy as np

        decoder = wire.Decoder(callback=self.stand_in, student=lambda n: self.ns[n])
        buf = _Capped()
        try:
            fn = self.ns[msg["name"]]
            args = decoder.decode(msg["args"])
            kwargs = decoder.decode(msg["kwargs"])
            with (
                contextlib.redirect_stdout(buf),
                contextlib.redirect_stderr(buf),
                np.errstate(**msg.get("errstate", {})),
            ):
                value = fn(*args, **kwargs)
            enc = wire.Encoder(student_name=lambda x: None)
            reply = {
                "op": "result",
                "id": msg["id"],
                "value": enc.encode(value),
                "args": _post(enc, args),
                "kwargs": _post(enc, kwargs),
                "stdout": buf.getvalue(),
            }
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt too: the test must go on
            kind, message = _exception(exc)
            reply = {"op": "raise", "id": msg.get("id"), "type": kind, "message": message, "stdout": buf.getvalue()}
        try:
            wire.send(self.sock, reply)
        except wire.WireError as exc:
            wire.send(
                self.sock,
                {
                    "op": "raise",
                    "id": msg.get("id"),
                    "type": "WireError",
                    "message": str(exc)[:MESSAGE_CHARS],
                    "stdout": "",
                },
            )


def _post(enc, value):
    """The arguments after the call; ones that cannot be encoded (callables) become None."""

    def one(v):
        try:
            return enc.encode(v)
        except wire.WireError:
            return None

    if isinstance(value, dict):
        return {"$dict": [[k, one(v)] for k, v in value.items()]}
    return [one(v) for v in value]


def serve(path: str, namespace: dict) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    session = _Session(sock, namespace)
    try:
        while True:
            try:
                msg = wire.recv(sock)
                op = msg["op"]
                if op == "done":
                    return
                if op == "describe":
                    wire.send(sock, session.describe(msg))
                elif op == "call":
                    session.answer(msg)
            except (EOFError, OSError):  # the grader closed the connection
                return
            except KeyboardInterrupt:  # an interrupt that came between calls: keep serving
                continue
    finally:
        sock.close()
