"""Checks used by the test cells of the course's exercises (nbgrader assignments).

Every check raises ``AssertionError`` with a message that teaches: what was
checked, on which input (shape and a short repr), the expected value and where
it came from, what came back, the largest relative error, and a hint.

Where expected gradients come from (never from a copy of the answer):

* ``AUTODIFF``: tamegrad differentiates the *forward definition*, a function
  written with tamegrad operations, by reverse mode;
* ``TORCH``: ``torch.autograd`` differentiates the same definition written in torch;
* ``FINITE_DIFFERENCES``: centred differences of the forward definition,
  (F(x + eps e_i) - F(x - eps e_i)) / (2 eps), with F(x) = sum(upstream * f(x)).

A gradient is checked as a vector-Jacobian product: for an output y = f(x) and
a random upstream gradient g = dL/dy (float64, not all ones), the expected
answer is dL/dx = J_f(x)^T g.

Relative error, as in the rest of the course:
``rel_error(a, b) = max|a - b| / max(1e-8, max(|a| + |b|))`` over the finite
entries; non-finite entries (NaN, +inf, -inf) must match exactly.

torch is imported only inside the functions that need it. The numpy functions
used for verdicts are bound when this module is imported, so a notebook that
later replaces, say, ``np.allclose`` or ``np.max`` does not change a verdict.

For the learner: ``hint = gr.hints("<assignment>")`` then ``hint("task1")`` prints the next
hint (:mod:`.ladder`); ``with gr.task("task1", points=2, answers=("f",)):`` around a test
cell's visible checks records their outcome, and ``gr.summary()`` prints the "Check your
work" table (:mod:`.selfcheck`). A failed check raises :class:`CheckFailed`, which IPython
shows as the failed line and the message, without the helpers' frames (:mod:`.failure`).
"""

from .failure import CheckFailed
from .ladder import Hints, hints
from .integrity import AUTODIFF_MODULES, AUTODIFF_NAMES, check_not_autodiff, shortcuts
from .references import autodiff_vjp, check_gradient, finite_difference_vjp, torch_vjp
from .report import (AUTODIFF, FD_TOL, FINITE_DIFFERENCES, TOL, TORCH, call_quietly, check, check_close,
                     check_raises, describe, rel_error, upstream)
from .selfcheck import results, summary, task

__all__ = [
    "AUTODIFF_NAMES", "AUTODIFF_MODULES",
    "TOL", "FD_TOL", "AUTODIFF", "TORCH", "FINITE_DIFFERENCES", "upstream", "rel_error", "describe",
    "check_close", "check", "check_raises", "call_quietly", "autodiff_vjp", "torch_vjp",
    "finite_difference_vjp", "check_gradient", "shortcuts", "check_not_autodiff",
    "CheckFailed", "hints", "Hints", "task", "summary", "results",
]
