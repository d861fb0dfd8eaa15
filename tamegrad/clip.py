"""Gradient clipping, with the semantics of ``torch.nn.utils``.

* By value: every component is clamped to [-c, c]. This changes the direction of
  the gradient whenever some but not all components are clipped.
* By global norm: with total norm N = sqrt(sum_p ||g_p||^2) over all parameters,
  every gradient is scaled by min(1, c / (N + 1e-6)). The direction is kept.
  The epsilon is torch's; the pre-clip N is returned; parameters whose grad is
  None are skipped; a non-finite N raises if ``error_if_nonfinite``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .autodiff import Tensor

EPS = 1e-6


def _with_grads(parameters: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_value(parameters, clip_value: float) -> None:
    """g <- clamp(g, -c, c), in place, for every parameter with a gradient."""
    for p in _with_grads(parameters):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """g <- g * min(1, max_norm / (N + 1e-6)) with N the global norm; returns N (pre-clip)."""
    params = _with_grads(parameters)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(p.grad))) for p in params)
    else:
        total = float(sum(np.sum(np.abs(p.grad) ** norm_type) for p in params) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total})")
    scale = float(np.minimum(1.0, max_norm / (total + EPS)))  # NaN stays NaN, as torch's clamp
    for p in params:
        p.grad *= scale
    return total
