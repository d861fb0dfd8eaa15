"""Activation functions and losses.

The classic activations are fused primitives: each computes its output in a
form that cannot overflow and carries its own derivative (stated in its
docstring). The derivative at a kink follows torch: ReLU'(0) = 0,
LeakyReLU'(0) = slope, ELU'(0) = alpha. The losses, the transformer-era
activations (GELU, SiLU), the normalisations (LayerNorm, RMSNorm) and attention
are *composites* built from primitive operations, so autodiff derives their
gradients with no hand-written rule: the book's hand derivations are checked
against them.
"""

from __future__ import annotations

import numpy as np

from .autodiff import Tensor, as_tensor


def _unary(x, out: np.ndarray, derivative, op: str) -> Tensor:
    """A primitive y = f(x) whose backward is g * f'(x), with f'(x) = derivative().

    ``derivative`` returns a fresh array, so the product is taken in place.
    """
    x = as_tensor(x)

    def backward(g):
        d = derivative()
        d *= g
        return (d,)

    return Tensor._result(out, (x,), backward, op)


def sigmoid(x) -> Tensor:
    """sigma(x) = 1 / (1 + e^{-x});  sigma'(x) = sigma(x) (1 - sigma(x)) <= 1/4."""
    x = as_tensor(x)
    e = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
    out = np.where(x.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return _unary(x, out, lambda: out * (1.0 - out), "sigmoid")


def tanh(x) -> Tensor:
    """tanh(x);  tanh'(x) = 1 - tanh(x)^2 <= 1."""
    x = as_tensor(x)
    out = np.tanh(x.data)

    def derivative():
        d = out * out
        return np.subtract(1.0, d, out=d)

    return _unary(x, out, derivative, "tanh")


def relu(x) -> Tensor:
    """relu(x) = max(0, x);  relu'(x) = 1 if x > 0 else 0 (so relu'(0) = 0)."""
    x = as_tensor(x)
    positive = x.data > 0
    return _unary(x, np.where(positive, x.data, 0.0), lambda: positive.astype(x.data.dtype), "relu")


def leaky_relu(x, slope: float = 0.01) -> Tensor:
    """leaky_relu(x) = x if x > 0 else slope * x;  derivative 1 if x > 0 else slope."""
    x = as_tensor(x)
    positive = x.data > 0
    return _unary(x, np.where(positive, x.data, slope * x.data), lambda: np.where(positive, 1.0, slope), "leaky_relu")


def elu(x, alpha: float = 1.0) -> Tensor:
    """elu(x) = x if x > 0 else alpha (e^x - 1);  derivative 1 if x > 0 else alpha e^x."""
    x = as_tensor(x)
    positive = x.data > 0
    alpha_exp = alpha * np.exp(np.minimum(x.data, 0.0))  # never overflows
    out = np.where(positive, x.data, alpha_exp - alpha)
    return _unary(x, out, lambda: np.where(positive, 1.0, alpha_exp), "elu")


def softmax(x, axis: int = -1) -> Tensor:
    """s_i = e^{x_i} / sum_j e^{x_j};  Jacobian ds_i/dx_j = s_i (delta_ij - s_j).

    The vector-Jacobian product is therefore s * (g - sum(g * s)).
    """
    x = as_tensor(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)  # softmax is shift-invariant
    e = np.exp(shifted)
    s = e / e.sum(axis=axis, keepdims=True)
    return Tensor._result(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),), "softmax")


def log_softmax(x, axis: int = -1) -> Tensor:
    """log s_i = x_i - log sum_j e^{x_j};  VJP g - s * sum(g)."""
    x = as_tensor(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    out = shifted - log_sum
    return Tensor._result(out, (x,), lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),), "log_softmax")


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


# ------------------------------------------------------- transformer-era composites
def gelu(x) -> Tensor:
    """gelu(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, the exact form (torch's default).

    Phi is the standard normal distribution function; gelu'(x) = Phi(x) + x phi(x).
    """
    x = as_tensor(x)
    return x * (1.0 + (x / np.sqrt(2.0)).erf()) * 0.5


def silu(x) -> Tensor:
    """silu(x) = x sigma(x) (Swish with beta = 1);  silu'(x) = sigma(x) (1 + x (1 - sigma(x)))."""
    x = as_tensor(x)
    return x * sigmoid(x)


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """y = (x - mu) / sqrt(var + eps) * weight + bias, mu and the *biased* var over the last axis.

    Each example (each row) is normalised with its own statistics, as
    ``torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)``.
    """
    x = as_tensor(x)
    mu = x.mean(axis=-1, keepdims=True)
    centred = x - mu
    var = (centred * centred).mean(axis=-1, keepdims=True)
    y = centred / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


def rms_norm(x, weight=None, eps: float | None = None) -> Tensor:
    """y = x / sqrt(mean(x^2) + eps) * weight, the mean over the last axis (no centring, no bias).

    As ``torch.nn.functional.rms_norm``: eps inside the square root, and
    ``eps=None`` means the machine epsilon of the computation (2.2e-16 in
    float64, float32's 1.2e-7 for narrower inputs).
    """
    x = as_tensor(x)
    if eps is None:
        eps = float(np.finfo(np.float64 if x.data.dtype == np.float64 else np.float32).eps)
    y = x / ((x * x).mean(axis=-1, keepdims=True) + eps).sqrt()
    return y * weight if weight is not None else y


def scaled_dot_product_attention(q, k, v, causal: bool = False) -> Tensor:
    """softmax(q k^T / sqrt(d) + M) v, d = q.shape[-1]; M = -inf above the diagonal if causal, else 0.

    Shapes (..., L, d), (..., S, d), (..., S, d_v) -> (..., L, d_v). The causal
    mask lets query i attend to keys j <= i (top-left aligned, as torch's
    ``is_causal=True``).
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    axes = tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2)
    scores = (q @ k.transpose(axes)) / np.sqrt(q.shape[-1])
    if causal:
        length, source = scores.shape[-2:]
        scores = scores + np.where(np.triu(np.ones((length, source), dtype=bool), k=1), -np.inf, 0.0)
    return softmax(scores, axis=-1) @ v
