"""How long `make book` takes: clean, again with nothing changed, and per notebook.

Goals on a 2-core CPU machine: clean build <= 180 s, no-change rebuild <= 20 s,
no notebook over 30 s. Builds into a temporary folder; the repository's _build is untouched.

    .venv/bin/python benchmarks/bench_book.py
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(output: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tools.book", "--path-output", str(output)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit("the build failed:\n" + (result.stdout + result.stderr)[-4000:])
    return seconds


def notebook_seconds(output: Path) -> dict[str, float]:
    from jupyter_cache import get_cache

    cache = get_cache(output / "_build" / ".jupyter_cache")
    return {
        Path(r.uri).relative_to(ROOT).as_posix(): r.data.get("execution_seconds", float("nan"))
        for r in cache.list_cache_records()
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        out = Path(tmp)
        clean = build(out)
        again = build(out)
        per_notebook = notebook_seconds(out)
    print(f"clean build            {clean:7.1f} s   (goal <= 180 s)")
    print(f"rebuild, no change     {again:7.1f} s   (goal <= 20 s)")
    print(f"notebooks executed     {len(per_notebook):7d}     (total {sum(per_notebook.values()):.1f} s)")
    for name, seconds in sorted(per_notebook.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {seconds:6.1f} s  {name}")
    slowest = max(per_notebook.values(), default=0.0)
    print(f"slowest notebook       {slowest:7.1f} s   (goal <= 30 s)")


if __name__ == "__main__":
    main()
