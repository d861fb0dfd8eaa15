"""Links to the public course repository, made from ``repository.url`` of ``_config.yml``.

Jupyter Book passes ``repository.url`` and ``repository.branch`` to Sphinx as
``html_theme_options["repository_url"]`` and ``["repository_branch"]``, and
``launch_buttons.colab_url`` as ``["launch_buttons"]["colab_url"]``. From them this
extension defines MyST substitutions, so that no page hard-codes the repository:

* ``{{ repository_url }}``: the URL itself;
* ``{{ colab_exNN }}``: a link ``exNN`` that opens the exercise in Colab,
  ``<colab_url>/github/<owner>/<repo>/blob/<branch>/<path_to_book>/exercises/<a>/<a>.ipynb``,
  for every folder ``exercises/<a>`` whose name starts with ``exNN_`` (``path_to_book`` is
  ``repository.path_to_book``: ``colab``, where ``make notebooks`` writes the plain-Markdown
  copies that Colab renders, as the launch buttons do);
* ``{{ clone_commands }}``: a ``bash`` block that clones the repository and runs ``make lab``.
"""

from __future__ import annotations

from pathlib import Path


def colab_link(colab_url: str, repository_url: str, branch: str, notebook: str) -> str:
    """The Colab address of ``notebook`` (a path in the repository) on GitHub."""
    owner_repo = repository_url.rstrip("/").removesuffix(".git").split("github.com/", 1)[-1]
    return f"{colab_url.rstrip('/')}/github/{owner_repo}/blob/{branch}/{notebook}"


def substitutions(repository_url: str, branch: str, colab_url: str, root: Path, path_to_book: str = "") -> dict[str, str]:
    subs = {"repository_url": repository_url}
    prefix = f"{path_to_book.strip('/')}/" if path_to_book.strip("/") else ""
    for folder in sorted((root / "exercises").glob("ex[0-9][0-9]_*")):
        key = folder.name.split("_", 1)[0]
        notebook = f"{prefix}exercises/{folder.name}/{folder.name}.ipynb"
        url = colab_link(colab_url, repository_url, branch, notebook)
        subs[f"colab_{key}"] = f"[{key}]({url})"
    name = repository_url.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]
    subs["clone_commands"] = f"```bash\ngit clone {repository_url}\ncd {name}\nmake lab\n```"
    return subs


def _config_inited(app, config) -> None:
    theme = config.html_theme_options or {}
    url = theme.get("repository_url")
    if not url:
        return
    colab = (theme.get("launch_buttons") or {}).get("colab_url") or "https://colab.research.google.com"
    found = substitutions(url, theme.get("repository_branch") or "main", colab, Path(app.srcdir),
                          theme.get("path_to_docs") or "")
    config.myst_substitutions = {**found, **(config.myst_substitutions or {})}


def setup(app):
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
