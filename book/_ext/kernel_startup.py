"""Run by every kernel of the book build: ``tools/book.py`` sets ``PYTHONSTARTUP`` to this file.

It makes ``fig.show()`` write plotly figures as HTML without plotly.js (the rule and why it
lives here: ``interactive.py`` next to this file). IPython runs the file in the notebook's
namespace, so it leaves no names behind.
"""


def _use_book_renderer():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.environ["PYTHONSTARTUP"]), "interactive.py")
    spec = importlib.util.spec_from_file_location("_book_interactive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.use_book_renderer()


_use_book_renderer()
del _use_book_renderer
