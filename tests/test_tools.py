"""tamegrad.init, tamegrad.clip and tamegrad.nn against torch's conventions."""

import math

import numpy as np
import pytest
import torch

import tamegrad as tg
from tamegrad import init
from tamegrad.nn import MLP, BatchNorm1d

from .conftest import EXACT


@pytest.mark.parametrize(
    "name,param",
    [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2)],
)
def test_gains_match_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
def test_fans_and_bounds_match_torch(shape):
    fan_in, fan_out = init.fans(shape)
    t = torch.empty(shape, dtype=torch.float64)
    assert (fan_in, fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    torch.nn.init.xavier_uniform_(t, gain=1.7)
    bound = math.sqrt(3) * init.xavier_std(shape, 1.7)
    assert t.abs().max().item() <= bound
    ours = init.xavier_uniform(shape, gain=1.7, rng=0)
    assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound


@pytest.mark.parametrize(
    "sampler,std",
    [
        (lambda s: init.xavier_normal(s, gain=2.0, rng=1), lambda s: init.xavier_std(s, 2.0)),
        (lambda s: init.xavier_uniform(s, rng=1), lambda s: init.xavier_std(s)),
        (lambda s: init.kaiming_normal(s, rng=1), lambda s: init.kaiming_std(s)),
        (lambda s: init.kaiming_uniform(s, mode="fan_out", rng=1), lambda s: init.kaiming_std(s, mode="fan_out")),
    ],
)
def test_sample_standard_deviation(sampler, std):
    shape = (400, 500)
    assert np.std(sampler(shape)) == pytest.approx(std(shape), rel=0.01)


def test_kaiming_std_matches_torch_formula():
    t = torch.empty(1000, 800, dtype=torch.float64)
    torch.manual_seed(0)
    torch.nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert t.std().item() == pytest.approx(init.kaiming_std((1000, 800)), rel=0.01)


def _pair(rng, shapes, with_grads):
    ours, theirs = [], []
    for shape, has in zip(shapes, with_grads):
        g = rng.standard_normal(shape) * 3
        p, q = (
            tg.Tensor(np.zeros(shape), requires_grad=True),
            torch.zeros(shape, dtype=torch.float64, requires_grad=True),
        )
        if has:
            p.grad, q.grad = g.copy(), torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(rng, max_norm, norm_type):
    ours, theirs = _pair(rng, [(3, 4), (5,), (2, 2)], [True, False, True])
    total = tg.clip_grad_norm(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert tg.rel_error(p.grad, q.grad.numpy()) < EXACT


def test_clip_grad_norm_at_the_threshold_uses_torchs_epsilon():
    p = tg.Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([3.0, 4.0])  # norm exactly 5
    assert tg.clip_grad_norm([p], 5.0) == 5.0
    np.testing.assert_allclose(p.grad, np.array([3.0, 4.0]) * 5 / (5 + 1e-6), rtol=1e-15)


def test_clip_grad_norm_nan_spreads_as_in_torch():
    ours = tg.Tensor(np.zeros(2), requires_grad=True)
    ours.grad = np.array([np.nan, 1.0])
    theirs = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    theirs.grad = torch.tensor([np.nan, 1.0], dtype=torch.float64)
    total = tg.clip_grad_norm([ours], 1.0)
    expected = torch.nn.utils.clip_grad_norm_([theirs], 1.0)
    assert np.isnan(total) and torch.isnan(expected)
    np.testing.assert_array_equal(np.isnan(ours.grad), torch.isnan(theirs.grad).numpy())


def test_clip_grad_norm_non_finite():
    p = tg.Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        tg.clip_grad_norm([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch(rng):
    ours, theirs = _pair(rng, [(3, 4), (6,)], [True, True])
    tg.clip_grad_value(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())


def test_batchnorm1d_matches_torch_in_training_and_evaluation(rng):
    ours, theirs = BatchNorm1d(4, momentum=0.2), torch.nn.BatchNorm1d(4, momentum=0.2).double()
    for _ in range(3):
        x = rng.standard_normal((6, 4)) * 2 + 1
        up = rng.standard_normal((6, 4))
        xt = tg.Tensor(x, requires_grad=True)
        ours(xt).backward(up)
        xr = torch.tensor(x, requires_grad=True)
        theirs(xr).backward(torch.tensor(up))
        assert tg.rel_error(xt.grad, xr.grad.numpy()) < EXACT
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    assert tg.rel_error(ours.gamma.grad, theirs.weight.grad.numpy()) < EXACT
    ours.eval(), theirs.eval()
    x = rng.standard_normal((5, 4))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_mlp_keeps_hidden_gradients(rng):
    """The kept hidden pre-activations z1, z2 carry dL/dz, checked against the chain rule
    written out: dL/dlogits = (softmax - onehot) / N, dL/dz2 = (dL/dlogits W3) tanh'(z2),
    dL/dz1 = (dL/dz2 W2) tanh'(z1), with tanh'(z) = 1 - tanh(z)^2."""
    net = MLP([5, 8, 8, 3], activation="tanh", init_scheme="xavier", rng=0)
    kept, labels = [], np.array([0, 1, 2, 0])
    logits = net(rng.standard_normal((4, 5)), keep=kept)
    tg.cross_entropy(logits, labels).backward()
    assert len(kept) == 2 and len(list(net.parameters())) == 6
    z1, z2 = (z.data for z in kept)
    p = np.exp(logits.data - logits.data.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d_logits = (p - np.eye(3)[labels]) / len(labels)
    d_z2 = (d_logits @ net.layers[2].weight.data) * (1 - np.tanh(z2) ** 2)
    d_z1 = (d_z2 @ net.layers[1].weight.data) * (1 - np.tanh(z1) ** 2)
    assert tg.rel_error(kept[1].grad, d_z2) < EXACT
    assert tg.rel_error(kept[0].grad, d_z1) < EXACT
