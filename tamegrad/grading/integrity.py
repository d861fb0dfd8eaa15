"""The structural check: a task that asks for a derivation must not let autodiff or a
library that implements the exercise produce the answer."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable

from .failure import CheckFailed, wrap_lines

#: names that, used inside a student's function, would let autodiff or a library
#: produce the answer (checked by :func:`check_not_autodiff`)
AUTODIFF_NAMES = frozenset(
    {
        "backward",
        "grad",
        "autograd",
        "gradcheck",
        "numerical_grad",
        "vjp",
        "jvp",
        "jacobian",
        "hessian",
        "retain_grad",
        "requires_grad",
        "clip_grad_norm",
        "clip_grad_norm_",
        "clip_grad_value",
        "clip_grad_value_",
        "get_total_norm",
        "__import__",
        "importlib",
        "exec",
        "eval",
        "compile",
        "getattr",
        "globals",
        "__builtins__",
    }
)
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


def shortcuts(
    fn: Callable,
    *,
    allow: Iterable[str] = (),
    forbid: Iterable[str] = (),
    modules: Iterable[str] = AUTODIFF_MODULES,
    _seen: set | None = None,
) -> list[str]:
    """The forbidden names and modules that ``fn`` (and the notebook functions it calls) uses."""
    seen = set() if _seen is None else _seen
    if isinstance(getattr(type(fn), "__tamegrad_source__", None), str):
        # a proxy of the autograder (tamegrad.autograde.proxy): check the source the student wrote
        return source_shortcuts(fn.__tamegrad_source__, fn.__name__, allow=allow, forbid=forbid, modules=modules)
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None or id(code) in seen:
        return []
    seen.add(id(code))
    banned = (AUTODIFF_NAMES | set(forbid)) - set(allow)
    modules = set(modules) - set(allow)
    names = _code_names(code) | _source_names(fn)
    found = [f"`{n}`" for n in names & banned]
    found += [
        f"`{n}`" for n in names & modules if not isinstance(getattr(fn, "__globals__", {}).get(n), types.ModuleType)
    ]
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


#: more names that the source-text check bans: ways to reach a module or a namespace by name
SOURCE_NAMES = frozenset(
    {
        "vars",
        "locals",
        "__dict__",
        "__globals__",
        "__subclasses__",
        "__getattribute__",
        "__code__",
        "__closure__",
        "modules",
        "import_module",
        "__loader__",
        "__spec__",
    }
)


#: what separates the cells in the ``source`` of :func:`source_shortcuts`
CELL_SEPARATOR = "\n# --- tamegrad: next cell ---\n"


def source_shortcuts(
    source: str,
    name: str,
    *,
    allow: Iterable[str] = (),
    forbid: Iterable[str] = (),
    modules: Iterable[str] = AUTODIFF_MODULES,
) -> list[str]:
    """:func:`shortcuts` for a function known only by the text of the notebook it is defined in.

    ``source`` is the notebook's code (setup and answer cells, in order, as Python, joined
    by :data:`CELL_SEPARATOR`) as text; nothing of it runs. The function ``name`` (its last
    top-level definition) is searched for banned
    names (attributes, names, imports; also :data:`SOURCE_NAMES`, and strings that name a
    banned module, as in ``sys.modules["torch"]``); a name bound anywhere at top level or
    in the function by an import of a banned module counts as that module, and the
    top-level functions it calls are followed the same way."""
    banned = (AUTODIFF_NAMES | SOURCE_NAMES | set(forbid)) - set(allow)
    modules = set(modules) - set(allow)
    trees = []
    for cell in source.split(CELL_SEPARATOR):
        try:
            trees.append(ast.parse(cell))
        except (SyntaxError, ValueError):
            pass  # a cell that does not parse defines nothing here
    functions: dict[str, ast.AST] = {}
    imported: dict[str, str] = {}

    def imports(node, into):
        for a in node.names:
            if isinstance(node, ast.Import):
                into[(a.asname or a.name).split(".")[0]] = a.name
            else:
                into[a.asname or a.name] = f"{node.module or ''}.{a.name}"

    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[node.name] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imports(node, imported)
    found: set[str] = set()
    seen: set[str] = set()

    def visit(fname: str) -> None:
        if fname in seen or fname not in functions:
            return
        seen.add(fname)
        node = functions[fname]
        local: dict[str, str] = {}
        names: set[str] = set()
        # the function's own variables (parameters, assignments) are not global names, as
        # for shortcuts, which reads co_names: a parameter called `norms` is not the module's
        a = node.args
        own = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x is not None}
        own |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
        own -= {g for n in ast.walk(node) if isinstance(n, (ast.Global, ast.Nonlocal)) for g in n.names}
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                imports(sub, local)
                names |= {a.name.split(".")[0] for a in sub.names} | {a.asname for a in sub.names if a.asname}
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    names.add(sub.module.split(".")[0])
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
            elif isinstance(sub, ast.Name) and sub.id not in own:
                names.add(sub.id)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                if sub.value.split(".")[0] in modules:
                    found.add(f"`{sub.value}` (a module named in a string)")
        found.update(f"`{n}`" for n in names & banned)
        found.update(f"`{n}`" for n in names & modules)
        for n in sorted(names):
            origin = local.get(n) or imported.get(n)
            if origin and origin.lstrip(".").split(".")[0] in modules:
                found.add(f"`{n}` (from {origin.lstrip('.')})")
            elif n in functions and n != fname:
                visit(n)

    if name not in functions:
        return [f"`{name}` (no readable definition in the notebook's source)"]
    visit(name)
    return sorted(found)


def check_not_autodiff(
    fn: Callable,
    *,
    allow: Iterable[str] = (),
    forbid: Iterable[str] = (),
    modules: Iterable[str] = AUTODIFF_MODULES,
    what: str | None = None,
    hint: str = "",
) -> None:
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
        raise CheckFailed(
            wrap_lines(
                f"{what or name}: not accepted.\n\n"
                f"  This task asks for the derivation: {name} uses {', '.join(found)}.\n"
                f"  Letting autodiff or a library produce the answer would make the tests compare the "
                f"reference with itself, so the grader gives this task no points.\n\n"
                f"  hint: {hint or 'derive the gradient on paper, then write it with numpy operations only.'}"
            )
        ) from None
