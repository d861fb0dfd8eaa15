"""Gradients of functions, and checks of them by centred finite differences."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .autodiff import Tensor


def rel_error(a, b) -> float:
    """Relative error max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)).

    In float64 a correct gradient gives about 1e-7 or less against finite
    differences, and about 1e-12 against another exact method.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
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
        grads = tuple(
            inputs[i].grad if inputs[i].grad is not None else np.zeros_like(inputs[i].data) for i in wanted
        )
        return grads if many else grads[0]

    return gradient


def numerical_grad(f: Callable[..., np.ndarray], inputs: Sequence[np.ndarray], upstream: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """Centred differences of sum(upstream * f(*inputs)): (F(x + eps e_i) - F(x - eps e_i)) / (2 eps)."""
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            saved = x[i]
            x[i] = saved + eps
            plus = np.sum(upstream * f(*inputs))
            x[i] = saved - eps
            minus = np.sum(upstream * f(*inputs))
            x[i] = saved
            g[i] = (plus - minus) / (2 * eps)
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
