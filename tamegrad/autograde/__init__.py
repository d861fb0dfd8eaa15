"""Parallel, sandboxed autograding with nbgrader's machinery: ``tamegrad grade``.

Modules: :mod:`.submissions` (folder and zip intake), :mod:`.gradebook` (nbgrader's
course settings and gradebook), :mod:`.sanitize` (before execution), :mod:`.execute`
(on a worker: sandboxed kernel, guard, statuses), :mod:`.sandbox` (bubblewrap and
limits), :mod:`.guard` (the tamper guard), :mod:`.finish` (saving grades, autograded
notebooks, feedback), :mod:`.report` (grades.csv and the summary), :mod:`.batch` (one
run). Importing this package imports none of them.
"""
