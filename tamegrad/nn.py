"""Layers built from primitives: Linear, BatchNorm1d, LayerNorm, RMSNorm, MLP.

Every layer is a composite of autodiff operations, so its backward pass is
derived by autodiff, independently of any hand-derived formula in the course.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from . import functional as F
from . import init
from .autodiff import Tensor, as_tensor


class Module:
    training = True

    def parameters(self) -> Iterator[Tensor]:
        for value in vars(self).values():
            if isinstance(value, Tensor) and value.requires_grad:
                yield value
            elif isinstance(value, Module):
                yield from value.parameters()
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, Module):
                        yield from item.parameters()

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for value in vars(self).values():
            children = value if isinstance(value, (list, tuple)) else [value]
            for child in children:
                if isinstance(child, Module):
                    child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)


class Linear(Module):
    """y = x W^T + b, with W of shape (out, in) as in torch. Default init: He normal."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True, weight: np.ndarray | None = None, rng=None):
        w = init.kaiming_normal((n_out, n_in), rng=rng) if weight is None else weight
        self.weight = Tensor(w, requires_grad=True)
        self.bias = Tensor(np.zeros(n_out), requires_grad=True) if bias else None

    def forward(self, x) -> Tensor:
        y = as_tensor(x) @ self.weight.T
        return y + self.bias if self.bias is not None else y


def batch_norm(x, gamma, beta, eps: float = 1e-5) -> Tensor:
    """Training-mode BatchNorm over the batch axis 0, from primitives:

    mu = mean(x), var = mean((x - mu)^2) (biased), y = gamma (x - mu) / sqrt(var + eps) + beta.
    """
    x = as_tensor(x)
    mu = x.mean(axis=0, keepdims=True)
    centred = x - mu
    var = (centred * centred).mean(axis=0, keepdims=True)
    return gamma * centred / (var + eps).sqrt() + beta


class BatchNorm1d(Module):
    """BatchNorm over axis 0 of (N, C) inputs, with torch's conventions.

    Training: normalise with the batch mean and *biased* variance, and update
    running = (1 - momentum) * running + momentum * batch statistic, using the
    *unbiased* variance (divided by N - 1) for running_var.
    Evaluation: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        self.eps, self.momentum = eps, momentum
        self.gamma = Tensor(np.ones(num_features), requires_grad=True)
        self.beta = Tensor(np.zeros(num_features), requires_grad=True)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        if not self.training:
            scale = 1.0 / np.sqrt(self.running_var + self.eps)
            return self.gamma * ((x - self.running_mean) * scale) + self.beta
        n = x.shape[0]
        if n < 2:
            raise ValueError("BatchNorm1d in training mode needs a batch of at least 2")
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * x.data.mean(axis=0)
        self.running_var = (1 - m) * self.running_var + m * x.data.var(axis=0, ddof=1)
        return batch_norm(x, self.gamma, self.beta, self.eps)


class LayerNorm(Module):
    """y = (x - mu) / sqrt(var + eps) * weight + bias over the last axis (``F.layer_norm``).

    weight starts at ones and bias at zeros, as ``torch.nn.LayerNorm(n)``. The
    statistics are each example's own: training and evaluation compute the same thing.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        self.eps = eps
        self.weight = Tensor(np.ones(num_features), requires_grad=True)
        self.bias = Tensor(np.zeros(num_features), requires_grad=True)

    def forward(self, x) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm(Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis (``F.rms_norm``).

    weight starts at ones, as ``torch.nn.RMSNorm(n)``; eps=None is the machine epsilon.
    """

    def __init__(self, num_features: int, eps: float | None = None):
        self.eps = eps
        self.weight = Tensor(np.ones(num_features), requires_grad=True)

    def forward(self, x) -> Tensor:
        return F.rms_norm(x, self.weight, self.eps)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "linear": lambda x: x,
}


class MLP(Module):
    """Linear -> [BatchNorm] -> activation, repeated; the last layer is linear.

    ``init_scheme`` is "xavier", "he" or "normal" (N(0, std^2) with the given ``std``),
    each scaled by ``gain``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        init_scheme: str = "he",
        gain: float | None = None,
        std: float = 1.0,
        batchnorm: bool = False,
        rng=None,
    ):
        rng = np.random.default_rng(rng)
        self.activation = ACTIVATIONS[activation]
        self.layers, self.norms = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            shape = (n_out, n_in)
            if init_scheme == "xavier":
                w = init.xavier_normal(shape, gain=1.0 if gain is None else gain, rng=rng)
            elif init_scheme == "he":
                w = init.kaiming_normal(shape, gain=np.sqrt(2.0) if gain is None else gain, rng=rng)
            elif init_scheme == "normal":
                w = rng.normal(0.0, std * (1.0 if gain is None else gain), size=shape)
            else:
                raise ValueError(f"init_scheme must be 'xavier', 'he' or 'normal', got {init_scheme!r}")
            self.layers.append(Linear(n_in, n_out, weight=w))
        if batchnorm:
            self.norms = [BatchNorm1d(n) for n in sizes[1:-1]]

    def forward(self, x, keep: list | None = None) -> Tensor:
        """Forward pass; if ``keep`` is a list, each hidden pre-activation z (after the norm, if any) is appended
        to it with ``retain_grad()``, so its gradient can be read after backward."""
        h = as_tensor(x)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i == len(self.layers) - 1:
                break
            if self.norms:
                h = self.norms[i](h)
            if keep is not None:
                keep.append(h.retain_grad())
            h = self.activation(h)
        return h

    def __call__(self, x, keep: list | None = None):
        return self.forward(x, keep)
