"""Parallel, sandboxed autograding with nbgrader's machinery: ``tamegrad grade``.

Modules: :mod:`.submissions` (folder and zip intake), :mod:`.gradebook` (nbgrader's
course settings and gradebook), :mod:`.sanitize` (before execution), :mod:`.execute`
(on a worker: the student's kernel and the tests' kernel, statuses), :mod:`.wire` (the
data that crosses between them), :mod:`.proxy` and :mod:`.serve` (the tests' and the
student's side of a call), :mod:`.relay` (the grader between them, with the caps),
:mod:`.launch` (kernel start-up), :mod:`.sandbox` (bubblewrap and
limits), :mod:`.finish` (saving grades, autograded
notebooks, feedback), :mod:`.report` (grades.csv and the summary), :mod:`.batch` (one
run). Importing this package imports none of them.
"""
