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
    # ------------------------------------------------------------ ex03_backprop_mlp (exercises-b)
    M("ex03_backprop_mlp", "loss-forgets-mean", "task1_answer",
      (("targets] = -1.0 / N", "targets] = -1.0"),),
      ("task1_tests",), "forgets the 1/N of the mean loss: dL/dlogprobs as if the loss were a sum over the batch"),
    M("ex03_backprop_mlp", "softmax-sum-wrong-axis", "task1_answer",
      (("(grads[\"probs\"] * c[\"counts\"]).sum(axis=1, keepdims=True)",
        "(grads[\"probs\"] * c[\"counts\"]).sum(axis=0, keepdims=True)"),),
      ("task1_tests",), "the wrong axis of the softmax: sums the broadcast inv_sum over the batch, not over the row"),
    M("ex03_backprop_mlp", "counts-one-path", "task1_answer",
      (("grads[\"probs\"] * c[\"inv_sum\"] + grads[\"counts_sum\"]", "grads[\"probs\"] * c[\"inv_sum\"]"),),
      ("task1_tests",), "counts feeds probs and counts_sum: keeps only the direct path"),
    M("ex03_backprop_mlp", "tanh-derivative-not-squared", "task2_answer",
      (("(1.0 - c[\"h1\"] ** 2)", "(1.0 - c[\"h1\"])"),),
      ("task2_tests",), "tanh' written as 1 - tanh instead of 1 - tanh^2"),
    M("ex03_backprop_mlp", "output-bias-mean", "task2_answer",
      (("grads[\"b2\"] = dlogits.sum(axis=0)", "grads[\"b2\"] = dlogits.mean(axis=0)"),),
      ("task2_tests",), "a spurious 1/N: the bias gradient as a mean over the batch (the 1/N is already in dlogits)"),
    M("ex03_backprop_mlp", "output-weight-transposed", "task2_answer",
      (("grads[\"W2\"] = dlogits.T @ c[\"h1\"]", "grads[\"W2\"] = c[\"h1\"].T @ dlogits"),),
      ("task2_tests",), "dL/dW2 transposed: shape (H, V) instead of the (V, H) of W2"),
    M("ex03_backprop_mlp", "bn-forgets-mean-path", "task3_answer",
      (("grads[\"z1\"] = grads[\"centred\"] + grads[\"mu\"] / N", "grads[\"z1\"] = grads[\"centred\"]"),),
      ("task3_tests",), "forgets the path through mu: z1 also feeds the batch mean"),
    M("ex03_backprop_mlp", "bn-centred-one-path", "task3_answer",
      (("grads[\"xhat\"] * c[\"inv_std\"] + grads[\"var\"] * 2.0 * c[\"centred\"] / N",
        "grads[\"xhat\"] * c[\"inv_std\"]"),),
      ("task3_tests",), "forgets the path through var: centred feeds xhat and var"),
    M("ex03_backprop_mlp", "bn-divides-by-n-minus-1", "task3_answer",
      (("2.0 * c[\"centred\"] / N", "2.0 * c[\"centred\"] / (N - 1)"),),
      ("task3_tests",), "differentiates the unbiased variance (N - 1); the forward pass divides by N"),
    M("ex03_backprop_mlp", "bn-power-rule-sign", "task3_answer",
      (("grads[\"inv_std\"] * -0.5 * (c[\"var\"] + EPS) ** -1.5", "grads[\"inv_std\"] * 0.5 * (c[\"var\"] + EPS) ** -1.5"),),
      ("task3_tests",), "the wrong sign in d(var + eps)^(-1/2) / dvar"),
    M("ex03_backprop_mlp", "embedding-buffered-index", "task4_answer",
      (("    np.add.at(grads[\"C\"], tokens, grads[\"emb\"])", "    grads[\"C\"][tokens] += grads[\"emb\"]"),),
      ("task4_tests",), "C[tokens] += demb: numpy's buffered fancy indexing keeps one contribution per repeated token"),
    M("ex03_backprop_mlp", "first-layer-uses-autodiff", "task4_answer",
      (("    grads[\"x\"] = dz1 @ p[\"W1\"]", "    grads[\"x\"] = tg.Tensor(dz1).data @ p[\"W1\"]"),),
      ("task4_tests",), "routes a computation through tamegrad (right numbers, caught by the visible structural test)"),
    M("ex03_backprop_mlp", "fused-forgets-mean", "task5_answer",
      (("np.eye(c[\"probs\"].shape[1])[targets]) / N", "np.eye(c[\"probs\"].shape[1])[targets])"),),
      ("task5_tests",), "forgets the 1/N of the mean loss in the fused dL/dlogits"),
    M("ex03_backprop_mlp", "fused-bn-forgets-mean-path", "task5_answer",
      (("(da1 - da1.mean(axis=0) - c", "(da1 - c"),),
      ("task5_tests",), "the fused BatchNorm backward without the path through mu"),
    M("ex03_backprop_mlp", "fused-bn-wrong-sign", "task5_answer",
      (("- c[\"xhat\"] * (da1 * c[\"xhat\"]).mean(axis=0))", "+ c[\"xhat\"] * (da1 * c[\"xhat\"]).mean(axis=0))"),),
      ("task5_tests",), "the wrong sign on the xhat * sum(da1 * xhat) term of the fused BatchNorm backward"),
    M("ex03_backprop_mlp", "fused-tanh-not-squared", "task5_answer",
      (("(1.0 - c[\"h1\"] ** 2)", "(1.0 - c[\"h1\"])"),),
      ("task5_tests",), "tanh' written as 1 - tanh in the fused backward"),
    M("ex03_backprop_mlp", "fused-calls-step-functions", "task5_answer",
      (("    dlogits = (c[\"probs\"] - np.eye(c[\"probs\"].shape[1])[targets]) / N",
        "    dlogits = backward_loss(c, targets)[\"logits\"]"),),
      ("task5_tests",), "calls the node-by-node function of Task 1 instead of a fused expression"),
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
    # ------------------------------------------------------------ ex05_batchnorm: the backward pass (exercises-b)
    M("ex05_batchnorm", "backward-ignores-batch-statistics", "task4_answer",
      (("dx = gamma * inv_std * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))", "dx = gamma * inv_std * g"),),
      ("task4_tests",), "treats mu and var as constants: drops the paths through the batch statistics"),
    M("ex05_batchnorm", "backward-forgets-mean-path", "task4_answer",
      (("(g - g.mean(axis=0) - xhat", "(g - xhat"),),
      ("task4_tests",), "forgets the path through mu (keeps the one through var)"),
    M("ex05_batchnorm", "backward-wrong-sign", "task4_answer",
      (("- xhat * (g * xhat).mean(axis=0))", "+ xhat * (g * xhat).mean(axis=0))"),),
      ("task4_tests",), "the wrong sign on the xhat * sum(g * xhat) term (the path through var)"),
    M("ex05_batchnorm", "backward-drops-variance-path", "task4_answer",
      (("- xhat * (g * xhat).mean(axis=0))", ")"),),
      ("task4_tests",), "drops the path through var: right when the upstream gradient is all ones (dx = 0 "
      "either way), so only a random upstream gradient exposes it"),
    M("ex05_batchnorm", "backward-divides-by-n-minus-1", "task4_answer",
      (("var = x.var(axis=0)", "var = x.var(axis=0, ddof=1)"),),
      ("task4_tests",), "the unbiased variance (divided by N - 1) in the backward pass; training mode uses N"),
    M("ex05_batchnorm", "dgamma-mean-not-sum", "task4_answer",
      (("(g * xhat).sum(axis=0)", "(g * xhat).mean(axis=0)"),),
      ("task4_tests",), "a spurious 1/N: dgamma as the mean of g * xhat over the batch instead of the sum"),
    M("ex05_batchnorm", "backward-uses-autodiff", "task4_answer",
      (("""    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std""", """    xt, gt, bt = tg.Tensor(x, requires_grad=True), tg.Tensor(gamma, requires_grad=True), tg.Tensor(np.zeros_like(gamma), requires_grad=True)
    batch_norm(xt, gt, bt, eps=eps).backward(grad_out)
    return xt.grad, gt.grad, bt.grad
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std"""),),
      ("task4_tests",), "lets tamegrad's autodiff produce the answer (right numbers, caught by the visible structural test)"),
    M("ex05_batchnorm", "jacobian-forgets-mean-path", "task5_answer",
      (("np.eye(N) - 1.0 / N - np.outer", "np.eye(N) - np.outer"),),
      ("task5_tests",), "the Jacobian without the path through mu (the -1/N of every entry)"),
    M("ex05_batchnorm", "jacobian-wrong-sign", "task5_answer",
      (("- np.outer(xhat, xhat) / N", "+ np.outer(xhat, xhat) / N"),),
      ("task5_tests",), "the wrong sign on the xhat_n xhat_k / N term (the path through var)"),
    M("ex05_batchnorm", "jacobian-diagonal-only", "task5_answer",
      (("(np.eye(N) - 1.0 / N - np.outer(xhat, xhat) / N)", "np.eye(N)"),),
      ("task5_tests",), "the Jacobian with mu and var held constant: gamma / sqrt(var + eps) on the diagonal"),
    M("ex05_batchnorm", "jacobian-divides-by-n-minus-1", "task5_answer",
      (("x.var() + eps", "x.var(ddof=1) + eps"),),
      ("task5_tests",), "the unbiased variance (divided by N - 1) where training mode divides by N"),
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
    # ------------------------------------------------------------ ex08_transformer_stability
    M("ex08_transformer_stability", "layer-norm-over-batch-axis", "task1_answer",
      (("mu = x.mean(axis=-1, keepdims=True)", "mu = x.mean(axis=0, keepdims=True)"),
       ("var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)", "var = ((x - mu) ** 2).mean(axis=0, keepdims=True)")),
      ("task1_tests",), "normalises each feature over the batch (BatchNorm's axis) instead of each row over its features"),
    M("ex08_transformer_stability", "layer-norm-unbiased-variance", "task1_answer",
      (("var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)", "var = x.var(axis=-1, ddof=1, keepdims=True)"),),
      ("task1_tests",), "the unbiased variance (divide by D - 1) where LayerNorm uses the biased one"),
    M("ex08_transformer_stability", "layer-norm-eps-outside-sqrt", "task1_answer",
      (("(x - mu) / np.sqrt(var + eps)", "(x - mu) / (np.sqrt(var) + eps)"),),
      ("task1_tests",), "eps added to the standard deviation instead of the variance"),
    M("ex08_transformer_stability", "layer-norm-backward-without-gamma", "task2_answer",
      (("g_hat = grad_out * gamma", "g_hat = grad_out"),),
      ("task2_tests",), "forgets that the gain multiplies the upstream gradient before it reaches x_hat"),
    M("ex08_transformer_stability", "layer-norm-backward-all-ones-trap", "task2_answer",
      (("g_hat - g_hat.mean(axis=-1, keepdims=True) - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True)",
        "g_hat - g_hat.mean(axis=-1, keepdims=True)"),),
      ("task2_tests",), "drops the variance's term: right (zero) for an all-ones upstream gradient with gamma = 1, "
      "wrong for any other"),
    M("ex08_transformer_stability", "layer-norm-dgamma-first-axis-only", "task2_answer",
      (("dgamma = (grad_out * x_hat).sum(axis=lead)", "dgamma = (grad_out * x_hat).sum(axis=0)"),),
      ("task2_tests",), "sums dL/dgamma over the first axis only: right for (N, D), wrong with two leading axes"),
    M("ex08_transformer_stability", "layer-norm-backward-uses-autodiff", "task2_answer",
      (("    return dx, dgamma, dbeta", """    xt, gt = tg.Tensor(x, requires_grad=True), tg.Tensor(gamma, requires_grad=True)
    bt = tg.Tensor(np.zeros_like(gamma), requires_grad=True)
    tg.layer_norm(xt, gt, bt, eps).backward(grad_out)
    return xt.grad, gt.grad, bt.grad"""),),
      ("task2_tests",), "lets tamegrad's autodiff produce the answer (right values, refused by the structural check)"),
    M("ex08_transformer_stability", "rms-norm-backward-r-constant", "task3_answer",
      (("dx = (g_hat - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True)) / r", "dx = g_hat / r"),),
      ("task3_tests",), "treats r as a constant: forgets that it depends on every x_j"),
    M("ex08_transformer_stability", "rms-norm-backward-layer-norm-mean-term", "task3_answer",
      (("dx = (g_hat - x_hat", "dx = (g_hat - g_hat.mean(axis=-1, keepdims=True) - x_hat"),),
      ("task3_tests",), "copies LayerNorm's backward, with the mean term RMSNorm does not have"),
    M("ex08_transformer_stability", "rms-norm-eps-outside-sqrt", "task3_answer",
      (("r = np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)", "r = np.sqrt((x * x).mean(axis=-1, keepdims=True)) + eps"),),
      ("task3_tests",), "eps added to the root mean square instead of inside the square root"),
    M("ex08_transformer_stability", "qk-logits-unscaled", "task4_answer",
      (("return q_hat @ k_hat.T / np.sqrt(q.shape[-1])", "return q_hat @ k_hat.T"),),
      ("task4_tests",), "forgets the 1/sqrt(d) of scaled dot-product attention"),
    M("ex08_transformer_stability", "qk-norm-over-tokens", "task4_answer",
      (("q / np.sqrt((q * q).mean(axis=-1, keepdims=True) + eps)", "q / np.sqrt((q * q).mean(axis=0, keepdims=True) + eps)"),),
      ("task4_tests",), "normalises the queries over the tokens instead of over each query's features"),
    M("ex08_transformer_stability", "bound-product-of-maxima", "task5_answer",
      (("np.abs(gain_q * gain_k).max()", "(np.abs(gain_q).max() * np.abs(gain_k).max())"),),
      ("task5_tests",), "multiplies the largest gain of q by the largest of k: too large when they sit on different features"),
    M("ex08_transformer_stability", "bound-unit-length", "task5_answer",
      (("* np.sqrt(gain_q.shape[-1])", "/ np.sqrt(gain_q.shape[-1])"),),
      ("task5_tests",), "takes the normalised vectors to have length 1 (they have length sqrt(d)): a bound the logits exceed"),
    M("ex08_transformer_stability", "bound-without-attention-scale", "task5_answer",
      (("* np.sqrt(gain_q.shape[-1])", "* gain_q.shape[-1]"),),
      ("task5_tests",), "forgets the 1/sqrt(d) of the logits: a true bound, but not the smallest"),
    M("ex08_transformer_stability", "warmup-off-by-one", "task6_answer",
      (("(1.0 - start_factor) * step / warmup_steps", "(1.0 - start_factor) * (step + 1) / warmup_steps"),),
      ("task6_tests",), "counts the warm-up from 1: reaches base_lr one step before torch does"),
    M("ex08_transformer_stability", "cosine-without-floor", "task6_answer",
      (("min_lr + (base_lr - min_lr) * 0.5", "base_lr * 0.5"),),
      ("task6_tests",), "a cosine decay to zero that ignores min_lr (eta_min)"),
    M("ex08_transformer_stability", "grads-accumulate-across-calls", "task7_answer",
      (("    model.zero_grad()\n", ""),),
      ("task7_tests",), "never clears the gradients: a second measurement adds to the first"),
    M("ex08_transformer_stability", "block-norm-sum-of-parameter-norms", "task7_answer",
      (("math.sqrt(sum(float(np.sum(p.grad * p.grad)) for p in block.parameters()))",
        "sum(math.sqrt(float(np.sum(p.grad * p.grad))) for p in block.parameters())"),),
      ("task7_tests",), "the sum of the per-parameter norms instead of the norm of the block's gradients together"),
    M("ex08_transformer_stability", "growth-inverted", "task7_answer",
      (("float(post_norms[-1] / post_norms[0])", "float(post_norms[0] / post_norms[-1])"),),
      ("task7_tests",), "the first block's norm over the last's: the growth toward the input, not the output"),
]


def for_assignment(assignment: str) -> list[Mutant]:
    return [m for m in MUTANTS if m.assignment == assignment]
