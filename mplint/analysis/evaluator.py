"""Evaluates expressions to abstract values through imports, assignments, calls and modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import CallSite, ModuleRecord
from mplint.analysis.scopes import Binding, BindingKind, Scope, ScopeKind
from mplint.analysis.values import (
    UNKNOWN,
    Bound,
    Context,
    ContextMember,
    Delayed,
    Func,
    Instance,
    Items,
    Klass,
    LambdaValue,
    Model,
    Partial,
    ProcessObject,
    Qual,
    QueueObject,
    Resource,
    Summarised,
    Tup,
    Unknown,
    Value,
    element_of,
    item_of,
)
from mplint.analysis.walk import children, name_reads, own_nodes
from mplint.knowledge import ApiKind, ModelPattern

if TYPE_CHECKING:
    from mplint.analysis.project import ProjectIndex

_LATEST = 1 << 60  # read "after everything": how a function body sees module globals
_MAX_DEPTH = 40


class Evaluator:
    """Answers "what is this expression?" for one module, memoised."""

    def __init__(self, record: ModuleRecord, project: ProjectIndex | None,
                 extra_models: tuple[ModelPattern, ...] = (),
                 extra_bases: dict[str, str] | None = None,
                 roots: tuple[str, ...] = ()) -> None:
        self.record = record
        self.project = project
        self.roots = roots  # where this module's imports of the linted tree are found
        self.extra_models = extra_models
        self.model_bases = {**knowledge.MODEL_BASES, **(extra_bases or {})}
        self._memo: dict[tuple[cst.BaseExpression, Scope, int], Value] = {}
        self._active: set[tuple[cst.BaseExpression, Scope, int]] = set()
        self._class_bases: dict[cst.ClassDef, tuple[str, ...]] = {}
        self._returns: dict[cst.FunctionDef, Value] = {}
        self._callers_found: dict[cst.CSTNode, list[CallSite]] | None = None
        self._constructions_found: dict[cst.ClassDef, list[CallSite]] = {}
        # functions bound by functools.partial: the call each partial stands for, and its site
        self._partials: dict[cst.CSTNode, list[tuple[cst.Call, CallSite]]] = {}

    # -- public --------------------------------------------------------------------------------
    def value(self, expr: cst.BaseExpression, scope: Scope, order: int = _LATEST) -> Value:
        key = (expr, scope, order)
        if key in self._memo:
            return self._memo[key]
        if key in self._active or len(self._active) > _MAX_DEPTH:
            return UNKNOWN
        self._active.add(key)
        try:
            result = self._evaluate(expr, scope, order)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    def name(self, name: str, scope: Scope, order: int = _LATEST) -> Value:
        """The value of reading ``name`` in ``scope`` at traversal position ``order``."""
        owner = scope.lookup_scope(name)
        if owner is None:
            return Qual(name)  # a builtin such as zip
        bindings = owner.bindings[name]
        if owner is scope:
            before = [b for b in bindings if b.order < order]
            chosen = [before[-1]] if before else []
        else:
            chosen = [b for b in bindings if not _is_none(b.value)]
        values = [self._binding_value(b) for b in chosen]
        if len(values) == 1 or (values and all(v == values[0] for v in values)):
            return _named(values[0], name)
        return UNKNOWN

    def class_label(self, klass: Klass) -> str | None:
        """The model kind a class builds when it subclasses a model base class, else None."""
        base = self.model_base(klass)
        return self.model_bases[base] if base is not None else None

    def model_base(self, klass: Klass) -> str | None:
        """The model base class ``klass`` derives from, if any."""
        return next((b for b in self.bases(klass) if b in self.model_bases), None)

    def bases(self, klass: Klass) -> tuple[str, ...]:
        """Qualified names of the library classes ``klass`` derives from, through the classes of
        this module and of the linted tree."""
        key = klass.node
        if key not in self._class_bases:
            self._class_bases[key] = ()  # cycles in bases end here
            self._class_bases[key] = self._compute_bases(klass)
        return self._class_bases[key]

    def returns(self, func: Func) -> Value:
        """What a local function returns, when every ``return`` agrees."""
        key = func.node
        if key not in self._returns:
            self._returns[key] = UNKNOWN
            self._returns[key] = self._compute_returns(func)
        return self._returns[key]

    def returned_model(self, func: Func) -> Model | None:
        """The model ``func`` returns on every path, alone or as an element of the tuple it
        returns (``return tree, columns``)."""
        returned = self.returns(func)
        if isinstance(returned, Model):
            return returned
        body_scope = self.function_scope(func.node)
        values = [self.value(r.value, body_scope) for r in _returns(func.node)
                  if r.value is not None] if body_scope is not None else []
        found = [next((e for e in v.items if isinstance(e, Model)), None)
                 for v in values if isinstance(v, Tup)]
        if values and len(found) == len(values) and all(found):
            return found[0]
        return None

    def model_return(self, func: Func) -> cst.Return | None:
        """The first ``return`` of ``func`` that gives a model, alone or in a tuple."""
        body_scope = self.function_scope(func.node)
        for statement in _returns(func.node) if body_scope is not None else ():
            if statement.value is None or body_scope is None:
                continue
            value = self.value(statement.value, body_scope)
            if isinstance(value, Model) or (isinstance(value, Tup) and any(
                    isinstance(item, Model) for item in value.items)):
                return statement
        return None

    def function_scope(self, func: cst.FunctionDef | cst.Lambda) -> Scope | None:
        return self.record.scopes.get(func)

    # -- evaluation ----------------------------------------------------------------------------
    def _evaluate(self, expr: cst.BaseExpression, scope: Scope, order: int) -> Value:
        if isinstance(expr, cst.Name):
            return self.name(expr.value, scope, order)
        if isinstance(expr, cst.Attribute):
            return self._attribute(expr, scope, order)
        if isinstance(expr, cst.Call):
            return self._call(expr, scope, order)
        if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
            return Tup(tuple(self._element(e, scope, order) for e in expr.elements))
        if isinstance(expr, cst.Dict):
            entries = [e for e in expr.elements if isinstance(e, cst.DictElement)]
            return Tup(tuple(self.value(e.value, scope, order) for e in entries),
                       tuple(_string(e.key) for e in entries))
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            for side in (expr.left, expr.right):
                if isinstance(side, (cst.List, cst.Tuple)):
                    return self.value(side, scope, order)
            return UNKNOWN
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            inner = self.record.scopes.get(expr, scope)
            return Items(self.value(expr.elt, inner, _LATEST))
        if isinstance(expr, cst.Lambda):
            lambda_scope = self.function_scope(expr)
            return LambdaValue(expr, lambda_scope) if lambda_scope else UNKNOWN
        if isinstance(expr, cst.Subscript):
            return self._subscript(expr, scope, order)
        return UNKNOWN

    def _subscript(self, expr: cst.Subscript, scope: Scope, order: int) -> Value:
        """An item of a known list, tuple or dict (``models[i % n]``, ``encoders["enc"]``);
        ``bundle["model"]`` of what a generic deserialiser loaded is the model stored under
        that key; any other entry stays unknown."""
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return UNKNOWN
        base = self.value(expr.value, scope, order)
        key = _string_key(expr)
        if isinstance(base, Model):
            if key is not None and knowledge.MODEL_KEY.search(key) and (
                    base.label in knowledge.DESERIALISED):
                return replace(base, name=None)
            return UNKNOWN
        index = expr.slice[0].slice.value
        return _anonymous(element_of(base, key if key is not None else _index(index)))

    def _element(self, element: cst.BaseElement, scope: Scope, order: int) -> Value:
        if isinstance(element, cst.StarredElement):
            return UNKNOWN
        return self.value(element.value, scope, order)

    def _attribute(self, expr: cst.Attribute, scope: Scope, order: int) -> Value:
        attr = expr.attr.value
        if isinstance(expr.value, cst.Name) and self._is_self(expr.value.value, scope):
            return self._self_attribute(attr, scope)
        base = self.value(expr.value, scope, order)
        if isinstance(base, Qual):
            return Qual(f"{base.name}.{attr}")
        if isinstance(base, Context):
            return ContextMember(base.method, attr)
        return UNKNOWN if isinstance(base, Unknown) else Bound(base, attr)

    def _call(self, call: cst.Call, scope: Scope, order: int) -> Value:
        func = self.value(call.func, scope, order)
        if isinstance(func, Qual):
            return self._call_qualified(func.name, call, scope, order)
        if isinstance(func, ContextMember):
            return self._call_context_member(func, call)
        if isinstance(func, Klass | Func):
            return result_of(func)
        if isinstance(func, Bound):
            return self._call_bound(func)
        if isinstance(func, Partial) and isinstance(func.func, Qual | Klass | Func):
            # calling ``partial(build, True)``: what calling ``build`` gives
            inner = func.func
            return self._call_qualified(inner.name, call, scope, order) if isinstance(
                inner, Qual) else result_of(inner)
        return UNKNOWN

    def _call_qualified(self, qualname: str, call: cst.Call, scope: Scope, order: int) -> Value:
        library = knowledge.LIBRARY_CALLS.get(qualname)
        if library is not None and library.methods:
            return self._library_object(library, call, scope, order)
        kind = knowledge.PROCESS_APIS.get(qualname)
        if kind is ApiKind.GET_CONTEXT:
            return Context(start_method_argument(call))
        if kind in (ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS, ApiKind.MANAGER):
            return ProcessObject(kind, qualname, self._keyword_context(call, scope, order), call)
        if kind is ApiKind.SPAWN:
            return ProcessObject(kind, qualname, _spawn_method(call), call)
        if kind in (ApiKind.JOBLIB, ApiKind.DATALOADER, ApiKind.DASK_CLIENT):
            return self._task_runner(kind, qualname, call, scope, order)
        if qualname in knowledge.QUEUE_APIS:
            return QueueObject(qualname, origin=call)
        args = [a for a in call.args if a.star == ""]
        if qualname in knowledge.DELAYED and args:
            return Delayed(self.value(args[0].value, scope, order), knowledge.DELAYED[qualname])
        if qualname in knowledge.FUNCTOOLS_PARTIAL and args:
            values = tuple(self.value(a.value, scope, order) for a in args)
            return Partial(values[0], values[1:])
        if qualname in knowledge.ITERTOOLS_REPEAT and args:
            return Items(self.value(args[0].value, scope, order))
        if qualname == knowledge.BUILTIN_ZIP:
            return Items(Tup(tuple(item_of(self.value(a.value, scope, order)) for a in args)))
        if qualname in knowledge.BUILTIN_WRAPPERS and len(args) == 1:
            return self.value(args[0].value, scope, order)
        if qualname == "dict" and all(a.keyword is not None for a in call.args):
            return Tup(tuple(self.value(a.value, scope, order) for a in call.args),
                       tuple(a.keyword.value for a in call.args if a.keyword is not None))
        if qualname in knowledge.MODEL_COPIES | knowledge.ESTIMATOR_COPIES and args:
            return self._copy(qualname, self.value(args[0].value, scope, order))
        pattern = knowledge.model_pattern(qualname, self.extra_models)
        if pattern is not None and not _given(call, pattern.not_with):
            return Model(pattern.label, origin=call, framework=knowledge.library_of(qualname))
        label = knowledge.first_match(qualname, knowledge.RESOURCE_FACTORIES)
        if label is not None:
            return Resource(label, origin=call)
        label = knowledge.first_match(qualname, knowledge.INHERIT_ONLY)
        if label is not None:
            return Resource(label, inherit_only=True, origin=call)
        return self._call_project(qualname)

    @staticmethod
    def _copy(qualname: str, copied: Value) -> Value:
        """A copy of a model is a model of the same kind; ``sklearn.base.clone`` takes
        estimators only, so what it returns is one even when its argument is unknown."""
        if isinstance(copied, Model):
            return replace(copied, name=None, origin=None)
        if isinstance(copied, Unknown) and qualname in knowledge.ESTIMATOR_COPIES:
            return Model("scikit-learn estimator", framework="sklearn")
        return UNKNOWN

    def _task_runner(self, kind: ApiKind, qualname: str, call: cst.Call, scope: Scope,
                     order: int) -> Value:
        """joblib.Parallel, a DataLoader with workers, a dask Client; UNKNOWN when it runs
        everything in this process."""
        if kind is ApiKind.JOBLIB:
            backend = _string(keyword_argument(call, "backend")) or "loky"
            if (backend in knowledge.JOBLIB_THREAD_BACKENDS
                    or _string(keyword_argument(call, "prefer")) == "threads"
                    or _integer(argument(call, 0, "n_jobs")) == 1):
                return UNKNOWN
            # loky sends functions with cloudpickle and never re-runs __main__ in a worker
            if backend == "multiprocessing":
                return ProcessObject(kind, qualname, None)
            return ProcessObject(kind, qualname, "loky", pickler="cloudpickle")
        if kind is ApiKind.DATALOADER:
            workers = self.starts_workers(call, scope, knowledge.DATALOADER_WORKERS)
            if workers is False:
                return UNKNOWN  # no worker processes
            context = keyword_argument(call, "multiprocessing_context")
            method = None
            if context is not None:
                chosen = self.value(context, scope, order)
                method = (_string(context) or (chosen.method if isinstance(chosen, Context)
                                               else None) or "dynamic")
            return ProcessObject(kind, qualname.replace(".dataloader.DataLoader", ".DataLoader"),
                                 method, call,
                                 maybe=workers is None,
                                 condition=knowledge.DATALOADER_WORKERS.condition)
        name = ("dask.distributed.LocalCluster" if qualname in knowledge.DASK_LOCAL_CLUSTERS
                else "dask.distributed.Client")
        return ProcessObject(kind, name, "dask", call, pickler="cloudpickle")

    def _library_object(self, api: knowledge.ProcessApi, call: cst.Call, scope: Scope,
                        order: int) -> Value:
        """A pool, executor or trainer another library makes; UNKNOWN when its settings run
        everything in this process."""
        starts = self.starts_api(api, call, scope)
        if starts is False:
            return UNKNOWN
        return ProcessObject(api.kind, api.display, self.api_method(api, call, scope, order),
                             call, maybe=starts is None, spec=api.name,
                             pickler=self.api_pickler(api, call), condition=api.condition)

    def api_method(self, api: knowledge.ProcessApi, call: cst.Call, scope: Scope,
                   order: int) -> str | None:
        """The start method ``call`` of ``api`` uses: a context or method it is given, else
        the library's own."""
        chosen = self._keyword_context(call, scope, order)
        if chosen is not None:
            return chosen
        named = _string(keyword_argument(call, "start_method"))
        return named if named in knowledge.START_METHODS else api.method

    @staticmethod
    def api_pickler(api: knowledge.ProcessApi, call: cst.Call) -> str:
        use_dill = keyword_argument(call, "use_dill")
        if use_dill is not None and not _is_false_literal(use_dill):
            return "dill"
        return api.pickler

    def starts_api(self, api: knowledge.ProcessApi, call: cst.Call, scope: Scope) -> bool | None:
        """Whether ``call`` of ``api`` starts worker processes: True, False, or None when it
        depends on a value the analysis cannot see."""
        if any(argument(call, a.index if a.index is not None else 99, a.keyword) is None
               for a in api.requires):
            return False
        if api.when and not any(value in _spelled(keyword_argument(call, keyword))
                                for keyword, value in api.when):
            return False
        return True if api.workers is None else self.starts_workers(call, scope, api.workers)

    def starts_workers(self, call: cst.Call, scope: Scope,
                       workers: knowledge.Workers) -> bool | None:
        """Whether the worker counts of ``call`` start processes: a count is the literal, the
        constant or parameter default a name holds, the default of the argparse option
        ``args.x`` reads, a ``**kwargs`` dict literal's entry, or the API's default when it
        is not given; None when one may be anything. A flag the API needs as well counts
        only as a literal True."""
        if workers.flags and not any(
                isinstance(flag := keyword_argument(call, f), cst.Name) and flag.value == "True"
                for f in workers.flags):
            return False  # the flag must be given, as a literal True
        result: bool | None = False
        for arg in workers.args:
            count = self._worker_count(call, scope, arg, workers.default)
            if count is None:
                result = None
            elif not 0 <= count <= workers.serial:
                return True
        return result

    def _worker_count(self, call: cst.Call, scope: Scope, arg: knowledge.Arg,
                      default: int) -> int | None:
        given = argument(call, arg.index if arg.index is not None else 99, arg.keyword)
        if arg.within:
            # a keyword of the call that built the argument; one not seen here is the default
            built = self._building_call(given, scope) if given is not None else None
            if built is None:
                return default
            return self._worker_count(built, scope, knowledge.Arg(None, arg.within), default)
        if given is None:
            for item in call.args:
                if item.star == "**":
                    return self._dict_entry(item.value, scope, arg.keyword, default)
            return default
        if isinstance(given, cst.Name) and given.value == "None":
            return default
        return self._integer_of(given, scope)

    @staticmethod
    def _building_call(expr: cst.BaseExpression, scope: Scope) -> cst.Call | None:
        """The call whose result ``expr`` is: the expression itself, or the one assignment
        of the name it reads."""
        if isinstance(expr, cst.Name):
            owner = scope.lookup_scope(expr.value)
            bindings = owner.bindings.get(expr.value, []) if owner is not None else []
            if len(bindings) != 1 or bindings[0].kind is not BindingKind.ASSIGN:
                return None
            expr = bindings[0].value or expr
        return expr if isinstance(expr, cst.Call) else None

    def _integer_of(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> int | None:
        literal = _integer(expr)
        if literal is not None or depth > 3:
            return literal
        if isinstance(expr, cst.Name):
            owner = scope.lookup_scope(expr.value)
            bindings = owner.bindings.get(expr.value, []) if owner is not None else []
            values = {self._bound_integer(b, owner, depth) for b in bindings}
            if len(values) == 1:
                return values.pop()
            return None
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            return option_default(self.record.module, expr.attr.value)
        return None

    def _bound_integer(self, binding: Binding, scope: Scope | None, depth: int) -> int | None:
        if binding.kind is BindingKind.PARAM and isinstance(binding.node, cst.Param):
            default = binding.node.default
            if default is None:
                return None
            outer = scope.parent if scope is not None and scope.parent is not None else scope
            return (self._integer_of(default, outer, depth + 1) if outer is not None
                    else _integer(default))
        if binding.kind is BindingKind.ASSIGN and binding.value is not None and scope is not None:
            return self._integer_of(binding.value, scope, depth + 1)
        return None

    def _dict_entry(self, expr: cst.BaseExpression, scope: Scope, key: str,
                    default: int) -> int | None:
        """``**kwargs`` where ``kwargs = {"num_workers": 4, ...}`` (or ``dict(num_workers=4)``)
        is visible; None when it is not."""
        if isinstance(expr, cst.Name):
            owner = scope.lookup_scope(expr.value)
            bindings = owner.bindings.get(expr.value, []) if owner is not None else []
            if len(bindings) != 1 or bindings[0].value is None:
                return None
            expr = bindings[0].value
        if isinstance(expr, cst.Dict):
            for element in expr.elements:
                if not isinstance(element, cst.DictElement):
                    return None
                if _string(element.key) == key:
                    return self._integer_of(element.value, scope)
            return default
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) \
                and expr.func.value == "dict":
            found = keyword_argument(expr, key)
            if any(arg.star for arg in expr.args):
                return None
            return self._integer_of(found, scope) if found is not None else default
        return None

    def _call_project(self, qualname: str) -> Value:
        """A class or function imported from another module of the linted tree."""
        target = self.in_project(qualname)
        return result_of(target) if target is not None else UNKNOWN

    def in_project(self, qualname: str) -> Klass | Func | None:
        """The class or function of the linted tree that ``qualname`` names, looked up only
        when a rule needs to know: finding and parsing another module is the costly part."""
        if self.project is None or knowledge.is_known_library(qualname):
            return None
        target = self.project.resolve(qualname, self)
        return target if isinstance(target, Klass | Func) else None

    def call_result(self, target: Klass | Func) -> Value:
        """What calling a class or function of this module gives: a model, or an instance."""
        if isinstance(target, Klass):
            base = self.model_base(target)
            if base is not None:
                return Model(f"{target.node.name.value}, a {self.model_bases[base]} subclass",
                             framework=knowledge.library_of(base), klass=target)
            for base in self.bases(target):
                if knowledge.PROCESS_APIS.get(base) is ApiKind.PROCESS:
                    return ProcessObject(ApiKind.PROCESS, f"{target.node.name.value} ({base} "
                                                          "subclass)", None)
            return Instance(target)
        if is_generator(target.node):
            return Resource("generator")
        result = self.returns(target)
        if isinstance(result, Model):
            return replace(result, name=None)
        return result if isinstance(result, Tup) else UNKNOWN

    def _call_context_member(self, member: ContextMember, call: cst.Call) -> Value:
        kind = knowledge.CONTEXT_MEMBERS.get(member.member)
        api = f"multiprocessing.get_context({member.method!r}).{member.member}"
        if kind in (ApiKind.POOL, ApiKind.PROCESS, ApiKind.MANAGER):
            return ProcessObject(kind, api, member.method or None, call)
        if member.member in knowledge.QUEUE_CONTEXT_MEMBERS:
            return QueueObject(api, origin=call, context=member.method)
        label = knowledge.first_match(f"multiprocessing.{member.member}", knowledge.INHERIT_ONLY)
        if label is None:
            return UNKNOWN
        return Resource(label, inherit_only=True, origin=call, context=member.method)

    def _call_bound(self, bound: Bound) -> Value:
        obj = bound.obj
        if isinstance(obj, Tup) and obj.keys and bound.attr in ("values", "items"):
            values = Tup(obj.items)  # iterating it gives each value, or one of them
            if bound.attr == "values":
                return values
            value = item_of(values)
            return Items(Tup((UNKNOWN, value))) if not isinstance(value, Tup) else UNKNOWN
        if isinstance(obj, Model):
            keep = knowledge.SELF_RETURNING_METHODS[""] | knowledge.SELF_RETURNING_METHODS.get(
                obj.label, frozenset())
            return replace(obj, name=None) if bound.attr in keep else UNKNOWN
        if isinstance(obj, Klass) and bound.attr == "from_pretrained":
            loaded = result_of(obj)
            return loaded if isinstance(loaded, Model) else UNKNOWN
        return UNKNOWN

    def _keyword_context(self, call: cst.Call, scope: Scope, order: int) -> str | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in knowledge.CONTEXT_KEYWORDS:
                chosen = self.value(arg.value, scope, order)
                return chosen.method if isinstance(chosen, Context) and chosen.method else "dynamic"
        return None

    # -- bindings ------------------------------------------------------------------------------
    def _binding_value(self, binding: Binding) -> Value:
        if binding.kind is BindingKind.IMPORT and binding.qualname:
            return Qual(binding.qualname)
        if binding.kind is BindingKind.FUNCTION and isinstance(binding.node, cst.FunctionDef):
            # where the def statement is: a ``global f`` nested def binds a module name, but
            # pickle still finds it as ``main.<locals>.f``
            own = self.record.scopes.get(binding.node)
            where = own.parent if own is not None and own.parent is not None else binding.scope
            return Func(binding.node, where, binding.guarded, self)
        if binding.kind is BindingKind.CLASS and isinstance(binding.node, cst.ClassDef):
            return Klass(binding.node, binding.scope, self)
        if binding.kind is BindingKind.ASSIGN and binding.value is not None:
            if isinstance(binding.value, cst.List) and not binding.value.elements:
                return self._appended(binding)
            if isinstance(binding.value, cst.Dict) and not binding.value.elements:
                return self._stored(binding)
            return self.value(binding.value, binding.scope, binding.order)
        if binding.kind is BindingKind.PARAM and isinstance(binding.node, cst.Param):
            return self._parameter_value(binding.node, binding.scope)
        if binding.kind is BindingKind.LOOP and binding.value is not None:
            outer = binding.scope.parent if binding.scope.kind is ScopeKind.COMPREHENSION else None
            return item_of(self.value(binding.value, outer or binding.scope, binding.order))
        if binding.kind is BindingKind.UNPACK and binding.value is not None:
            return self._unpacked(binding)
        return UNKNOWN

    def _unpacked(self, binding: Binding) -> Value:
        """``model, tok = build()``, ``for model, x in zip(models, xs)``: the element at the
        name's position, when the value (each item of it, in a loop) is a known tuple."""
        assert binding.value is not None and binding.index is not None
        outer = binding.scope.parent if (binding.each and binding.scope.kind
                                         is ScopeKind.COMPREHENSION) else None
        whole = self.value(binding.value, outer or binding.scope, binding.order)
        if binding.each:
            whole = element_of(whole, None)
        if isinstance(whole, Tup) and not whole.keys:
            return _anonymous(element_of(whole, binding.index))
        return UNKNOWN

    def _appended(self, binding: Binding) -> Value:
        """A list that starts empty and is filled by ``name.append(item)`` in the scope that
        binds it: its items, when every append adds the same value (``procs.append(p)``)."""
        items: list[Value] = []
        for site in self.record.calls:
            func = site.node.func
            if (isinstance(func, cst.Attribute) and func.attr.value == "append"
                    and isinstance(func.value, cst.Name) and func.value.value == binding.name
                    and site.order > binding.order and len(site.node.args) == 1
                    and site.scope.lookup_scope(binding.name) is binding.scope):
                items.append(self.value(site.node.args[0].value, site.scope, site.order))
        if items and all(item == items[0] for item in items):
            return Items(items[0])
        return Tup(())

    def _stored(self, binding: Binding) -> Value:
        """A dict that starts empty and is filled by ``name[key] = value`` (``models[name] =
        load(name)``) before the name is bound again: its entries, by string key where the key
        is one."""
        own = binding.scope.bindings.get(binding.name, [])
        if binding not in own:
            return Tup((), ())  # ``self.attr = {}``: its entries are the class's to follow
        later = [b.order for b in own if b.order > binding.order]
        until = min(later, default=_LATEST)
        entries: list[tuple[str | None, Value]] = []
        for store in self.record.stores:
            if (store.name == binding.name and binding.order < store.order < until
                    and store.value is not None and isinstance(store.node, cst.Subscript)
                    and store.scope.lookup_scope(binding.name) is binding.scope):
                entries.append((_string_key(store.node),
                                self.value(store.value, store.scope, store.order)))
        return Tup(tuple(v for _, v in entries), tuple(k for k, _ in entries)) if entries \
            else Tup((), ())

    def _parameter_value(self, param: cst.Param, scope: Scope) -> Value:
        """What a parameter of a plain function of this module receives: the value every call
        of the function in this module passes for it, when they all agree (a model passed into
        the helper that starts the processes). Unknown when any call passes something else,
        leaves it to its default, or the function is a method or never called here."""
        function = scope.node
        if scope.kind is not ScopeKind.FUNCTION or not isinstance(function, cst.FunctionDef):
            return UNKNOWN
        positional = [*function.params.posonly_params, *function.params.params]
        index = next((i for i, p in enumerate(positional) if p is param), None)
        keyword = param.name.value if param not in function.params.posonly_params else ""
        klass = scope.enclosing_class()
        if klass is not None:
            if self._is_self(param.name.value, scope):
                return self._self_value(scope)
            if function.name.value != "__init__" or index == 0:
                return UNKNOWN
            # a constructor's parameter: what every ``Klass(...)`` call of this module passes
            sites = [(site.node, site) for site in self._constructions(klass)]
            index = None if index is None else index - 1
            if not sites:
                return UNKNOWN
        else:
            sites = [(site.node, site) for site in self.callers().get(function, [])]
            sites += self._partials.get(function, [])
        values: list[Value] = []
        for call, site in sites:
            passed = argument(call, index if index is not None else 1 << 30, keyword)
            if passed is None:
                return UNKNOWN
            values.append(_anonymous(self.value(passed, site.scope, site.order)))
        if values and all(v == values[0] for v in values):
            return values[0]
        return UNKNOWN

    def _constructions(self, klass: Scope) -> list[CallSite]:
        """The calls of this module that build an instance of the class (none when another
        class of the module subclasses it: its calls reach the same constructor too)."""
        node = klass.node
        if not isinstance(node, cst.ClassDef):
            return []
        known = self._constructions_found.get(node)
        if known is not None:
            return known
        self._constructions_found[node] = []  # a lookup made while finding them sees none
        found = self._find_constructions(node)
        self._constructions_found[node] = found
        return found

    def _find_constructions(self, node: cst.ClassDef) -> list[CallSite]:
        name = node.name.value
        for other in self.record.scopes.values():
            if other.kind is ScopeKind.CLASS and isinstance(other.node, cst.ClassDef) and any(
                    name in {n.value for n in name_reads(base.value)}
                    for base in other.node.bases):
                return []
        found: list[CallSite] = []
        for site in self.record.calls:
            func = site.node.func
            spelled = func.value if isinstance(func, cst.Name) else (
                func.attr.value if isinstance(func, cst.Attribute) else "")
            if spelled != name:
                continue  # only calls that spell the class's name are looked up
            called = self.value(func, site.scope, site.order)
            if isinstance(called, Klass) and called.node is node:
                found.append(site)
        return found

    def callers(self) -> dict[cst.CSTNode, list[CallSite]]:
        """The calls of this module to each function of this module, found once."""
        if self._callers_found is None:
            self._callers_found = {}  # a lookup made while finding them sees no callers
            found: dict[cst.CSTNode, list[CallSite]] = {}
            for site in self.record.calls:
                called = self.value(site.node.func, site.scope, site.order)
                own = self._own_function(called)
                if own is not None:
                    found.setdefault(own.node, []).append(site)
                elif isinstance(called, Qual) and called.name in knowledge.FUNCTOOLS_PARTIAL:
                    self._add_partial(site)
            self._callers_found = found
            # values found meanwhile saw no callers: a parameter's value was unknown then
            self._memo.clear()
            self._returns.clear()
        return self._callers_found

    def _own_function(self, value: Value) -> Func | None:
        """``value`` when it is a function of this module."""
        if isinstance(value, Func) and not isinstance(value, Summarised) \
                and value.evaluator is self:
            return value
        return None

    def _add_partial(self, site: CallSite) -> None:
        """``functools.partial(f, a, b)`` binds ``f``'s first parameters as a call would: kept
        as the call ``f(a, b)`` would read, so that the parameters it binds get its values
        and the ones it leaves to the later call stay unknown."""
        args = site.node.args
        if not args or args[0].keyword is not None or args[0].star:
            return
        target = self._own_function(self.value(args[0].value, site.scope, site.order))
        if target is not None:
            bound = site.node.with_changes(args=args[1:])
            self._partials.setdefault(target.node, []).append((bound, site))

    def _is_self(self, name: str, scope: Scope) -> bool:
        func = scope.node
        if scope.enclosing_class() is None or not isinstance(func, cst.FunctionDef):
            return False
        params = func.params.params
        return bool(params) and params[0].name.value == name

    def _self_attribute(self, attr: str, scope: Scope) -> Value:
        """``self.attr`` in a method: what the class's methods assign to it, else (a method
        or an attribute the class does not assign) an attribute of the object itself."""
        cls = scope.enclosing_class()
        bindings = cls.attributes.get(attr, []) if cls else []
        values = [self._binding_value(b) for b in bindings if not _is_none(b.value)]
        if values and all(v == values[0] for v in values):
            return _named(values[0], f"self.{attr}") if isinstance(values[0], Model) \
                else values[0]
        if values:
            return UNKNOWN
        owner = self._self_value(scope)
        return UNKNOWN if isinstance(owner, Unknown) else Bound(owner, attr)

    def _self_value(self, scope: Scope) -> Value:
        """``self`` in a method of a class of this module: a model when the class derives
        from a model base class, else an instance of the class."""
        cls = scope.enclosing_class()
        if cls is None or not isinstance(cls.node, cst.ClassDef) or cls.parent is None:
            return UNKNOWN
        if any(_decorator_name(d) in ("staticmethod", "classmethod")
               for d in getattr(scope.node, "decorators", ())):
            return UNKNOWN
        klass = Klass(cls.node, cls.parent, self)
        built = self.call_result(klass)
        return _named(built, "self") if isinstance(built, Model | Instance) else UNKNOWN

    def held_models(self, instance: Instance) -> list[Model]:
        """The models an instance of a class of this module holds in attributes its methods
        assign (``self.model = torch.load(...)``): pickling the instance pickles them."""
        scope = self.record.scopes.get(instance.klass.node)
        found: list[Model] = []
        for attr, bindings in (scope.attributes.items() if scope else ()):
            values = [self._binding_value(b) for b in bindings if not _is_none(b.value)]
            if values and all(isinstance(v, Model) for v in values):
                found.append(_named(values[0], f"self.{attr}"))  # type: ignore[arg-type]
        for attr, bindings in (scope.entries.items() if scope else ()):
            stored = [v for v in (self._binding_value(b) for b in bindings)
                      if isinstance(v, Model)]
            if stored and not any(m.name == f"self.{attr}" for m in found):
                found.append(replace(stored[0], name=f"self.{attr}"))
        return found

    def init_models(self, klass: Klass) -> list[tuple[Model, Value]]:
        """The models the class's own ``__init__`` stores on the object (``self.model =
        torch.load(...)``), each with what the call that builds or loads it calls: building
        an instance does that work."""
        scope = self.record.scopes.get(klass.node)
        found: list[tuple[Model, Value]] = []
        for bindings in (scope.attributes.values() if scope is not None else ()):
            for binding in bindings:
                method = binding.scope.node
                if (binding.scope.parent is not scope or not isinstance(method, cst.FunctionDef)
                        or method.name.value != "__init__"):
                    continue
                value = self._binding_value(binding)
                if isinstance(value, Model):
                    called = self.value(value.origin.func, binding.scope) if (
                        value.origin is not None) else UNKNOWN
                    found.append((value, called))
        return found

    # -- classes and functions -----------------------------------------------------------------
    def _compute_bases(self, klass: Klass) -> tuple[str, ...]:
        found: list[str] = []
        for base in klass.node.bases:
            value = self.value(base.value, klass.scope)
            if isinstance(value, Qual):
                found.append(value.name)
                value = self.in_project(value.name) or value
            if isinstance(value, Klass):
                known = value.known_bases() if isinstance(value, Summarised) else None
                found.extend(known if known is not None else value.evaluator.bases(value))
        return tuple(found)

    def _compute_returns(self, func: Func) -> Value:
        body_scope = self.function_scope(func.node)
        if body_scope is None:
            return UNKNOWN
        values = [self.value(r.value, body_scope) for r in _returns(func.node)
                  if r.value is not None]
        models = [v for v in values if isinstance(v, Model)]
        if models and len(models) == len(values):
            return replace(models[0], name=None)
        return _returned_tuple(values)


def result_of(target: Klass | Func) -> Value:
    """What calling a class or function of the linted tree gives."""
    if isinstance(target, Summarised):
        known = target.known_result()
        if known is not None:
            return known
    return target.evaluator.call_result(target)


def _returned_tuple(values: list[Value]) -> Value:
    """``return model, tokenizer`` on every path: the tuple, each position known where every
    return agrees on it; unknown unless a position holds a model."""
    tuples = [v for v in values if isinstance(v, Tup) and not v.keys]
    if not tuples or len(tuples) != len(values) or len({len(t.items) for t in tuples}) != 1:
        return UNKNOWN
    merged = tuple(_anonymous(items[0]) if all(_anonymous(i) == _anonymous(items[0])
                                                for i in items) else UNKNOWN
                   for items in zip(*(t.items for t in tuples), strict=True))
    return Tup(merged) if any(isinstance(v, Model) for v in merged) else UNKNOWN


def _index(expr: cst.BaseExpression) -> int | None:
    """``0`` or ``-1`` as an index; None when it is computed."""
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = _integer(expr.expression)
        return -inner if inner is not None else None
    return _integer(expr)


def _decorator_name(decorator: cst.Decorator) -> str:
    expr = decorator.decorator
    return expr.value if isinstance(expr, cst.Name) else ""


def _anonymous(value: Value) -> Value:
    """``value`` without the variable name it was read through, to compare values."""
    return replace(value, name=None) if isinstance(value, Model | Resource) else value


def _string_key(expr: cst.Subscript) -> str | None:
    """The key of ``x["key"]``, if it is one plain string."""
    if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
        return None
    key = expr.slice[0].slice.value
    if isinstance(key, cst.SimpleString):
        evaluated = key.evaluated_value
        return evaluated if isinstance(evaluated, str) else None
    return None


def _named(value: Value, name: str) -> Value:
    if isinstance(value, Model | Resource | QueueObject):
        return replace(value, name=name)
    return value


def keyword_argument(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    """The value passed as ``keyword=``, if any."""
    return next((a.value for a in call.args if a.keyword is not None
                 and a.keyword.value == keyword), None)


def argument(call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
    """The value of a parameter passed by keyword or at position ``index`` (not after ``*``)."""
    found = keyword_argument(call, keyword)
    if found is not None:
        return found
    positional = [a for a in call.args if a.keyword is None]
    if index < len(positional) and all(a.star == "" for a in positional[: index + 1]):
        return positional[index].value
    return None


def _integer(expr: cst.BaseExpression | None) -> int | None:
    if isinstance(expr, cst.Integer):
        return int(expr.value, 0)
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) \
            and isinstance(expr.expression, cst.Integer):
        return -int(expr.expression.value, 0)
    return None


def is_generator(node: cst.FunctionDef) -> bool:
    """True when ``node``'s own body yields."""
    return any(isinstance(current, cst.Yield) for current in own_nodes(node))


def _spelled(expr: cst.BaseExpression | None) -> str:
    """What a setting spells: a string's text, or the last part of a name (``SubprocVecEnv``,
    ``vec_env.SubprocVecEnv``)."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return _string(expr) or ""


def _is_false_literal(expr: cst.BaseExpression) -> bool:
    return (isinstance(expr, cst.Name) and expr.value in ("False", "None")) or _integer(expr) == 0


def _is_none(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _string(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def start_method_argument(call: cst.Call) -> str | None:
    """``get_context("spawn")`` -> "spawn"; a non-literal argument -> "dynamic"; none -> None."""
    for arg in call.args:
        if arg.keyword is None or arg.keyword.value == "method":
            return _string(arg.value) or "dynamic"
    return None


def _spawn_method(call: cst.Call) -> str:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == knowledge.SPAWN_METHOD_KEYWORD:
            return _string(arg.value) or "dynamic"
    return "spawn"


def _returns(node: cst.FunctionDef) -> Iterator[cst.Return]:
    """The ``return`` statements of ``node`` itself, not of functions nested in it."""
    return (current for current in own_nodes(node) if isinstance(current, cst.Return))


def captured(evaluator: Evaluator, scope: Scope) -> list[tuple[str, Value]]:
    """The values a function or lambda body closes over from enclosing function scopes."""
    reads = evaluator.record.reads.get(scope.node, [])
    found: list[tuple[str, Value]] = []
    for name in dict.fromkeys(read.value for read, _ in reads):
        owner = scope.lookup_scope(name)
        if owner is None or owner is scope or owner.kind is ScopeKind.MODULE:
            continue
        if owner.inside_function():
            found.append((name, evaluator.name(name, owner)))
    return found


def _given(call: cst.Call, keywords: tuple[str, ...]) -> bool:
    """One of ``keywords`` is passed with a value other than ``False``/``None``."""
    return any(arg.keyword is not None and arg.keyword.value in keywords
               and not (isinstance(arg.value, cst.Name) and arg.value.value in ("False", "None"))
               for arg in call.args)


def option_default(module: cst.Module, dest: str) -> int | None:
    """The integer default of the argparse option whose value ``args.<dest>`` reads:
    ``add_argument("--workers", type=int, default=4)`` in this module; None when there is no
    such option or its default is not a literal."""
    flags = {f"--{dest}", f"--{dest.replace('_', '-')}", dest}
    found: list[int | None] = []
    stack: list[cst.CSTNode] = [module]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute) \
                and current.func.attr.value == "add_argument":
            names = {_string(arg.value) for arg in current.args if arg.keyword is None}
            named = {_string(arg.value) for arg in current.args
                     if arg.keyword is not None and arg.keyword.value == "dest"}
            if (names | named) & flags:
                default = keyword_argument(current, "default")
                found.append(_integer(default) if default is not None else None)
        stack.extend(children(current))
    return found[0] if len(found) == 1 else None
