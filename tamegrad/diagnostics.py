"""What a practitioner looks at while training: gradient norms per layer, saturation,
dead units, and the update-to-data ratio (Karpathy's rule of thumb: about 1e-3)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def norms(grads: Iterable[np.ndarray]) -> np.ndarray:
    """Frobenius norm ||G||_F = sqrt(sum G_ij^2) of each array."""
    return np.array([float(np.linalg.norm(np.asarray(g))) for g in grads])


def weight_grad_norms(model) -> np.ndarray:
    """||dL/dW^(l)||_F for every Linear layer of a ``tamegrad.nn.MLP``, first layer first."""
    return norms(layer.weight.grad for layer in model.layers)


def saturated_fraction(h: np.ndarray, activation: str, threshold: float = 0.97) -> float:
    """Fraction of units in the flat part: |tanh| > t, or sigmoid outside (1 - t, t)."""
    h = np.asarray(h)
    if activation == "tanh":
        return float(np.mean(np.abs(h) > threshold))
    if activation == "sigmoid":
        return float(np.mean((h > threshold) | (h < 1 - threshold)))
    raise ValueError(f"saturation is defined here for 'tanh' and 'sigmoid', not {activation!r}")


def dead_fraction(z: np.ndarray) -> float:
    """Fraction of ReLU units whose pre-activation z is <= 0 for every example in the batch
    (their gradient is zero for the whole batch)."""
    z = np.asarray(z)
    return float(np.mean(np.all(z <= 0, axis=0)))


def update_ratio(update: np.ndarray, data: np.ndarray) -> float:
    """std(update) / std(data): with update = lr * grad, healthy training sits near 1e-3."""
    return float(np.std(update) / max(np.std(data), 1e-12))
