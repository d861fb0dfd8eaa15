"""tamegrad against torch.autograd (float64, random upstream gradients) and finite differences."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tamegrad as tg
from tamegrad.nn import batch_norm

from .conftest import EXACT, FINITE_DIFFERENCES


def compare_with_torch(tg_fn, torch_fn, *arrays, rng=None):
    """Forward values and every input gradient agree, under a random upstream gradient."""
    rng = rng or np.random.default_rng(0)
    ours = [tg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = tg_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert tg.rel_error(a.grad, b.grad.numpy()) < EXACT, f"input {i}: gradient differs from torch"


UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (lambda x: x.exp(), torch.exp),
    "log": (lambda x: (x * x + 0.5).log(), lambda x: (x * x + 0.5).log()),
    "sqrt": (lambda x: (x * x + 0.5).sqrt(), lambda x: (x * x + 0.5).sqrt()),
    "abs": (lambda x: x.abs(), torch.abs),
    "pow": (lambda x: (x * x + 1) ** 1.5, lambda x: (x * x + 1) ** 1.5),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x),
    "sum_all": (lambda x: x.sum(), lambda x: x.sum()),
    "sum_axis0": (lambda x: x.sum(axis=0), lambda x: x.sum(dim=0)),
    "sum_keep": (lambda x: x.sum(axis=1, keepdims=True), lambda x: x.sum(dim=1, keepdim=True)),
    "mean_axis1": (lambda x: x.mean(axis=-1), lambda x: x.mean(dim=-1)),
    "reshape": (lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    "transpose": (lambda x: x.T * 3.0, lambda x: x.T * 3.0),
    "getitem": (lambda x: x[np.array([0, 0, 2])], lambda x: x[[0, 0, 2]]),
    "sigmoid": (tg.sigmoid, torch.sigmoid),
    "tanh": (tg.tanh, torch.tanh),
    "relu": (tg.relu, torch.relu),
    "leaky_relu": (lambda x: tg.leaky_relu(x, 0.1), lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    "elu": (lambda x: tg.elu(x, 1.3), lambda x: torch.nn.functional.elu(x, 1.3)),
    "softmax": (tg.softmax, lambda x: torch.softmax(x, -1)),
    "softmax_axis0": (lambda x: tg.softmax(x, axis=0), lambda x: torch.softmax(x, 0)),
    "log_softmax": (tg.log_softmax, lambda x: torch.log_softmax(x, -1)),
    "erf": (lambda x: x.erf(), torch.erf),
    "gelu": (tg.gelu, torch.nn.functional.gelu),
    "silu": (tg.silu, torch.nn.functional.silu),
    "layer_norm": (tg.layer_norm, lambda x: torch.nn.functional.layer_norm(x, x.shape[-1:])),
    "rms_norm": (tg.rms_norm, lambda x: torch.nn.functional.rms_norm(x, x.shape[-1:])),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(name, rng):
    ours, theirs = UNARY[name]
    compare_with_torch(ours, theirs, rng.standard_normal((3, 4)) * 2, rng=rng)


BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1)),
    "pow": (lambda a, b: (a * a + 1) ** b),
}
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (3, 4))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_broadcasting_binary_ops_match_torch(name, shapes, rng):
    fn = BINARY[name]
    compare_with_torch(fn, fn, *(rng.standard_normal(s) for s in shapes), rng=rng)


@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2))],
    ids=str,
)
def test_matmul_matches_torch(shapes, rng):
    compare_with_torch(lambda a, b: a @ b, lambda a, b: a @ b, *(rng.standard_normal(s) for s in shapes), rng=rng)


def test_python_numbers_and_arrays_on_either_side(rng):
    x = rng.standard_normal((2, 3))
    arr = rng.standard_normal(3)

    def make(a):
        return lambda t: (2.0 - t) * 3.0 / (1.5 + t * t) + a * t - t / 4.0 + (1.0 / (2.0 + t * t)) + t**2

    compare_with_torch(make(arr), make(torch.tensor(arr)), x, rng=rng)
    t = tg.Tensor(x, requires_grad=True)
    out = arr + t  # ndarray on the left goes through Tensor.__radd__
    assert isinstance(out, tg.Tensor)
    (arr @ t.T).sum().backward()
    np.testing.assert_allclose(t.grad, np.tile(arr, (2, 1)))


def test_composites_match_torch(rng):
    x, gamma, beta = rng.standard_normal((8, 5)), rng.standard_normal(5), rng.standard_normal(5)
    compare_with_torch(
        lambda x, g, b: batch_norm(x, g, b),
        lambda x, g, b: torch.nn.functional.batch_norm(x, None, None, g, b, training=True, eps=1e-5),
        x,
        gamma,
        beta,
        rng=rng,
    )
    targets = rng.integers(0, 5, size=8)
    compare_with_torch(
        lambda z: tg.cross_entropy(z, targets),
        lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(targets)),
        x * 3,
        rng=rng,
    )
    y = rng.standard_normal((8, 5))
    compare_with_torch(lambda p: tg.mse(p, y), lambda p: torch.nn.functional.mse_loss(p, torch.tensor(y)), x, rng=rng)


@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), elements=st.floats(-60, 60, allow_nan=False)
    ),
    st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax", "log_softmax", "erf", "gelu", "silu"]),
)
def test_activations_match_torch_including_saturation(x, name):
    x = np.concatenate([x.ravel(), [50.0, -50.0, 0.0]])  # saturated inputs and the kink, always
    ours, theirs = UNARY[name]
    compare_with_torch(ours, theirs, x)


@given(st.sampled_from(SHAPES), st.sampled_from(sorted(BINARY)), st.integers(0, 2**32 - 1))
def test_broadcasting_property(shapes, name, seed):
    rng = np.random.default_rng(seed)
    fn = BINARY[name]
    compare_with_torch(fn, fn, *(rng.standard_normal(s) for s in shapes), rng=rng)


# ------------------------------------------- normalisations, attention, erf, op names
F_TORCH = torch.nn.functional


def test_erf_matches_the_c_library_to_rounding():
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 1e-300, -1e-12, 30.0, -30.0]])
    ours = tg.Tensor(x).erf().data
    np.testing.assert_allclose(ours, torch.erf(torch.tensor(x)).numpy(), rtol=4e-16, atol=1e-300)
    assert tg.Tensor(np.ones((2, 0))).erf().shape == (2, 0)
    assert tg.Tensor(0.5).erf().shape == ()


def _rows(draw_shape, scale, shift, seed):
    """Rows scale * (shift + N(0, 1)): the shift is in units of the spread, since a
    mean far larger than the spread makes x - mu lose digits in any implementation."""
    rng = np.random.default_rng(seed)
    return scale * (shift + rng.standard_normal(draw_shape)), rng


NORM_SHAPES = st.sampled_from([(5,), (3, 4), (2, 3, 6), (1, 2), (4, 1, 8)])
# LayerNorm of two features outputs about (-1, 1) whatever x is: its gradient is
# O(eps / var), a difference of O(1) terms, so it is left out of the exact comparison.
LN_SHAPES = st.sampled_from([(5,), (3, 4), (2, 3, 6), (1, 3), (4, 1, 8)])


@given(
    LN_SHAPES,
    st.sampled_from([1e-3, 1.0, 30.0]),
    st.sampled_from([0.0, 5.0, -20.0]),
    st.sampled_from([1e-5, 1e-2]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_layer_norm_matches_torch(shape, scale, shift, eps, affine, seed):
    x, rng = _rows(shape, scale, shift, seed)
    n = shape[-1:]
    if affine:
        compare_with_torch(
            lambda x, w, b: tg.layer_norm(x, w, b, eps),
            lambda x, w, b: F_TORCH.layer_norm(x, n, w, b, eps),
            x,
            rng.standard_normal(n),
            rng.standard_normal(n),
            rng=rng,
        )
    else:
        compare_with_torch(lambda x: tg.layer_norm(x, eps=eps), lambda x: F_TORCH.layer_norm(x, n, eps=eps), x, rng=rng)


@given(NORM_SHAPES, st.sampled_from([1e-3, 1.0, 30.0]), st.sampled_from([None, 1e-6, 1e-2]), st.integers(0, 2**32 - 1))
def test_rms_norm_matches_torch(shape, scale, eps, seed):
    x, rng = _rows(shape, scale, 0.5, seed)
    n = shape[-1:]
    compare_with_torch(
        lambda x, w: tg.rms_norm(x, w, eps),
        lambda x, w: F_TORCH.rms_norm(x, n, w, eps),
        x,
        rng.standard_normal(n),
        rng=rng,
    )


def test_rms_norm_default_eps_is_torchs_machine_epsilon():
    # tiny inputs: the answer depends on eps, so a different default shows
    x = np.full((1, 4), 1e-9)
    ref = F_TORCH.rms_norm(torch.tensor(x), (4,)).numpy()
    np.testing.assert_allclose(tg.rms_norm(x).data, ref, rtol=1e-12)
    assert abs(ref[0, 0] - 1.0) > 1e-3  # the check is sensitive to eps here
    np.testing.assert_allclose(
        tg.rms_norm(x.astype(np.float32)).data,
        F_TORCH.rms_norm(torch.tensor(x, dtype=torch.float32), (4,)).numpy(),
        rtol=1e-6,
    )


def test_norm_modules_match_torch(rng):
    x = rng.standard_normal((6, 5)) * 3 + 1
    for ours, theirs in [
        (tg.nn.LayerNorm(5), torch.nn.LayerNorm(5, dtype=torch.float64)),
        (tg.nn.RMSNorm(5), torch.nn.RMSNorm(5, dtype=torch.float64)),
    ]:
        with torch.no_grad():
            for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
                value = rng.standard_normal(p_ours.shape)
                p_ours.data[...] = value
                p_theirs.copy_(torch.tensor(value))
        xt, xr = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours(xt), theirs(xr)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(out.shape)
        out.backward(upstream)
        ref.backward(torch.tensor(upstream))
        assert tg.rel_error(xt.grad, xr.grad.numpy()) < EXACT
        for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
            assert tg.rel_error(p_ours.grad, p_theirs.grad.numpy()) < EXACT, type(ours).__name__


@given(
    st.sampled_from(
        [
            ((4, 3), (4, 3), (4, 2)),
            ((3, 5), (6, 5), (6, 4)),
            ((2, 5, 4), (2, 5, 4), (2, 5, 3)),
            ((2, 2, 3, 4), (2, 2, 6, 4), (2, 2, 6, 4)),
            ((1, 2), (1, 2), (1, 2)),
        ]
    ),
    st.booleans(),
    st.sampled_from([0.3, 1.0, 4.0]),
    st.integers(0, 2**32 - 1),
)
def test_scaled_dot_product_attention_matches_torch(shapes, causal, scale, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (scale * rng.standard_normal(s) for s in shapes)
    compare_with_torch(
        lambda q, k, v: tg.scaled_dot_product_attention(q, k, v, causal=causal),
        lambda q, k, v: F_TORCH.scaled_dot_product_attention(q, k, v, is_causal=causal),
        q,
        k,
        v,
        rng=rng,
    )


def test_causal_attention_ignores_the_future(rng):
    q, k, v = (rng.standard_normal((5, 3)) for _ in range(3))
    out = tg.scaled_dot_product_attention(q, k, v, causal=True).data
    k2, v2 = k.copy(), v.copy()
    k2[3:], v2[3:] = 100 * rng.standard_normal((2, 3)), rng.standard_normal((2, 3))  # change positions 3 and 4
    out2 = tg.scaled_dot_product_attention(q, k2, v2, causal=True).data
    np.testing.assert_array_equal(out[:3], out2[:3])
    assert not np.allclose(out[3:], out2[3:])
    np.testing.assert_allclose(out[0], v[0], rtol=1e-15)  # the first query sees only the first key


def test_finite_differences_agree_on_the_new_composites(rng):
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal(5)

    def block(x, w, b):
        h = tg.layer_norm(x, w, b) + tg.rms_norm(x, w, eps=1e-6)
        h = tg.gelu(h) + tg.silu(h)
        return tg.scaled_dot_product_attention(h, h, h, causal=True)

    assert tg.gradcheck(block, x, w, b) < FINITE_DIFFERENCES


OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**2.0,
    "matmul": lambda a, b: a @ b.T,
    "neg": lambda a, b: -a,
    "sum": lambda a, b: a.sum(),
    "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.abs().log(),
    "sqrt": lambda a, b: (a * a).sqrt(),
    "abs": lambda a, b: a.abs(),
    "erf": lambda a, b: a.erf(),
    "reshape": lambda a, b: a.reshape(-1),
    "transpose": lambda a, b: a.T,
    "getitem": lambda a, b: a[0],
    "sigmoid": lambda a, b: tg.sigmoid(a),
    "tanh": lambda a, b: tg.tanh(a),
    "relu": lambda a, b: tg.relu(a),
    "leaky_relu": lambda a, b: tg.leaky_relu(a),
    "elu": lambda a, b: tg.elu(a),
    "softmax": lambda a, b: tg.softmax(a),
    "log_softmax": lambda a, b: tg.log_softmax(a),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_primitive_names_its_op(name, rng):
    a, b = tg.Tensor(rng.standard_normal((2, 3)) + 3, requires_grad=True), tg.Tensor(rng.standard_normal((2, 3)))
    out = OPS[name](a, b)
    assert out.op == name
    assert f"op='{name}'" in repr(out)
    with tg.no_grad():
        assert OPS[name](a, b).op == name  # named even when no graph is recorded


def test_leaves_have_no_op_and_composites_end_in_their_last_primitive():
    leaf = tg.Tensor([1.0, 2.0], requires_grad=True)
    assert leaf.op == "" and "op=" not in repr(leaf)
    assert tg.layer_norm(leaf).op == "div" and tg.rms_norm(leaf, leaf).op == "mul"
    assert tg.mse(leaf, 0.0).op == "div"  # mean is sum / n


def test_finite_differences_agree_on_a_deep_composite(rng):
    x, w1, w2 = rng.standard_normal((6, 4)), rng.standard_normal((4, 5)), rng.standard_normal((5, 3))

    def net(x, w1, w2):
        h = tg.elu(batch_norm(x @ w1, 1.0, 0.0, eps=1e-3))
        return tg.log_softmax(tg.tanh(h) @ w2 + tg.sigmoid(h).sum(axis=1, keepdims=True))

    assert tg.gradcheck(net, x, w1, w2) < FINITE_DIFFERENCES


def test_derivative_conventions_at_kinks():
    zero = np.zeros(1)
    assert tg.grad(lambda x: tg.relu(x).sum())(zero)[0] == 0.0
    assert tg.grad(lambda x: tg.leaky_relu(x, 0.2).sum())(zero)[0] == pytest.approx(0.2)
    assert tg.grad(lambda x: tg.elu(x, 0.7).sum())(zero)[0] == pytest.approx(0.7)


def test_extreme_inputs_give_no_overflow_warnings():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for fn in (tg.sigmoid, tg.tanh, tg.relu, tg.leaky_relu, tg.elu, tg.softmax, tg.log_softmax, tg.gelu, tg.silu):
            t = tg.Tensor(x, requires_grad=True)
            out = fn(t)
            out.backward(np.linspace(-1, 1, 5))
            assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad))
    np.testing.assert_allclose(tg.sigmoid(x).data, [0, 1.9287498479639178e-22, 0.5, 1, 1], rtol=1e-12, atol=0)


def test_a_node_used_twice_accumulates_both_paths():
    x = tg.Tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == pytest.approx(7.0)


def test_backward_twice_accumulates_as_torch():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_a_chain_of_100000_operations_backpropagates():
    x = tg.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert x.grad == pytest.approx(1.00001**100_000, rel=1e-9)


def test_grad_and_no_grad():
    g = tg.grad(lambda x, w: ((x @ w) ** 2).sum(), argnums=(0, 1))
    x, w = np.ones((2, 3)), np.arange(3.0)
    gx, gw = g(x, w)
    np.testing.assert_allclose(gx, 2 * np.outer(x @ w, w))
    np.testing.assert_allclose(gw, 2 * x.T @ (x @ w))
    with tg.no_grad():
        y = tg.Tensor(1.0, requires_grad=True) * 2
    assert not y.requires_grad


def test_non_leaves_keep_grad_only_when_retained():
    x = tg.Tensor([1.0, -2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    z = x * 2
    (h * z).sum().backward()
    np.testing.assert_allclose(h.grad, z.data)
    assert z.grad is None


def test_clear_errors():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar output"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(4))
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor(1.0).backward()


def test_default_dtype_is_float64():
    assert tg.Tensor([1, 2]).data.dtype == np.float64
    assert (tg.Tensor([1, 2]) * 2).data.dtype == np.float64


def test_import_does_not_import_torch():
    code = "import sys, tamegrad, tamegrad.nn, tamegrad.init; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_mlp_accepts_the_transformer_activations(activation, rng):
    net = tg.nn.MLP([3, 4, 2], activation=activation, rng=0)
    x = rng.standard_normal((5, 3))
    fn = getattr(torch.nn.functional, activation)
    w1, w2 = (torch.tensor(layer.weight.data) for layer in net.layers)
    expected = fn(torch.tensor(x) @ w1.T) @ w2.T  # biases start at zero
    np.testing.assert_allclose(net(x).data, expected.numpy(), rtol=1e-12, atol=1e-14)
