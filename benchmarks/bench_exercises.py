"""How long each exercise's solution notebook takes to run, against the 20 s goal.

Executes every ``solutions/<assignment>/<assignment>.ipynb`` with nbclient (a fresh
kernel each time, as nbgrader's autograder does, so kernel start-up and imports are
included) several times, round-robin, and prints the median seconds per notebook.
Every run must also finish without an error in any cell.

    .venv/bin/python benchmarks/bench_exercises.py [--repeats 3] [ASSIGNMENT ...]

Exit status 1 if a median exceeds the goal or a notebook fails.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
GOAL = 20.0  # seconds per solution notebook, on CPU


def run_once(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        raise RuntimeError(f"{path.name}: {errors[0].ename}: {errors[0].evalue}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("assignments", nargs="*")
    args = parser.parse_args()
    names = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    paths = {a: ROOT / "solutions" / a / f"{a}.ipynb" for a in names}
    times = {a: [] for a in names}
    for _ in range(args.repeats):
        for a, path in paths.items():
            times[a].append(run_once(path))
    print(f"{'solution notebook':28s} {'median s':>9s} {'min s':>7s} {'max s':>7s}   goal {GOAL:.0f} s")
    slow = []
    for a in names:
        median = statistics.median(times[a])
        print(f"{a:28s} {median:9.2f} {min(times[a]):7.2f} {max(times[a]):7.2f}   {'ok' if median <= GOAL else 'SLOW'}")
        if median > GOAL:
            slow.append(a)
    print(f"({args.repeats} runs each, fresh kernel per run: start-up and imports included)")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
