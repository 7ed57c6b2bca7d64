"""Abstract values: what the analysis knows an expression evaluates to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from mplint.analysis.scopes import Scope
from mplint.knowledge import ApiKind

if TYPE_CHECKING:
    from mplint.analysis.evaluator import Evaluator


@dataclass(frozen=True)
class Unknown:
    """Nothing is known about the value: rules stay silent about it."""


@dataclass(frozen=True)
class Qual:
    """A module, function or class known by its qualified name (``torch.nn.Linear``)."""

    name: str


@dataclass(frozen=True)
class Context:
    """A multiprocessing context; ``method`` None is the platform default."""

    method: str | None


@dataclass(frozen=True)
class ContextMember:
    """An attribute of a context object, such as ``ctx.Pool``."""

    method: str | None
    member: str


@dataclass(frozen=True, eq=False)
class ProcessObject:
    """A pool, executor, process or manager created by a known process API."""

    kind: ApiKind
    api: str  # display name, e.g. "multiprocessing.Pool"
    method: str | None  # start method chosen for it; None = the platform default
    origin: cst.Call | None = None  # the call that created it
    maybe: bool = False  # starts processes only for some settings (``num_workers=args.w``)
    spec: str = ""  # the knowledge.LIBRARY_APIS entry it comes from; "" for the standard APIs
    pickler: str = "pickle"  # how its callables and data travel: "pickle", "dill", "cloudpickle"
    condition: str = ""  # when ``maybe``: the setting that starts processes ("num_proc > 1")


@dataclass(frozen=True)
class Model:
    """A model object; ``name`` is the variable it was last read through, if any."""

    label: str
    name: str | None = None
    origin: cst.Call | None = field(default=None, compare=False)  # the call that built it
    framework: str = ""  # the library it comes from: "torch", "keras", "sklearn", ...
    klass: Klass | None = field(default=None, compare=False)  # the model class of the tree


@dataclass(frozen=True, eq=False)
class Func:
    """A function defined in the linted code."""

    node: cst.FunctionDef
    scope: Scope  # the scope the ``def`` statement is in
    guarded: bool  # defined under the main guard
    evaluator: Evaluator = field(repr=False)


@dataclass(frozen=True, eq=False)
class Klass:
    """A class defined in the linted code."""

    node: cst.ClassDef
    scope: Scope
    evaluator: Evaluator = field(repr=False)


class Summarised:
    """A class or function of another module of the linted tree, known from that module's
    summary: its code is parsed only when a rule reads it. What the summary can tell without
    the parse is answered here."""

    def known_result(self) -> Value | None:
        """What calling it gives, when the summary can tell; None: ask the parsed module."""
        raise NotImplementedError

    def known_bases(self) -> tuple[str, ...] | None:
        """(A class) ``Evaluator.bases`` of it, when the summary can tell; None: ask the
        parsed module."""
        raise NotImplementedError

    def decorated_by(self, names: frozenset[str]) -> bool | None:
        """Whether a decorator resolves to one of ``names``; None: ask the parsed module."""
        raise NotImplementedError

    @property
    def may_set_start_method(self) -> bool:
        """(A function) Its module can name ``set_start_method``."""
        raise NotImplementedError

    def may_start(self) -> bool:
        """Whether calling it (building an instance, calling a method of one) can start
        processes; False is sure, True: ask the parsed module."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Instance:
    klass: Klass


@dataclass(frozen=True, eq=False)
class LambdaValue:
    node: cst.Lambda
    scope: Scope  # the lambda's own scope


@dataclass(frozen=True)
class Resource:
    """An object that cannot be pickled into another process (a lock, a file, a generator), or
    a multiprocessing object that may only be inherited (``inherit_only``). For those,
    ``context`` is the start method of the context that created it (None: the default one)."""

    label: str
    inherit_only: bool = False
    name: str | None = None
    origin: cst.Call | None = field(default=None, compare=False)  # the call that created it
    context: str | None = None


@dataclass(frozen=True, eq=False)
class QueueObject:
    """A multiprocessing queue whose writer must not be joined before it is drained;
    ``context`` is the start method of the context that created it (None: the default one)."""

    api: str
    name: str | None = None
    origin: cst.Call | None = None  # the call that created it
    context: str | None = None


@dataclass(frozen=True)
class Delayed:
    """``joblib.delayed(f)`` or ``dask.delayed(f)``: calling it records a task."""

    func: Value
    library: str


@dataclass(frozen=True)
class Bound:
    """``obj.attr`` where ``obj`` is known: a bound method, or an attribute to call."""

    obj: Value
    attr: str


@dataclass(frozen=True)
class Partial:
    """``functools.partial(func, *args)``."""

    func: Value
    args: tuple[Value, ...]


@dataclass(frozen=True)
class Items:
    """An iterable whose every item is ``element`` (comprehension, ``repeat``, ``zip``)."""

    element: Value


@dataclass(frozen=True)
class Tup:
    """A literal tuple, list or dict whose items are known one by one; a dict's ``keys`` are
    its string keys, position by position (None: a key that is not a plain string)."""

    items: tuple[Value, ...]
    keys: tuple[str | None, ...] = ()


Value = (Unknown | Qual | Context | ContextMember | ProcessObject | Model | Func | Klass
         | Instance | LambdaValue | Bound | Partial | Items | Tup | Resource | QueueObject
         | Delayed)

UNKNOWN = Unknown()


def item_of(value: Value) -> Value:
    """The value of one item when iterating over ``value``."""
    if isinstance(value, Items):
        return value.element
    if isinstance(value, Tup) and value.keys:
        return UNKNOWN  # iterating a dict gives its keys
    if isinstance(value, Tup) and value.items:
        first = value.items[0]
        return first if all(item == first for item in value.items) else Tup(value.items)
    return UNKNOWN


def element_of(value: Value, index: int | str | None) -> Value:
    """The item of a known tuple, list or dict at ``index`` (a position, a dict key, or None
    when it is computed: then only an item every position holds)."""
    if isinstance(value, Items):
        return value.element if not isinstance(index, str) else UNKNOWN
    if not isinstance(value, Tup) or not value.items:
        return UNKNOWN
    if isinstance(index, str):
        found = [item for key, item in zip(value.keys, value.items, strict=False)
                 if key == index]
        return found[-1] if found else UNKNOWN
    if isinstance(index, int) and not value.keys:
        return value.items[index] if -len(value.items) <= index < len(value.items) else UNKNOWN
    first = value.items[0]
    return first if all(item == first for item in value.items) else UNKNOWN


def models_in(value: Value) -> list[Model]:
    """Every model object that pickling ``value`` would pickle, as far as it is known."""
    if isinstance(value, Model):
        return [value]
    if isinstance(value, Tup):
        return [model for item in value.items for model in models_in(item)]
    if isinstance(value, Items):
        return models_in(value.element)
    if isinstance(value, Partial):
        return models_in(Tup(value.args))
    return []


def resources_in(value: Value) -> list[Resource]:
    """Every unpicklable resource that pickling ``value`` would meet."""
    if isinstance(value, Resource):
        return [value]
    if isinstance(value, QueueObject):
        return [Resource(value.api, True, value.name, value.origin, value.context)]
    if isinstance(value, Tup):
        return [found for item in value.items for found in resources_in(item)]
    if isinstance(value, Partial):
        return resources_in(Tup(value.args))
    return []
