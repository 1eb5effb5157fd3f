"""Random generators a dataset holds, where each lives, and a reseed that reaches it; and what
DataLoader itself reseeds in every worker, read from the installed torch.

DataLoader's worker loop (``torch/utils/data/_utils/worker.py``, ``_worker_loop``) seeds three
global states per worker: Python's ``random`` (``random.seed(seed)``), torch's global generator
(``torch.manual_seed(seed)``), both with ``seed = base_seed + worker_id``, and numpy's legacy
global state (``np.random.seed(_generate_state(base_seed, worker_id))``). Any other generator
object (a ``numpy.random.Generator``, ``RandomState``, ``random.Random`` or ``torch.Generator``
made in ``__init__`` or at module level) is copied into every worker unchanged, so the workers
repeat each other's draws. ``reseeded_by_torch`` checks the first list against the source of the
torch that is installed, so no message claims what that torch does not do.

Generators are looked for in the dataset's attributes (a few levels down, through lists, tuples
and dicts), in the closures of the callables found there (a transform made by a factory), and in
the globals of the modules that define the dataset's class and those callables. Each is named
by a Python expression that reaches it from the worker (``info.dataset.rng``, ``lb_x.RNG``), and
the fix reseeds it *in place*, so every reference to it (a transform sharing the dataset's
generator, a module global imported elsewhere) sees the new state.
"""

from __future__ import annotations

import inspect
import random
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

import numpy as np
import torch

#: How far down the dataset's attributes the search goes (dataset.transform.rng is 2).
DEPTH = 3
#: Elements of one list, tuple or dict looked into (a dataset's records may be millions; a
#: generator sits near the top).
WALK_ITEMS = 64

#: The expression a worker_init_fn uses for its worker's seed: distinct per worker
#: (base_seed + worker_id) and reproducible from the loader's generator.
WORKER_SEED = "torch.initial_seed() % 2**32"

#: What DataLoader reseeds in each worker: (what, the statement of torch's _worker_loop).
TORCH_RESEEDS = (
    ("Python's random module", "random.seed(seed)"),
    ("torch's global generator", "torch.manual_seed(seed)"),
    ("numpy's global numpy.random state", "np.random.seed(_generate_state(base_seed, worker_id))"),
)


def worker_loop_source() -> str | None:
    """The source of the installed torch's worker loop, or None where it cannot be read."""
    from torch.utils.data._utils import worker

    try:
        return inspect.getsource(worker._worker_loop)
    except (OSError, TypeError):  # a build without .py sources
        return None


def reseeded_by_torch(source: str | None = None) -> tuple[str, ...]:
    """The global states the installed torch reseeds per worker (TORCH_RESEEDS' first column),
    each kept only when its statement is in the worker loop's source. numpy's is there as
    ``np_seed = _generate_state(base_seed, worker_id)`` then ``np.random.seed(np_seed)``."""
    source = worker_loop_source() if source is None else source
    if source is None:  # nothing to check against: claim only what torch documents
        return tuple(what for what, _ in TORCH_RESEEDS[:2])
    code = " ".join(source.split())
    found = []
    for what, statement in TORCH_RESEEDS:
        if statement.startswith("np.random.seed("):
            present = "_generate_state(base_seed, worker_id)" in code and "np.random.seed(" in code
        else:
            present = statement in code
        if present:
            found.append(what)
    return tuple(found)


def reseeded_sentence() -> str:
    """One sentence on what DataLoader reseeds per worker, true for the installed torch."""
    states = reseeded_by_torch()
    if not states:
        return "this torch's DataLoader reseeds no global random state per worker"
    listed = ", ".join(states[:-1]) + (" and " if len(states) > 1 else "") + states[-1]
    return (
        f"DataLoader reseeds {listed} in every worker, as torch/utils/data/_utils/worker.py does it"
    )


# --- the generators a dataset holds ---------------------------------------------------------

_KINDS = (
    (np.random.Generator, "numpy.random.Generator"),
    (np.random.RandomState, "numpy.random.RandomState"),
    (np.random.BitGenerator, "numpy.random.BitGenerator"),
    (random.Random, "random.Random"),
    (torch.Generator, "torch.Generator"),
)


def kind_of(value: Any) -> str | None:
    """The generator type's name, or None for anything else."""
    for kind, name in _KINDS:
        if isinstance(value, kind):
            return name
    return None


def _global_states() -> set[int]:
    """Ids of the generator objects behind the global functions that DataLoader reseeds."""
    states = {id(random._inst), id(torch.default_generator)}
    states.add(id(np.random.mtrand._rand))
    return states


@dataclass(frozen=True)
class Found:
    """One generator: where it lives (for people), the expression that reaches it inside a
    worker (``info`` being ``torch.utils.data.get_worker_info()``), and the module to import
    for that expression when it lives in one."""

    where: str
    expression: str
    kind: str
    value: Any
    module: str | None = None

    def reseed(self) -> str:
        """A statement that reseeds the generator in place from the worker's seed."""
        target, kind = self.expression, self.kind
        if kind == "numpy.random.Generator":
            bits = type(self.value.bit_generator)
            return f"{target}.bit_generator.state = {_numpy_name(bits)}({WORKER_SEED}).state"
        if kind == "numpy.random.BitGenerator":
            return f"{target}.state = {_numpy_name(type(self.value))}({WORKER_SEED}).state"
        if kind == "numpy.random.RandomState":
            return f"{target}.seed({WORKER_SEED})"
        if kind == "random.Random":
            return f"{target}.seed(torch.initial_seed())"
        return f"{target}.manual_seed(torch.initial_seed())"


def _numpy_name(bit_generator: type) -> str:
    name = bit_generator.__name__
    return f"numpy.random.{name}" if getattr(np.random, name, None) is bit_generator else name


def worker_init_source(found: list[Found]) -> str:
    """A one-line ``def worker_init_fn(worker_id): ...`` reseeding every generator found (uses
    ``torch`` and ``numpy``, imported by the caller)."""
    statements = [f"import {m}" for m in dict.fromkeys(f.module for f in found if f.module)]
    if any(not f.module for f in found):
        statements.append("info = torch.utils.data.get_worker_info()")
    statements += [f.reseed() for f in found]
    return "def worker_init_fn(worker_id): " + "; ".join(statements)


def find_generators(dataset) -> list[Found]:
    """Every random generator the dataset holds that DataLoader does not reseed: attributes
    first, then closures, then module globals; each object once, under its first name."""
    skip = _global_states()
    seen: set[int] = set()
    found: list[Found] = []
    callables: list[tuple[str, str, Any]] = []
    for where, expression, value in _walk(dataset, "dataset", "info.dataset", DEPTH, set()):
        kind = kind_of(value)
        if kind:
            if id(value) not in skip and id(value) not in seen:
                seen.add(id(value))
                found.append(Found(where, expression, kind, value))
        elif callable(value) and not isinstance(value, type):
            callables.append((where, expression, value))
    for where, expression, function in callables:
        for name, cell_expr, value in _closure(function, expression):
            kind = kind_of(value)
            if kind and id(value) not in skip and id(value) not in seen:
                seen.add(id(value))
                found.append(Found(f"{name}, captured by {where}", cell_expr, kind, value))
    for module in _modules(dataset, [c for _, _, c in callables]):
        for name, value in list(vars(module).items()):
            kind = kind_of(value)
            if kind and id(value) not in skip and id(value) not in seen:
                seen.add(id(value))
                found.append(
                    Found(
                        f"module {module.__name__}.{name}",
                        f"{module.__name__}.{name}",
                        kind,
                        value,
                        module=module.__name__,
                    )
                )
    return found


def _walk(value: Any, where: str, expression: str, depth: int, visiting: set[int]) -> Iterator:
    """(where, expression, child) below ``value``, depth first, each container once."""
    if depth == 0 or id(value) in visiting:
        return
    visiting.add(id(value))
    for suffix, child in _children(value):
        yield where + suffix, expression + suffix, child
        if not kind_of(child):
            yield from _walk(child, where + suffix, expression + suffix, depth - 1, visiting)


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    """(suffix, child) for the items of a dict, list or tuple, or the attributes of an object;
    the suffixes are Python (``.rng``, ``[0]``, ``['key']``)."""
    if isinstance(value, dict):
        for key, child in islice(value.items(), WALK_ITEMS):
            yield f"[{key!r}]", child
    elif isinstance(value, (list, tuple)):
        for position, child in enumerate(value[:WALK_ITEMS]):
            yield f"[{position}]", child
    elif isinstance(value, partial):
        yield ".func", value.func
        for position, child in enumerate(value.args[:WALK_ITEMS]):
            yield f".args[{position}]", child
    elif not isinstance(value, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        try:
            attributes = vars(value)
        except TypeError:  # no __dict__ (builtins, C extension objects)
            return
        for name, child in islice(list(attributes.items()), WALK_ITEMS):
            yield f".{name}", child


def _function_of(value: Any) -> types.FunctionType | None:
    """The Python function behind a function, bound method or callable object."""
    if isinstance(value, types.MethodType):
        value = value.__func__
    if isinstance(value, types.FunctionType):
        return value
    call = next((vars(k)["__call__"] for k in type(value).__mro__ if "__call__" in vars(k)), None)
    return call if isinstance(call, types.FunctionType) else None


def _closure(value: Any, expression: str) -> Iterator[tuple[str, str, Any]]:
    """(variable name, expression, value) of each closure cell of a callable's function."""
    function = _function_of(value)
    if function is None or not function.__closure__:
        return
    prefix = expression
    if isinstance(value, types.MethodType):
        prefix += ".__func__"
    elif not isinstance(value, types.FunctionType):
        prefix = f"type({expression}).__call__"
    for position, (name, cell) in enumerate(
        zip(function.__code__.co_freevars, function.__closure__)
    ):
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        yield name, f"{prefix}.__closure__[{position}].cell_contents", contents


def _modules(dataset, callables: list) -> list[types.ModuleType]:
    """The modules defining the dataset's class (and its bases) and the callables found, torch
    and the standard library left out."""
    names = [c.__module__ for c in type(dataset).__mro__]
    for value in callables:
        function = _function_of(value)
        if function is not None:
            names.append(function.__module__)
    modules = []
    for name in dict.fromkeys(names):
        module = sys.modules.get(name) if name else None
        if module is None or name == "builtins" or name.split(".")[0] in ("torch", "numpy"):
            continue
        if name in sys.stdlib_module_names or name.split(".")[0] in sys.stdlib_module_names:
            continue
        modules.append(module)
    return modules


def worker_init_fn(found: list[Found], then: Callable | None = None) -> Callable[[int], None]:
    """The function ``worker_init_source(found)`` defines, compiled from that very text (so the
    fix a message prints is the fix that was tried), calling ``then`` (the user's own
    worker_init_fn) first when given."""
    namespace: dict[str, Any] = {"torch": torch, "numpy": np}
    exec(compile(worker_init_source(found), "<worker_init_fn>", "exec"), namespace)
    reseed = namespace["worker_init_fn"]
    if then is None:
        return reseed

    def both(worker_id: int) -> None:
        then(worker_id)
        reseed(worker_id)

    return both


_FUNCTIONS = {
    "Python's random module": "random.*",
    "torch's global generator": "torch.rand*",
    "numpy's global numpy.random state": "numpy.random.*",
}


def reseeded_functions() -> str:
    """The random functions whose state the installed torch reseeds per worker, e.g.
    "torch.rand*, random.* or numpy.random.* functions"."""
    names = [_FUNCTIONS[what] for what in reseeded_by_torch()]
    if not names:
        return "no global random functions"
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1] + " functions"
