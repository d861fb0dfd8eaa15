"""Forward definitions of activations that the exercises' tests differentiate.

Each is written with tamegrad operations, so tamegrad's reverse mode derives the expected
gradient from the definition itself (never from a hand-written derivative), and in a form
that does not overflow, so the saturated inputs of the tests (|x| = 1000) have exact
references. Masks computed from ``x.data`` are constants for autodiff: each branch is
differentiated on its own side of 0, and at a kink the derivative follows torch's
convention (relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha).

They live here, not in an exercise's setup cell, because writing an overflow-free sigmoid
is itself a task of ex02.
"""

from __future__ import annotations

import numpy as np


def sigmoid_definition(x):
    """sigma(x) = 1 / (1 + e^{-x}), with every exponential of a non-positive number."""
    pos = x.data >= 0
    sign = np.where(pos, 1.0, -1.0)
    e = (-(x * sign)).exp()  # e^{-|x|} <= 1
    return 1 / (1 + e) * pos + e / (1 + e) * ~pos


def tanh_definition(x):
    """tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x}), with every exponential of a non-positive number."""
    sign = np.where(x.data >= 0, 1.0, -1.0)
    e = (-2 * (x * sign)).exp()  # e^{-2|x|} <= 1
    return sign * (1 - e) / (1 + e)


def relu_definition(x):
    """max(0, x)."""
    return x * (x.data > 0)


def leaky_relu_definition(x, slope=0.01):
    """x for x > 0, slope * x otherwise."""
    return x * np.where(x.data > 0, 1.0, slope)


def elu_definition(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) for x <= 0."""
    neg = x.data <= 0
    return x * ~neg + alpha * ((x * neg).exp() - 1) * neg


def silu_definition(x):
    """silu(x) = x sigma(x) (also called swish)."""
    return x * sigmoid_definition(x)
