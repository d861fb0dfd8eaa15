"""Grading throughput: sequential `nbgrader autograde` against `tamegrad grade`.

    .venv/bin/python benchmarks/bench_grading.py [--assignment ex06_clipping] [--n 40] [--k 8]
                                                 [--repeat R] [--baseline OTHER_CHECKOUT]

In one run, on a copy of the course in a temporary folder:

1. the same N submissions (half the solution notebook, half the untouched student
   version) graded by sequential ``nbgrader autograde`` and by ``tamegrad grade
   --workers 2`` (sandbox on; the student's kernel and the tests' kernel): wall times and
   the throughput ratio (with ``--repeat R``, R alternated runs and their medians);
2. the cost per submission of ``tamegrad grade --workers 1``, as the marginal cost
   (T(2k) - T(k)) / k, so that start-up (Dask, imports) is not counted, against the
   floor: a bare nbclient execution of the same notebook (kernel start plus the
   notebook's own work), median of k runs over the same solved/blank mix, and against
   ``nbgrader autograde``'s marginal cost (one kernel per submission);
3. with ``--baseline DIR`` (another checkout of the course, e.g. one from before the
   two-kernel design), the same marginal cost with that checkout's ``tamegrad`` first on
   ``PYTHONPATH``: what the design costs per submission.

Goals on a 2-core machine: throughput ratio >= 1.7 with 2 workers; per-submission
ratio <= 1.3 with 1 worker. Prints medians and ratios; the numbers are not asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from tamegrad.autograde.gradebook import with_tools_on_path  # noqa: E402


def env() -> dict[str, str]:
    return with_tools_on_path(os.environ)


def make_course(dest: Path, assignment: str) -> Path:
    dest.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(REPO / "solutions" / assignment, dest / "solutions" / assignment)
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", assignment, "--force"],
        cwd=dest,
        env=env(),
        check=True,
        capture_output=True,
    )
    return dest


def add_submissions(course: Path, assignment: str, n: int, folder: str = "submitted") -> None:
    solution = course / "solutions" / assignment / f"{assignment}.ipynb"
    release = course / "exercises" / assignment / f"{assignment}.ipynb"
    for i in range(n):
        d = course / folder / f"student{i:03d}" / assignment
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(solution if i % 2 == 0 else release, d / f"{assignment}.ipynb")


def timed(cmd, cwd, pythonpath: str | None = None) -> float:
    e = env()
    if pythonpath is not None:
        e["PYTHONPATH"] = pythonpath
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def bare_nbclient(notebooks: list[Path], runs: int) -> list[float]:
    """Execute the notebooks in turn (the same mix as the submissions) with nbclient."""
    import nbformat
    from nbclient import NotebookClient

    times = []
    for i in range(runs):
        notebook = notebooks[i % len(notebooks)]
        nb = nbformat.read(notebook, as_version=4)
        t = time.perf_counter()
        NotebookClient(
            nb,
            timeout=600,
            allow_errors=True,
            kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent)}},
        ).execute()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="ex06_clipping")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--k", type=int, default=8, help="submissions per step of the 1-worker marginal cost")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs (medians are printed)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="another checkout whose tamegrad grade to time the same way (the old design)",
    )
    args = parser.parse_args()
    a = args.assignment
    if not (REPO / "solutions" / a).is_dir():
        sys.exit(f"solutions/{a} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        base = make_course(tmp / "base", a)
        print(f"{a}: {args.n} submissions (half solved, half blank), {os.cpu_count()} cores")

        seqs, pars = [], []
        for r in range(args.repeat):  # alternated, so that a change of load touches both
            seq = tmp / f"sequential-{r}"
            shutil.copytree(base, seq)
            add_submissions(seq, a, args.n)
            seqs.append(timed([BIN / "nbgrader", "autograde", a], seq))
            par = tmp / f"parallel-{r}"
            shutil.copytree(base, par)
            add_submissions(par, a, args.n)
            pars.append(
                timed(
                    [BIN / "tamegrad", "grade", a, "--submissions", "submitted", "--workers", "2", "--no-progress"],
                    par,
                    str(REPO),
                )
            )
            print(f"  run {r + 1}: nbgrader {seqs[-1]:.1f} s, tamegrad {pars[-1]:.1f} s, {seqs[-1] / pars[-1]:.2f}x")
            shutil.rmtree(seq, ignore_errors=True)
            shutil.rmtree(par, ignore_errors=True)
        t_seq, t_par = statistics.median(seqs), statistics.median(pars)
        ratio = statistics.median(s / p for s, p in zip(seqs, pars))
        print(f"  nbgrader autograde (sequential), median: {t_seq:7.1f} s  {args.n / t_seq:.3f} submissions/s")
        print(f"  tamegrad grade --workers 2, median:      {t_par:7.1f} s  {args.n / t_par:.3f} submissions/s")
        print(f"  throughput ratio, median of {args.repeat}: {ratio:.2f}x (goal >= 1.7x)")

        k = args.k

        def marginal_cost(pythonpath=None, label="this"):
            runs = {}
            for m in (k, 2 * k):
                c = tmp / f"one-{label}-{m}"
                shutil.copytree(base, c)
                add_submissions(c, a, m)
                runs[m] = timed(
                    [BIN / "tamegrad", "grade", a, "--submissions", "submitted", "--workers", "1", "--no-progress"],
                    c,
                    pythonpath,
                )
            return runs, (runs[2 * k] - runs[k]) / k

        runs, marginal = marginal_cost(str(REPO))
        nbg = {}
        for m in (k, 2 * k):
            c = tmp / f"nbgrader-{m}"
            shutil.copytree(base, c)
            add_submissions(c, a, m)
            nbg[m] = timed([BIN / "nbgrader", "autograde", a], c)
        nbg_marginal = (nbg[2 * k] - nbg[k]) / k
        if args.baseline is not None:
            old_runs, old_marginal = marginal_cost(str(args.baseline.resolve()), "baseline")
        floor = bare_nbclient([base / "solutions" / a / f"{a}.ipynb", base / "exercises" / a / f"{a}.ipynb"], k)
        floor_med = statistics.median(floor)
        print(
            f"  tamegrad grade --workers 1: {k} in {runs[k]:.1f} s, {2 * k} in {runs[2 * k]:.1f} s; "
            f"marginal cost {marginal:.2f} s per submission"
        )
        print(
            f"  bare nbclient execution (kernel start + notebook), median of {k}: {floor_med:.2f} s "
            f"(min {min(floor):.2f}, max {max(floor):.2f})"
        )
        print(f"  per-submission ratio: {marginal / floor_med:.2f}x (goal <= 1.3x)")
        print(
            f"  nbgrader autograde (one kernel): {k} in {nbg[k]:.1f} s, {2 * k} in {nbg[2 * k]:.1f} s; "
            f"marginal cost {nbg_marginal:.2f} s per submission; two kernels against one: "
            f"{marginal / nbg_marginal:.2f}x ({marginal - nbg_marginal:+.2f} s)"
        )
        if args.baseline is not None:
            print(
                f"  baseline {args.baseline}: {k} in {old_runs[k]:.1f} s, {2 * k} in {old_runs[2 * k]:.1f} s; "
                f"marginal cost {old_marginal:.2f} s per submission"
            )
            print(
                f"  this design against the baseline: {marginal / old_marginal:.2f}x per submission "
                f"({marginal - old_marginal:+.2f} s)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
