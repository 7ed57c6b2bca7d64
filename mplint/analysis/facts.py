"""Per-module facts the rules query: process starts, work sent to processes, start methods."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import CallSite, ModuleRecord
from mplint.analysis.dataloader import Iteration, import_time_iteration
from mplint.analysis.evaluator import (
    Evaluator,
    argument,
    keyword_argument,
    start_method_argument,
)
from mplint.analysis.scopes import BindingKind, Scope, ScopeKind
from mplint.analysis.values import (
    UNKNOWN,
    Bound,
    ContextMember,
    Delayed,
    Func,
    Instance,
    Klass,
    Model,
    Partial,
    ProcessObject,
    Qual,
    Summarised,
    Tup,
    Value,
    item_of,
)
from mplint.analysis.walk import children, name_reads, own_nodes
from mplint.knowledge import ApiKind

if TYPE_CHECKING:
    from mplint.analysis.spawn import SpawnCheck


class PayloadMode(enum.Enum):
    VALUE = "value"  # the value itself is pickled
    ITEMS = "items"  # each item of the iterable is pickled, one task each


@dataclass(frozen=True, eq=False)
class Payload:
    expr: cst.BaseExpression
    mode: PayloadMode
    keyword: str | None = None  # sent as this keyword argument of the task function; KEYWORDS:
    #                             a dict of keyword arguments sent with every task


KEYWORDS = "**"


class Shape(enum.Enum):
    """How a work site's payload maps onto the task function's parameters."""

    ITEMS = "items"  # one item of the single ITEMS payload per call (map)
    STAR_ITEMS = "star_items"  # each item is a tuple of arguments (starmap)
    ZIP_ITEMS = "zip_items"  # the i-th ITEMS payload gives the i-th argument (executor.map)
    ARGS = "args"  # each VALUE payload is one positional argument (submit, delayed, remote)
    ARGS_TUPLE = "args_tuple"  # the first payload is a tuple of arguments (Process, apply)
    NONE = "none"  # nothing maps onto parameters in order (DataLoader; spawn's rank comes first)


@dataclass(frozen=True, eq=False)
class ProcessStart:
    """A call that creates processes, a pool, an executor or a manager."""

    site: CallSite
    obj: ProcessObject
    iteration: Iteration | None = None  # a DataLoader's: where its workers start on import
    via: str | None = None  # the function of another module whose code makes it, if any


@dataclass(frozen=True, eq=False)
class WorkSite:
    """A call that sends a callable and its arguments to other processes."""

    site: CallSite
    api: str  # how messages name it: "Pool.starmap", "multiprocessing.Process"
    kind: ApiKind  # the family of process API that runs the work
    func: cst.BaseExpression | None
    payload: tuple[Payload, ...]
    per_task: bool  # pickled with every task (pools, executors) or once per child process
    method: str | None  # the start method chosen for it, None = platform default; "loky",
    #                     "ray", "dask": the library's own workers; "dynamic": computed
    shape: Shape = Shape.NONE
    cloudpickle: bool = False  # joblib/loky, ray, dask: functions travel by value
    scope: Scope | None = None  # where func and payload are evaluated, when not the site's
    callables: tuple[cst.BaseExpression, ...] = ()  # other functions sent (collate_fn, ...)

    @property
    def returns_results(self) -> bool:
        """Whether what the task function returns is pickled back to the caller."""
        return self.per_task


@dataclass(frozen=True, eq=False)
class StartMethodCall:
    site: CallSite
    api: str
    force: bool


class ModuleFacts:
    """Facts about one module, computed once and shared by every rule."""

    def __init__(self, evaluator: Evaluator,
                 default_methods: frozenset[str] = knowledge.START_METHODS,
                 notebook: str = "") -> None:
        self.evaluator = evaluator
        self.default_methods = default_methods
        self.notebook = notebook  # the notebook's file name when the module is its code cells
        self.record: ModuleRecord = evaluator.record
        self.starts: list[ProcessStart] = []
        self.work: list[WorkSite] = []
        self.start_method_calls: list[StartMethodCall] = []
        # calls that freeze the default context, with the API they call
        self.default_fixers: list[tuple[CallSite, str]] = []
        self._shared_models: set[str] = set()
        # what calls into other modules of the tree send to the processes those start
        self.sent_through_calls: list[WorkSite] = []
        for site in self.record.calls:
            self._classify(site, self.value(site.node.func, site))
        self._add_calls_into_tree()
        self._drop_processes_never_started()

    # -- queries -------------------------------------------------------------------------------
    def value(self, expr: cst.BaseExpression, site: CallSite) -> Value:
        """The value of ``expr`` as seen from the call ``site``."""
        return self.evaluator.value(expr, site.scope, site.order)

    def work_value(self, work: WorkSite, expr: cst.BaseExpression) -> Value:
        """The value of the task function or a payload expression of ``work``."""
        if work.scope is not None:
            return self.evaluator.value(expr, work.scope)
        return self.value(expr, work.site)

    def methods(self, method: str | None) -> frozenset[str] | None:
        """The start methods a start with ``method`` (None = no explicit choice) may run
        under; None when the analysis cannot tell."""
        if method in knowledge.START_METHODS:
            return frozenset({method})
        if method == "dynamic":
            return None
        if method == "default":
            return self.default_methods  # a library's own context: the platform's default
        if method is not None:
            return frozenset({method})  # "loky", "dask", "ray": the library's own workers
        return self._module_default

    def only_fork(self, method: str | None) -> bool:
        """True when a start with ``method`` is known to fork: its children inherit the
        parent's memory instead of importing the main module."""
        return self.methods(method) == frozenset({"fork"})

    def may_use(self, method: str | None, *wanted: str) -> bool:
        """True when a start with ``method`` may run under one of ``wanted``."""
        found = self.methods(method)
        return found is not None and not found.isdisjoint(wanted)

    @cached_property
    def _module_default(self) -> frozenset[str] | None:
        """What no explicit choice means here: the module's own set_start_method, if any."""
        if not self.start_method_calls:
            return None if self.delegates_start_method else self.default_methods
        chosen: set[str] = set()
        for call in self.start_method_calls:
            method = start_method_argument(call.site.node)
            if method is None or method == "dynamic":
                return None
            chosen.add(method)
        return frozenset(chosen)

    def task_functions(self, work: WorkSite) -> list[Func]:
        """The functions of the linted tree that run ``work``'s tasks."""
        if work.func is None:
            return []
        return self.functions_of(self.work_value(work, work.func))

    def functions_of(self, value: Value) -> list[Func]:
        """The functions of the linted tree a task value runs (through partials, bound methods)."""
        if isinstance(value, Partial | Delayed):
            return self.functions_of(value.func)
        if isinstance(value, Qual):
            value = self.evaluator.in_project(value.name) or value
        if isinstance(value, Bound) and isinstance(value.obj, Instance):
            return _method(value.obj.klass, value.attr)
        if isinstance(value, Bound) and isinstance(value.obj, Model) and value.obj.klass:
            return _method(value.obj.klass, value.attr)
        return [value] if isinstance(value, Func) else []

    @staticmethod
    def task_parameters(func: Func) -> list[cst.Param]:
        """The positional parameters a task call fills: a method's first one is its object."""
        params = [*func.node.params.posonly_params, *func.node.params.params]
        return params[1:] if func.scope.kind is ScopeKind.CLASS else params

    def invariant_parameters(self, work: WorkSite, func: Func) -> frozenset[str]:
        """The task function's parameters that receive the same value for every item:
        arguments bound by ``functools.partial``, ``itertools.repeat(x)`` zipped with the
        items, and tuple positions of a comprehension that do not read its loop variables."""
        flags: list[bool] = []
        task = self.work_value(work, work.func) if work.func is not None else UNKNOWN
        if isinstance(task, Partial):
            flags.extend(True for _ in task.args)
        exprs = [p.expr for p in work.payload if p.keyword is None]
        if work.shape is Shape.ITEMS and exprs:
            flags.append(False)
        elif work.shape is Shape.STAR_ITEMS and exprs:
            flags.extend(self._row_invariance(work, exprs[0]))
        elif work.shape is Shape.ZIP_ITEMS:
            flags.extend(self.is_repeat(work, expr) for expr in exprs)
        elif work.site.loop_names and work.shape is Shape.ARGS:
            flags.extend(not self._varies(work, expr) for expr in exprs)  # submit in a loop
        elif (work.site.loop_names and work.shape is Shape.ARGS_TUPLE and exprs
              and isinstance(exprs[0], cst.Tuple)):
            flags.extend(not self._varies(work, e.value) for e in exprs[0].elements)
        params = self.task_parameters(func)
        same_keywords = {name for p in work.payload if p.keyword == KEYWORDS
                         for name in _dict_keys(self.definition(work, p.expr))}
        return frozenset(p.name.value for p, same in zip(params, flags, strict=False)
                         if same) | same_keywords

    def parameter_expressions(self, work: WorkSite,
                              func: Func) -> dict[str, tuple[cst.BaseExpression, Scope]]:
        """The expression each positional parameter of the task function receives, with the
        scope it is read in, where the call sends it literally (args tuples, submit arguments,
        rows of a starmap comprehension)."""
        sent: list[tuple[cst.BaseExpression, Scope] | None] = []
        task = self.work_value(work, work.func) if work.func is not None else UNKNOWN
        if isinstance(task, Partial):
            sent.extend(None for _ in task.args)
        exprs = [p.expr for p in work.payload if p.keyword is None]
        scope = work.scope or work.site.scope
        if work.shape is Shape.ARGS:
            sent.extend((e, scope) for e in exprs)
        elif work.shape is Shape.ARGS_TUPLE and exprs and isinstance(exprs[0], cst.Tuple):
            sent.extend((e.value, scope) for e in exprs[0].elements)
        elif work.shape is Shape.STAR_ITEMS and exprs:
            rows = self.definition(work, exprs[0])
            if (isinstance(rows, (cst.ListComp, cst.GeneratorExp))
                    and isinstance(rows.elt, cst.Tuple)):
                inner = self.record.scopes.get(rows, scope)
                sent.extend((e.value, inner) for e in rows.elt.elements)
        params = self.task_parameters(func)
        return {p.name.value: found for p, found in zip(params, sent, strict=False)
                if found is not None}

    def per_item_collection(self, work: WorkSite) -> str | None:
        """For a Process built in a loop over a collection (not ``range``) with an argument
        that changes per item, and whose target handles one item (no loop of its own): the
        collection's source text, since each item gets a process of its own."""
        if work.kind is not ApiKind.PROCESS or not work.site.loop_names:
            return None
        exprs = [p.expr for p in work.payload if p.keyword is None]
        if not any(self._varies(work, expr) for expr in exprs):
            return None
        scope = work.scope or work.site.scope
        iterables = [b.value for name in work.site.loop_names
                     for b in scope.bindings.get(name, ()) if b.kind is BindingKind.LOOP
                     and b.value is not None]
        if not iterables or any(self._counts(work, it) for it in iterables):
            return None
        functions = self.task_functions(work)
        if not functions or any(_loops(f.node) for f in functions):
            return None
        return cst.Module([]).code_for_node(iterables[0])

    def _counts(self, work: WorkSite, iterable: cst.BaseExpression) -> bool:
        """``range(n)``, ``enumerate(range(n))``: the loop counts workers, not items."""
        while isinstance(iterable, cst.Call):
            callee = self.work_value(work, iterable.func)
            if callee == Qual("range"):
                return True
            if callee != Qual("enumerate") or not iterable.args:
                return False
            iterable = iterable.args[0].value
        return False

    def _row_invariance(self, work: WorkSite, expr: cst.BaseExpression) -> list[bool]:
        """For each position of a starmap row, whether it is the same in every row."""
        expr = self.definition(work, expr)
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)) and isinstance(expr.elt, cst.Tuple):
            loop_names: set[str] = set()
            comp_for: cst.CompFor | None = expr.for_in
            while comp_for is not None:
                loop_names |= {name.value for name in name_reads(comp_for.target)}
                comp_for = comp_for.inner_for_in
            return [not {n.value for n in name_reads(e.value)} & loop_names
                    for e in expr.elt.elements]
        if isinstance(expr, cst.Call) and self.work_value(work, expr.func) == Qual(
                knowledge.BUILTIN_ZIP):
            return [a.star == "" and self.is_repeat(work, a.value) for a in expr.args]
        return []

    def _varies(self, work: WorkSite, expr: cst.BaseExpression, depth: int = 0) -> bool:
        """Whether ``expr``, sent from inside a loop, can differ from one iteration to the
        next: it reads a loop variable, or a name assigned from one (or unknown)."""
        scope = work.scope or work.site.scope
        for name in {n.value for n in name_reads(expr)}:
            if name in work.site.loop_names:
                if self._zipped_repeat(work, name):
                    continue
                return True
            owner = scope.lookup_scope(name)
            if owner is None or owner is not scope or depth > 4:
                continue  # builtins, globals and enclosing names do not change per iteration
            for binding in owner.bindings[name]:
                if binding.kind is not BindingKind.ASSIGN or binding.value is None:
                    if binding.kind is not BindingKind.PARAM:
                        return True
                elif self._varies(work, binding.value, depth + 1):
                    return True
        return False

    def is_repeat(self, work: WorkSite, expr: cst.BaseExpression) -> bool:
        """Items that are all the same value: ``repeat(x)``, ``[x] * n``, or
        ``[x for _ in range(n)]`` where ``x`` does not read the comprehension's variables."""
        expr = self.definition(work, expr)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            return any(isinstance(side, (cst.List, cst.Tuple)) and len(side.elements) == 1
                       and not isinstance(side.elements[0], cst.StarredElement)
                       for side in (expr.left, expr.right))
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            bound = {n.value for comp in comp_fors(expr) for n in name_reads(comp.target)}
            return not {n.value for n in name_reads(expr.elt)} & bound
        if not isinstance(expr, cst.Call):
            return False
        func = self.work_value(work, expr.func)
        return isinstance(func, Qual) and func.name in knowledge.ITERTOOLS_REPEAT

    def _zipped_repeat(self, work: WorkSite, name: str) -> bool:
        """``name`` is a loop variable taken from a ``zip(...)`` position whose items are all
        the same (``for path, seq in zip(repeat(p), data)``)."""
        for loop in _loops_in(work.site.statement):
            target: cst.BaseExpression = loop.target
            iterable = loop.iter
            # ``for i, (a, b) in enumerate(zip(...))``
            while (isinstance(target, cst.Tuple) and len(target.elements) == 2
                   and isinstance(iterable, cst.Call) and iterable.args
                   and self.work_value(work, iterable.func) == Qual("enumerate")):
                target, iterable = target.elements[1].value, iterable.args[0].value
            if not isinstance(target, cst.Tuple) or not isinstance(iterable, cst.Call):
                continue
            names = [e.value.value if isinstance(e.value, cst.Name) else None
                     for e in target.elements]
            if name not in names or self.work_value(work, iterable.func) != Qual(
                    knowledge.BUILTIN_ZIP):
                continue
            args = iterable.args
            position = names.index(name)
            if any(a.star for a in args) or position >= len(args):
                return False
            return self.is_repeat(work, args[position].value)
        return False

    def definition(self, work: WorkSite, expr: cst.BaseExpression) -> cst.BaseExpression:
        """The expression a name was assigned once from, else ``expr`` itself."""
        if not isinstance(expr, cst.Name):
            return expr
        scope = work.scope or work.site.scope
        owner = scope.lookup_scope(expr.value)
        bindings = owner.bindings[expr.value] if owner is not None else []
        if len(bindings) == 1 and bindings[0].kind is BindingKind.ASSIGN and bindings[0].value:
            return bindings[0].value
        return expr

    def parameter_values(self, work: WorkSite, func: Func) -> dict[str, Value]:
        """What the task function's positional parameters receive, where it is known."""
        sent: list[Value] = []
        task = self.work_value(work, work.func) if work.func is not None else UNKNOWN
        if isinstance(task, Partial):
            sent.extend(task.args)
        values = [self.work_value(work, p.expr) for p in work.payload if p.keyword is None]
        if work.shape is Shape.ITEMS and values:
            sent.append(item_of(values[0]))
        elif work.shape is Shape.STAR_ITEMS and values:
            row = item_of(values[0])
            sent.extend(row.items if isinstance(row, Tup) else ())
        elif work.shape is Shape.ZIP_ITEMS:
            sent.extend(item_of(v) for v in values)
        elif work.shape is Shape.ARGS:
            sent.extend(values)
        elif work.shape is Shape.ARGS_TUPLE and values and isinstance(values[0], Tup):
            sent.extend(values[0].items)
        params = self.task_parameters(func)
        return {p.name.value: v for p, v in zip(params, sent, strict=False)}

    def callers(self, function: cst.CSTNode) -> list[CallSite]:
        """The calls of this module to one of its functions."""
        return self.evaluator.callers().get(function, [])

    def cuda_initialised_by(self, site: CallSite, depth: int = 0) -> tuple[CallSite, str] | None:
        """The call that initialises CUDA when ``site`` runs: the call itself, or one made
        (first) by the function of this module it calls (a class: its ``__init__``), through
        up to three calls."""
        from mplint.analysis.cuda import cuda_call

        what = cuda_call(self.evaluator, site)
        if what is not None:
            return site, what
        called = self.value(site.node.func, site)
        if depth >= 3 or not isinstance(called, Func | Klass) or (
                called.evaluator is not self.evaluator):
            return None
        bodies = [f.node for f in _method(called, "__init__")] if isinstance(
            called, Klass) else [called.node]
        for body in bodies:
            for inner in self.calls_in(body):
                found = self.cuda_initialised_by(inner, depth + 1)
                if found is not None:
                    return found
        return None

    def site_of(self, call: cst.Call) -> CallSite | None:
        """Where ``call`` is made, for a call of this module."""
        return self._sites.get(call)

    @cached_property
    def _sites(self) -> dict[cst.Call, CallSite]:
        return {site.node: site for site in self.record.calls}

    def import_time_root(self, site: CallSite) -> CallSite | None:
        """The module-level call through which ``site`` runs on import, or None."""
        if site.import_time:
            return site
        function = function_of(site.scope)
        return self._runs_at_import.get(function) if function is not None else None

    def shares_memory(self, model: Model) -> bool:
        """True when the code moves this model's weights to shared memory on purpose."""
        return model.name is not None and model.name in self._shared_models

    @cached_property
    def spawn(self) -> SpawnCheck:
        """What the module's starts would do differently under spawn than under fork."""
        from mplint.analysis.spawn import SpawnCheck

        return SpawnCheck(self)

    @cached_property
    def delegates_start_method(self) -> bool:
        """True when the module calls a function of another module that sets the start method
        (``from mylib.mp import setup; setup()``), or imports one that sets it when it is
        imported."""
        if self.spawn.import_chooses_start_method:
            return True
        for site in self.record.calls:
            func = self.value(site.node.func, site)
            target = self.evaluator.in_project(func.name) if isinstance(func, Qual) else None
            if isinstance(target, Func) and _sets_start_method(target):
                return True
        return False

    @cached_property
    def framework(self) -> str | None:
        """The first threaded ML framework the parent process imports (torch, tensorflow, ...):
        at module level or in a function the parent runs, not only inside a worker."""
        found = sorted(m for m, function in self.record.imports if knowledge.is_ml_framework(m)
                       and (function is None or function in self.parent_functions))
        return found[0].partition(".")[0] if found else None

    @cached_property
    def is_entry_script(self) -> bool:
        return self.record.main_guard is not None or any(
            self.import_time_root(start.site) for start in self.starts)

    def calls_in(self, function: cst.CSTNode) -> list[CallSite]:
        """The calls ``function``'s own body makes (not those of functions nested in it)."""
        return self._calls_by_function.get(function, [])

    @cached_property
    def _calls_by_function(self) -> dict[cst.CSTNode, list[CallSite]]:
        found: dict[cst.CSTNode, list[CallSite]] = {}
        for site in self.record.calls:
            function = function_of(site.scope)
            if function is not None:
                found.setdefault(function, []).append(site)
        return found

    @cached_property
    def parent_functions(self) -> frozenset[cst.CSTNode]:
        """Functions of this module the parent process runs: called under the main guard or on
        import, directly or through other functions of the module."""
        return self.functions_run_by([site for site in self.record.calls
                                      if site.guarded or site.import_time])

    def functions_run_by(self, sites: list[CallSite]) -> frozenset[cst.CSTNode]:
        """Functions of this module the calls run, directly or through other functions."""
        reached: set[cst.CSTNode] = set()
        queue = list(sites)
        while queue:
            site = queue.pop()
            for called in self.runs(site):
                if called.node not in reached:
                    reached.add(called.node)
                    queue.extend(self.calls_in(called.node))
        return frozenset(reached)

    def runs(self, site: CallSite) -> list[Func]:
        """The functions of this module a call runs: the function called, a class's
        ``__init__`` when it builds an instance, the method of an instance it calls."""
        called = self.value(site.node.func, site)
        if isinstance(called, Func):
            return [called] if called.evaluator is self.evaluator else []
        if isinstance(called, Klass) and called.evaluator is self.evaluator:
            return _method(called, "__init__")
        if (isinstance(called, Bound) and isinstance(called.obj, Instance)
                and called.obj.klass.evaluator is self.evaluator):
            return _method(called.obj.klass, called.attr)
        return []

    @cached_property
    def initializers(self) -> frozenset[cst.CSTNode]:
        """Functions of this module passed as ``initializer=`` (or a DataLoader's
        ``worker_init_fn=``) to any call: a pool or executor, or a ``partial`` that makes one
        later. Each worker runs them when it starts."""
        found: set[cst.CSTNode] = set()
        for site in self.record.calls:
            for arg in site.node.args:
                if arg.keyword is not None and arg.keyword.value in _WORKER_SET_UP:
                    for func in self.functions_of(self.value(arg.value, site)):
                        found.add(func.node)
        return frozenset(found)

    @property
    def import_time_functions(self) -> frozenset[cst.CSTNode]:
        """Functions of this module that run when it is imported."""
        return frozenset(self._runs_at_import)

    @cached_property
    def _runs_at_import(self) -> dict[cst.CSTNode, CallSite]:
        """Functions of this module that run on import, each with the module-level call."""
        reached: dict[cst.CSTNode, CallSite] = {}
        queue = [(site, site) for site in self.record.calls if site.import_time]
        while queue:
            site, root = queue.pop()
            for called in self.runs(site):
                if called.node not in reached:
                    reached[called.node] = root
                    queue.extend((inner, root) for inner in self.calls_in(called.node))
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
        library = self._library_call(site, func)
        creates = (kind in _CREATORS or isinstance(func, Klass)
                   or (library is not None and bool(library.methods)))
        obj = self.value(site.node, site) if creates else None
        if isinstance(obj, ProcessObject):
            iteration = import_time_iteration(self, site) if (
                obj.kind is ApiKind.DATALOADER) else None
            if _starts_processes(obj) or iteration is not None or _starts_local_cluster(obj):
                self.starts.append(ProcessStart(site, obj, iteration))
            own_constructor = isinstance(func, Klass) and bool(_method(func, "__init__"))
            work = knowledge.PROCESS_SUBCLASS_WORK if own_constructor else _creation_work(obj)
            self._add_work(site, work, obj, obj.api if own_constructor else _name_of(obj))
        elif library is not None and not library.methods:
            self._add_library_call(site, library)
        elif isinstance(func, ProcessObject) and func.kind is ApiKind.JOBLIB:
            self._add_work(site, knowledge.TASK_METHODS["joblib"][""], func, "joblib.Parallel")
        elif isinstance(func, Bound) and isinstance(func.obj, ProcessObject):
            work = _methods_of(func.obj).get(func.attr)
            if work is not None:
                if work.starts:
                    self.starts.append(ProcessStart(site, func.obj))
                self._add_work(site, work, func.obj, f"{_name_of(func.obj)}.{func.attr}")
        elif (executor := self._executor_argument(site)) is not None:
            self._add_work(site, knowledge.TASK_METHODS["executor_argument"]["run_in_executor"],
                           executor, f"{_name_of(executor)} (run_in_executor)")
        elif (isinstance(func, Bound) and func.attr == "remote" and isinstance(func.obj, Func)
              and decorated_by(func.obj, knowledge.RAY_REMOTE)):
            name = func.obj.node.name.value
            self._add_task_call(site, f"ray remote function `{name}`", _receiver(site.node),
                                "ray")
        elif isinstance(func, Delayed) and func.library == "dask":
            inner = site.node.func
            self._add_task_call(site, "dask.delayed", _firstargument(inner), "dask")
        elif isinstance(func, Func) and decorated_by(func, frozenset({"dask.delayed"})):
            self._add_task_call(site, f"dask.delayed function `{func.node.name.value}`",
                                site.node.func, "dask")
        elif (isinstance(func, Bound) and func.attr in knowledge.SHARED_MEMORY_METHODS
              and isinstance(func.obj, Model) and func.obj.name):
            self._shared_models.add(func.obj.name)

    def _executor_argument(self, site: CallSite) -> ProcessObject | None:
        """The process pool ``loop.run_in_executor(executor, func, *args)`` is given: the call
        submits ``func(*args)`` to it (None, the loop's default thread pool, runs threads)."""
        call = site.node
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in
                knowledge.TASK_METHODS["executor_argument"]) or not call.args:
            return None
        first = call.args[0]
        if first.keyword is not None or first.star:
            return None
        executor = self.value(first.value, site)
        return executor if isinstance(executor, ProcessObject) and (
            executor.kind is ApiKind.EXECUTOR) else None

    def _library_call(self, site: CallSite, func: Value) -> knowledge.ProcessApi | None:
        """The entry of ``knowledge.LIBRARY_APIS`` the call is: a function or class by its
        qualified name, or a method by its name, what it is called on and the module's
        imports."""
        if isinstance(func, Qual):
            found = knowledge.LIBRARY_CALLS.get(func.name)
            root = func.name.partition(".")[0]
            if found is not None or any(m.partition(".")[0] == root
                                        for m in self.record.imported):
                return found
            func = UNKNOWN  # a name the module never binds: its methods are unknown
        call = site.node
        if not isinstance(call.func, cst.Attribute) or (isinstance(func, Bound) and isinstance(
                func.obj, ProcessObject | Klass | Func | Qual)):
            return None
        receiver = func.obj if isinstance(func, Bound) else UNKNOWN
        for api in knowledge.LIBRARY_METHODS.get(call.func.attr.value, ()):
            kind, _, wanted = api.receiver.partition(":")
            if isinstance(receiver, Model):
                if ((kind in ("framework", "model") and receiver.framework != wanted)
                        or (kind == "label" and receiver.label != wanted)):
                    continue
            elif kind == "model" or not self._imports(api.imports):
                continue
            return api
        return None

    def _imports(self, modules: tuple[str, ...]) -> bool:
        return knowledge.ANY_MODULE in modules or any(
            name.partition(".")[0] in modules for name in self.record.imported)

    def _add_library_call(self, site: CallSite, api: knowledge.ProcessApi) -> None:
        """A call of another library that starts workers and runs its work in them."""
        starts = self.evaluator.starts_api(api, site.node, site.scope)
        if starts is False:
            return
        method = self.evaluator.api_method(api, site.node, site.scope, site.order)
        obj = ProcessObject(api.kind, api.display, method, site.node, maybe=starts is None,
                            spec=api.name, pickler=self.evaluator.api_pickler(api, site.node),
                            condition=api.condition)
        if api.reimports_main:
            self.starts.append(ProcessStart(site, obj))
        if api.work is not None:
            self._add_work(site, api.work, obj, _name_of(obj))

    def _add_calls_into_tree(self) -> None:
        """Calls of functions, constructors and methods of other modules of the linted tree
        that start processes, or send what they are passed to processes."""
        from mplint.analysis.reach import effect_of_call, payload_of, sent_work

        for site in self.record.calls:
            effect = effect_of_call(self, site)
            self.starts.extend(ProcessStart(site, r.obj, via=r.where) for r in effect.starts)
            for sent in effect.sent:
                expr = payload_of(site.node, sent)
                if expr is not None:
                    self.sent_through_calls.append(sent_work(site, sent, expr))

    def _drop_processes_never_started(self) -> None:
        """``p = Process(...)`` in a function that never starts ``p`` nor lets it go anywhere
        (``p`` is only used as ``p.something``) creates no process and sends nothing."""
        started = {func.obj.origin for site in self.record.calls
                   if isinstance(func := self.value(site.node.func, site), Bound)
                   and func.attr == "start" and isinstance(func.obj, ProcessObject)}
        unstarted = {s.site.node for s in self.starts if s.obj.kind is ApiKind.PROCESS
                     and s.obj.origin is s.site.node and s.site.node not in started
                     and self._kept_local(s.site)}
        if unstarted:
            self.starts = [s for s in self.starts if s.site.node not in unstarted]
            self.work = [w for w in self.work if w.site.node not in unstarted]

    def _kept_local(self, site: CallSite) -> bool:
        """Whether the call's result is bound to a name of a function body that the body only
        uses as ``name.attr``: it is not returned, stored or passed on."""
        function = function_of(site.scope)
        if function is None or site.scope.node is not function:
            return False
        names = [name for name, bindings in site.scope.bindings.items()
                 if any(b.value is site.node for b in bindings)]
        if len(names) != 1:
            return False
        name = names[0]
        bindings = site.scope.bindings[name]
        if any(b.kind is BindingKind.PARAM for b in bindings):
            return False
        others = [node for node, scope in self.record.reads.get(function, [])
                  if node.value == name and scope.lookup_scope(name) is site.scope
                  and node not in self.record.receivers]
        return len(others) == len(bindings)  # each binding's own target, and nothing else

    def _add_work(self, site: CallSite, work: knowledge.Work | None, obj: ProcessObject,
                  api: str) -> None:
        """The one path from a process API's data entry (``knowledge.Work``) to the work
        site it describes: the callable, the payload and the other callables, read from the
        positions and keywords the entry gives."""
        if work is None:
            return
        if work.shape == "delayed_calls":
            self._add_joblib_work(site, obj)
            return
        call = site.node
        func = _given(call, work.func)
        payload = [Payload(e, PayloadMode.ITEMS) for e in map(partial(_given, call), work.items)
                   if e is not None]
        payload += [Payload(e, PayloadMode.VALUE) for e in map(partial(_given, call), work.values)
                    if e is not None]
        keywords = _given(call, work.keywords)
        if keywords is not None:
            payload.append(Payload(keywords, PayloadMode.VALUE, KEYWORDS))
        if work.rest:
            payload += _rest(call, work)
        callables = tuple(e for e in map(partial(_given, call), work.callables) if e is not None)
        if func is None and not payload and not callables:
            return
        if obj.maybe and obj.condition:
            api += f" (when {obj.condition})"
        self.work.append(WorkSite(site, api + work.label, obj.kind, func, tuple(payload),
                                  work.per_task, obj.method, _SHAPES[work.shape],
                                  cloudpickle=obj.pickler != "pickle", callables=callables))

    def _add_joblib_work(self, site: CallSite, runner: ProcessObject) -> None:
        """``Parallel(...)(delayed(f)(x) for x in xs)``: one work site per delayed call."""
        tasks = argument(site.node, 0, "iterable")
        if tasks is None:
            return
        scope = site.scope
        calls: list[cst.BaseExpression] = []
        if isinstance(tasks, (cst.GeneratorExp, cst.ListComp)):
            scope = self.record.scopes.get(tasks, site.scope)
            calls.append(tasks.elt)
        elif isinstance(tasks, (cst.List, cst.Tuple)):
            calls.extend(e.value for e in tasks.elements)
        for task in calls:
            if not isinstance(task, cst.Call) or not isinstance(
                    self.evaluator.value(task.func, scope), Delayed):
                continue
            payload = _call_payload(task)
            self.work.append(WorkSite(site, "joblib.Parallel", ApiKind.JOBLIB,
                                      _firstargument(task.func), payload, True, runner.method,
                                      Shape.ARGS, cloudpickle=runner.pickler != "pickle",
                                      scope=scope))

    def _add_task_call(self, site: CallSite, api: str, func: cst.BaseExpression | None,
                       library: str) -> None:
        """A call that records one task of ray or dask: its arguments travel with it."""
        kind = ApiKind.RAY if library == "ray" else ApiKind.DASK_CLIENT
        self.work.append(WorkSite(site, api, kind, func, _call_payload(site.node), True, library,
                                  Shape.ARGS, cloudpickle=True))


def _dict_keys(expr: cst.BaseExpression) -> set[str]:
    """The string keys of a dict literal or the keywords of ``dict(...)``."""
    if isinstance(expr, cst.Dict):
        return {key.evaluated_value for element in expr.elements
                if isinstance(element, cst.DictElement)
                and isinstance(key := element.key, cst.SimpleString)
                and isinstance(key.evaluated_value, str)}
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "dict":
        return {a.keyword.value for a in expr.args if a.keyword is not None}
    return set()


def _given(call: cst.Call, arg: knowledge.Arg | None) -> cst.BaseExpression | None:
    """The expression given for ``arg`` in ``call``, if any."""
    if arg is None:
        return None
    return argument(call, arg.index if arg.index is not None else 99, arg.keyword)


def _rest(call: cst.Call, work: knowledge.Work) -> list[Payload]:
    """The arguments after the callable and the keywords the API does not take itself."""
    skip = work.func.index if work.func is not None and work.func.index is not None else -1
    taken = {work.func.keyword} if work.func is not None else set()
    taken |= {a.keyword for a in (*work.items, *work.values, *work.callables)}
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    mode = PayloadMode.ITEMS if work.shape == "zip_items" else PayloadMode.VALUE
    found = [Payload(e, mode) for i, e in enumerate(positional) if i > skip]
    return found + [Payload(a.value, PayloadMode.VALUE, a.keyword.value) for a in call.args
                    if a.keyword is not None and a.keyword.value not in taken
                    and a.keyword.value not in work.own]


def _creation_work(obj: ProcessObject) -> knowledge.Work | None:
    """What creating ``obj`` sends: its library entry's, or its standard kind's."""
    if obj.spec:
        api = knowledge.LIBRARY_CALLS.get(obj.spec)
        return api.work if api is not None else None
    return knowledge.CREATION_WORK.get(obj.kind)


def _methods_of(obj: ProcessObject) -> dict[str, knowledge.Work]:
    """The methods of ``obj`` that run work, from its library entry or its standard kind."""
    if obj.spec:
        api = knowledge.LIBRARY_CALLS.get(obj.spec)
        table = api.methods if api is not None else ""
    else:
        table = knowledge.KIND_METHODS.get(obj.kind, "")
    return knowledge.TASK_METHODS.get(table, {})


def _name_of(obj: ProcessObject) -> str:
    """How messages name the object's API: ``Pool`` for the standard library's, the full name
    for torch's spawn and other libraries' APIs."""
    return obj.api if obj.spec or obj.kind is ApiKind.SPAWN else _short(obj.api)


def _method(klass: Klass, name: str) -> list[Func]:
    """The plain method ``name`` defined in ``klass``'s own body."""
    scope = klass.evaluator.record.scopes.get(klass.node)
    body = klass.node.body
    if scope is None or not isinstance(body, cst.IndentedBlock):
        return []
    return [Func(statement, scope, False, klass.evaluator) for statement in body.body
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name
            and not statement.decorators]


def _sets_start_method(func: Func) -> bool:
    if isinstance(func, Summarised) and not func.may_set_start_method:
        return False
    record = func.evaluator.record
    return any(
        function_of(site.scope) is func.node
        and _api_kind(func.evaluator.value(site.node.func, site.scope, site.order))
        is ApiKind.SET_START_METHOD
        for site in record.calls
    )


_CREATORS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS, ApiKind.MANAGER,
                       ApiKind.SPAWN, ApiKind.JOBLIB, ApiKind.DATALOADER, ApiKind.DASK_CLIENT})

_SHAPES = {shape.value: shape for shape in Shape}


def _starts_processes(obj: ProcessObject) -> bool:
    """Whether creating ``obj`` starts processes that re-import the main module under spawn:
    loky, ray and dask workers are left to their own libraries, a DataLoader's workers start
    when it is iterated, and some libraries' pools with their first task."""
    api = knowledge.LIBRARY_CALLS.get(obj.spec) if obj.spec else None
    if api is not None and not api.reimports_main:
        return False
    if obj.method in _OWN_WORKERS or obj.kind in (ApiKind.DATALOADER, ApiKind.DASK_CLIENT):
        return False
    return not any(work.starts for work in _methods_of(obj).values())


def _starts_local_cluster(obj: ProcessObject) -> bool:
    """A dask Client made with no address (or a LocalCluster) starts a local cluster, whose
    worker processes are spawned and import the main module; ``processes=False`` runs
    threads."""
    call = obj.origin
    if obj.kind is not ApiKind.DASK_CLIENT or call is None:
        return False
    if obj.api.endswith(".Client") and argument(call, 0, "address") is not None:
        return False  # a cluster that runs elsewhere
    processes = keyword_argument(call, "processes")
    return not (isinstance(processes, cst.Name) and processes.value == "False")


_OWN_WORKERS = frozenset({"loky", "ray", "dask"})
_WORKER_SET_UP = frozenset({"initializer", "worker_init_fn"})


def decorated_by(func: Func, names: frozenset[str]) -> bool:
    """True when one of ``func``'s decorators (called or not) resolves to one of ``names``."""
    if isinstance(func, Summarised):
        known = func.decorated_by(names)
        if known is not None:
            return known
    for decorator in func.node.decorators:
        expr = decorator.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        value = func.evaluator.value(expr, func.scope)
        if isinstance(value, Qual) and value.name in names:
            return True
    return False


def _receiver(call: cst.Call) -> cst.BaseExpression | None:
    """``f`` in ``f.remote(...)``."""
    return call.func.value if isinstance(call.func, cst.Attribute) else None


def _firstargument(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """``f`` in ``delayed(f)``."""
    return argument(expr, 0, "function") if isinstance(expr, cst.Call) else None


def _call_payload(call: cst.Call) -> tuple[Payload, ...]:
    return tuple(Payload(a.value, PayloadMode.VALUE, a.keyword.value if a.keyword else None)
                 for a in call.args if a.star == "")


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


def comp_fors(comp: cst.ListComp | cst.GeneratorExp) -> Iterator[cst.CompFor]:
    """The ``for`` clauses of a comprehension, outermost first."""
    current: cst.CompFor | None = comp.for_in
    while current is not None:
        yield current
        current = current.inner_for_in


def _loops_in(statement: cst.CSTNode) -> Iterator[cst.For | cst.CompFor]:
    """The ``for`` loops and comprehension clauses of ``statement``."""
    stack: list[cst.CSTNode] = [statement]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.For, cst.CompFor)):
            yield current
        stack.extend(children(current))


def _loops(function: cst.FunctionDef) -> bool:
    """Whether ``function``'s own body has a ``for`` or ``while`` loop."""
    return any(isinstance(node, (cst.For, cst.While)) for node in own_nodes(function))


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
