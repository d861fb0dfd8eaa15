"""Gradients of functions, and checks of them by centred finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .autodiff import Tensor


def as_array(value) -> np.ndarray:
    """A float64 ndarray copy of an array, a tamegrad Tensor or a torch tensor."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        value = value.detach().numpy()
    return np.array(value, dtype=np.float64)


def rel_error(a, b) -> float:
    """Relative error max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)) over the entries
    where both are finite; ``inf`` if the non-finite entries (NaN, +inf, -inf) differ.

    In float64 a correct gradient gives about 1e-7 or less against finite differences, and
    about 1e-12 against another exact method. The one definition in the course: the
    exercises' checks (:mod:`tamegrad.grading`) use it too.
    """
    a, b = as_array(a), as_array(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    same_nonfinite = np.array_equal(finite_a, finite_b) and np.array_equal(a[~finite_a], b[~finite_b], equal_nan=True)
    if not same_nonfinite:
        return float("inf")
    finite = finite_a
    if not finite.any():
        return 0.0
    a, b = a[finite], b[finite]
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def grad(f: Callable[..., Tensor], argnums: int | Sequence[int] = 0) -> Callable[..., np.ndarray]:
    """``grad(f)(*arrays)``: d f / d arrays[argnums] for scalar-valued ``f``, as ndarray(s).

    ``f`` receives Tensors and must return a one-element Tensor.
    """
    many = not isinstance(argnums, int)
    wanted = tuple(argnums) if many else (argnums,)

    def gradient(*arrays):
        inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=i in wanted) for i, a in enumerate(arrays)]
        out = f(*inputs)
        if out.size != 1:
            raise ValueError(f"grad needs a scalar-valued function; f returned shape {out.shape}")
        out.backward(np.ones_like(out.data))
        grads = tuple(inputs[i].grad if inputs[i].grad is not None else np.zeros_like(inputs[i].data) for i in wanted)
        return grads if many else grads[0]

    return gradient


def numerical_grad(
    f: Callable[..., np.ndarray],
    inputs: Sequence[np.ndarray],
    upstream: np.ndarray,
    eps: float = 1e-6,
    wrt: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Centred differences of F = sum(upstream * f(*inputs)) with respect to inputs[i], i in ``wrt``
    (default: all): dF/dx_k = (F(x + eps e_k) - F(x - eps e_k)) / (2 eps).

    The one finite-difference loop in the course. ``inputs`` are float arrays, perturbed
    in place and restored."""
    upstream = np.asarray(upstream, dtype=np.float64)

    def F() -> float:
        return float(np.sum(upstream.reshape(-1) * np.asarray(f(*inputs), dtype=np.float64).reshape(-1)))

    grads = []
    for i in range(len(inputs)) if wrt is None else wrt:
        x = inputs[i]
        g = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            saved = x[k]
            x[k] = saved + eps
            plus = F()
            x[k] = saved - eps
            minus = F()
            x[k] = saved
            g[k] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(f: Callable[..., Tensor], *inputs, eps: float = 1e-6, seed: int = 0) -> float:
    """Largest :func:`rel_error` between autodiff and centred differences over all inputs.

    ``f`` maps Tensors to a Tensor of any shape; a random (not all-ones) upstream
    gradient contracts a non-scalar output. Inputs are copied to float64.
    """
    arrays = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = f(*tensors)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in tensors]
    numeric = numerical_grad(lambda *xs: f(*(Tensor(x) for x in xs)).data, arrays, upstream, eps)
    return max(rel_error(a, n) for a, n in zip(analytic, numeric))
