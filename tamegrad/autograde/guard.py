"""The tamper guard: checking code that student code cannot quietly replace.

Student code and the tests share one interpreter, so a submission can try to make
wrong answers pass by replacing what the tests call: ``np.allclose = lambda *a: True``,
``tamegrad.grading.check_close.__code__ = ...``, ``sys.modules["numpy"] = fake``,
``np = Fake()``, an IPython hook that swallows ``AssertionError`` or rewrites the test's
syntax tree, a trace function that jumps over ``assert`` lines, a thread that forges the
kernel's replies. The grader injects this guard into every kernel:

* **install**, before any cell runs: imports the modules the instructor's notebook
  imports (numpy, tamegrad, torch, the course's checking modules, with the working
  directory off ``sys.path`` so a student file cannot shadow them), and snapshots every
  function, class and module they hold, the code objects of their functions, the
  names the notebook binds to them, ``sys.modules``, the builtins, the interpreter's
  hooks and IPython's and ipykernel's machinery (methods, exception handlers, input and
  AST transformers, event callbacks).
* **before** every test cell: restores all of it (and the notebook's import names in the
  user namespace) and reports what it had to restore.
* **after** every test cell: checks it again. If something guarded changed *while the
  test ran* (student code called by the test patched a checker), or a thread started by
  student code was alive, the grader records the test as failed (``TamperingDetected``).

The host side (this module's lower half) works out what to guard from the source
notebook and reads the guard's reports. The kernel side is the first half: the grader
sends this file's text to the kernel and calls :func:`install` there, so it imports
nothing but the standard library at module level.

What it cannot stop is named in the book's appendix: code that rewrites the interpreter's
memory (``ctypes``), or that patches a checker and restores it within one test cell, is
not caught; the autograded notebook keeps the code for a human to read.
"""

import builtins
import json
import os
import sys
import threading
import types

# ----------------------------------------------------------------------------- kernel side

_MISSING = object()
_TRUSTED_ROOTS = tuple(sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}))
# torch holds thousands of modules: guard the ones its checking functions live in
_LIMITED = {
    "torch": ("torch", "torch.functional", "torch._tensor", "torch.testing", "torch.testing._comparison",
              "torch.nn.functional", "torch.autograd", "torch.nn.utils", "torch.nn.utils.clip_grad"),
}
_ALWAYS = ("builtins", "math", "operator", "functools", "numbers")
_IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE


def _is_trusted_code(obj):
    code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__func__", None), "__code__", None)
    if code is None:
        target = getattr(obj, "func", None)  # functools.partial
        if target is not None:
            return _is_trusted_code(target)
        return getattr(obj, "__module__", "") in ("builtins",)
    name = os.path.realpath(code.co_filename) if code.co_filename.startswith("/") else ""
    return any(name.startswith(root + "/") for root in _TRUSTED_ROOTS)


class _Snapshot:
    def __init__(self, config):
        import importlib

        self.errors = []
        cwd = os.getcwd()
        saved = list(sys.path)
        for name in config.get("preimport", []):
            try:  # first without the working directory: a student file must not shadow a package
                sys.path[:] = [p for p in saved if p not in ("", ".", cwd)]
                importlib.import_module(name)
            except ImportError:
                sys.path[:] = saved  # a checking module shipped next to the notebook
                try:
                    importlib.import_module(name)
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    self.errors.append(f"{name}: {exc!r}")
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"{name}: {exc!r}")
            finally:
                sys.path[:] = saved

        packages = set(config.get("packages", [])) | set(_ALWAYS)
        names = []
        for mod_name in list(sys.modules):
            top = mod_name.split(".")[0]
            if top in _LIMITED:
                if top in packages and mod_name in _LIMITED[top]:
                    names.append(mod_name)
            elif top in packages:
                names.append(mod_name)
        self.module_names = sorted(set(names))
        self.modules = {n: sys.modules[n] for n in self.module_names if sys.modules.get(n) is not None}

        self.entries = []   # (label, owner, key, value, how) where how is "dict" or "attr"
        self.codes = []     # (label, function, code, defaults, kwdefaults)
        seen_classes = set()
        seen_funcs = set()
        for mod_name, mod in self.modules.items():
            self.entries.append((f"sys.modules[{mod_name!r}]", sys.modules, mod_name, mod, "dict"))
            d = getattr(mod, "__dict__", {})
            for key, value in list(d.items()):
                if not (callable(value) or isinstance(value, types.ModuleType)):
                    continue
                label = f"{mod_name}.{key}"
                self.entries.append((label, d, key, value, "dict"))
                self._function(label, value, seen_funcs)
                if isinstance(value, type) and id(value) not in seen_classes:
                    seen_classes.add(id(value))
                    owner = getattr(value, "__module__", "") or ""
                    if owner.split(".")[0] in packages:
                        self._class(f"{owner}.{value.__qualname__}", value, seen_funcs)

        # the interpreter's hooks
        self.sys_hooks = {"excepthook": sys.excepthook, "displayhook": sys.displayhook,
                          "breakpointhook": sys.breakpointhook}

        # IPython's and ipykernel's machinery
        from IPython import get_ipython

        self.shell = get_ipython()
        self.kernel = getattr(self.shell, "kernel", None)
        self.objects = []
        for obj in self._machinery():
            for cls in type(obj).__mro__:
                mod = getattr(cls, "__module__", "") or ""
                if mod.split(".")[0] in ("IPython", "ipykernel", "traitlets") and id(cls) not in seen_classes:
                    seen_classes.add(id(cls))
                    self._class(f"{mod}.{cls.__qualname__}", cls, seen_funcs)
            self.objects.append((obj, dict(vars(obj)), dict(getattr(obj, "_trait_values", {}))))
        shell = self.shell
        self.lists = []
        for label, lst in (("ast_transformers", shell.ast_transformers),
                           ("input_transformers_cleanup", shell.input_transformers_cleanup),
                           ("input_transformers_post", shell.input_transformers_post)):
            self.lists.append((label, lst, list(lst)))
        tm = shell.input_transformer_manager
        for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
            lst = getattr(tm, attr, None)
            if isinstance(lst, list):
                self.lists.append((f"input_transformer_manager.{attr}", lst, list(lst)))
        self.custom_exceptions = shell.custom_exceptions
        self.handlers = []
        if self.kernel is not None:
            for attr in ("shell_handlers", "control_handlers"):
                d = getattr(self.kernel, attr, None)
                if isinstance(d, dict):
                    self.handlers.append((attr, d, dict(d)))

        # names the notebook binds to guarded objects (``np``, ``check_close``)
        self.bindings = {}
        for name, module, attr in config.get("bindings", []):
            mod = sys.modules.get(module)
            if mod is None:
                continue
            value = mod if attr is None else getattr(mod, attr, _MISSING)
            if value is not _MISSING:
                self.bindings[name] = value

        self.threads = {t.ident for t in threading.enumerate()} | set(sys._current_frames())

    def _machinery(self):
        shell = self.shell
        objs = [shell, getattr(shell, "compile", None), getattr(shell, "input_transformer_manager", None),
                getattr(shell, "displayhook", None), getattr(shell, "display_pub", None),
                getattr(shell, "InteractiveTB", None), getattr(shell, "SyntaxTB", None),
                getattr(shell, "events", None), getattr(shell, "display_formatter", None),
                getattr(shell, "payload_manager", None), self.kernel,
                getattr(self.kernel, "session", None)]
        return [o for o in objs if o is not None and hasattr(o, "__dict__")]

    def _function(self, label, value, seen):
        func = value if isinstance(value, types.FunctionType) else getattr(value, "__func__", None)
        if isinstance(func, types.FunctionType) and id(func) not in seen:
            seen.add(id(func))
            self.codes.append((label, func, func.__code__, func.__defaults__, func.__kwdefaults__))

    def _class(self, label, cls, seen_funcs):
        if getattr(cls, "__flags__", 0) & _IMMUTABLE_TYPE:
            return
        for key, value in list(vars(cls).items()):
            if key in ("__dict__", "__weakref__", "__doc__", "__annotations__"):
                continue
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                self.entries.append((f"{label}.{key}", cls, key, value, "attr"))
                inner = value.fget if isinstance(value, property) else value
                self._function(f"{label}.{key}", inner, seen_funcs)

    # -- checks -------------------------------------------------------------------------
    def check(self, restore):
        changed = []
        for label, owner, key, value, how in self.entries:
            current = (owner.get(key, _MISSING) if how == "dict" else vars(owner).get(key, _MISSING))
            if current is not value:
                changed.append(label)
                if restore:
                    if how == "dict":
                        owner[key] = value
                    else:
                        setattr(owner, key, value)
        for label, func, code, defaults, kwdefaults in self.codes:
            if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
                changed.append(f"{label}.__code__")
                if restore:
                    func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults
        for name, value in self.sys_hooks.items():
            if getattr(sys, name) is not value:
                changed.append(f"sys.{name}")
                if restore:
                    setattr(sys, name, value)
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changed.append("sys.settrace/setprofile")
            if restore:
                sys.settrace(None)
                sys.setprofile(None)
        if getattr(threading, "_trace_hook", None) is not None or getattr(threading, "_profile_hook", None) is not None:
            changed.append("threading.settrace/setprofile")
            if restore:
                threading.settrace(None)
                threading.setprofile(None)
        for obj, attrs, traits in self.objects:
            current = vars(obj)
            for key in list(current):
                old = attrs.get(key, _MISSING)
                new = current[key]
                if old is _MISSING:
                    if callable(new) and hasattr(type(obj), key):
                        changed.append(f"{type(obj).__name__}.{key} (instance)")
                        if restore:
                            del current[key]
                elif new is not old and (callable(old) or callable(new)):
                    changed.append(f"{type(obj).__name__}.{key} (instance)")
                    if restore:
                        current[key] = old
            tv = getattr(obj, "_trait_values", None)
            if isinstance(tv, dict):
                for key, old in traits.items():
                    new = tv.get(key, _MISSING)
                    if new is not old and (callable(old) or callable(new) or isinstance(old, (list, tuple))):
                        changed.append(f"{type(obj).__name__}.{key} (trait)")
                        if restore:
                            tv[key] = old
        for label, lst, items in self.lists:
            if len(lst) != len(items) or any(a is not b for a, b in zip(lst, items)):
                changed.append(label)
                if restore:
                    lst[:] = items
        if self.shell.custom_exceptions != self.custom_exceptions:
            changed.append("custom_exceptions")
            if restore:
                self.shell.custom_exceptions = self.custom_exceptions
        events = getattr(self.shell, "events", None)
        for event, callbacks in getattr(events, "callbacks", {}).items():
            foreign = [cb for cb in callbacks if not _is_trusted_code(cb)]
            if foreign:
                changed.append(f"events.{event}")
                if restore:
                    callbacks[:] = [cb for cb in callbacks if _is_trusted_code(cb)]
        for label, d, items in self.handlers:
            if d != items or any(d.get(k) is not v for k, v in items.items()):
                changed.append(f"kernel.{label}")
                if restore:
                    d.clear()
                    d.update(items)
        return changed

    def rebind(self):
        ns = self.shell.user_ns
        rebound = []
        for name, value in self.bindings.items():
            if name in ns and ns[name] is not value:
                rebound.append(name)
                ns[name] = value
        return rebound

    def foreign_threads(self):
        """Threads started since the snapshot that run student code (a frame outside the
        Python installation); threads of the kernel's own libraries do not count."""
        frames = sys._current_frames()
        names = {t.ident: t.name for t in threading.enumerate()}
        found = []
        for ident, frame in frames.items():
            if ident in self.threads or ident == threading.get_ident():
                continue
            f, student = frame, False
            while f is not None:
                filename = f.f_code.co_filename
                real = os.path.realpath(filename) if filename.startswith("/") else ""
                if not any(real.startswith(root + "/") for root in _TRUSTED_ROOTS):
                    student = True
                    break
                f = f.f_back
            if student:
                found.append(names.get(ident, str(ident)))
        return sorted(found)


def install(config):
    """Kernel side: snapshot, and publish the entry point under a name with a nonce."""
    snap = _Snapshot(config)

    def guard(step, cell=""):
        if step == "before":
            changed = snap.check(restore=True)
            rebound = snap.rebind()
            report = {"step": step, "cell": cell, "restored": changed, "rebound": rebound,
                      "threads": snap.foreign_threads()}
        elif step == "after":
            report = {"step": step, "cell": cell, "changed": snap.check(restore=True),
                      "threads": snap.foreign_threads()}
        else:
            report = {"step": step, "errors": snap.errors, "modules": len(snap.modules),
                      "entries": len(snap.entries), "functions": len(snap.codes)}
        report["token"] = config["token"]
        return json.dumps(report)

    builtins.__dict__["_tamegrad_guard_" + config["nonce"]] = guard
    return guard("installed")


# ----------------------------------------------------------------------------- host side

def import_bindings(sources):
    """What the instructor's code imports: ``(preimport, packages, bindings)``.

    ``sources`` are the code cells of the source notebook. Names that the notebook also
    assigns or defines (a student's ``def relu``) are not rebound.
    """
    import ast

    preimport, packages, bindings, assigned = [], set(), [], set()
    for src in sources:
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    preimport.append(alias.name)
                    packages.add(alias.name.split(".")[0])
                    if alias.asname:
                        bindings.append((alias.asname, alias.name, None))
                    else:
                        top = alias.name.split(".")[0]
                        bindings.append((top, top, None))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                preimport.append(node.module)
                packages.add(node.module.split(".")[0])
                for alias in node.names:
                    if alias.name != "*":
                        bindings.append((alias.asname or alias.name, node.module, alias.name))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assigned.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            assigned.add(n.id)
    # the course's checking helpers are always guarded when they are installed
    for name in ("numpy", "tamegrad", "tamegrad.grading"):
        if name not in preimport:
            preimport.append(name)
        packages.add(name.split(".")[0])
    bindings = [b for b in dict.fromkeys(bindings) if b[0] not in assigned]
    return list(dict.fromkeys(preimport)), sorted(packages), bindings


def kernel_source():
    """This file's text: the kernel runs it in a private namespace."""
    with open(__file__, encoding="utf-8") as fh:
        return fh.read()


def install_expression(config):
    """An expression that installs the guard; the grader evaluates it as a user expression
    of a silent execution, so nothing is left in the student's namespace."""
    config = json.loads(json.dumps(config))
    return (
        "(lambda source, config, ns: (exec(compile(source, '<tamegrad-guard>', 'exec'), ns), "
        "ns['install'](config))[1])"
        f"({kernel_source()!r}, {config!r}, {{'__name__': '_tamegrad_guard'}})"
    )


def call_expression(nonce, step, cell=""):
    return f"__import__('builtins').__dict__['_tamegrad_guard_{nonce}']({step!r}, {cell!r})"


def parse_report(reply, token):
    """The guard's JSON report from an execute reply, or ``None`` if it is missing or forged."""
    import ast as _ast

    try:
        content = reply["content"]
        expr = content["user_expressions"]["r"]
        if expr.get("status") != "ok":
            return None
        text = _ast.literal_eval(expr["data"]["text/plain"])
        report = json.loads(text)
    except (KeyError, TypeError, ValueError, SyntaxError):
        return None
    if not isinstance(report, dict) or report.get("token") != token:
        return None
    return report
