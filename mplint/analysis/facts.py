"""Per-module facts the rules query: process starts, work sent to processes, start methods."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import CallSite, ModuleRecord
from mplint.analysis.evaluator import Evaluator
from mplint.analysis.scopes import Scope, ScopeKind
from mplint.analysis.values import (
    Bound,
    ContextMember,
    Func,
    Klass,
    Model,
    ProcessObject,
    Qual,
    Value,
)
from mplint.knowledge import ApiKind, TaskMethod


class PayloadMode(enum.Enum):
    VALUE = "value"  # the value itself is pickled
    ITEMS = "items"  # each item of the iterable is pickled, one task each


@dataclass(frozen=True, eq=False)
class Payload:
    expr: cst.BaseExpression
    mode: PayloadMode


@dataclass(frozen=True, eq=False)
class ProcessStart:
    """A call that creates processes, a pool, an executor or a manager."""

    site: CallSite
    obj: ProcessObject


@dataclass(frozen=True, eq=False)
class WorkSite:
    """A call that sends a callable and its arguments to other processes."""

    site: CallSite
    api: str  # how messages name it: "Pool.starmap", "multiprocessing.Process"
    func: cst.BaseExpression | None
    payload: tuple[Payload, ...]
    per_task: bool  # pickled with every task (pools, executors) or once per child process
    method: str | None  # the start method chosen for it, None = platform default


@dataclass(frozen=True, eq=False)
class StartMethodCall:
    site: CallSite
    api: str
    force: bool


class ModuleFacts:
    """Facts about one module, computed once and shared by every rule."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.record: ModuleRecord = evaluator.record
        self.starts: list[ProcessStart] = []
        self.work: list[WorkSite] = []
        self.start_method_calls: list[StartMethodCall] = []
        # calls that freeze the default context, with the API they call
        self.default_fixers: list[tuple[CallSite, str]] = []
        self._shared_models: set[str] = set()
        for site in self.record.calls:
            self._classify(site, self.value(site.node.func, site))

    # -- queries -------------------------------------------------------------------------------
    def value(self, expr: cst.BaseExpression, site: CallSite) -> Value:
        """The value of ``expr`` as seen from the call ``site``."""
        return self.evaluator.value(expr, site.scope, site.order)

    def import_time_root(self, site: CallSite) -> CallSite | None:
        """The module-level call through which ``site`` runs on import, or None."""
        if site.import_time:
            return site
        function = function_of(site.scope)
        return self._runs_at_import.get(id(function)) if function is not None else None

    def shares_memory(self, model: Model) -> bool:
        """True when the code moves this model's weights to shared memory on purpose."""
        return model.name is not None and model.name in self._shared_models

    @cached_property
    def delegates_start_method(self) -> bool:
        """True when the module calls a function of another module that sets the start method
        (``from mylib.mp import setup; setup()``)."""
        for site in self.record.calls:
            func = self.value(site.node.func, site)
            target = self.evaluator.in_project(func.name) if isinstance(func, Qual) else None
            if isinstance(target, Func) and _sets_start_method(target):
                return True
        return False

    @cached_property
    def framework(self) -> str | None:
        """The first threaded ML framework the module imports (torch, tensorflow, ...)."""
        found = sorted(m for m in self.record.imported if knowledge.is_ml_framework(m))
        return found[0].partition(".")[0] if found else None

    @cached_property
    def is_entry_script(self) -> bool:
        return self.record.main_guard is not None or any(
            self.import_time_root(start.site) for start in self.starts)

    @cached_property
    def _runs_at_import(self) -> dict[int, CallSite]:
        """Functions of this module that run on import, each with the module-level call."""
        by_function: dict[int, list[CallSite]] = {}
        for site in self.record.calls:
            function = function_of(site.scope)
            if function is not None:
                by_function.setdefault(id(function), []).append(site)
        reached: dict[int, CallSite] = {}
        queue = [(site, site) for site in self.record.calls if site.import_time]
        while queue:
            site, root = queue.pop()
            called = self.value(site.node.func, site)
            if not isinstance(called, Func) or called.evaluator is not self.evaluator:
                continue
            if id(called.node) in reached:
                continue
            reached[id(called.node)] = root
            queue.extend((inner, root) for inner in by_function.get(id(called.node), []))
        return reached

    # -- classification ------------------------------------------------------------------------
    def _classify(self, site: CallSite, func: Value) -> None:
        kind = _api_kind(func)
        if kind is ApiKind.SET_START_METHOD:
            force = any(arg.keyword is not None and arg.keyword.value == "force"
                        and not _is_false(arg.value) for arg in site.node.args)
            self.start_method_calls.append(StartMethodCall(site, _api_name(func), force))
        elif _fixes_default(kind, site.node):
            self.default_fixers.append((site, _api_name(func)))
        if kind is None and isinstance(func, Qual):
            # a class of another module of the tree: a Process subclass creates a process
            func = self.evaluator.in_project(func.name) or func
        creates = kind in _CREATORS or isinstance(func, Klass)
        obj = self.value(site.node, site) if creates else None
        if isinstance(obj, ProcessObject):
            self.starts.append(ProcessStart(site, obj))
            self._add_creation_work(site, obj)
        elif isinstance(func, Bound) and isinstance(func.obj, ProcessObject):
            self._add_method_work(site, func.obj, func.attr)
        elif (isinstance(func, Bound) and func.attr in knowledge.SHARED_MEMORY_METHODS
              and isinstance(func.obj, Model) and func.obj.name):
            self._shared_models.add(func.obj.name)

    def _add_creation_work(self, site: CallSite, obj: ProcessObject) -> None:
        call = site.node
        if obj.kind is ApiKind.PROCESS:
            sent = (_argument(call, 3, "args"), _argument(call, 4, "kwargs"))
            self.work.append(WorkSite(site, _short(obj.api), _argument(call, 1, "target"),
                                      _values(sent), False, obj.method))
        elif obj.kind is ApiKind.SPAWN:
            self.work.append(WorkSite(site, obj.api, _argument(call, 0, "fn"),
                                      _values([_argument(call, 1, "args")]), False, obj.method))

    def _add_method_work(self, site: CallSite, obj: ProcessObject, method: str) -> None:
        table = {ApiKind.POOL: knowledge.POOL_METHODS,
                 ApiKind.EXECUTOR: knowledge.EXECUTOR_METHODS}.get(obj.kind, {})
        spec = table.get(method)
        if spec is None:
            return
        api = f"{_short(obj.api)}.{method}"
        func = _argument(site.node, spec.func_index, spec.func_keyword)
        self.work.append(WorkSite(site, api, func, _payload(site.node, spec), True, obj.method))


def _sets_start_method(func: Func) -> bool:
    record = func.evaluator.record
    return any(
        function_of(site.scope) is func.node
        and _api_kind(func.evaluator.value(site.node.func, site.scope, site.order))
        is ApiKind.SET_START_METHOD
        for site in record.calls
    )


_CREATORS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS, ApiKind.MANAGER,
                       ApiKind.SPAWN})


def _values(exprs: Sequence[cst.BaseExpression | None]) -> tuple[Payload, ...]:
    return tuple(Payload(e, PayloadMode.VALUE) for e in exprs if e is not None)


def _payload(call: cst.Call, spec: TaskMethod) -> tuple[Payload, ...]:
    positional = [a for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if spec.shape in ("map", "starmap"):
        iterable = _argument(call, 1, "iterable")
        return (Payload(iterable, PayloadMode.ITEMS),) if iterable is not None else ()
    if spec.shape == "apply":
        return _values((_argument(call, 1, "args"), _argument(call, 2, "kwds")))
    if spec.shape == "map_zip":
        return tuple(Payload(a.value, PayloadMode.ITEMS) for a in positional[1:])
    rest = [a.value for a in positional[1:]]
    return _values(rest + [v for k, v in keywords.items() if k != spec.func_keyword])


def _argument(call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None]
    if index < len(positional) and all(a.star == "" for a in positional[: index + 1]):
        return positional[index].value
    return None


def _api_kind(func: Value) -> ApiKind | None:
    if isinstance(func, Qual):
        return knowledge.PROCESS_APIS.get(func.name)
    if isinstance(func, ContextMember):
        return knowledge.CONTEXT_MEMBERS.get(func.member)
    return None


def _api_name(func: Value) -> str:
    if isinstance(func, Qual):
        return func.name
    if isinstance(func, ContextMember):
        return f"get_context({func.method!r}).{func.member}"
    return "set_start_method"


def _short(api: str) -> str:
    """``multiprocessing.pool.Pool`` -> ``Pool``; ``concurrent.futures.ProcessPoolExecutor`` too."""
    return api.rpartition(".")[2]


def function_of(scope: Scope) -> cst.CSTNode | None:
    """The function whose body a call in ``scope`` runs in; None at module level or in lambdas."""
    current: Scope | None = scope
    while current is not None:
        if current.kind is ScopeKind.FUNCTION:
            return current.node
        if current.kind is ScopeKind.LAMBDA:
            return None
        current = current.parent
    return None


def _fixes_default(kind: ApiKind | None, call: cst.Call) -> bool:
    """Queue(), get_start_method() and get_context() with no method fix the default context."""
    if kind is ApiKind.GET_CONTEXT:
        return not _has_positional_or(call, "method")
    return kind is ApiKind.FIXES_DEFAULT and not _allows_none(call)


def _has_positional_or(call: cst.Call, keyword: str) -> bool:
    return any(a.keyword is None or a.keyword.value == keyword for a in call.args)


def _allows_none(call: cst.Call) -> bool:
    return any(a.keyword is not None and a.keyword.value == "allow_none" and not _is_false(a.value)
               for a in call.args)


def _is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"
