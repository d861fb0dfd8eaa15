"""What crosses between the student's kernel and the tests' kernel: data, in JSON, never code.

A value is encoded as JSON with an explicit schema. Plain JSON holds ``None``, ``bool``,
``int``, finite ``float``, ``str`` and lists; everything else is a one-key object whose key
is a tag:

=============  ============================================================================
``$float``     ``"nan"``, ``"inf"`` or ``"-inf"``
``$complex``   ``[re, im]`` (each a float as above)
``$bytes``     base64 text
``$tuple``     a list of values
``$dict``      a list of ``[key, value]`` pairs (keys are values too)
``$nd``        ``{"dtype", "shape", "data"}``: a numpy array, C order, raw bytes in base64;
               ``dtype`` from :data:`DTYPES` (no object arrays)
``$np``        ``{"dtype", "data"}``: a numpy scalar (``np.float64(…)``)
``$rng``       ``{"bit_generator", "state"}``: a ``np.random.Generator`` (its bit generator
               from :data:`BIT_GENERATORS` and that generator's state dict)
``$tensor``    ``{"data", "grad", "requires_grad"}``: a :class:`tamegrad.Tensor` by value
``$torch``     ``{"data", "grad", "requires_grad"}``: a torch tensor by value
``$module``    ``{"class", "state"}``: a :mod:`tamegrad.nn` module (class from
               :data:`MODULE_CLASSES`) as its attributes, rebuilt without calling ``__init__``
``$ref``       ``"tamegrad.functional.relu"``: a function of a :data:`REF_MODULES` module,
               looked up by name on the other side (an MLP's activation)
``$fn``        an integer: a callable of the tests' side, called back there
``$student``   a name: a function of the student's side (a proxy passed back)
=============  ============================================================================

Decoding is strict: an unknown tag, a second key, a dtype outside :data:`DTYPES`, a
shape that does not match the bytes, more than :data:`MAX_DEPTH` levels or
:data:`MAX_ITEMS` items is a :class:`WireError`; nothing is ever evaluated. Encoding
reads values only through the exact types above (``type(x) is float``; a subclass of
``ndarray`` is copied to a plain array with ``np.array(x, copy=True, subok=False)``...),
so an object of the student's making cannot run code in the tests' process: its methods
run, if at all, on the student's side, before it becomes data.

Frames on a stream socket: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import base64
import json
import math
import struct

MAX_DEPTH = 40
MAX_ITEMS = 200_000
MAX_MESSAGE = 64 * 1024**2  # bytes of one frame
DTYPES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    }
)
MODULE_CLASSES = frozenset({"Linear", "BatchNorm1d", "MLP", "Sequential", "ReLU", "Tanh", "Sigmoid"})
REF_MODULES = frozenset({"tamegrad.functional", "tamegrad.nn", "numpy"})
BIT_GENERATORS = frozenset({"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"})
TAGS = frozenset(
    {
        "$rng",
        "$float",
        "$complex",
        "$bytes",
        "$tuple",
        "$dict",
        "$nd",
        "$np",
        "$tensor",
        "$torch",
        "$module",
        "$ref",
        "$fn",
        "$student",
    }
)


class WireError(ValueError):
    """A message that does not follow the schema (or is too big, or too deep)."""


# ------------------------------------------------------------------------------ encoding
def _float(x: float):
    if math.isfinite(x):
        return x
    return {"$float": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _array(a) -> dict:
    import numpy as np

    a = np.array(a, copy=True, subok=False, order="C")
    if a.dtype.name not in DTYPES:
        raise WireError(f"arrays of dtype {a.dtype.name} cannot cross (only {', '.join(sorted(DTYPES))})")
    return {
        "$nd": {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}
    }


class Encoder:
    """``encode(value)`` to JSON-able data. ``callables`` (a list) collects the callables
    met on the way: each becomes ``{"$fn": index}``; ``student_name(obj)`` gives the name
    of a proxy, or ``None``."""

    def __init__(self, callables: list | None = None, student_name=None):
        self.callables = callables
        self.student_name = student_name or (lambda obj: None)
        self.items = 0

    def encode(self, x, depth: int = 0):
        import numpy as np

        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError("the value is nested too deeply or has too many items")
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x
        if t is float:
            return _float(x)
        if t is complex:
            return {"$complex": [_float(x.real), _float(x.imag)]}
        if t in (bytes, bytearray):
            return {"$bytes": base64.b64encode(bytes(x)).decode("ascii")}
        if t is tuple:
            return {"$tuple": [self.encode(v, depth + 1) for v in x]}
        if t is list:
            return [self.encode(v, depth + 1) for v in x]
        if t is dict:
            return {"$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in x.items()]}
        if isinstance(x, np.ndarray):
            return _array(x)
        if isinstance(x, np.generic) and x.dtype.name in DTYPES:
            return {
                "$np": {
                    "dtype": x.dtype.name,
                    "data": base64.b64encode(np.array(x, dtype=x.dtype).tobytes()).decode("ascii"),
                }
            }
        if t is np.random.Generator:
            bg = type(x.bit_generator).__name__
            if bg not in BIT_GENERATORS:
                raise WireError(f"a Generator with bit generator {bg} cannot cross")
            return {"$rng": {"bit_generator": bg, "state": self.encode(x.bit_generator.state, depth + 1)}}
        name = self.student_name(x)
        if name is not None:
            return {"$student": name}
        mod = getattr(t, "__module__", "") or ""
        if mod.startswith("tamegrad"):
            from tamegrad.autodiff import Tensor

            if t is Tensor:
                return {
                    "$tensor": {
                        "data": _array(x.data),
                        "grad": None if x.grad is None else _array(x.grad),
                        "requires_grad": bool(x.requires_grad),
                    }
                }
            from tamegrad import nn

            if t.__name__ in MODULE_CLASSES and getattr(nn, t.__name__, None) is t:
                state = {k: self.encode(v, depth + 1) for k, v in vars(x).items() if not k.startswith("__")}
                return {"$module": {"class": t.__name__, "state": state}}
        if mod == "torch" and t.__name__ in ("Tensor", "Parameter"):
            return {
                "$torch": {
                    "data": _array(x.detach().cpu().numpy()),
                    "grad": None if x.grad is None else _array(x.grad.detach().cpu().numpy()),
                    "requires_grad": bool(x.requires_grad),
                }
            }
        ref = _ref_name(x)
        if ref is not None:
            return {"$ref": ref}
        if callable(x) and self.callables is not None:
            self.callables.append(x)
            return {"$fn": len(self.callables) - 1}
        raise WireError(f"a value of type {t.__module__}.{t.__qualname__} cannot cross between the kernels")


def _ref_name(x) -> str | None:
    """``"module.name"`` when ``x`` is that module's own function (or a numpy ufunc)."""
    import importlib

    import numpy as np

    fmod, name = getattr(x, "__module__", None), getattr(x, "__name__", None)
    if fmod not in REF_MODULES or not isinstance(name, str) or name.startswith("_"):
        return None
    if fmod == "numpy" and not isinstance(x, np.ufunc):
        return None
    try:
        return f"{fmod}.{name}" if getattr(importlib.import_module(fmod), name, None) is x else None
    except ImportError:
        return None


def encode(x, callables: list | None = None, student_name=None):
    return Encoder(callables, student_name).encode(x)


# ------------------------------------------------------------------------------ decoding
class Decoder:
    """``decode(data)``: the value. ``callback(index)`` makes the stand-in of ``{"$fn": i}``;
    ``student(name)`` the stand-in of ``{"$student": name}``. Both default to an error."""

    def __init__(self, callback=None, student=None):
        self.callback = callback
        self.student = student
        self.items = 0

    def _num(self, v):
        if type(v) is dict and set(v) == {"$float"}:
            s = v["$float"]
            if s not in ("nan", "inf", "-inf"):
                raise WireError(f"bad $float {s!r}")
            return float(s)
        if type(v) in (int, float) and type(v) is not bool:
            return float(v)
        raise WireError("a number was expected")

    def _nd(self, spec):
        import numpy as np

        if type(spec) is not dict or set(spec) != {"$nd"}:
            raise WireError("an array was expected")
        body = spec["$nd"]
        if type(body) is not dict or set(body) != {"dtype", "shape", "data"}:
            raise WireError("bad $nd")
        dtype, shape, data = body["dtype"], body["shape"], body["data"]
        if dtype not in DTYPES or type(shape) is not list or type(data) is not str:
            raise WireError("bad $nd dtype, shape or data")
        if not all(type(n) is int and 0 <= n for n in shape) or len(shape) > 32:
            raise WireError("bad $nd shape")
        raw = base64.b64decode(data, validate=True)
        count = math.prod(shape)
        if count * np.dtype(dtype).itemsize != len(raw):
            raise WireError("the $nd bytes do not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def decode(self, x, depth: int = 0):
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError("the value is nested too deeply or has too many items")
        t = type(x)
        if x is None or t in (bool, int, str):
            return x
        if t is float:
            return x
        if t is list:
            return [self.decode(v, depth + 1) for v in x]
        if t is not dict or len(x) != 1:
            raise WireError("a tagged object with exactly one key was expected")
        ((tag, body),) = x.items()
        if tag not in TAGS:
            raise WireError(f"unknown tag {tag!r}")
        if tag == "$float":
            return self._num(x)
        if tag == "$complex":
            if type(body) is not list or len(body) != 2:
                raise WireError("bad $complex")
            return complex(self._num(body[0]), self._num(body[1]))
        if tag == "$bytes":
            if type(body) is not str:
                raise WireError("bad $bytes")
            return base64.b64decode(body, validate=True)
        if tag == "$tuple":
            if type(body) is not list:
                raise WireError("bad $tuple")
            return tuple(self.decode(v, depth + 1) for v in body)
        if tag == "$dict":
            if type(body) is not list or not all(type(p) is list and len(p) == 2 for p in body):
                raise WireError("bad $dict")
            out = {}
            for k, v in body:
                key = self.decode(k, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise WireError("an unhashable dict key") from None
                out[key] = self.decode(v, depth + 1)
            return out
        if tag == "$nd":
            return self._nd(x)
        if tag == "$np":
            import numpy as np

            if type(body) is not dict or set(body) != {"dtype", "data"} or body["dtype"] not in DTYPES:
                raise WireError("bad $np")
            raw = base64.b64decode(body["data"], validate=True)
            if len(raw) != np.dtype(body["dtype"]).itemsize:
                raise WireError("bad $np size")
            return np.frombuffer(raw, dtype=body["dtype"])[0]
        if tag == "$rng":
            import numpy as np

            if (
                type(body) is not dict
                or set(body) != {"bit_generator", "state"}
                or body["bit_generator"] not in BIT_GENERATORS
            ):
                raise WireError("bad $rng")
            bg = getattr(np.random, body["bit_generator"])()
            try:
                bg.state = self.decode(body["state"], depth + 1)
            except (TypeError, ValueError, KeyError) as exc:
                raise WireError(f"bad $rng state: {exc}") from None
            return np.random.Generator(bg)
        if tag in ("$tensor", "$torch"):
            if (
                type(body) is not dict
                or set(body) != {"data", "grad", "requires_grad"}
                or type(body["requires_grad"]) is not bool
            ):
                raise WireError(f"bad {tag}")
            data = self._nd(body["data"])
            grad = None if body["grad"] is None else self._nd(body["grad"])
            if tag == "$tensor":
                from tamegrad.autodiff import Tensor

                out = Tensor(data, requires_grad=body["requires_grad"])
                out.grad = grad
                return out
            import torch

            out = torch.from_numpy(data).requires_grad_(body["requires_grad"] and data.dtype.kind in "fc")
            if grad is not None:
                out.grad = torch.from_numpy(grad)
            return out
        if tag == "$module":
            from tamegrad import nn

            if (
                type(body) is not dict
                or set(body) != {"class", "state"}
                or body["class"] not in MODULE_CLASSES
                or type(body["state"]) is not dict
            ):
                raise WireError("bad $module")
            cls = getattr(nn, body["class"], None)
            if not isinstance(cls, type):
                raise WireError(f"no module class {body['class']!r}")
            obj = cls.__new__(cls)
            for k, v in body["state"].items():
                if type(k) is not str or k.startswith("__"):
                    raise WireError("bad $module attribute")
                obj.__dict__[k] = self.decode(v, depth + 1)
            return obj
        if tag == "$ref":
            import importlib

            if type(body) is not str or "." not in body:
                raise WireError("bad $ref")
            mod, _, name = body.rpartition(".")
            if mod not in REF_MODULES or name.startswith("_"):
                raise WireError(f"$ref outside {sorted(REF_MODULES)}")
            value = getattr(importlib.import_module(mod), name, None)
            if value is None or _ref_name(value) != body:
                raise WireError(f"no function {body}")
            return value
        if tag == "$fn":
            if type(body) is not int or self.callback is None:
                raise WireError("bad $fn")
            return self.callback(body)
        if tag == "$student":
            if type(body) is not str or self.student is None:
                raise WireError("bad $student")
            return self.student(body)
        raise WireError(f"unknown tag {tag!r}")  # pragma: no cover - TAGS and the branches agree


def decode(x, callback=None, student=None):
    return Decoder(callback, student).decode(x)


# ------------------------------------------------------------------------------ frames
def dumps(message: dict) -> bytes:
    body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_MESSAGE:
        raise WireError(f"a message of {len(body)} bytes is over the limit of {MAX_MESSAGE}")
    return struct.pack(">I", len(body)) + body


def loads(body: bytes) -> dict:
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    if type(message) is not dict or type(message.get("op")) is not str:
        raise WireError("a message is an object with an 'op'")
    return message


def _no_constant(name):
    raise WireError(f"JSON constant {name} is not allowed")


def send(sock, message: dict) -> None:
    sock.sendall(dumps(message))


def _read(sock, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(sock, limit: int = MAX_MESSAGE) -> dict:
    (n,) = struct.unpack(">I", _read(sock, 4))
    if n > limit:
        raise WireError(f"a message of {n} bytes is over the limit of {limit}")
    return loads(_read(sock, n))
