"""nbgrader settings for learners of *Taming Gradients* (read by `make lab`, the Validate
button and `nbgrader validate` run from the repository root).

The exchange is where JupyterLab's Assignments tab looks for released exercises. On a
course's JupyterHub the instructors tell you its path: set NBGRADER_EXCHANGE to it.
Unset, the Assignments tab uses the git-ignored folder .nbgrader-exchange/ beside this
file, which `make lab` creates (empty: you take the exercises from exercises/ instead).
"""

import os

c = get_config()  # noqa: F821 (defined by traitlets when nbgrader loads this file)

_here = os.path.dirname(os.path.abspath(__file__))
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(_here, ".nbgrader-exchange")
