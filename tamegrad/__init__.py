"""tamegrad: a small reverse-mode autodiff on numpy, the reference for the course
*Taming Gradients*, with the course's tools (initialisation, clipping, checks)."""

from . import diagnostics, init, nn
from .autodiff import Tensor, as_tensor, is_grad_enabled, no_grad
from .clip import clip_grad_norm, clip_grad_value
from .functional import (
    cross_entropy,
    elu,
    gelu,
    layer_norm,
    leaky_relu,
    log_softmax,
    mse,
    relu,
    rms_norm,
    scaled_dot_product_attention,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from .gradcheck import grad, gradcheck, numerical_grad, rel_error

__version__ = "0.1.0"

__all__ = [
    "diagnostics",
    "init",
    "nn",
    "Tensor",
    "as_tensor",
    "no_grad",
    "is_grad_enabled",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "mse",
    "gelu",
    "silu",
    "layer_norm",
    "rms_norm",
    "scaled_dot_product_attention",
    "grad",
    "gradcheck",
    "numerical_grad",
    "rel_error",
    "clip_grad_norm",
    "clip_grad_value",
]
