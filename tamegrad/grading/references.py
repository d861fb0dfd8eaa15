"""Reference gradients, from the forward definition only (never from a copy of the answer),
and the gradient check that compares a hand derivation with all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..autodiff import Tensor
from ..gradcheck import numerical_grad
from .report import (
    AUTODIFF,
    FD_TOL,
    FINITE_DIFFERENCES,
    TOL,
    TORCH,
    _array,
    _array_equal,
    _fail,
    _float64,
    _isnan,
    _to_array,
    _zeros_like,
    check_close,
    rel_error,
)


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
    grads = torch.autograd.grad(
        out,
        [tensors[i] for i in wrt],
        torch.tensor(_array(upstream, dtype=_float64)).reshape(out.shape),
        allow_unused=True,
    )
    return [
        _zeros_like(_array(inputs[i], dtype=_float64)) if g is None else g.detach().numpy() for i, g in zip(wrt, grads)
    ]


def finite_difference_vjp(
    forward: Callable[..., Tensor], inputs: Sequence, upstream, wrt: Sequence[int], eps: float = 1e-6
) -> list[np.ndarray]:
    """Centred differences of F = sum(upstream * forward(*inputs)):
    dF/dx_i = (F(x + eps e_i) - F(x - eps e_i)) / (2 eps), by :func:`tamegrad.gradcheck.numerical_grad`."""
    arrays = [_array(x, dtype=_float64) for x in inputs]
    return numerical_grad(lambda *xs: forward(*(Tensor(a) for a in xs)).data, arrays, upstream, eps, wrt=wrt)


def check_gradient(
    got,
    forward: Callable[..., Tensor],
    inputs: Sequence,
    *,
    upstream,
    wrt: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    input_names: Sequence[str] | None = None,
    torch_forward: Callable | None = None,
    finite_differences: bool = True,
    what: str,
    hint: str = "",
    tol: float = TOL,
    fd_tol: float = FD_TOL,
) -> list[np.ndarray]:
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
        _fail(
            what,
            inputs=shown,
            expected=f"{len(wrt)} gradients: {', '.join(names)}",
            got=got,
            hint=hint,
            detail="The result does not hold one gradient per input.",
        )

    references = [(AUTODIFF, autodiff_vjp(forward, inputs, upstream, wrt), tol)]
    if torch_forward is not None:
        references.append((TORCH, torch_vjp(torch_forward, inputs, upstream, wrt), tol))
    if finite_differences:
        references.append((FINITE_DIFFERENCES, finite_difference_vjp(forward, inputs, upstream, wrt), fd_tol))
    base = references[0][1]
    for source, grads, t in references[1:]:
        for name, a, b in zip(names, base, grads):
            if rel_error(a, b) > t or not _array_equal(_isnan(_to_array(a)), _isnan(_to_array(b))):
                raise RuntimeError(
                    f"the references disagree on {name} ({AUTODIFF} vs {source}, relative error "
                    f"{rel_error(a, b):.3g}): this is a fault of the exercise, not of your answer; "
                    f"please report it"
                )
    for source, grads, t in references:
        for name, g, e in zip(names, got, grads):
            check_close(g, e, what=f"{what}, {name}", source=source, inputs=shown, hint=hint, tol=t)
    return base
