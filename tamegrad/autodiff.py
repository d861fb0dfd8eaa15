"""Reverse-mode automatic differentiation on numpy arrays.

A :class:`Tensor` wraps a float64 ``ndarray``. Every operation on tensors that
require gradients records its inputs (``_parents``) and a ``_backward`` rule
that maps the upstream gradient ``g = dL/d(out)`` to one gradient per input
(the vector-Jacobian product). :meth:`Tensor.backward` visits the graph in
reverse topological order, *adding* the contributions that reach each node, so
a tensor used twice receives both. The sort is iterative: a chain of 100,000
operations needs no recursion.

Conventions (stated once, used everywhere in the course):

* float64 unless the data is already another float type;
* numpy broadcasting; a gradient is summed back to its input's shape;
* only leaves (tensors created by the user with ``requires_grad=True``) keep
  ``.grad`` after ``backward`` unless :meth:`Tensor.retain_grad` was called,
  and ``.grad`` accumulates over calls to ``backward`` as in torch;
* every node names the operation that made it in ``Tensor.op`` (``""`` for a
  leaf), as micrograd's ``_op``; ``repr`` shows it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block no graph is recorded (as ``torch.no_grad``)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def _as_array(data) -> np.ndarray:
    array = np.asarray(data)
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]


class Tensor:
    """An array with an optional gradient: ``Tensor(data, requires_grad=False)``."""

    __array_priority__ = 1000  # so ``ndarray + Tensor`` calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False):
        self.data: np.ndarray = _as_array(data.data if isinstance(data, Tensor) else data)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._retain = False
        self.op = ""

    # ----------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (as in torch)."""
        self._retain = True
        return self

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        made_by = f", op={self.op!r}" if self.op else ""
        return f"Tensor({np.array2string(self.data, precision=4)}{flag}{made_by})"

    def __len__(self) -> int:
        return len(self.data)

    # ------------------------------------------------------ graph construction
    @staticmethod
    def _result(data: np.ndarray, parents: tuple[Tensor, ...], backward: Backward, op: str = "") -> Tensor:
        """Wrap the output of operation ``op``; record the graph only if some input needs a gradient."""
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out._retain, out.op = data, None, False, op
        if _grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad, out._parents, out._backward = True, parents, backward
        else:
            out.requires_grad, out._parents, out._backward = False, (), None
        return out

    # ---------------------------------------------------------------- backward
    def backward(self, grad=None) -> None:
        """Accumulate ``dself/dleaf`` (times ``grad``) into every leaf's ``.grad``.

        A scalar output defaults to ``grad = 1``; any other output needs the
        upstream gradient ``grad``, of the output's shape.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without an upstream gradient needs a scalar output, "
                    f"got shape {self.shape}; pass grad=<array of that shape>"
                )
            grad = np.ones_like(self.data)
        grad = _as_array(grad.data if isinstance(grad, Tensor) else grad)
        if grad.shape != self.shape:
            raise ValueError(f"upstream gradient has shape {grad.shape}, output has {self.shape}")

        grads: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None or node._retain:
                node.grad = g.copy() if node.grad is None else node.grad + g
            if node._backward is None:
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                # never add in place: one array may be handed to several parents
                grads[key] = pg if key not in grads else grads[key] + pg

    def zero_grad(self) -> None:
        self.grad = None

    # -------------------------------------------------------------- arithmetic
    def __add__(self, other) -> Tensor:
        other = as_tensor(other)
        a_shape, b_shape = self.shape, other.shape
        return Tensor._result(
            self.data + other.data,
            (self, other),
            lambda g: (unbroadcast(g, a_shape), unbroadcast(g, b_shape)),
            "add",
        )

    def __sub__(self, other) -> Tensor:
        other = as_tensor(other)
        a_shape, b_shape = self.shape, other.shape
        return Tensor._result(
            self.data - other.data,
            (self, other),
            lambda g: (unbroadcast(g, a_shape), unbroadcast(-g, b_shape)),
            "sub",
        )

    def __mul__(self, other) -> Tensor:
        other = as_tensor(other)
        a, b = self.data, other.data
        return Tensor._result(
            a * b,
            (self, other),
            lambda g: (
                unbroadcast(g * b, a.shape) if self.requires_grad else None,
                unbroadcast(g * a, b.shape) if other.requires_grad else None,
            ),
            "mul",
        )

    def __truediv__(self, other) -> Tensor:
        """d(a/b) = g/b da - g a/b^2 db."""
        other = as_tensor(other)
        a, b = self.data, other.data
        out = a / b
        return Tensor._result(
            out,
            (self, other),
            lambda g: (
                unbroadcast(g / b, a.shape) if self.requires_grad else None,
                unbroadcast(-g * out / b, b.shape) if other.requires_grad else None,
            ),
            "div",
        )

    def __pow__(self, exponent) -> Tensor:
        """d(a^p) = p a^(p-1) da + a^p log(a) dp."""
        p = as_tensor(exponent)
        a, b = self.data, p.data
        out = a**b

        def backward(g):
            ga = unbroadcast(g * b * a ** (b - 1), a.shape) if self.requires_grad else None
            gb = None
            if p.requires_grad:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gb = unbroadcast(g * out * np.log(a), b.shape)
            return ga, gb

        return Tensor._result(out, (self, p), backward, "pow")

    def __matmul__(self, other) -> Tensor:
        """C = A B: dA = G B^T, dB = A^T G (batched, with 1-D operands as in numpy)."""
        other = as_tensor(other)
        a, b = self.data, other.data
        out = a @ b

        def backward(g):
            a2 = a[None, :] if a.ndim == 1 else a
            b2 = b[:, None] if b.ndim == 1 else b
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
            ga = gb = None
            if self.requires_grad:
                ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
            if other.requires_grad:
                gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
            return ga, gb

        return Tensor._result(out, (self, other), backward, "matmul")

    def __neg__(self) -> Tensor:
        return Tensor._result(-self.data, (self,), lambda g: (-g,), "neg")

    def __radd__(self, other) -> Tensor:
        return as_tensor(other) + self

    def __rsub__(self, other) -> Tensor:
        return as_tensor(other) - self

    def __rmul__(self, other) -> Tensor:
        return as_tensor(other) * self

    def __rtruediv__(self, other) -> Tensor:
        return as_tensor(other) / self

    def __rpow__(self, other) -> Tensor:
        return as_tensor(other) ** self

    def __rmatmul__(self, other) -> Tensor:
        return as_tensor(other) @ self

    # -------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """Sum; the gradient is g broadcast back over the summed axes."""
        shape = self.shape
        axes = _normalise_axes(axis, self.ndim)

        def backward(g):
            if not keepdims:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, shape),)

        return Tensor._result(self.data.sum(axis=axes, keepdims=keepdims), (self,), backward, "sum")

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        """Mean = sum / n over the reduced axes."""
        axes = _normalise_axes(axis, self.ndim)
        count = int(np.prod([self.shape[i] for i in axes]))
        return self.sum(axis=axes, keepdims=keepdims) / count

    # ---------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        """d exp(x) = exp(x) dx."""
        out = np.exp(self.data)
        return Tensor._result(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> Tensor:
        """d log(x) = dx / x."""
        x = self.data
        return Tensor._result(np.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> Tensor:
        """d sqrt(x) = dx / (2 sqrt(x))."""
        out = np.sqrt(self.data)
        return Tensor._result(out, (self,), lambda g: (g / (2.0 * out),), "sqrt")

    def abs(self) -> Tensor:
        """d|x| = sign(x) dx (0 at x = 0, as in torch)."""
        x = self.data
        return Tensor._result(np.abs(x), (self,), lambda g: (g * np.sign(x),), "abs")

    def erf(self) -> Tensor:
        """erf(x) = (2/sqrt(pi)) int_0^x e^{-t^2} dt;  d erf(x) = (2/sqrt(pi)) e^{-x^2} dx.

        numpy has no erf: the C library's, through ``math.erf``, one element at a
        time (correctly rounded to about 1 ulp; fast enough for the course's sizes).
        """
        x = self.data
        out = np.asarray(_erf(x), dtype=x.dtype).reshape(x.shape)
        return Tensor._result(out, (self,), lambda g: (g * (2.0 / math.sqrt(math.pi)) * np.exp(-x * x),), "erf")

    # ---------------------------------------------------------------- shapes
    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        original = self.shape
        return Tensor._result(self.data.reshape(shape), (self,), lambda g: (g.reshape(original),), "reshape")

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        inverse = tuple(np.argsort(axes))
        return Tensor._result(self.data.transpose(axes), (self,), lambda g: (g.transpose(inverse),), "transpose")

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data.astype(np.intp)
        shape, dtype = self.shape, self.data.dtype

        def backward(g):
            full = np.zeros(shape, dtype=dtype)
            np.add.at(full, index, g)  # repeated indices add up
            return (full,)

        return Tensor._result(self.data[index], (self,), backward, "getitem")


_erf = np.frompyfunc(math.erf, 1, 1)


def as_tensor(value) -> Tensor:
    """``value`` itself if it is a Tensor, else a constant Tensor."""
    return value if isinstance(value, Tensor) else Tensor(value)


def _normalise_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes that lead to ``root``, each after all of its parents (iterative DFS)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if id(p) not in visited)
    return order
