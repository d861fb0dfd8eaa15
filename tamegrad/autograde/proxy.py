"""The tests' side: the student's functions as proxies that exchange data with the student's kernel.

The grader runs, in the tests' kernel (a trusted process: the course's own modules, a fresh
working directory, nothing of the submission on ``sys.path``), the setup cells and then,
before each test cell, ``bind(namespace, path, names, source)``. Each ``name`` the student's
own cells define (read from their source, as text) is asked of the student's kernel: a
function becomes a :class:`StudentFunction`, data becomes its decoded value, anything else
is left unbound (the test then fails with ``NameError``, as it would for a missing answer).

Calling a :class:`StudentFunction` sends its arguments as data (:mod:`.wire`), waits for
the answer, copies the arguments' in-place changes back into the caller's objects, prints
what the student's code printed, and returns the decoded value, or raises a
:class:`StudentError` named like the student's exception. A callable argument stays here:
the student's side calls it back through the same connection.

``__tamegrad_source__`` holds the text of the student's cells, so that
:func:`tamegrad.grading.check_not_autodiff` checks the source the student wrote rather
than an object of their making.
"""

from __future__ import annotations

import builtins
import itertools
import socket
import sys

from . import wire

_conn: dict = {}
_ids = itertools.count(1)
_classes: dict[str, type] = {}
_NOT_RAISED = {"KeyboardInterrupt", "SystemExit", "GeneratorExit", "BaseException", "BaseExceptionGroup"}


class StudentError(Exception):
    """An exception raised by the student's code in the student's kernel.

    ``type_name`` is its class name. When that names a built-in exception (``ValueError``),
    the raised object is also an instance of it, so ``except ValueError`` and
    ``check_raises(..., exception=ValueError)`` see it as the student raised it."""

    type_name = "Exception"


def student_error(type_name: str, message: str) -> StudentError:
    type_name = str(type_name)[:100]
    cls = _classes.get(type_name)
    if cls is None:
        base = getattr(builtins, type_name, None)
        if (
            isinstance(base, type)
            and issubclass(base, Exception)
            and type_name not in _NOT_RAISED
            and not issubclass(base, StudentError)
        ):
            cls = type(type_name, (StudentError, base), {"type_name": type_name, "__module__": "student"})
        else:
            name = type_name if type_name.isidentifier() else "StudentError"
            cls = type(name, (StudentError,), {"type_name": type_name, "__module__": "student"})
        _classes[type_name] = cls
    try:
        return cls(str(message)[:2000])
    except TypeError:  # a built-in exception that needs other arguments (UnicodeDecodeError)
        plain = type(type_name, (StudentError,), {"type_name": type_name, "__module__": "student"})
        _classes[type_name] = plain
        return plain(str(message)[:2000])


def _socket(path: str):
    sock = _conn.get(path)
    if sock is None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        _conn[path] = sock
    return sock


def _errstate() -> dict:
    import numpy as np

    return {k: v for k, v in np.geterr().items() if k in ("divide", "over", "under", "invalid")}


class StudentFunction:
    """A function defined in the student's notebook, called in the student's kernel."""

    __tamegrad_source__ = ""  # the class attribute tells check_not_autodiff to read the source text

    def __init__(self, name: str, path: str, source: str):
        self.__name__ = self.__qualname__ = name
        self.__module__ = "__main__"
        self.__doc__ = f"The student's {name} (runs in the student's kernel)."
        self.__tamegrad_source__ = source
        self._path = path

    def __repr__(self):
        return f"<student function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return call(self._path, self.__name__, args, kwargs)


def _student_name(x):
    return x.__name__ if isinstance(x, StudentFunction) else None


def _exchange(sock, request: dict, callables: list, path: str) -> dict:
    """Send ``request``; answer call-backs until the reply with the same id arrives."""
    rid = request["id"]
    wire.send(sock, request)
    while True:
        msg = wire.recv(sock)
        op = msg["op"]
        if op == "callback":
            _answer_callback(sock, msg, callables, path)
            continue
        if msg.get("id") != rid:
            continue  # a late answer to a call that was given up (timeout, interrupt)
        return msg


def _answer_callback(sock, msg, callables, path) -> None:
    cid = msg.get("id")
    try:
        index = msg.get("fn")
        if type(index) is not int or not 0 <= index < len(callables):
            raise wire.WireError("a call-back to an unknown function")
        dec = wire.Decoder(student=lambda n: StudentFunction(n, path, ""))
        args, kwargs = dec.decode(msg.get("args")), dec.decode(msg.get("kwargs"))
        if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise wire.WireError("bad call-back arguments")
        value = callables[index](*args, **kwargs)
        reply = {"op": "result", "id": cid, "value": wire.encode(value, callables, _student_name)}
    except Exception as exc:  # noqa: BLE001 - the student's side gets the error, as data
        reply = {"op": "raise", "id": cid, "type": type(exc).__name__, "message": str(exc)[:2000]}
    wire.send(sock, reply)


def call(path: str, name: str, args: tuple, kwargs: dict):
    __tracebackhide__ = True
    callables: list = []
    enc = wire.Encoder(callables, _student_name)
    request = {
        "op": "call",
        "id": next(_ids),
        "name": name,
        "args": enc.encode(list(args)),
        "kwargs": {"$dict": [[k, enc.encode(v)] for k, v in kwargs.items()]},
        "errstate": _errstate(),
    }
    try:
        reply = _exchange(_socket(path), request, callables, path)
        if reply["op"] == "raise":
            _print(reply.get("stdout"))
            raise student_error(reply.get("type", "Exception"), reply.get("message", ""))
        if reply["op"] != "result":
            raise wire.WireError(f"unexpected answer {reply['op']!r}")
        dec = wire.Decoder(student=lambda n: StudentFunction(n, path, ""))
        value = dec.decode(reply.get("value"))
        after_args, after_kwargs = dec.decode(reply.get("args")), dec.decode(reply.get("kwargs"))
    except (wire.WireError, EOFError, OSError) as exc:
        _conn.pop(path, None)
        raise student_error(
            "WireError" if isinstance(exc, wire.WireError) else "ConnectionError",
            f"the student's kernel gave no usable answer to {name}(): {exc}",
        ) from None
    _print(reply.get("stdout"))
    if type(after_args) is list and len(after_args) == len(args):
        for before, after in zip(args, after_args):
            update(before, after)
    if type(after_kwargs) is dict:
        for k, before in kwargs.items():
            if k in after_kwargs:
                update(before, after_kwargs[k])
    return value


def _print(text) -> None:
    if type(text) is str and text:
        sys.stdout.write(text[:20_000])


def update(before, after) -> None:
    """Copy the state ``after`` (decoded data) into the caller's object ``before``, in place."""
    import numpy as np

    if after is None or before is after:
        return
    if type(before) is np.ndarray and type(after) is np.ndarray:
        if before.shape == after.shape and before.flags.writeable:
            np.copyto(before, after, casting="unsafe")
        return
    if type(before) is list and type(after) is list:
        if len(before) == len(after):
            for i, (b, a) in enumerate(zip(before, after)):
                if _mutable(b) and type(a) is type(b):
                    update(b, a)
                elif not _mutable(b):
                    before[i] = a
        else:
            before[:] = after
        return
    if type(before) is dict and type(after) is dict:
        for k, a in after.items():
            if k in before and _mutable(before[k]) and type(a) is type(before[k]):
                update(before[k], a)
            else:
                before[k] = a
        for k in [k for k in before if k not in after]:
            del before[k]
        return
    if type(before) is np.random.Generator and type(after) is np.random.Generator:
        if type(before.bit_generator) is type(after.bit_generator):
            before.bit_generator.state = after.bit_generator.state  # the numbers the student drew
        return
    t = type(before)
    mod = getattr(t, "__module__", "") or ""
    if mod.startswith("tamegrad.") and t.__name__ == "Tensor" and type(after) is t:
        update_array_attr(before, "data", after.data)
        update_array_attr(before, "grad", after.grad)
        before.requires_grad = after.requires_grad
        return
    if mod.startswith("tamegrad.") and type(after) is t:  # a module: its attributes
        for k, a in vars(after).items():
            b = getattr(before, k, None)
            if _mutable(b) and type(a) is type(b):
                update(b, a)
            else:
                setattr(before, k, a)
        return
    if mod == "torch" and type(after).__module__ == "torch":
        import torch

        with torch.no_grad():
            if before.shape == after.shape:
                before.copy_(after)
        if after.grad is None:
            before.grad = None
        elif before.grad is not None and before.grad.shape == after.grad.shape:
            before.grad.copy_(after.grad)
        else:
            before.grad = after.grad.to(before.dtype)


def update_array_attr(obj, attr: str, new) -> None:
    import numpy as np

    old = getattr(obj, attr)
    if new is None:
        setattr(obj, attr, None)
    elif type(old) is np.ndarray and old.shape == new.shape and old.dtype == new.dtype and old.flags.writeable:
        np.copyto(old, new)
    else:
        setattr(obj, attr, new)


def _mutable(x) -> bool:
    import numpy as np

    t = type(x)
    module = getattr(t, "__module__", "") or ""
    return t in (list, dict, np.ndarray, np.random.Generator) or module.startswith(("tamegrad.", "torch"))


def bind(namespace: dict, path: str, names: list[str], source: str) -> list[str]:
    """Bind each of ``names`` that the student's kernel has: functions as proxies, data as values."""
    if not names:
        return []
    try:
        reply = _exchange(_socket(path), {"op": "describe", "id": next(_ids), "names": list(names)}, [], path)
        found = reply.get("names")
        if type(found) is not dict:
            raise wire.WireError("bad describe answer")
    except (wire.WireError, EOFError, OSError):
        _conn.pop(path, None)
        return []
    bound = []
    for name in names:
        info = found.get(name)
        kind = info.get("kind") if type(info) is dict else None
        if kind == "callable":
            namespace[name] = StudentFunction(name, path, source)
        elif kind == "value":
            try:
                namespace[name] = wire.decode(info.get("value"), student=lambda n: StudentFunction(n, path, source))
            except wire.WireError:
                namespace.pop(name, None)
                continue
        else:
            namespace.pop(name, None)
            continue
        bound.append(name)
    return bound


def close(path: str) -> None:
    sock = _conn.pop(path, None)
    if sock is not None:
        sock.close()
