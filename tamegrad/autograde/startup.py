"""What each of the grader's processes does first: the command, and each local Dask worker.

``jsonschema`` (imported by nbformat) imports ``rfc3987_syntax`` when it is installed
(jupyter-events requires it) to check the ``iri`` string format, and that module builds
its 38 grammars at import: about 0.75 CPU-seconds in every process. Nothing the grader
runs checks string formats (nbformat validates notebooks without a format checker), so
the grader's processes skip that import: ``sys.modules["rfc3987_syntax"] = None`` makes
``import rfc3987_syntax`` raise ImportError, which jsonschema catches (it then has no
``iri`` checker). Where jsonschema is already imported, nothing changes.
"""

from __future__ import annotations

import sys

UNUSED = ("rfc3987_syntax",)


def skip_unused_imports() -> None:
    """Make the imports in :data:`UNUSED` fail fast in this process, if jsonschema is not yet imported."""
    if "jsonschema" in sys.modules:
        return
    for name in UNUSED:
        sys.modules.setdefault(name, None)


def dask_setup(worker) -> None:  # noqa: ARG001 - Dask's preload hook
    """A local worker's preload (``LocalCluster(preload=[__name__])``): skip the unused imports,
    then import the executor while the grading process prepares the first submissions."""
    skip_unused_imports()
    from . import execute  # noqa: F401
