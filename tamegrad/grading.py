"""Checks used by the test cells of the course's exercises (nbgrader assignments).

Every check raises ``AssertionError`` with a message that teaches: what was
checked, on which input (shape and a short repr), the expected value and where
it came from, what came back, the largest relative error, and a hint.

Where expected gradients come from (never from a copy of the answer):

* ``AUTODIFF``: tamegrad differentiates the *forward definition*, a function
  written with tamegrad operations, by reverse mode;
* ``TORCH``: ``torch.autograd`` differentiates the same definition written in torch;
* ``FINITE_DIFFERENCES``: centred differences of the forward definition,
  (F(x + eps e_i) - F(x - eps e_i)) / (2 eps), with F(x) = sum(upstream * f(x)).

A gradient is checked as a vector-Jacobian product: for an output y = f(x) and
a random upstream gradient g = dL/dy (float64, not all ones), the expected
answer is dL/dx = J_f(x)^T g.

Relative error, as in the rest of the course:
``rel_error(a, b) = max|a - b| / max(1e-8, max(|a| + |b|))`` over the finite
entries; non-finite entries (NaN, +inf, -inf) must match exactly.

torch is imported only inside the functions that need it. The numpy functions
used for verdicts are bound when this module is imported, so a notebook that
later replaces, say, ``np.allclose`` or ``np.max`` does not change a verdict.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from typing import Callable, Iterable, Sequence

import numpy as np

from .autodiff import Tensor

# --- numpy bound at import time (see the module docstring) -------------------
_array = np.array
_asarray = np.asarray
_float64 = np.float64
_abs = np.abs
_amax = np.max
_isnan = np.isnan
_isinf = np.isinf
_isfinite = np.isfinite
_array_equal = np.array_equal
_array2string = np.array2string
_errstate = np.errstate
_zeros_like = np.zeros_like
_ndindex = np.ndindex
_sum = np.sum
_default_rng = np.random.default_rng
_unravel_index = np.unravel_index

# --- tolerances, stated once ------------------------------------------------
TOL = 1e-9      # against an exact reference (autodiff, torch, a closed form): rounding only
FD_TOL = 1e-6   # against centred differences with eps = 1e-6 in float64

AUTODIFF = "tamegrad autodiff of the forward definition"
TORCH = "torch.autograd of the forward definition"
FINITE_DIFFERENCES = "centred finite differences of the forward definition"

#: names that, used inside a student's function, would let autodiff or a library
#: produce the answer (checked by :func:`check_not_autodiff`)
AUTODIFF_NAMES = frozenset({
    "backward", "grad", "autograd", "gradcheck", "numerical_grad", "vjp", "jvp", "jacobian",
    "hessian", "retain_grad", "requires_grad", "clip_grad_norm", "clip_grad_norm_",
    "clip_grad_value", "clip_grad_value_", "get_total_norm", "__import__", "importlib",
    "exec", "eval", "compile", "getattr", "globals", "__builtins__",
})
#: modules whose functions must not produce the answer
AUTODIFF_MODULES = frozenset({"torch", "tamegrad", "jax", "autograd", "tensorflow"})


# --------------------------------------------------------------------- basics
def upstream(shape, seed: int = 0) -> np.ndarray:
    """A random upstream gradient g ~ N(0, 1) of the given shape, float64, from
    ``np.random.default_rng(seed)`` (random rather than all ones: with g = 1,
    BatchNorm's dx is identically zero and hides every bug)."""
    return _default_rng(seed).standard_normal(shape)


def _to_array(value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().numpy()
    return _array(value, dtype=_float64)


def rel_error(a, b) -> float:
    """max|a - b| / max(1e-8, max(|a| + |b|)) over entries where both are finite."""
    a, b = _to_array(a), _to_array(b)
    finite = _isfinite(a) & _isfinite(b)
    if not finite.any():
        return 0.0
    a, b = a[finite], b[finite]
    return float(_amax(_abs(a - b)) / max(1e-8, float(_amax(_abs(a) + _abs(b)))))


def describe(value, width: int = 70) -> str:
    """A short description of an input or result: type, shape and a truncated repr."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if isinstance(value, Tensor):
        return "tamegrad Tensor " + describe(value.data, width)
    if isinstance(value, (list, tuple)) and not all(isinstance(v, (int, float)) for v in value):
        kind = "list" if isinstance(value, list) else "tuple"
        parts = ", ".join(describe(v, 30) for v in value[:4])
        return f"{kind} of {len(value)}: [{parts}{', ...' if len(value) > 4 else ''}]"
    if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, _float64)):
        return repr(value)
    if isinstance(value, (float, _float64)):
        return repr(float(value))
    try:
        arr = _asarray(value, dtype=_float64)
    except (TypeError, ValueError):
        text = repr(value)
        return text if len(text) <= width else text[: width - 3] + "..."
    if arr.ndim == 0:
        return repr(float(arr))
    text = _array2string(arr, precision=4, threshold=8, edgeitems=2, max_line_width=10**6).replace("\n", "")
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"array of shape {arr.shape}: {text}"


def _describe_inputs(inputs) -> str:
    if inputs is None:
        return "(see the test)"
    if isinstance(inputs, dict):
        return "\n             ".join(f"{k} = {describe(v)}" for k, v in inputs.items())
    return describe(inputs)


def _fail(what: str, *, inputs=None, expected=None, source: str = "", got=None, error: float | None = None,
          tol: float | None = None, hint: str = "", detail: str = "", note: str = "") -> None:
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    lines = [f"{what}: wrong.", ""]
    if detail:
        lines += [detail, ""]
    lines.append(f"  input:     {_describe_inputs(inputs)}")
    if expected is not None or source:
        lines.append(f"  expected:  {describe(expected)}")
        if source:
            lines.append(f"             (from {source})")
    lines.append(f"  got:       {describe(got)}")
    if error is not None:
        lines.append(f"  max relative error: {error:.3g}" + (f" (tolerance {tol:g})" if tol is not None else ""))
    if note:
        lines.append(note)
    if hint:
        lines += ["", f"  hint: {hint}"]
    raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------- checks
def check_close(got, expected, *, what: str, source: str, inputs=None, hint: str = "", tol: float = TOL) -> None:
    """Pass if ``got`` has the shape of ``expected``, the same NaN and +/-inf entries,
    and ``rel_error(got, expected) <= tol`` on the rest."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    if got is None:
        _fail(what, inputs=inputs, expected=expected, source=source, got=None, hint=hint,
              detail="Your function returned None: did you forget a `return`?")
    try:
        g = _to_array(got)
    except (TypeError, ValueError) as err:
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, hint=hint,
              detail=f"The result cannot be read as an array of numbers ({err}).")
    e = _to_array(expected)
    if g.shape != e.shape:
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, hint=hint,
              detail=f"Shape {g.shape} came back; the expected shape is {e.shape}.")
    nan_e, nan_g = _isnan(e), _isnan(g)
    if not _array_equal(nan_e, nan_g):
        where = "NaN where a number was expected" if (nan_g & ~nan_e).any() else "a number where NaN was expected"
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, hint=hint,
              detail=f"Your result has {where}.")
    inf_e, inf_g = _isinf(e), _isinf(g)
    if not _array_equal(inf_e, inf_g) or not _array_equal(e[inf_e], g[inf_g]):
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, hint=hint,
              detail="The infinite entries of your result differ from the expected ones.")
    err = rel_error(g, e)
    if not err <= tol:
        note = ""
        if g.ndim:
            diff = _abs(g - e)
            diff[~(_isfinite(g) & _isfinite(e))] = -1.0
            k = tuple(int(i) for i in _unravel_index(int(diff.argmax()), diff.shape))
            note = f"  largest difference at index {k}: expected {e[k]:.10g}, got {g[k]:.10g}"
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, error=err, tol=tol, hint=hint,
              note=note)


def check(condition: bool, *, what: str, expected: str, got, source: str = "", inputs=None, hint: str = "") -> None:
    """Pass if ``condition`` is true; otherwise fail with the given description
    (for behaviour: "the loss fell below 0.1", "the run was flagged as diverged")."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    if not condition:
        _fail(what, inputs=inputs, expected=expected, source=source, got=got, hint=hint)


def check_raises(fn: Callable, args: Sequence = (), kwargs: dict | None = None, *, exception=Exception,
                 what: str, inputs=None, hint: str = "") -> BaseException:
    """Pass if ``fn(*args, **kwargs)`` raises ``exception``; returns the exception."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    try:
        result = fn(*args, **(kwargs or {}))
    except exception as err:
        return err
    _fail(what, inputs=inputs, expected=f"{getattr(exception, '__name__', exception)} raised", got=result,
          hint=hint, detail="Nothing was raised.")


def call_quietly(fn: Callable, *args, what: str, hint: str = "", **kwargs):
    """``fn(*args, **kwargs)`` with floating-point overflow, division by zero and
    invalid operations turned into failures (numpy would only print a warning):
    a numerically stable function computes its answer without any of them."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    try:
        with _errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            return fn(*args, **kwargs)
    except FloatingPointError as err:
        _fail(what, inputs={"args": args, **kwargs}, expected="a result computed without overflow", got=None,
              hint=hint, detail=f"numpy reported: {err}.")


# ------------------------------------------------------------------ gradients
def autodiff_vjp(forward: Callable[..., Tensor], inputs: Sequence, upstream, wrt: Sequence[int]) -> list[np.ndarray]:
    """d/d inputs[i] of sum(upstream * forward(*inputs)) for i in ``wrt``, by tamegrad's reverse mode."""
    tensors = [Tensor(_array(x, dtype=_float64), requires_grad=i in wrt) for i, x in enumerate(inputs)]
    out = forward(*tensors)
    out.backward(_array(upstream, dtype=_float64).reshape(out.shape))
    return [tensors[i].grad if tensors[i].grad is not None else _zeros_like(tensors[i].data) for i in wrt]


def torch_vjp(torch_forward: Callable, inputs: Sequence, upstream, wrt: Sequence[int]) -> list[np.ndarray]:
    """The same vector-Jacobian product by ``torch.autograd`` (float64)."""
    import torch

    tensors = [torch.tensor(_array(x, dtype=_float64), requires_grad=i in wrt) for i, x in enumerate(inputs)]
    out = torch_forward(*tensors)
    grads = torch.autograd.grad(out, [tensors[i] for i in wrt], torch.tensor(_array(upstream, dtype=_float64)).reshape(out.shape),
                                allow_unused=True)
    return [_zeros_like(_array(inputs[i], dtype=_float64)) if g is None else g.detach().numpy() for i, g in zip(wrt, grads)]


def finite_difference_vjp(forward: Callable[..., Tensor], inputs: Sequence, upstream, wrt: Sequence[int],
                          eps: float = 1e-6) -> list[np.ndarray]:
    """Centred differences of F = sum(upstream * forward(*inputs)):
    dF/dx_i = (F(x + eps e_i) - F(x - eps e_i)) / (2 eps)."""
    arrays = [_array(x, dtype=_float64) for x in inputs]
    g = _array(upstream, dtype=_float64)

    def F() -> float:
        return float(_sum(g.reshape(-1) * _asarray(forward(*(Tensor(a) for a in arrays)).data).reshape(-1)))

    grads = []
    for i in wrt:
        x, d = arrays[i], _zeros_like(arrays[i])
        for k in _ndindex(x.shape):
            saved = x[k]
            x[k] = saved + eps
            plus = F()
            x[k] = saved - eps
            minus = F()
            x[k] = saved
            d[k] = (plus - minus) / (2 * eps)
        grads.append(d)
    return grads


def check_gradient(got, forward: Callable[..., Tensor], inputs: Sequence, *, upstream, wrt: Sequence[int] | None = None,
                   names: Sequence[str] | None = None, input_names: Sequence[str] | None = None,
                   torch_forward: Callable | None = None, finite_differences: bool = True, what: str,
                   hint: str = "", tol: float = TOL, fd_tol: float = FD_TOL) -> list[np.ndarray]:
    """Check hand-derived gradients against the forward definition.

    ``got`` holds the student's dL/d inputs[i] for each i in ``wrt`` (one array, or a
    tuple in the order of ``wrt``), for L = sum(upstream * forward(*inputs)). They are
    compared with, in turn: tamegrad autodiff of ``forward`` (tolerance ``tol``),
    ``torch.autograd`` of ``torch_forward`` if given (``tol``), and centred finite
    differences of ``forward`` if ``finite_differences`` (``fd_tol``; switch it off at
    kinks and for non-finite inputs). The references are first checked against one
    another, so a disagreement among them is reported as a fault of the course.
    Returns the autodiff gradients.
    """
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    wrt = list(range(len(inputs))) if wrt is None else list(wrt)
    names = list(names) if names is not None else [f"dL/d input {i}" for i in wrt]
    input_names = list(input_names) if input_names is not None else [f"input {i}" for i in range(len(inputs))]
    shown = dict(zip(input_names, inputs))
    shown["upstream gradient"] = upstream
    single = len(wrt) == 1
    if single and not isinstance(got, (tuple, list)):
        got = (got,)
    if got is None or not isinstance(got, (tuple, list)) or len(got) != len(wrt):
        _fail(what, inputs=shown, expected=f"{len(wrt)} gradients: {', '.join(names)}", got=got, hint=hint,
              detail="The result does not hold one gradient per input.")

    references = [(AUTODIFF, autodiff_vjp(forward, inputs, upstream, wrt), tol)]
    if torch_forward is not None:
        references.append((TORCH, torch_vjp(torch_forward, inputs, upstream, wrt), tol))
    if finite_differences:
        references.append((FINITE_DIFFERENCES, finite_difference_vjp(forward, inputs, upstream, wrt), fd_tol))
    base = references[0][1]
    for source, grads, t in references[1:]:
        for name, a, b in zip(names, base, grads):
            if rel_error(a, b) > t or not _array_equal(_isnan(_to_array(a)), _isnan(_to_array(b))):
                raise RuntimeError(f"the references disagree on {name} ({AUTODIFF} vs {source}, relative error "
                                   f"{rel_error(a, b):.3g}): this is a fault of the exercise, not of your answer; "
                                   f"please report it")
    for source, grads, t in references:
        for name, g, e in zip(names, got, grads):
            check_close(g, e, what=f"{what}, {name}", source=source, inputs=shown, hint=hint, tol=t)
    return base


# -------------------------------------------------------- structural checks
def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)  # globals, attributes and imports; not local variables
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _source_names(fn) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {a.name.split(".")[0] for a in node.names} | {a.asname for a in node.names if a.asname}
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
    return found


def _module_of(value) -> str:
    if isinstance(value, types.ModuleType):
        return value.__name__
    return getattr(value, "__module__", None) or getattr(type(value), "__module__", "") or ""


def shortcuts(fn: Callable, *, allow: Iterable[str] = (), forbid: Iterable[str] = (),
              modules: Iterable[str] = AUTODIFF_MODULES, _seen: set | None = None) -> list[str]:
    """The forbidden names and modules that ``fn`` (and the notebook functions it calls) uses."""
    seen = set() if _seen is None else _seen
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None or id(code) in seen:
        return []
    seen.add(id(code))
    banned = (AUTODIFF_NAMES | set(forbid)) - set(allow)
    modules = set(modules) - set(allow)
    names = _code_names(code) | _source_names(fn)
    found = [f"`{n}`" for n in names & banned]
    found += [f"`{n}`" for n in names & modules if not isinstance(getattr(fn, "__globals__", {}).get(n), types.ModuleType)]
    namespace = dict(getattr(fn, "__globals__", {}))
    if fn.__closure__:
        for var, cell in zip(code.co_freevars, fn.__closure__):
            try:
                namespace[var] = cell.cell_contents
            except ValueError:
                pass
    for name in sorted(names | set(code.co_freevars)):
        if name not in namespace:
            continue
        value = namespace[name]
        root = _module_of(value).split(".")[0]
        if root in modules:
            found.append(f"`{name}` (from {_module_of(value)})")
        elif isinstance(value, types.FunctionType) and value is not fn and _module_of(value) == fn.__module__:
            found += shortcuts(value, allow=allow, forbid=forbid, modules=modules, _seen=seen)
    return sorted(set(found))


def check_not_autodiff(fn: Callable, *, allow: Iterable[str] = (), forbid: Iterable[str] = (),
                       modules: Iterable[str] = AUTODIFF_MODULES, what: str | None = None, hint: str = "") -> None:
    """A structural check: ``fn`` must compute its answer itself, without calling
    autodiff (``backward``, ``grad``, ``torch.autograd``...) or a library that already
    implements the exercise (``torch``, ``tamegrad``). It reads the function's source
    (AST) and code object, follows the notebook functions it calls, and resolves
    global names to their modules. ``allow`` removes names from the banned set
    (e.g. ``grad`` when the exercise works on ``p.grad``)."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    found = shortcuts(fn, allow=allow, forbid=forbid, modules=modules)
    if found:
        name = getattr(fn, "__name__", repr(fn))
        raise AssertionError(
            f"{what or name}: not accepted.\n\n"
            f"  {name} uses {', '.join(found)}.\n"
            f"  The exercise asks you to compute the answer yourself with numpy; letting autodiff or a\n"
            f"  library produce it would make the tests compare the reference with itself.\n\n"
            f"  hint: {hint or 'write the formula from the docstring with numpy operations only.'}"
        )


__all__ = [
    "TOL", "FD_TOL", "AUTODIFF", "TORCH", "FINITE_DIFFERENCES", "upstream", "rel_error", "describe",
    "check_close", "check", "check_raises", "call_quietly", "autodiff_vjp", "torch_vjp",
    "finite_difference_vjp", "check_gradient", "shortcuts", "check_not_autodiff",
]
