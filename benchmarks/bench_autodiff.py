"""tamegrad vs torch eager vs the bare numpy matrix products (the floor).

A 50-layer tanh MLP, width 128, batch 128, float64, forward and backward,
single-threaded. Prints the median time of each and the ratios.
Goals: tamegrad <= 0.75x torch, tamegrad <= 1.2x the floor.

    .venv/bin/python benchmarks/bench_autodiff.py [--repeats 30]
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before numpy and torch load their BLAS

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

DEPTH, WIDTH, BATCH = 50, 128, 128


def interleaved_medians(steps: dict, repeats: int, seed: int = 0) -> dict:
    """Median seconds of each step, run round-robin in a shuffled order each round,
    so that a change in the machine's load affects every contender alike."""
    order = list(steps)
    times = {name: [] for name in order}
    rng = np.random.default_rng(seed)
    for fn in steps.values():
        fn()  # warm up
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((WIDTH, WIDTH)) * (5 / 3) / np.sqrt(WIDTH) for _ in range(DEPTH)]
    biases = [np.zeros(WIDTH) for _ in range(DEPTH)]
    x = rng.standard_normal((BATCH, WIDTH))
    upstream = rng.standard_normal((BATCH, WIDTH))
    return weights, biases, x, upstream


def tamegrad_step(weights, biases, x, upstream):
    import tamegrad as tg

    ws = [tg.Tensor(w, requires_grad=True) for w in weights]
    bs = [tg.Tensor(b, requires_grad=True) for b in biases]

    def step():
        h = tg.Tensor(x)
        for w, b in zip(ws, bs):
            w.grad = b.grad = None
            h = tg.tanh(h @ w.T + b)
        h.backward(upstream)

    return step


def torch_step(weights, biases, x, upstream):
    import torch

    torch.set_num_threads(1)
    ws = [torch.tensor(w, requires_grad=True) for w in weights]
    bs = [torch.tensor(b, requires_grad=True) for b in biases]
    xt, up = torch.tensor(x), torch.tensor(upstream)

    def step():
        h = xt
        for w, b in zip(ws, bs):
            w.grad = b.grad = None
            h = torch.tanh(h @ w.T + b)
        h.backward(up)

    return step


def floor_step(weights, biases, x, upstream):
    """Only the matrix products a forward and backward pass must do: 3 per layer."""

    def step():
        h = x
        for w in weights:
            h = h @ w.T
        g = upstream
        for w in reversed(weights):
            _ = g.T @ x  # dL/dW (same shapes as with the real activations)
            g = g @ w  # dL/dh

    return step


def numpy_by_hand_step(weights, biases, x, upstream):
    """A hand-written numpy forward and backward (matrix products and elementwise work)."""

    def step():
        hs = [x]
        for w, b in zip(weights, biases):
            hs.append(np.tanh(hs[-1] @ w.T + b))
        g = upstream
        for i in reversed(range(DEPTH)):
            g = g * (1 - hs[i + 1] ** 2)
            _dw, _db = g.T @ hs[i], g.sum(axis=0)
            g = g @ weights[i]

    return step


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import tamegrad; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(5)
    ]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    problem = make_problem()
    makers = {
        "floor (matmuls only)": floor_step,
        "numpy by hand": numpy_by_hand_step,
        "torch eager": torch_step,
        "tamegrad": tamegrad_step,
    }
    results = interleaved_medians({name: make(*problem) for name, make in makers.items()}, args.repeats)
    print(f"{DEPTH}-layer tanh MLP, width {WIDTH}, batch {BATCH}, float64, 1 thread; median of {args.repeats}")
    for name, seconds in results.items():
        print(f"  {name:22s} {seconds * 1e3:8.2f} ms")
    t = results["tamegrad"]
    print(f"  tamegrad / torch       {t / results['torch eager']:8.2f}x   (goal <= 0.75x)")
    print(f"  tamegrad / floor       {t / results['floor (matmuls only)']:8.2f}x   (goal <= 1.2x)")
    print(f"  tamegrad / numpy by hand {t / results['numpy by hand']:6.2f}x")
    print(f"  import tamegrad        {import_seconds() * 1e3:8.1f} ms   (goal < 300 ms)")


if __name__ == "__main__":
    main()
