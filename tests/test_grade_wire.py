"""Fast checks of what crosses between the student's kernel and the tests' kernel.

The codec (:mod:`tamegrad.autograde.wire`) round-trips the course's values and refuses
everything else; the proxies (:mod:`tamegrad.autograde.proxy`) talk through the grader's
relay (:mod:`tamegrad.autograde.relay`) to a student side (:mod:`tamegrad.autograde.serve`)
run here in a thread: in-place changes come back, exceptions keep their built-in type,
call-backs run on the tests' side, a call that never returns is interrupted, a reply that
is too big is refused.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import math
import threading
import time

import numpy as np
import pytest

import tamegrad as tg
from tamegrad.autograde import proxy, relay, serve, wire
from tamegrad.grading import integrity


def _roundtrip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value), allow_nan=False)))


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -(2**70), 1.5, "text", b"\x00\xff", (1, [2.0, "x"]), {"a": 1, 2: (3,), (1, 2): None}, 1 + 2j],
)
def test_plain_values_round_trip(value):
    assert _roundtrip(value) == value and type(_roundtrip(value)) is type(value)


def test_non_finite_floats_arrays_and_scalars_round_trip():
    out = _roundtrip([math.nan, math.inf, -math.inf])
    assert math.isnan(out[0]) and out[1:] == [math.inf, -math.inf]
    rng = np.random.default_rng(0)
    for a in (
        rng.normal(size=(3, 4)),
        rng.integers(0, 9, size=5).astype(np.int32),
        np.array([True, False]),
        np.zeros((0, 3)),
        np.array([np.nan, np.inf]),
        rng.normal(size=(2, 3)).T,
    ):
        b = _roundtrip(a)
        assert type(b) is np.ndarray and b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(b, a)
    rng = np.random.default_rng(5)
    copy = _roundtrip(rng)
    assert copy is not rng and copy.standard_normal(3).tolist() == rng.standard_normal(3).tolist()
    s = _roundtrip(np.float64(2.5))
    assert type(s) is np.float64 and s == 2.5


def test_tensors_and_modules_travel_by_value():
    t = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t.grad = np.full((2, 3), 0.5)
    u = _roundtrip(t)
    assert type(u) is tg.Tensor and u.requires_grad and u is not t
    np.testing.assert_array_equal(u.data, t.data)
    np.testing.assert_array_equal(u.grad, t.grad)
    from tamegrad import nn

    layer = nn.Linear(3, 2, rng=np.random.default_rng(1))
    copy = _roundtrip(layer)
    assert type(copy) is nn.Linear
    np.testing.assert_array_equal(copy.weight.data, layer.weight.data)
    x = tg.Tensor(np.random.default_rng(2).normal(size=(4, 3)))
    np.testing.assert_allclose(copy(x).data, layer(x).data)
    torch = pytest.importorskip("torch")
    q = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    r = _roundtrip(q)
    assert isinstance(r, torch.Tensor) and r.requires_grad and r.dtype == torch.float64


def test_objects_of_other_types_do_not_cross():
    class Liar:
        def __array__(self, dtype=None, copy=None):
            return np.ones(3)

        def __eq__(self, other):
            return True

    for bad in (Liar(), object(), np.array([object()]), lambda x: x):
        with pytest.raises(wire.WireError):
            wire.encode(bad)

    class Sub(np.ndarray):
        def __eq__(self, other):
            return True

    assert type(_roundtrip(np.ones(2).view(Sub))) is np.ndarray


@pytest.mark.parametrize(
    "data",
    [
        {"$eval": "1"},
        {"$nd": {"dtype": "object", "shape": [1], "data": ""}},
        {"$nd": {"dtype": "float64", "shape": [2], "data": "AAAA"}},
        {"$tuple": [1], "$dict": []},
        {"plain": 1},
        {"$float": "1e999"},
        {"$module": {"class": "Popen", "state": {}}},
        {"$ref": "os.system"},
        {"$ref": "numpy.load"},
        {"$fn": 0},
        {"$student": "f"},
    ],
)
def test_decoding_is_strict(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_nesting_and_size_are_bounded():
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError):
        wire.encode(deep)
    with pytest.raises(wire.WireError):
        wire.decode(json.loads(json.dumps(deep)))
    with pytest.raises(wire.WireError):
        wire.loads(b"[1, 2]")
    with pytest.raises(wire.WireError):
        wire.loads(b'{"op": "x", "v": NaN}')


def test_student_errors_keep_builtin_types_only():
    err = proxy.student_error("RuntimeError", "boom")
    assert isinstance(err, RuntimeError) and isinstance(err, proxy.StudentError) and str(err) == "boom"
    assert type(err).__name__ == "RuntimeError"
    other = proxy.student_error("MyOwnError", "x")
    assert isinstance(other, proxy.StudentError) and not isinstance(other, RuntimeError)
    for name, base in (
        ("MemoryError", MemoryError),
        ("FloatingPointError", FloatingPointError),
        ("OSError", OSError),
        ("UnicodeDecodeError", proxy.StudentError),
    ):
        assert isinstance(proxy.student_error(name, "m"), base)
    interrupt = proxy.student_error("KeyboardInterrupt", "")
    assert not isinstance(interrupt, KeyboardInterrupt) and isinstance(interrupt, Exception)


def test_check_not_autodiff_reads_a_proxys_source():
    setup = "import numpy as np\nimport torch\nimport tamegrad as tg\n"
    good = proxy.StudentFunction(
        "f", "/nowhere", integrity.CELL_SEPARATOR.join([setup, "def f(x):\n    return np.sum(x * x)\n"])
    )
    integrity.check_not_autodiff(good)
    # a parameter named like a module the setup imports is the function's own variable
    shadow = proxy.StudentFunction(
        "f",
        "/nowhere",
        integrity.CELL_SEPARATOR.join(
            [setup + "from tamegrad.diagnostics import norms\n", "def f(norms, grad=None):\n    return max(norms)\n"]
        ),
    )
    integrity.check_not_autodiff(shadow)
    for body in (
        "def f(x):\n    return torch.sum(x)\n",
        "import sys\ndef f(x):\n    return sys.modules['tamegrad'].functional.relu(x)\n",
        "from tamegrad.clip import global_norm as g\ndef h(x):\n    return g(x)\ndef f(x):\n    return h(x)\n",
        "def f(x):\n    return vars(np)['sum'](x)\n",
        "x = 1\n",
        "def f(x):\n    y = x\n    return tg.grad(lambda v: v)(y)\n",
    ):
        bad = proxy.StudentFunction("f", "/nowhere", integrity.CELL_SEPARATOR.join([setup, body]))
        with pytest.raises(AssertionError):
            integrity.check_not_autodiff(bad)


# ------------------------------------------------------------------------------ end to end
STUDENT = """
import numpy as np
import time
def clip(params, c):
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -c, c, out=p.grad)
def draw(rng, n):
    return rng.standard_normal(n)
def rescale(params, c):
    for p in params:
        p.grad = p.grad * c          # a new array, not in place
    return len(params)
def fail(x):
    raise RuntimeError(f"bad {x}")
def descend(grad_fn, w, lr, steps):
    for _ in range(steps):
        w = w - lr * grad_fn(w)
    return w
def loops(x):
    while True:
        pass
def big(n):
    import tamegrad.autograde.wire as w
    w.MAX_MESSAGE = 10**10
    return np.ones(n)
def overflow(x):
    return np.exp(x)
def shout(x):
    print("student says", x)
    return x
"""


@pytest.fixture()
def link(tmp_path):
    ns: dict = {}
    exec(compile(STUDENT, "<student>", "exec"), ns)  # noqa: S102 - the fake student's own code
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    holder: dict = {}

    async def interrupt():
        tid = holder.get("serve_thread")
        if tid is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(KeyboardInterrupt))

    r = relay.Relay(
        str(tmp_path / "s.sock"),
        str(tmp_path / "t.sock"),
        timeout=3.0,
        interrupt=interrupt,
        grace=1.0,
        max_message=1024**2,
    )
    asyncio.run_coroutine_threadsafe(r.start(), loop).result(5)

    def run_serve():
        holder["serve_thread"] = threading.get_ident()
        serve.serve(str(tmp_path / "s.sock"), ns)

    st = threading.Thread(target=run_serve, daemon=True)
    st.start()
    path = str(tmp_path / "t.sock")
    user: dict = {}
    bound = proxy.bind(
        user, path, ["clip", "rescale", "fail", "descend", "loops", "big", "overflow", "shout", "draw", "missing"], ""
    )
    yield user, bound, r
    asyncio.run_coroutine_threadsafe(r.end_session(), loop).result(5)
    st.join(5)
    proxy.close(path)
    asyncio.run_coroutine_threadsafe(r.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)


def test_proxies_carry_in_place_changes_errors_and_callbacks(link, capsys):
    user, bound, r = link
    assert "missing" not in bound and "missing" not in user and "clip" in bound
    rng = np.random.default_rng(3)
    params = [tg.Tensor(np.zeros(3), requires_grad=True) for _ in range(3)]
    params[0].grad = 4 * rng.standard_normal(3)
    params[2].grad = 4 * rng.standard_normal(3)
    held = params[0].grad
    expected = np.clip(held, -1.0, 1.0)
    assert user["clip"](params, 1.0) is None
    assert params[0].grad is held  # changed in place, where the caller holds it
    np.testing.assert_array_equal(held, expected)
    assert params[1].grad is None
    assert user["rescale"]([params[0]], 2.0) == 1
    np.testing.assert_array_equal(params[0].grad, 2 * expected)
    with pytest.raises(RuntimeError, match="bad 7"):
        user["fail"](7)
    A = np.diag([1.0, 3.0])
    w = user["descend"](lambda v: A @ v, np.array([1.0, 1.0]), 0.1, 5)  # the gradient is called back here
    np.testing.assert_allclose(w, [0.9**5, 0.7**5])
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            user["overflow"](np.array([1000.0]))
    rng, twin = np.random.default_rng(9), np.random.default_rng(9)
    assert user["draw"](rng, 2).tolist() == twin.standard_normal(2).tolist()
    assert rng.standard_normal() == twin.standard_normal()  # the caller's generator advanced too
    assert user["shout"](5) == 5
    assert "student says 5" in capsys.readouterr().out


def test_a_call_that_never_returns_is_interrupted_and_a_big_reply_refused(link):
    user, _, r = link
    t0 = time.monotonic()
    with pytest.raises(proxy.StudentError):
        user["loops"](1)
    assert time.monotonic() - t0 < 8 and r.stats.timeouts == 1
    assert user["shout"](1) == 1  # the student's side still answers
    with pytest.raises(proxy.StudentError, match="over the limit"):
        user["big"](2 * 10**5)  # 1.6 MB of float64: over the relay's 1 MiB
