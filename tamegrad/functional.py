"""Activation functions and losses.

The activations are fused primitives: each computes its output in a form that
cannot overflow and carries its own derivative (stated in its docstring). The
derivative at a kink follows torch: ReLU'(0) = 0, LeakyReLU'(0) = slope,
ELU'(0) = alpha. The losses are *composites* built from primitive operations,
so autodiff derives their gradients with no hand-written rule.
"""

from __future__ import annotations

import numpy as np

from .autodiff import Tensor, as_tensor


def _unary(x, out: np.ndarray, derivative) -> Tensor:
    """A primitive y = f(x) whose backward is g * f'(x), with f'(x) = derivative().

    ``derivative`` returns a fresh array, so the product is taken in place.
    """
    x = as_tensor(x)

    def backward(g):
        d = derivative()
        d *= g
        return (d,)

    return Tensor._result(out, (x,), backward)


def sigmoid(x) -> Tensor:
    """sigma(x) = 1 / (1 + e^{-x});  sigma'(x) = sigma(x) (1 - sigma(x)) <= 1/4."""
    x = as_tensor(x)
    e = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
    out = np.where(x.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return _unary(x, out, lambda: out * (1.0 - out))


def tanh(x) -> Tensor:
    """tanh(x);  tanh'(x) = 1 - tanh(x)^2 <= 1."""
    x = as_tensor(x)
    out = np.tanh(x.data)
    def derivative():
        d = out * out
        return np.subtract(1.0, d, out=d)

    return _unary(x, out, derivative)


def relu(x) -> Tensor:
    """relu(x) = max(0, x);  relu'(x) = 1 if x > 0 else 0 (so relu'(0) = 0)."""
    x = as_tensor(x)
    positive = x.data > 0
    return _unary(x, np.where(positive, x.data, 0.0), lambda: positive.astype(x.data.dtype))


def leaky_relu(x, slope: float = 0.01) -> Tensor:
    """leaky_relu(x) = x if x > 0 else slope * x;  derivative 1 if x > 0 else slope."""
    x = as_tensor(x)
    positive = x.data > 0
    return _unary(x, np.where(positive, x.data, slope * x.data), lambda: np.where(positive, 1.0, slope))


def elu(x, alpha: float = 1.0) -> Tensor:
    """elu(x) = x if x > 0 else alpha (e^x - 1);  derivative 1 if x > 0 else alpha e^x."""
    x = as_tensor(x)
    positive = x.data > 0
    alpha_exp = alpha * np.exp(np.minimum(x.data, 0.0))  # never overflows
    out = np.where(positive, x.data, alpha_exp - alpha)
    return _unary(x, out, lambda: np.where(positive, 1.0, alpha_exp))


def softmax(x, axis: int = -1) -> Tensor:
    """s_i = e^{x_i} / sum_j e^{x_j};  Jacobian ds_i/dx_j = s_i (delta_ij - s_j).

    The vector-Jacobian product is therefore s * (g - sum(g * s)).
    """
    x = as_tensor(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)  # softmax is shift-invariant
    e = np.exp(shifted)
    s = e / e.sum(axis=axis, keepdims=True)
    return Tensor._result(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),))


def log_softmax(x, axis: int = -1) -> Tensor:
    """log s_i = x_i - log sum_j e^{x_j};  VJP g - s * sum(g)."""
    x = as_tensor(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    out = shifted - log_sum
    return Tensor._result(out, (x,), lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),))


def cross_entropy(logits, targets) -> Tensor:
    """Mean softmax cross-entropy: L = mean_n [ log sum_j e^{z_nj} - z_{n,y_n} ].

    ``logits`` has shape (N, C); ``targets`` holds N class indices. Built from
    primitives (the max shift is a constant), so its gradient softmax(z) - onehot(y),
    divided by N, is derived by autodiff rather than written by hand.
    """
    z = as_tensor(logits)
    targets = np.asarray(targets, dtype=np.intp)
    shift = z.data.max(axis=1, keepdims=True)
    log_sum_exp = ((z - shift).exp().sum(axis=1, keepdims=True)).log() + shift
    onehot = np.eye(z.shape[1])[targets]
    picked = (z * onehot).sum(axis=1, keepdims=True)
    return (log_sum_exp - picked).mean()


def mse(prediction, target) -> Tensor:
    """Mean squared error: L = mean (prediction - target)^2."""
    diff = as_tensor(prediction) - target
    return (diff * diff).mean()
