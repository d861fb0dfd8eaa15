"""The course's one relative error and one finite-difference loop, the diagnostics, and the
branches of the exercise checks that no exercise reaches on its happy path (NaN, inf, shapes,
the structural check). Fast: no notebook runs here."""

import math

import numpy as np
import pytest

import tamegrad as tg
from tamegrad import diagnostics
from tamegrad import grading as gr
from tamegrad.gradcheck import numerical_grad, rel_error

NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------ rel_error
def test_rel_error_is_the_stated_formula():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([1.0, -2.5, 2.0])
    assert rel_error(a, b) == pytest.approx(1.0 / 5.0)  # max|a-b| = 1, max(|a|+|b|) = 5
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(3), np.full(3, 1e-10)) == pytest.approx(1e-10 / 1e-8)  # the 1e-8 floor


def test_rel_error_reads_tensors_and_torch():
    import torch

    x = np.arange(4.0)
    assert rel_error(tg.Tensor(x), torch.tensor(x + 1e-3)) == pytest.approx(1e-3 / (2 * 3 + 1e-3))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([1.0, NAN], [1.0, NAN], 0.0),  # NaN where NaN is expected: the finite rest decides
        ([1.0, INF], [1.0, INF], 0.0),
        ([1.0, -INF], [1.0, -INF], 0.0),
        ([NAN, NAN], [NAN, NAN], 0.0),  # nothing finite to compare
        ([1.0, NAN], [1.0, 2.0], INF),  # NaN where a number was expected
        ([1.0, 2.0], [1.0, NAN], INF),
        ([1.0, INF], [1.0, -INF], INF),  # infinities of the other sign
        ([1.0, INF], [1.0, NAN], INF),
    ],
)
def test_rel_error_non_finite_entries_must_match(a, b, expected):
    assert rel_error(np.array(a), np.array(b)) == expected


def test_rel_error_refuses_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(3), np.zeros((3, 1)))


def test_grading_uses_the_same_rel_error():
    assert gr.rel_error is tg.rel_error is rel_error


# ------------------------------------------------------------- numerical_grad
def test_numerical_grad_of_a_cubic_is_exact_to_rounding():
    rng = np.random.default_rng(0)
    x, up = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    (g,) = numerical_grad(lambda x: x**3, [x.copy()], up)
    assert rel_error(g, 3 * x**2 * up) < 1e-8


def test_numerical_grad_only_for_wrt_and_restores_inputs():
    rng = np.random.default_rng(1)
    a, b, up = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    a0, b0 = a.copy(), b.copy()
    grads = numerical_grad(lambda a, b: a * b, [a, b], up, wrt=[1])
    assert len(grads) == 1 and rel_error(grads[0], a0 * up) < 1e-8
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_gradcheck_is_small_for_a_right_backward_and_large_for_a_wrong_one():
    x = np.random.default_rng(2).standard_normal(5)
    assert tg.gradcheck(lambda t: tg.tanh(t) * t, x) < 1e-7
    up = np.random.default_rng(5).standard_normal(5)
    (numeric,) = numerical_grad(lambda x: np.tanh(x) * x, [x.copy()], up)
    wrong = up * (1 - np.tanh(x))  # the derivative of tanh written without the square, and no product rule
    assert rel_error(wrong, numeric) > 0.1


# ---------------------------------------------------------------- diagnostics
def test_norms_and_update_ratio():
    np.testing.assert_allclose(diagnostics.norms([np.array([3.0, 4.0]), np.eye(2)]), [5.0, math.sqrt(2)])
    rng = np.random.default_rng(3)
    data = rng.standard_normal(10_000)
    assert diagnostics.update_ratio(1e-3 * rng.standard_normal(10_000), data) == pytest.approx(1e-3, rel=0.05)
    assert diagnostics.update_ratio(np.ones(3), np.zeros(3)) == pytest.approx(0.0)  # std(update) = 0, floor 1e-12


def test_saturated_and_dead_fractions():
    h = np.array([[0.99, -0.5], [-0.98, 0.1]])
    assert diagnostics.saturated_fraction(h, "tanh") == 0.5
    assert diagnostics.saturated_fraction(np.array([0.99, 0.5, 0.01, 0.2]), "sigmoid") == 0.5
    with pytest.raises(ValueError, match="relu"):
        diagnostics.saturated_fraction(h, "relu")
    z = np.array([[-1.0, 2.0, 0.0], [-3.0, -1.0, 0.0]])  # column 0 and 2 never positive
    assert diagnostics.dead_fraction(z) == pytest.approx(2 / 3)


def test_weight_grad_norms_follow_the_layers():
    net = tg.nn.MLP([3, 4, 2], activation="tanh", init_scheme="xavier", rng=0)
    tg.cross_entropy(net(np.random.default_rng(4).standard_normal((5, 3))), [0, 1, 0, 1, 1]).backward()
    expected = [np.linalg.norm(layer.weight.grad) for layer in net.layers]
    np.testing.assert_allclose(diagnostics.weight_grad_norms(net), expected)
    assert all(v > 0 for v in expected)


# ------------------------------------------------------- the checks' branches
def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_check_close_reports_nan_inf_shape_and_none():
    kw = dict(what="task", source="a test")
    assert "NaN where a number was expected" in _message(gr.check_close, [1.0, NAN], [1.0, 2.0], **kw)
    assert "a number where NaN was expected" in _message(gr.check_close, [1.0, 2.0], [1.0, NAN], **kw)
    assert "infinite entries" in _message(gr.check_close, [1.0, INF], [1.0, -INF], **kw)
    assert "Shape (3,)" in _message(gr.check_close, np.zeros(3), np.zeros(2), **kw)
    assert "returned None" in _message(gr.check_close, None, np.zeros(2), **kw)
    assert "largest difference at index (1,)" in _message(gr.check_close, [1.0, 2.5], [1.0, 2.0], **kw)
    gr.check_close([1.0, NAN, INF], [1.0, NAN, INF], **kw)  # matching non-finite entries pass


def test_call_quietly_turns_overflow_into_a_failure():
    assert "overflow" in _message(gr.call_quietly, lambda x: np.exp(x), np.array([1000.0]), what="sigmoid")
    assert gr.call_quietly(lambda x: np.exp(-np.abs(x)), np.array([1000.0]), what="stable") == pytest.approx(0.0)


def test_shortcuts_find_autodiff_and_follow_helpers():
    import tamegrad

    def honest(x):
        return np.tanh(x) * 2

    def uses_backward(x):
        t = tamegrad.Tensor(x, requires_grad=True)
        t.tanh().sum().backward()
        return t.grad

    def helper(x):
        return tamegrad.grad(lambda t: t.sum())(x)

    def calls_helper(x):
        return helper(x) + 1

    assert gr.shortcuts(honest) == []
    found = gr.shortcuts(uses_backward)
    assert "`backward`" in found and any("tamegrad" in f for f in found)
    assert any("grad" in f for f in gr.shortcuts(calls_helper))  # found through the notebook helper
    assert "`backward`" not in gr.shortcuts(uses_backward, allow=("backward",))
    assert "not accepted" in _message(gr.check_not_autodiff, uses_backward)
