"""A catalogue of realistic wrong answers to the exercises ("mutants").

Each mutant takes the solution of one answer cell, applies ``replace`` (pairs of
exact substrings: each ``old`` must occur exactly once in that cell), and is
autograded as the submission of a student named ``name``. It must lose the
points of exactly the test cells listed in ``loses`` and keep all the others
(tests/test_exercises.py). Every graded cell of every assignment is lost by at
least one mutant, so no test cell passes everything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    assignment: str
    name: str  # the student id it is graded under
    answer: str  # grade_id of the answer cell it changes
    replace: tuple[tuple[str, str], ...]  # (old, new) substitutions in that cell's solution code
    loses: tuple[str, ...]  # grade_ids of the test cells that must score 0
    why: str  # the mistake it stands for


M = Mutant

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------ ex01_gradient_descent
    M("ex01_gradient_descent", "symmetric-only-gradient", "task1_answer",
      (("return 0.5 * (A + A.T) @ w - b", "return A @ w - b"),),
      ("task1_tests",), "assumes A is symmetric: A w - b instead of (A + A^T) w / 2 - b"),
    M("ex01_gradient_descent", "gradient-sign", "task1_answer",
      (("return 0.5 * (A + A.T) @ w - b", "return b - 0.5 * (A + A.T) @ w"),),
      ("task1_tests",), "a wrong sign: the negative gradient"),
    M("ex01_gradient_descent", "aliased-iterates", "task2_answer",
      (("""    ws = [np.array(w0, dtype=np.float64)]
    for _ in range(num_steps):
        ws.append(ws[-1] - lr * grad_fn(ws[-1]))""",
        """    w = np.array(w0, dtype=np.float64)
    ws = [w]
    for _ in range(num_steps):
        w -= lr * grad_fn(w)
        ws.append(w)"""),),
      ("task2_tests",), "updates w in place and appends the same array, so every row is the last iterate"),
    M("ex01_gradient_descent", "gradient-ascent", "task2_answer",
      (("ws[-1] - lr * grad_fn(ws[-1])", "ws[-1] + lr * grad_fn(ws[-1])"),),
      ("task2_tests",), "a wrong sign: steps up the gradient"),
    M("ex01_gradient_descent", "threshold-missing-factor-2", "task3_answer",
      (("return 2.0 / np.linalg.eigvalsh(H).max()", "return 1.0 / np.linalg.eigvalsh(H).max()"),),
      ("task3_tests",), "a missing factor: 1 / lambda_max"),
    M("ex01_gradient_descent", "threshold-of-A-not-H", "task3_answer",
      (("return 2.0 / np.linalg.eigvalsh(H).max()", "return 2.0 / np.linalg.eigvalsh(A).max()"),),
      ("task3_tests",), "eigvalsh of a non-symmetric A (it reads only one triangle)"),
    M("ex01_gradient_descent", "nan-blind-divergence", "task4_answer",
      (("if not np.isfinite(loss) or loss > blowup * losses[0]:", "if loss > blowup * losses[0]:"),),
      ("task4_tests",), "compares with the threshold only: NaN > x is False, so NaN goes unnoticed"),
    M("ex01_gradient_descent", "fastest-lr-from-lambda-max-only", "task5_answer",
      (("return 2.0 / (lo + hi), (hi - lo) / (hi + lo)", "return 1.0 / hi, 1.0 - lo / hi"),),
      ("task5_tests",), "tunes the step to the stiffest direction only: 1 / lambda_max is not the fastest"),
    M("ex01_gradient_descent", "fastest-rate-wrong-denominator", "task5_answer",
      (("return 2.0 / (lo + hi), (hi - lo) / (hi + lo)", "return 2.0 / (lo + hi), (hi - lo) / hi"),),
      ("task5_tests",), "the right learning rate with a rate that is not the factor it achieves"),
    M("ex01_gradient_descent", "fastest-lr-of-A-not-H", "task5_answer",
      (("eig = np.linalg.eigvalsh(0.5 * (A + A.T))", "eig = np.linalg.eigvalsh(A)"),),
      ("task5_tests",), "eigvalsh of a non-symmetric A (it reads only one triangle)"),
    # ------------------------------------------------------------ ex02_activations
    M("ex02_activations", "naive-sigmoid", "task1_answer",
      (("""    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))""", """    return 1.0 / (1.0 + np.exp(-x))"""),),
      ("task1_tests", "task2_tests", "task5_tests"),
      "the literal formula: np.exp(-x) overflows at x = -1000 (sigmoid_backward and silu_backward, which use it, "
      "fail too)"),
    M("ex02_activations", "tanh-derivative-of-x", "task2_answer",
      (("""    t = np.tanh(x)
    return grad_out * (1.0 - t * t)""", """    return grad_out * (1.0 - x * x)"""),),
      ("task2_tests",), "1 - x^2 instead of 1 - tanh(x)^2"),
    M("ex02_activations", "sigmoid-backward-without-upstream", "task2_answer",
      (("return grad_out * s * (1.0 - s)", "return s * (1.0 - s)"),),
      ("task2_tests",), "a missing factor: returns sigma'(x), not grad_out * sigma'(x)"),
    M("ex02_activations", "relu-derivative-one-at-zero", "task3_answer",
      (("return grad_out * (x > 0)", "return grad_out * (x >= 0)"),),
      ("task3_tests",), "relu'(0) = 1, against torch's convention relu'(0) = 0"),
    M("ex02_activations", "leaky-relu-fixed-slope", "task3_answer",
      (("return grad_out * np.where(x > 0, 1.0, slope)", "return grad_out * np.where(x > 0, 1.0, 0.01)"),),
      ("task3_tests",), "ignores the slope argument"),
    M("ex02_activations", "elu-where-overflow", "task4_answer",
      (("return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))",
        "return np.where(x > 0, x, alpha * (np.exp(x) - 1))"),),
      ("task4_tests",), "np.where evaluates both branches: e^1000 overflows"),
    M("ex02_activations", "elu-backward-missing-alpha", "task4_answer",
      (("alpha * np.exp(np.minimum(x, 0.0)))", "np.exp(np.minimum(x, 0.0)))"),),
      ("task4_tests",), "a missing factor alpha (invisible with alpha = 1)"),
    M("ex02_activations", "silu-forgets-the-gate-term", "task5_answer",
      (("return grad_out * s * (1.0 + x * (1.0 - s))", "return grad_out * x * s * (1.0 - s)"),),
      ("task5_tests",), "half of the product rule: differentiates only the sigmoid factor"),
    M("ex02_activations", "silu-derivative-is-the-gate", "task5_answer",
      (("return grad_out * s * (1.0 + x * (1.0 - s))", "return grad_out * s"),),
      ("task5_tests",), "treats sigma(x) as a constant gate: the other half of the product rule"),
    M("ex02_activations", "silu-backward-uses-autodiff", "task5_answer",
      (("    s = sigmoid(x)\n    return grad_out * s * (1.0 + x * (1.0 - s))",
        "    t = tg.Tensor(x, requires_grad=True)\n    silu_definition(t).backward(grad_out)\n    return t.grad"),),
      ("task5_tests",), "lets tamegrad's autodiff produce the answer (right numbers, caught by the visible structural check)"),
    M("ex02_activations", "vanishing-depth-log-of-mean", "task6_answer",
      (("m = float(np.sum(weights * np.log(backward(z, np.ones_like(z))))) / np.sqrt(2.0 * np.pi)",
        "m = float(np.log(np.sum(weights * backward(z, np.ones_like(z))) / np.sqrt(2.0 * np.pi)))"),),
      ("task6_tests",), "log E[f'] instead of E[log f']: the typical product is the exponential of the mean log"),
    M("ex02_activations", "vanishing-depth-off-by-one", "task6_answer",
      (("return int(np.floor(np.log(threshold) / m)) + 1", "return int(np.floor(np.log(threshold) / m))"),),
      ("task6_tests",), "the last depth above the threshold instead of the first one below it"),
    M("ex02_activations", "vanishing-depth-at-zero-only", "task6_answer",
      (("m = float(np.sum(weights * np.log(backward(z, np.ones_like(z))))) / np.sqrt(2.0 * np.pi)",
        "m = float(np.log(backward(np.zeros(1), np.ones(1))[0]))"),),
      ("task6_tests",), "the best case f'(0) for every layer: ignores the spread of the pre-activations"),
    # ------------------------------------------------------------ ex03_backprop_mlp
    M("ex03_backprop_mlp", "forward-activation-on-output", "task1_answer",
      (("        if l < len(Ws) - 1:\n            hs.append(f(z))", "        hs.append(f(z))"),
       ("    return zs, hs", "    zs[-1] = f(zs[-1])\n    return zs, hs[:-1]")),
      ("task1_tests",), "applies the activation after the last layer too (the backward pass never reads that z)"),
    M("ex03_backprop_mlp", "bias-gradient-mean", "task2_answer",
      (("delta.sum(axis=0)", "delta.mean(axis=0)"),),
      ("task2_tests", "task3_tests"), "a missing factor N: the mean over the batch instead of the sum"),
    M("ex03_backprop_mlp", "bias-gradient-wrong-axis", "task2_answer",
      (("delta.sum(axis=0)", "delta.sum(axis=1)"),),
      ("task2_tests", "task3_tests"), "a wrong axis: sums over the features instead of the batch"),
    M("ex03_backprop_mlp", "tanh-derivative-at-z", "task3_answer",
      (("derivative = 1.0 - h * h", "derivative = 1.0 - z * z"),),
      ("task3_tests",), "tanh' computed from the pre-activation z instead of h = tanh(z)"),
    M("ex03_backprop_mlp", "spectral-norm", "task4_answer",
      (("return np.array([np.sqrt(np.sum(dW * dW)) for dW in dWs])",
        "return np.array([np.linalg.norm(dW, 2) for dW in dWs])"),),
      ("task4_tests",), "np.linalg.norm(M, 2) is the largest singular value, not the Frobenius norm"),
    # ------------------------------------------------------------ ex04_initialisation
    M("ex04_initialisation", "leaky-gain-slope-not-squared", "task1_answer",
      (("math.sqrt(2.0 / (1.0 + slope**2))", "math.sqrt(2.0 / (1.0 + slope))"),),
      ("task1_tests",), "a missing square on the slope"),
    M("ex04_initialisation", "xavier-missing-factor-2", "task2_answer",
      (("gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape)", "gain * math.sqrt(1.0 / (fan_in + fan_out)), size=shape)"),),
      ("task2_tests",), "a missing factor 2 in Xavier's variance"),
    M("ex04_initialisation", "xavier-uniform-normal", "task2_answer",
      (("return np.random.default_rng(rng).uniform(-bound, bound, size=shape)",
        "return np.random.default_rng(rng).normal(0.0, bound / math.sqrt(3.0), size=shape)"),),
      ("task2_tests",), "the right variance from the wrong distribution (normal instead of uniform)"),
    M("ex04_initialisation", "fans-wrong-axis", "task2_answer",
      (("return shape[1] * receptive, shape[0] * receptive", "return shape[0] * receptive, shape[1] * receptive"),),
      ("task2_tests", "task3_tests"), "a wrong axis: fan_in read from shape[0] (Kaiming's std and fans() itself are wrong)"),
    M("ex04_initialisation", "kaiming-mode-ignored", "task3_answer",
      (("""    fan = fan_in if mode == "fan_in" else fan_out
    return np.random.default_rng(rng).normal""", """    fan = fan_in
    return np.random.default_rng(rng).normal"""),),
      ("task3_tests",), "kaiming_normal ignores mode"),
    M("ex04_initialisation", "variance-of-activations", "task4_answer",
      (("""        variances.append(np.var(z))
        h = activation(z)""", """        h = activation(z)
        variances.append(np.var(h))"""),),
      ("task4_tests",), "records Var(h) after the activation instead of Var(z)"),
    M("ex04_initialisation", "backward-std-missing-factor-2", "task5_answer",
      (("return math.sqrt(2.0 / ((1.0 + slope**2) * fan_out))",
        "return math.sqrt(1.0 / ((1.0 + slope**2) * fan_out))"),),
      ("task5_tests",), "a missing factor 2: takes E[f'(z)^2] as 1 + slope^2 instead of its half-and-half average"),
    M("ex04_initialisation", "backward-std-slope-not-squared", "task5_answer",
      (("return math.sqrt(2.0 / ((1.0 + slope**2) * fan_out))", "return math.sqrt(2.0 / ((1.0 + slope) * fan_out))"),),
      ("task5_tests",), "E[f'^2] with the slope instead of its square"),
    M("ex04_initialisation", "backward-std-ignores-slope", "task5_answer",
      (("return math.sqrt(2.0 / ((1.0 + slope**2) * fan_out))", "return math.sqrt(2.0 / fan_out)"),),
      ("task5_tests",), "ReLU's answer for every slope"),
    # ------------------------------------------------------------ ex05_batchnorm
    M("ex05_batchnorm", "unbiased-variance-in-training", "task1_answer",
      (("var = x.var(axis=0)", "var = x.var(axis=0, ddof=1)"),),
      ("task1_tests",), "the other BatchNorm variance convention: unbiased (N - 1) to normalise"),
    M("ex05_batchnorm", "normalise-wrong-axis", "task1_answer",
      (("""    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return""", """    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    return"""),),
      ("task1_tests",), "a wrong axis: normalises each example over its features (LayerNorm)"),
    M("ex05_batchnorm", "biased-running-variance", "task2_answer",
      (("x.var(axis=0, ddof=1)", "x.var(axis=0)"),),
      ("task2_tests",), "the other BatchNorm variance convention: biased variance in the running estimate"),
    M("ex05_batchnorm", "keras-momentum", "task2_answer",
      (("new_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)",
        "new_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)"),
       ("new_var = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)",
        "new_var = momentum * running_var + (1 - momentum) * x.var(axis=0, ddof=1)")),
      ("task2_tests",), "the momentum in the other direction (Keras's convention)"),
    M("ex05_batchnorm", "eval-uses-batch-statistics", "task3_answer",
      (("return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta",
        "return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta"),),
      ("task3_tests",), "evaluation mode with the batch statistics instead of the running ones"),
    M("ex05_batchnorm", "eps-outside-sqrt", "task3_answer",
      (("np.sqrt(running_var + eps)", "(np.sqrt(running_var) + eps)"),),
      ("task3_tests",), "eps added after the square root"),
    M("ex05_batchnorm", "backward-ignores-batch-statistics", "task4_answer",
      (("dx = gamma * inv_std * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))", "dx = gamma * inv_std * g"),),
      ("task4_tests",), "treats mu and var as constants: drops the paths through the batch statistics"),
    M("ex05_batchnorm", "backward-wrong-sign", "task4_answer",
      (("- xhat * (g * xhat).mean(axis=0))", "+ xhat * (g * xhat).mean(axis=0))"),),
      ("task4_tests",), "a wrong sign on the variance path"),
    M("ex05_batchnorm", "backward-uses-autodiff", "task4_answer",
      (("""    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std""", """    xt, gt, bt = tg.Tensor(x, requires_grad=True), tg.Tensor(gamma, requires_grad=True), tg.Tensor(np.zeros_like(gamma), requires_grad=True)
    batch_norm(xt, gt, bt, eps=eps).backward(grad_out)
    return xt.grad, gt.grad, bt.grad
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std"""),),
      ("task4_tests",), "lets tamegrad's autodiff produce the answer (right numbers, caught by the structural test)"),
    # ------------------------------------------------------------ ex06_clipping
    M("ex06_clipping", "clip-value-not-in-place", "task1_answer",
      (("np.clip(p.grad, -clip_value, clip_value, out=p.grad)", "g = np.clip(p.grad, -clip_value, clip_value)"),),
      ("task1_tests",), "rebinds a local name: the gradients are left unchanged"),
    M("ex06_clipping", "sum-of-norms", "task2_answer",
      (("return float(math.sqrt(sum(float(np.sum(p.grad * p.grad)) for p in params if p.grad is not None)))",
        "return float(sum(math.sqrt(float(np.sum(p.grad * p.grad))) for p in params if p.grad is not None))"),),
      ("task2_tests", "task4_tests"), "the sum of the per-parameter norms instead of the global norm"),
    M("ex06_clipping", "python-min-hides-nan", "task3_answer",
      (("return float(np.minimum(1.0, max_norm / (total_norm + 1e-6)))",
        "return float(min(1.0, max_norm / (total_norm + 1e-6)))"),),
      ("task3_tests", "task4_tests"), "Python's min(1.0, nan) is 1.0: a NaN norm leaves the gradients unclipped"),
    M("ex06_clipping", "no-epsilon", "task3_answer",
      (("return float(np.minimum(1.0, max_norm / (total_norm + 1e-6)))", "return float(np.minimum(1.0, max_norm / total_norm))"),),
      ("task3_tests", "task4_tests"), "drops torch's 1e-6 (and divides by zero for a zero norm)"),
    M("ex06_clipping", "per-tensor-clipping", "task4_answer",
      (("""    for p in params:
        if p.grad is not None:
            p.grad *= coefficient""", """    for p in params:
        if p.grad is not None:
            p.grad *= clip_coefficient(float(np.sqrt(np.sum(p.grad * p.grad))), max_norm, error_if_nonfinite)"""),),
      ("task4_tests",), "clips each tensor by its own norm instead of the global norm"),
    M("ex06_clipping", "returns-clipped-norm", "task4_answer",
      (("    return total", "    return global_grad_norm(params)"),),
      ("task4_tests",), "returns the norm after clipping instead of before"),
    M("ex06_clipping", "clip-vjp-scale-as-constant", "task5_answer",
      (("return (c / norm) * (v - u * float(np.dot(u, v)))", "return (c / norm) * v"),),
      ("task5_tests",), "treats the scale c / ||g|| as a constant: drops the path through the norm"),
    M("ex06_clipping", "clip-vjp-wrong-sign", "task5_answer",
      (("return (c / norm) * (v - u * float(np.dot(u, v)))", "return (c / norm) * (v + u * float(np.dot(u, v)))"),),
      ("task5_tests",), "a wrong sign on the projection onto g"),
    M("ex06_clipping", "clip-vjp-unnormalised-projection", "task5_answer",
      (("return (c / norm) * (v - u * float(np.dot(u, v)))", "return (c / norm) * (v - g * float(np.dot(g, v)))"),),
      ("task5_tests",), "projects with g instead of the unit vector g / ||g||"),
    M("ex06_clipping", "clip-vjp-always-clipped", "task5_answer",
      (("    if norm <= c:\n        return np.array(v, dtype=np.float64)\n", ""),),
      ("task5_tests",), "uses the clipped branch also when ||g|| < c"),
    # ------------------------------------------------------------ ex07_remedies
    M("ex07_remedies", "jacobian-without-identity", "task1_answer",
      (("return np.eye(len(h)) + (1.0 - t * t)[:, None] * W", "return (1.0 - t * t)[:, None] * W"),),
      ("task1_tests",), "the plain block's Jacobian: forgets the identity of the skip connection"),
    M("ex07_remedies", "jacobian-scales-columns", "task1_answer",
      (("(1.0 - t * t)[:, None] * W", "W * (1.0 - t * t)[None, :]"),),
      ("task1_tests",), "diag(tanh') on the wrong side: W diag(1 - tanh^2) instead of diag(1 - tanh^2) W"),
    M("ex07_remedies", "nan-blind-diagnosis", "task2_answer",
      (("if not np.all(np.isfinite(norms)) or norms.max() > high:", "if norms.max() > high:"),),
      ("task2_tests",), "never checks for NaN, so a NaN gradient passes as healthy"),
    M("ex07_remedies", "larger-learning-rate-only", "task3_answer",
      (("return MLP(SIZES, activation=\"relu\", init_scheme=\"he\", rng=rng), 0.05",
        "return MLP(SIZES, activation=\"sigmoid\", init_scheme=\"normal\", std=1.0, rng=rng), 5.0"),),
      ("task3_tests", "task4_tests"), "keeps the broken network and only raises the learning rate"),
    M("ex07_remedies", "good-network-learning-rate-too-large", "task3_answer",
      (("rng=rng), 0.05", "rng=rng), 5.0"),),
      ("task4_tests",), "a sound network (ReLU, He) trained with a learning rate that makes it diverge"),
]


def for_assignment(assignment: str) -> list[Mutant]:
    return [m for m in MUTANTS if m.assignment == assignment]
