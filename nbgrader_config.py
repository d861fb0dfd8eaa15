"""nbgrader configuration of *Taming Gradients* (read by every nbgrader command run
from the repository root, by ``make lab`` and by ``python -m tools.course release``).

    solutions/<assignment>/<assignment>.ipynb   the source: solutions and hidden tests
    exercises/<assignment>/<assignment>.ipynb   the student version (generated: `make release`)
    submitted/<student>/<assignment>/           submissions (nbgrader's default, git-ignored)
    autograded/, feedback/, gradebook.db        nbgrader's defaults (git-ignored)
    .nbgrader-exchange/                         the exchange of `make lab` (git-ignored)

This file is the instructors': the public repository that `make publish` writes gets a
learner's version with the exchange setting only (tools/learner/nbgrader_config.py).
"""

import os

c = get_config()  # noqa: F821 (defined by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "taming-gradients"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# nbgrader's default stub, stated here because the course relies on it: a blank
# release raises NotImplementedError in every answer cell and scores zero.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Seconds per cell when autograding (nbgrader's default is 30); every solution
# notebook runs in well under 20 s in total.
c.Execute.timeout = 120

# The exchange behind `nbgrader release_assignment`, `collect` and JupyterLab's
# Assignments tab. nbgrader's default, /srv/nbgrader/exchange, suits a shared
# JupyterHub (set NBGRADER_EXCHANGE to it there). Unset, the exchange is the git-ignored
# folder .nbgrader-exchange/ beside this file, which `make lab` creates, so that the
# Assignments tab works on first open (without it, it shows "exchange directory does not
# exist" and "Error fetching courses!"). Loading this file creates nothing.
_here = os.path.dirname(os.path.abspath(__file__))
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(_here, ".nbgrader-exchange")

# `nbgrader generate_feedback` would otherwise print every hidden test verbatim, with its
# expected values (nbgrader issue #917): the feedback is the autograded notebook, which
# holds the test cells as the gradebook restored them. RedactHiddenTests (the one that
# `tamegrad grade` uses) cuts the hidden regions out and keeps only the message of a
# failed visible check; a failure inside a hidden region becomes one line.
c.GenerateFeedback.preprocessors = [
    "tamegrad.autograde.finish.RedactHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Every notebook nbgrader renders as HTML from here (the formgrader's view of a submission,
# generate_feedback) goes through SafeMarkup first: scripts, event handlers, javascript:
# URLs, SVG, iframes, <object>/<embed> and <meta http-equiv=refresh> that a student put in
# a markdown cell or an output are neutralised (bleach, with the course's allow-list).
c.HTMLExporter.preprocessors = ["tamegrad.autograde.sanitize.SafeMarkup"]

# nbgrader's own sanitising steps of `nbgrader autograde`, with one class replaced:
# QuietOverwriteCells is OverwriteCells without its false alarm "Attribute 'checksum' for
# cell ..._tests has changed!", printed for every untouched test cell that has hidden
# tests (the gradebook's checksum includes the hidden tests, the released cell does not;
# putting the recorded source back is how the hidden tests return). A test cell that a
# student did edit is still reported, and restored, as nbgrader does.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "tamegrad.autograde.sanitize.QuietOverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
