"""The ``tamegrad`` command.

    tamegrad report ASSIGNMENT [--course DIR] [--out DIR] [--grades FILE] [--db-url URL]
    tamegrad similarity ASSIGNMENT [--submissions DIR] [--course DIR] [--out DIR] [--threshold F]
    tamegrad grade ASSIGNMENT --submissions PATH [--workers N] [--scheduler ADDRESS]
                   [--db-url URL] [--timeout SECONDS] [--memory-limit SIZE] [--out DIR]
                   [--force] [--course DIR] [--sandbox auto|bwrap|none] [--grades FILE]
                   [--watch [SECONDS]] ...

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
could not be graded (status 'error'), 2 when grading could not start or the Dask
scheduler was lost (every grade recorded before stays; a rerun grades only the rest).
With --watch it keeps running and grades each new or changed submission once its folder
is unchanged over one interval; Ctrl-C or SIGTERM stops it with exit code 0.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tamegrad", description="Tools of the course Taming Gradients.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser(
        "grade",
        help="autograde a batch of submissions",
        description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("assignment", help="assignment name, e.g. ex06_clipping")
    g.add_argument(
        "--submissions",
        required=True,
        type=Path,
        metavar="PATH",
        help="folder in nbgrader's submitted/<student>/<assignment>/ layout, or a .zip of one "
        "(a flat LMS download is read with nbgrader's zip_collect named_regexp)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local Dask worker processes (default: the number of cores; 0 runs in this process)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use an existing Dask cluster, e.g. tcp://host:8786 (no shared file system needed)",
    )
    g.add_argument(
        "--db-url",
        metavar="URL",
        help="gradebook database (default: sqlite:///<course>/gradebook.db; "
        "postgresql://user@host/db for several machines)",
    )
    g.add_argument(
        "--timeout",
        type=int,
        metavar="SECONDS",
        help="per-cell time limit (default: Execute.timeout of nbgrader_config.py, or 30)",
    )
    g.add_argument(
        "--total-timeout",
        type=int,
        metavar="SECONDS",
        help="time limit of a whole submission, all cells together (default: 10 x --timeout)",
    )
    g.add_argument(
        "--memory-limit",
        default="2G",
        metavar="SIZE",
        help="address-space limit of each kernel, e.g. 2G, 1500M (default 2G)",
    )
    g.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where autograded/, feedback/ and grades.csv go (default: the course root)",
    )
    g.add_argument(
        "--grades",
        type=Path,
        metavar="FILE",
        help="the grade table to write (default: <out>/grades.csv); a file that tamegrad grade did "
        "not write, such as nbgrader export's grades.csv, is never overwritten",
    )
    g.add_argument("--force", action="store_true", help="regrade submissions that have not changed")
    g.add_argument(
        "--course",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="course root with nbgrader_config.py and the source notebooks (default: .)",
    )
    g.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="bubblewrap sandbox: auto uses it when it works here and warns when it does not",
    )
    g.add_argument(
        "--named-regexp",
        default="",
        metavar="REGEX",
        help="for a flat LMS zip: nbgrader's FileNameCollectorPlugin.named_regexp",
    )
    g.add_argument("--student", action="append", default=[], metavar="ID", help="grade only this student (repeatable)")
    g.add_argument("--no-feedback", action="store_true", help="do not write feedback HTML")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--watch",
        nargs="?",
        const=30.0,
        type=float,
        metavar="SECONDS",
        help="keep running: every SECONDS (default 30) grade the new or changed submissions "
        "(a folder is graded once it is unchanged over one interval); Ctrl-C stops it, exit 0",
    )

    r = sub.add_parser("report", help="what the class got wrong: an HTML report and CSVs from what grading recorded")
    r.add_argument("assignment")
    r.add_argument("--course", type=Path, default=Path("."), metavar="DIR", help="course root (default: .)")
    r.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where grading wrote autograded/ and grades.csv (default: the course root)",
    )
    r.add_argument("--grades", type=Path, metavar="FILE", help="the grade table (default: <out>/grades.csv)")
    r.add_argument("--db-url", metavar="URL", help="gradebook database (default: sqlite:///<course>/gradebook.db)")

    s = sub.add_parser("similarity", help="rank pairs of submissions whose answer code is alike")
    s.add_argument("assignment")
    s.add_argument("--course", type=Path, default=Path("."), metavar="DIR", help="course root (default: .)")
    s.add_argument("--submissions", type=Path, metavar="DIR", help="default: <course>/submitted")
    s.add_argument(
        "--release",
        type=Path,
        metavar="DIR",
        help="the student versions, whose stubs do not count (default: <course>/exercises)",
    )
    s.add_argument("--out", type=Path, metavar="DIR", help="where the report goes (default: <course>/reports)")
    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="F",
        help="list pairs where one side shares at least this fraction of its fingerprints (default 0.6)",
    )
    return parser


def _report(args) -> int:
    from nbgrader.api import Gradebook

    from .autograde import classreport
    from .autograde.gradebook import ensure_tools_on_path, normalise_db_url

    ensure_tools_on_path()  # nbgrader runs alembic when it opens a gradebook
    course = args.course.resolve()
    out = (args.out or course).resolve()
    db_url = normalise_db_url(args.db_url) if args.db_url else f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        report = classreport.collect(gb, args.assignment, out / "autograded", args.grades or out / "grades.csv")
    page = classreport.write(report, out / "reports", out / "autograded")
    print(f"class report: {page}")
    return 0


def _similarity(args) -> int:
    from .autograde import similarity

    course = args.course.resolve()
    threshold = similarity.THRESHOLD if args.threshold is None else args.threshold
    page = similarity.report(
        (args.submissions or course / "submitted").resolve(),
        (args.release or course / "exercises").resolve(),
        args.assignment,
        (args.out or course / "reports").resolve(),
        threshold,
    )
    print(f"similarity report: {page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "grade":
        from .autograde.startup import skip_unused_imports

        skip_unused_imports()
        from .autograde.batch import Options, run

        opts = Options(
            assignment=args.assignment,
            submissions=args.submissions,
            course=args.course,
            workers=args.workers,
            scheduler=args.scheduler,
            db_url=args.db_url,
            timeout=args.timeout,
            total_timeout=args.total_timeout,
            memory_limit=args.memory_limit,
            out=args.out,
            force=args.force,
            sandbox=args.sandbox,
            named_regexp=args.named_regexp,
            feedback=not args.no_feedback,
            progress=not args.no_progress,
            students=args.student,
            grades=args.grades,
        )
        if args.watch is not None:
            if not args.watch > 0:
                print("tamegrad grade: --watch takes a number of seconds > 0", file=sys.stderr)
                return 2
            from .autograde import watch

            return watch.run(opts, args.watch)
        return run(opts)
    if args.command == "report":
        return _report(args)
    if args.command == "similarity":
        return _similarity(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
