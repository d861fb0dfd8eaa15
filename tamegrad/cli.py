"""The ``tamegrad`` command.

    tamegrad grade ASSIGNMENT --submissions PATH [--workers N] [--scheduler ADDRESS]
                   [--db-url URL] [--timeout SECONDS] [--memory-limit SIZE] [--out DIR]
                   [--force] [--course DIR] [--sandbox auto|bwrap|none] [--grades FILE] ...

Heavy imports (nbgrader, dask, jupyter) happen inside the command, so ``import tamegrad``
stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

GRADE_HELP = """\
Autograde every submission of ASSIGNMENT with nbgrader's machinery, in parallel and in a
sandbox. Writes autograded/ and feedback/ (under the course root, or --out) and grades.csv
(or --grades FILE; a grades.csv that nbgrader export wrote is left alone, with exit code 2).
Exit code 0 when grading worked (whatever the students scored), 1 when some submissions
could not be graded (status 'error'), 2 when grading could not start.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tamegrad", description="Tools of the course Taming Gradients.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde a batch of submissions", description=GRADE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("assignment", help="assignment name, e.g. ex06_clipping")
    g.add_argument("--submissions", required=True, type=Path, metavar="PATH",
                   help="folder in nbgrader's submitted/<student>/<assignment>/ layout, or a .zip of one "
                        "(a flat LMS download is read with nbgrader's zip_collect named_regexp)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Dask worker processes (default: the number of cores; 0 runs in this process)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="use an existing Dask cluster, e.g. tcp://host:8786 (no shared file system needed)")
    g.add_argument("--db-url", metavar="URL",
                   help="gradebook database (default: sqlite:///<course>/gradebook.db; "
                        "postgresql://user@host/db for several machines)")
    g.add_argument("--timeout", type=int, metavar="SECONDS",
                   help="per-cell time limit (default: Execute.timeout of nbgrader_config.py, or 30)")
    g.add_argument("--memory-limit", default="2G", metavar="SIZE",
                   help="address-space limit of each kernel, e.g. 2G, 1500M (default 2G)")
    g.add_argument("--out", type=Path, metavar="DIR",
                   help="where autograded/, feedback/ and grades.csv go (default: the course root)")
    g.add_argument("--grades", type=Path, metavar="FILE",
                   help="the grade table to write (default: <out>/grades.csv); a file that tamegrad grade did "
                        "not write, such as nbgrader export's grades.csv, is never overwritten")
    g.add_argument("--force", action="store_true", help="regrade submissions that have not changed")
    g.add_argument("--course", type=Path, default=Path("."), metavar="DIR",
                   help="course root with nbgrader_config.py and the source notebooks (default: .)")
    g.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="bubblewrap sandbox: auto uses it when it works here and warns when it does not")
    g.add_argument("--named-regexp", default="", metavar="REGEX",
                   help="for a flat LMS zip: nbgrader's FileNameCollectorPlugin.named_regexp")
    g.add_argument("--student", action="append", default=[], metavar="ID", help="grade only this student (repeatable)")
    g.add_argument("--no-guard", action="store_true", help="do not inject the tamper guard (not recommended)")
    g.add_argument("--no-feedback", action="store_true", help="do not write feedback HTML")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "grade":
        from .autograde.batch import Options, run

        opts = Options(
            assignment=args.assignment, submissions=args.submissions, course=args.course,
            workers=args.workers, scheduler=args.scheduler, db_url=args.db_url, timeout=args.timeout,
            memory_limit=args.memory_limit, out=args.out, force=args.force, sandbox=args.sandbox,
            named_regexp=args.named_regexp, guard=not args.no_guard, feedback=not args.no_feedback,
            progress=not args.no_progress, students=args.student, grades=args.grades,
        )
        return run(opts)
    return 2


if __name__ == "__main__":
    sys.exit(main())
