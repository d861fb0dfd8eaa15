"""Failure reports and the value checks: every failure says what was checked, on which
input, the expected value and where it came from, what came back, the largest relative
error, and a hint.

The numpy functions used for verdicts are bound when this module is imported, so a
notebook that later replaces, say, ``np.allclose`` or ``np.max`` does not change a verdict.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..autodiff import Tensor
from ..gradcheck import as_array as _as_array
from ..gradcheck import rel_error
from .failure import CheckFailed, wrap_lines

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
_default_rng = np.random.default_rng
_unravel_index = np.unravel_index

# --- tolerances, stated once ------------------------------------------------
TOL = 1e-9      # against an exact reference (autodiff, torch, a closed form): rounding only
FD_TOL = 1e-6   # against centred differences with eps = 1e-6 in float64

AUTODIFF = "tamegrad autodiff of the forward definition"
TORCH = "torch.autograd of the forward definition"
FINITE_DIFFERENCES = "centred finite differences of the forward definition"

# --------------------------------------------------------------------- basics
def upstream(shape, seed: int = 0) -> np.ndarray:
    """A random upstream gradient g ~ N(0, 1) of the given shape, float64, from
    ``np.random.default_rng(seed)`` (random rather than all ones: with g = 1,
    BatchNorm's dx is identically zero and hides every bug)."""
    return _default_rng(seed).standard_normal(shape)


def _to_array(value) -> np.ndarray:
    return _as_array(value)


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
    raise CheckFailed(wrap_lines("\n".join(lines))) from None


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
    a numerically stable function computes its answer without any of them. The
    failure names the operation numpy reported and the input entries at which it
    happens (found by calling ``fn`` on one entry at a time)."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    try:
        with _errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            return fn(*args, **kwargs)
    except FloatingPointError as err:
        problem = str(err)
    where = _where_it_fails(fn, args, kwargs)
    kind = problem.split(" encountered")[0]  # "overflow", "divide by zero", "invalid value"
    detail = f"{kind.capitalize()}{f' at {where}' if where else ''}: numpy reported \"{problem}\"."
    _fail(what, inputs=_named_arguments(fn, args, kwargs), expected="a result computed without overflow",
          got=f"no result: the computation stopped at the {kind}", hint=hint, detail=detail)


def _named_arguments(fn: Callable, args: Sequence, kwargs: dict) -> dict:
    """{parameter name: value} for a call, by ``fn``'s signature where it has one."""
    import inspect

    try:
        return dict(inspect.signature(fn).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{f"argument {i + 1}": a for i, a in enumerate(args)}, **kwargs}


def _where_it_fails(fn: Callable, args: Sequence, kwargs: dict, limit: int = 4096) -> str:
    """The entries of the first array argument at which ``fn`` alone raises a floating-point
    error, e.g. "x[0] = -1000.0 (and 1 more entry)"; arguments of the same shape are
    sliced alike. Empty if the function cannot be called entry by entry."""
    named = _named_arguments(fn, args, kwargs)
    arrays = {k: v for k, v in named.items() if isinstance(v, np.ndarray) and v.ndim >= 1}
    if not arrays:
        return ""
    name, first = next(iter(arrays.items()))
    if first.size > limit:
        return ""
    bad = []
    for k in _ndindex(first.shape):
        one = {n: (v[k][None] if isinstance(v, np.ndarray) and v.shape == first.shape else v) for n, v in named.items()}
        try:
            with _errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
                fn(**one) if _binds(fn, one) else fn(*one.values())
        except FloatingPointError:
            bad.append(k)
        except Exception:  # the function does not work entry by entry: say nothing rather than guess
            return ""
    if not bad:
        return ""
    k = bad[0]
    index = ", ".join(str(i) for i in k)
    more = len(bad) - 1
    return f"{name}[{index}] = {float(first[k])!r}" + (f" (and {more} more entr{'y' if more == 1 else 'ies'})" if more else "")


def _binds(fn: Callable, named: dict) -> bool:
    import inspect

    try:
        inspect.signature(fn).bind(**named)
        return True
    except (TypeError, ValueError):
        return False
