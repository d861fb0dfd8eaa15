"""The structural check: a task that asks for a derivation must not let autodiff or a
library that implements the exercise produce the answer."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from typing import Callable, Iterable

from .failure import CheckFailed, wrap_lines

#: names that, used inside a student's function, would let autodiff or a library
#: produce the answer (checked by :func:`check_not_autodiff`)
AUTODIFF_NAMES = frozenset({
    "backward", "grad", "autograd", "gradcheck", "numerical_grad", "vjp", "jvp", "jacobian",
    "hessian", "retain_grad", "requires_grad", "clip_grad_norm", "clip_grad_norm_",
    "clip_grad_value", "clip_grad_value_", "get_total_norm", "__import__", "importlib",
    "exec", "eval", "compile", "getattr", "globals", "__builtins__",
})
#: modules whose functions must not produce the answer
AUTODIFF_MODULES = frozenset({"torch", "tamegrad", "jax", "autograd", "tensorflow"})


# -------------------------------------------------------- structural checks
def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)  # globals, attributes and imports; not local variables
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _source_names(fn) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {a.name.split(".")[0] for a in node.names} | {a.asname for a in node.names if a.asname}
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
    return found


def _module_of(value) -> str:
    if isinstance(value, types.ModuleType):
        return value.__name__
    return getattr(value, "__module__", None) or getattr(type(value), "__module__", "") or ""


def shortcuts(fn: Callable, *, allow: Iterable[str] = (), forbid: Iterable[str] = (),
              modules: Iterable[str] = AUTODIFF_MODULES, _seen: set | None = None) -> list[str]:
    """The forbidden names and modules that ``fn`` (and the notebook functions it calls) uses."""
    seen = set() if _seen is None else _seen
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None or id(code) in seen:
        return []
    seen.add(id(code))
    banned = (AUTODIFF_NAMES | set(forbid)) - set(allow)
    modules = set(modules) - set(allow)
    names = _code_names(code) | _source_names(fn)
    found = [f"`{n}`" for n in names & banned]
    found += [f"`{n}`" for n in names & modules if not isinstance(getattr(fn, "__globals__", {}).get(n), types.ModuleType)]
    namespace = dict(getattr(fn, "__globals__", {}))
    if fn.__closure__:
        for var, cell in zip(code.co_freevars, fn.__closure__):
            try:
                namespace[var] = cell.cell_contents
            except ValueError:
                pass
    for name in sorted(names | set(code.co_freevars)):
        if name not in namespace:
            continue
        value = namespace[name]
        root = _module_of(value).split(".")[0]
        if root in modules:
            found.append(f"`{name}` (from {_module_of(value)})")
        elif isinstance(value, types.FunctionType) and value is not fn and _module_of(value) == fn.__module__:
            found += shortcuts(value, allow=allow, forbid=forbid, modules=modules, _seen=seen)
    return sorted(set(found))


def check_not_autodiff(fn: Callable, *, allow: Iterable[str] = (), forbid: Iterable[str] = (),
                       modules: Iterable[str] = AUTODIFF_MODULES, what: str | None = None, hint: str = "") -> None:
    """A structural check: ``fn`` must compute its answer itself, without calling
    autodiff (``backward``, ``grad``, ``torch.autograd``...) or a library that already
    implements the exercise (``torch``, ``tamegrad``). It reads the function's source
    (AST) and code object, follows the notebook functions it calls, and resolves
    global names to their modules. ``allow`` removes names from the banned set
    (e.g. ``grad`` when the exercise works on ``p.grad``)."""
    __tracebackhide__ = True  # IPython and pytest show the test's line, not this helper's
    found = shortcuts(fn, allow=allow, forbid=forbid, modules=modules)
    if found:
        name = getattr(fn, "__name__", repr(fn))
        raise CheckFailed(wrap_lines(
            f"{what or name}: not accepted.\n\n"
            f"  This task asks for the derivation: {name} uses {', '.join(found)}.\n"
            f"  Letting autodiff or a library produce the answer would make the tests compare the "
            f"reference with itself, so the grader gives this task no points.\n\n"
            f"  hint: {hint or 'derive the gradient on paper, then write it with numpy operations only.'}"
        )) from None
