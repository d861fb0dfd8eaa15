"""Where the course's files are: the repository root, its Jupyter Book configuration and its
notebooks. The one place every repository tool (and the published learners' course) reads them
from."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("book", "solutions", "exercises")


def book_config(root: Path = ROOT) -> dict:
    """The Jupyter Book configuration, ``_config.yml``, as a dict."""
    with open(root / "_config.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` from the Jupyter Book configuration."""
    url = (book_config(root).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} has no repository.url")
    return url


def notebooks(root: Path = ROOT, dirs=NOTEBOOK_DIRS) -> list[Path]:
    found = []
    for d in dirs:
        found += [p for p in sorted((root / d).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return found
