"""Inside a submission's kernel: put the libraries back the way they were before a test cell runs.

An answer can change what the tests rely on: `math.isclose = lambda *a, **k: True`, `torch.allclose = ...`,
`torch.Tensor.__eq__ = ...`, `builtins.isinstance = ...`, `sys.modules["math"] = fake`, a global `isinstance` or
`np` of its own, an IPython hook that swallows the test's AssertionError or empties the test cell before it runs, a
trace function that skips its lines. grader.execute sends this file's source into the kernel before the first
cell (it is not a cell of the notebook: the kernel runs it in a namespace of its own) and then calls, silently:

- `watch()` before each cell a learner can edit: every module of the protected libraries imported since is
  recorded (its attributes, and those of the classes it defines), as it is before the learner's code runs;
- `restore(names)` before each test cell: every recorded attribute that now holds another function, class or
  module is put back, classes lose the functions added to them, IPython's hooks and the trace function are
  reset, and the notebook's own globals that shadow a built-in or rebind a recorded module among `names` (those
  the test cell reads) are removed or rebound. It returns what it put back, in plain words, for the report.

The protected modules the lesson imports in its locked and test cells are imported at install, so that they are
recorded before any answer runs. What this cannot do: code in the same process can always reach the guard itself
(it is an object in the kernel); an answer written against the grader can still defeat it. It stops an answer
from changing the libraries the tests use.

This file imports nothing from the course: it runs in the kernel, with only the standard library at hand, and with
a copy of the built-ins taken at install as its `__builtins__` (grader.execute.guard_install_code), so that an
answer that replaces builtins.isinstance does not change what the guard's own code calls.
"""

import builtins
import importlib
import sys
import threading
import types

PROTECTED = (
    "builtins",
    "math",
    "cmath",
    "operator",
    "numbers",
    "functools",
    "itertools",
    "collections",
    "copy",
    "re",
    "json",
    "decimal",
    "fractions",
    "statistics",
    "traceback",
    "types",
    "inspect",
    "unittest",
    "numpy",
    "torch",
    "safetensors",
    "transformers",
    "peft",
    "accelerate",
    "loracourse",
    "IPython",
    "ipykernel",
)
ModuleType = types.ModuleType  # taken now: an answer may replace types.ModuleType before the next watch()
HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class whose attributes can be set (builtin types' cannot)
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SHELL_TRAITS = ("custom_exceptions",)  # set_custom_exc() sets it and CustomTB
SHELL_ATTRIBUTES = ("CustomTB", "InteractiveTB", "SyntaxTB", "showtraceback", "_showtraceback", "run_cell")
IPYTHON_BUILTINS = ("input", "get_ipython", "display", "exit", "quit", "raw_input")  # IPython sets these per request
FunctionType, MethodType = types.FunctionType, types.MethodType


def protected(name):
    """Is the module of this name one of the libraries the guard records?"""
    return name.split(".", 1)[0] in PROTECTED


def kept(value):
    """What the guard puts back when it changed: functions, classes and modules (not data: caches, counters)."""
    return callable(value) or isinstance(value, ModuleType)


class Guard:
    """The recorded state; every built-in it uses is taken at install, before the learner's code runs."""

    def __init__(self, imports):
        # local references: an answer that replaces builtins.id or builtins.len does not change these
        self._id, self._len, self._list, self._map, self._dict = id, len, list, map, dict
        self._settrace, self._gettrace, self._set_thread_trace = sys.settrace, sys.gettrace, threading.settrace
        self._modules = sys.modules
        self.roots = tuple({sys.prefix, sys.base_prefix, *self.package_folders()})  # where library code lives
        self.records = {}  # module name -> (module, {name: value}, [ids of the values])
        self.classes = {}  # class -> ({name: value}, [ids of the values])
        self.shell = get_ipython()  # noqa: F821 (the kernel's IPython shell)
        self.builtin_names = set(vars(builtins))
        self.bindings = {}  # name in the notebook's globals -> the recorded module it was bound to
        for name in filter(protected, imports):  # the lesson's other imports run in its own cells, as written
            try:
                importlib.import_module(name)
            except Exception:  # an import the lesson itself would fail on: its own cell will say so
                pass
        self.shell_lists = {name: self._list(getattr(self.shell, name)) for name in SHELL_LISTS}
        self.shell_traits = {name: getattr(self.shell, name) for name in SHELL_TRAITS}
        self.shell_attributes = {name: vars(self.shell).get(name) for name in SHELL_ATTRIBUTES}
        self.callbacks = {event: self._list(c) for event, c in self.shell.events.callbacks.items()}
        self.watch()

    def ids(self, values):
        """The identities of the values, in order: two such lists are equal when nothing was replaced."""
        return self._list(self._map(self._id, values))

    @staticmethod
    def package_folders():
        """The course package's folder (an editable install lives outside the venv)."""
        spec = importlib.util.find_spec("loracourse")
        return list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []

    def library_made(self, value, name=None):
        """Did a library put this value there? A function defined in the libraries' files, named as the attribute
        it was set as (torch's optimizer wraps its class's step, transformers adds nn.Module.smart_apply); not a
        function of the notebook, a lambda, or a built-in moved onto another name. Only exact function types are
        looked into: no code of the notebook's runs here."""
        function = value.__func__ if type(value) is MethodType else value
        if type(function) is not FunctionType:
            return False
        named = name is None or function.__name__ == name
        return named and function.__code__.co_filename.startswith(self.roots)

    def watch(self):
        """Record the protected modules imported since the last call, and the module names the notebook bound."""
        for name, module in self._list(self._modules.items()):
            if name not in self.records and isinstance(module, ModuleType) and protected(name):
                values = self._dict(vars(module))
                self.records[name] = (module, values, self.ids(values.values()))
                for value in values.values():
                    if isinstance(value, type) and value.__flags__ & HEAPTYPE and value not in self.classes:
                        attributes = self._dict(vars(value))
                        self.classes[value] = (attributes, self.ids(attributes.values()))
        recorded = {self._id(r[0]) for r in self.records.values()}
        for name, value in self._list(self.shell.user_ns.items()):
            if name not in self.bindings and isinstance(value, ModuleType) and self._id(value) in recorded:
                self.bindings[name] = value
        return self._len(self.records)

    def restore(self, names=()):
        """Put back what changed since it was recorded; return what was put back."""
        back = []
        for name, (module, values, ids) in self.records.items():
            if self._modules.get(name) is not module:
                self._modules[name] = module
                back.append(f"sys.modules[{name!r}]")
            now = vars(module)
            if self.ids(now.values()) == ids:
                continue  # nothing changed (the common case: one comparison of two lists of ints)
            for key, value in values.items():
                new = now.get(key)
                if new is not value and kept(value) and not self.library_made(new, key):
                    if name == "builtins" and key in IPYTHON_BUILTINS:
                        continue
                    now[key] = value
                    back.append(f"{name}.{key}")
        for cls, (attributes, ids) in self.classes.items():
            now = vars(cls)
            if self.ids(now.values()) == ids:
                continue
            for key, value in self._list(now.items()):
                if key not in attributes and callable(value) and not self.library_made(value, key):
                    type.__delattr__(cls, key)
                    back.append(f"{cls.__module__}.{cls.__qualname__}.{key} (added)")
            for key, value in attributes.items():
                new = now.get(key)
                if new is not value and kept(value) and not self.library_made(new, key):
                    type.__setattr__(cls, key, value)
                    back.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
        back += self.restore_shell()
        back += self.restore_globals(names)
        return back

    def restore_shell(self):
        """IPython's input and AST transformers, exception handlers, event callbacks; the trace functions."""
        back, shell = [], self.shell
        for name, items in self.shell_lists.items():
            if type(getattr(shell, name)) is not list:  # replaced by an object of the notebook's
                setattr(shell, name, self._list(items))
                back.append(f"IPython's {name}")
            elif self.restore_hooks(getattr(shell, name), items):
                back.append(f"IPython's {name}")
        for name, value in self.shell_traits.items():
            if getattr(shell, name) is not value:
                setattr(shell, name, value)
                back.append(f"IPython's {name}")
        for name, value in self.shell_attributes.items():
            if vars(shell).get(name) is not value:
                if value is None:
                    del vars(shell)[name]
                else:
                    vars(shell)[name] = value
                back.append(f"IPython's {name}")
        for event, callbacks in shell.events.callbacks.items():
            if self.restore_hooks(callbacks, self.callbacks.get(event, [])):
                back.append(f"IPython's {event} callbacks")
        if self._gettrace() is not None:
            back.append("a trace function (sys.settrace)")
        self._settrace(None)
        self._set_thread_trace(None)
        return back

    def restore_hooks(self, items, before):
        """Put a list of hooks back in place: those recorded, and those a library added since (matplotlib's inline
        backend adds a post_execute callback); drop the notebook's. Return whether anything changed."""
        recorded, present = {self._id(h) for h in before}, {self._id(h) for h in items}
        wanted = [h for h in items if self._id(h) in recorded or self.library_made(h)]
        wanted += [h for h in before if self._id(h) not in present]
        if self.ids(wanted) == self.ids(items):
            return False
        items[:] = wanted
        return True

    def restore_globals(self, names):
        """The notebook's globals that the test reads: no built-in shadowed, no recorded module rebound."""
        back, user = [], self.shell.user_ns
        for name in names:
            if name in self.bindings and user.get(name) is not self.bindings[name]:
                user[name] = self.bindings[name]
                back.append(f"the notebook's {name} (a module of the tests, rebound)")
            elif name in self.builtin_names and name in user and name not in self.bindings:
                del user[name]
                back.append(f"the notebook's own {name} (it hid the built-in)")
        return back


def install(imports):
    """Import the lesson's modules, record everything; the kernel keeps the returned Guard."""
    return Guard(imports)
