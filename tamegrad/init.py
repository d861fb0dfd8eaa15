"""Weight initialisation (Glorot & Bengio 2010; He et al. 2015), as ``torch.nn.init``.

For a weight of shape (fan_out, fan_in), as torch's ``Linear`` stores it:

* Xavier/Glorot keeps Var(activations) and Var(gradients) in balance:
  Var(W) = gain^2 * 2 / (fan_in + fan_out).
* He/Kaiming keeps Var(activations) for ReLU-like units:
  Var(W) = gain^2 / fan, with fan = fan_in (mode "fan_in") or fan_out.

A uniform U(-a, a) has variance a^2 / 3, so its bound is a = sqrt(3 Var(W)).
"""

from __future__ import annotations

import math

import numpy as np

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain: 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu),
    sqrt(2 / (1 + slope^2)) (leaky_relu, slope 0.01 by default), as torch."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; known: {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), as torch."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def xavier_std(shape, gain: float = 1.0) -> float:
    fan_in, fan_out = fans(shape)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_std(shape, gain: float = math.sqrt(2.0), mode: str = "fan_in") -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def xavier_normal(shape, gain: float = 1.0, rng=None) -> np.ndarray:
    """W ~ N(0, gain^2 * 2 / (fan_in + fan_out))."""
    return np.random.default_rng(rng).normal(0.0, xavier_std(shape, gain), size=shape)


def xavier_uniform(shape, gain: float = 1.0, rng=None) -> np.ndarray:
    """W ~ U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(3.0) * xavier_std(shape, gain)
    return np.random.default_rng(rng).uniform(-bound, bound, size=shape)


def kaiming_normal(shape, gain: float = math.sqrt(2.0), mode: str = "fan_in", rng=None) -> np.ndarray:
    """W ~ N(0, gain^2 / fan); gain sqrt(2) for ReLU."""
    return np.random.default_rng(rng).normal(0.0, kaiming_std(shape, gain, mode), size=shape)


def kaiming_uniform(shape, gain: float = math.sqrt(2.0), mode: str = "fan_in", rng=None) -> np.ndarray:
    """W ~ U(-a, a), a = gain * sqrt(3 / fan)."""
    bound = math.sqrt(3.0) * kaiming_std(shape, gain, mode)
    return np.random.default_rng(rng).uniform(-bound, bound, size=shape)
