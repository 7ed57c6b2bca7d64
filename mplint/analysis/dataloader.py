"""A torch DataLoader's worker processes: where they start when the module is imported, and
what travels to them.

Building a DataLoader starts nothing: its workers start when it is iterated (``for b in
loader``, ``iter(loader)``, ``enumerate(loader)``, ``list(loader)``), and each worker receives
the dataset (with its transforms and attributes), ``collate_fn`` and ``worker_init_fn``,
pickled under spawn and forkserver. The sampler and the generator stay in the parent: it
sends the workers indices and a seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import CallSite
from mplint.analysis.evaluator import keyword_argument
from mplint.analysis.scopes import BindingKind, Scope, ScopeKind
from mplint.analysis.values import Func, Instance, Klass, Qual
from mplint.analysis.walk import children, name_reads
from mplint.knowledge import ApiKind

if TYPE_CHECKING:
    from mplint.analysis.facts import ModuleFacts, ProcessStart, WorkSite

# builtins that iterate their argument at once
_ITERATING = frozenset({Qual("iter"), Qual("next"), Qual("enumerate"), Qual("list"),
                        Qual("tuple"), Qual("zip")})


@dataclass(frozen=True, eq=False)
class Iteration:
    """Where a DataLoader's workers start when the module is imported."""

    node: cst.CSTNode  # the module-level ``for`` or call that iterates it, or that leads there
    statement: cst.BaseStatement  # the statement of the module's body holding ``node``
    loader: str | None  # the name it is iterated through
    function: cst.FunctionDef | None  # the function that iterates it, when ``node`` calls one


@dataclass(frozen=True)
class StartPoint:
    """Where a start runs when the module is imported: the node a finding points at."""

    node: cst.CSTNode
    statement: cst.BaseStatement


def start_point(facts: ModuleFacts, start: ProcessStart) -> StartPoint | None:
    """Where ``start`` starts processes on import (its iteration, for a DataLoader), or None
    when it runs only later."""
    if start.iteration is not None:
        return StartPoint(start.iteration.node, start.iteration.statement)
    root = facts.import_time_root(start.site)
    return StartPoint(root.node, root.statement) if root is not None else None


def import_time_iteration(facts: ModuleFacts, site: CallSite) -> Iteration | None:
    """The first place where the DataLoader built at ``site`` is iterated when the module is
    imported: a module-level loop or call after it, or a function called at module level that
    iterates it (as a global, or through the parameter it is passed to); when it is built in a
    function that runs on import, that function's own loop or call."""
    names = _bound_to(site.scope, site.node)
    if site.import_time and site.scope.kind is ScopeKind.MODULE:
        guard = facts.record.main_guard
        body = facts.record.module.body
        start = body.index(site.statement) if site.statement in body else 0
        for statement in body[start:]:
            if statement is guard or isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                continue
            found = _first_use(facts, site, _ordered(statement, guard), names, True)
            if found is not None:
                node, reader = found
                return Iteration(node, statement, _one(names), reader)
        return None
    root = facts.import_time_root(site)
    function = site.scope.node
    if root is None or site.scope.kind is not ScopeKind.FUNCTION or not isinstance(
            function, cst.FunctionDef):
        return None
    if _first_use(facts, site, _ordered(function.body), names, False) is None:
        return None
    return Iteration(root.node, root.statement, _one(names), function)


def _first_use(facts: ModuleFacts, site: CallSite, nodes: Iterator[cst.CSTNode],
               names: frozenset[str], module_level: bool,
               ) -> tuple[cst.CSTNode, cst.FunctionDef | None] | None:
    """The first of ``nodes`` that iterates the loader, with the function of this module that
    does when the node is a call of one."""
    for node in nodes:
        if _iterates(facts, node, site, names, site.scope):
            return node, None
        other = facts.site_of(node) if isinstance(node, cst.Call) else None
        if other is None or other.order <= site.order:
            continue
        reader = _function_reading(facts, other, names, site.scope, module_level)
        if reader is not None:
            return node, reader
    return None


def _iterates(facts: ModuleFacts, node: cst.CSTNode, site: CallSite, names: frozenset[str],
              scope: Scope) -> bool:
    """Whether ``node`` iterates the loader: a loop over it, or a builtin such as ``iter``
    called on it after it is built."""
    if isinstance(node, (cst.For, cst.CompFor)):
        return node.iter is site.node or _reads(node.iter, names, facts, scope)
    if not isinstance(node, cst.Call):
        return False
    other = facts.site_of(node)
    return (other is not None and other.order > site.order
            and facts.value(node.func, other) in _ITERATING
            and any(_reads(a.value, names, facts, scope) for a in node.args))


def _function_reading(facts: ModuleFacts, call: CallSite, names: frozenset[str],
                      scope: Scope, module_level: bool) -> cst.FunctionDef | None:
    """The function of this module that ``call`` runs (directly or through others) and that
    iterates the module-level loader, or whose parameter receives it and is iterated."""
    direct = facts.runs(call)
    for func in direct:
        passed = _parameters_given(func, call.node, names, facts, scope)
        if passed and _iterates_in(facts, func.node, passed, local=True):
            return func.node
    if not module_level:
        return None
    for function in facts.functions_run_by([call]):
        if isinstance(function, cst.FunctionDef) and _iterates_in(facts, function, names,
                                                                   local=False):
            return function
    return None


def _iterates_in(facts: ModuleFacts, function: cst.FunctionDef, names: frozenset[str],
                 local: bool) -> bool:
    """Whether ``function``'s own body loops over one of ``names`` (its own parameters with
    ``local``, module globals without) or hands one to ``iter``, ``enumerate``, ``list``."""
    scope = facts.evaluator.function_scope(function)
    if scope is None:
        return False
    wanted = scope if local else scope.module()
    for node in _ordered(function.body):
        if isinstance(node, (cst.For, cst.CompFor)):
            if _reads(node.iter, names, facts, wanted, within=scope):
                return True
        elif isinstance(node, cst.Call):
            site = facts.site_of(node)
            if (site is not None and facts.value(node.func, site) in _ITERATING
                    and any(_reads(a.value, names, facts, wanted, within=scope)
                            for a in node.args)):
                return True
    return False


def _parameters_given(function: Func, call: cst.Call, names: frozenset[str],
                      facts: ModuleFacts, scope: Scope) -> frozenset[str]:
    """The parameters of ``function`` that ``call`` passes one of ``names`` to."""
    params = facts.task_parameters(function)  # a method's object is not among them
    found: set[str] = set()
    for index, arg in enumerate(call.args):
        if arg.star or not _reads(arg.value, names, facts, scope):
            continue
        if arg.keyword is not None:
            found.add(arg.keyword.value)
        elif index < len(params):
            found.add(params[index].name.value)
    return frozenset(found)


def _reads(expr: cst.BaseExpression, names: frozenset[str], facts: ModuleFacts, owner: Scope,
           within: Scope | None = None) -> bool:
    """Whether ``expr``, read in ``within`` (default: ``owner``), reads one of ``names`` as
    bound in ``owner``."""
    reader = within or owner
    return any(n.value in names and reader.lookup_scope(n.value) is owner
               for n in name_reads(expr))


def _ordered(root: cst.CSTNode, skip: cst.CSTNode | None = None) -> Iterator[cst.CSTNode]:
    """``root`` and the nodes under it in source order, leaving out function and class bodies,
    lambdas and ``skip``."""
    stack: list[cst.CSTNode] = [root]
    while stack:
        node = stack.pop()
        if node is skip or isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        yield node
        stack.extend(reversed(children(node)))


def _bound_to(scope: Scope, call: cst.Call) -> frozenset[str]:
    """The names of ``scope`` bound to ``call``'s result."""
    return frozenset(name for name, bindings in scope.bindings.items()
                     if any(b.value is call for b in bindings))


def _one(names: frozenset[str]) -> str | None:
    return min(names) if names else None


# -- what the workers receive ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Sent:
    """A value found in the code that a DataLoader pickles into each worker with its dataset."""

    expr: cst.BaseExpression
    scope: Scope  # where ``expr`` is evaluated
    role: str  # how it travels, for messages: "the dataset's `transform`"


# A class that defines one of these decides itself what pickling it sends.
_CUSTOM_PICKLING = frozenset({"__getstate__", "__reduce__", "__reduce_ex__"})


def dataset_contents(facts: ModuleFacts, work: WorkSite) -> list[Sent]:
    """What a DataLoader's workers receive inside its dataset: callables and objects given to
    the dataset's constructor and kept on it, values assigned to its attributes, and what the
    ``__init__`` of a dataset class of this module stores on ``self``."""
    if work.kind is not ApiKind.DATALOADER or not work.payload:
        return []
    expr, scope = work.payload[0].expr, work.scope or work.site.scope
    found: list[Sent] = []
    name = expr.value if isinstance(expr, cst.Name) else None
    built, owner = _definition(expr, scope)
    if isinstance(built, cst.Call) and owner is not None:
        found.extend(_constructor_contents(facts, built, owner))
    if name is not None and owner is not None:
        found.extend(_assigned_attributes(owner, name))
    value = facts.evaluator.value(expr, scope)
    if isinstance(value, Instance) and value.klass.evaluator is facts.evaluator:
        found.extend(_stored_in_init(value.klass))
    return found


def _definition(expr: cst.BaseExpression, scope: Scope,
                ) -> tuple[cst.BaseExpression | None, Scope | None]:
    """The expression a name was assigned from (once), with the scope holding the name."""
    if not isinstance(expr, cst.Name):
        return expr, scope
    owner = scope.lookup_scope(expr.value)
    bindings = owner.bindings.get(expr.value, []) if owner is not None else []
    if len(bindings) == 1 and bindings[0].kind is BindingKind.ASSIGN:
        return bindings[0].value, owner
    return None, owner


def _constructor_contents(facts: ModuleFacts, call: cst.Call, scope: Scope) -> Iterator[Sent]:
    """Arguments of the dataset's constructor that the dataset keeps: those its class of this
    module stores on ``self``, the well-known keywords of a library dataset."""
    built = facts.evaluator.value(call.func, scope)
    kept = _kept_parameters(built.node) if isinstance(built, Klass) else None
    if kept is None and not isinstance(built, Qual):
        return
    params = _init_parameters(built.node) if isinstance(built, Klass) else []
    for index, arg in enumerate(call.args):
        if arg.star:
            continue
        keyword = arg.keyword.value if arg.keyword is not None else (
            params[index] if index < len(params) else None)
        wanted = knowledge.DATASET_KEPT_KEYWORDS if kept is None else kept
        if keyword is None or keyword not in wanted:
            continue
        yield from _callables(facts, arg.value, scope, f"the dataset's `{keyword}`")


def _assigned_attributes(scope: Scope, name: str) -> Iterator[Sent]:
    """``name.attr = value`` statements in the body that binds ``name``."""
    body = scope.node
    for node in _ordered(body) if not isinstance(body, cst.FunctionDef) else _ordered(body.body):
        if not isinstance(node, cst.Assign):
            continue
        for target in node.targets:
            attr = target.target
            if (isinstance(attr, cst.Attribute) and isinstance(attr.value, cst.Name)
                    and attr.value.value == name):
                yield Sent(node.value, scope, f"`{name}.{attr.attr.value}`")


def _stored_in_init(klass: Klass) -> Iterator[Sent]:
    """``self.attr = value`` in the class's own ``__init__``: the state every worker gets."""
    scope = klass.evaluator.record.scopes.get(klass.node)
    if scope is None or _CUSTOM_PICKLING & set(scope.bindings):
        return
    for attr, bindings in scope.attributes.items():
        for binding in bindings:
            method = binding.scope.node
            if (binding.value is not None and isinstance(method, cst.FunctionDef)
                    and method.name.value == "__init__"):
                yield Sent(binding.value, binding.scope,
                           f"`self.{attr}` of dataset class `{klass.node.name.value}`")


def _callables(facts: ModuleFacts, expr: cst.BaseExpression, scope: Scope, role: str,
               depth: int = 0) -> Iterator[Sent]:
    """``expr`` itself, or the items of a list or tuple of transforms, and the callables a
    torchvision ``Compose``/``Lambda``/``RandomApply`` holds."""
    if depth > 3:
        return
    if isinstance(expr, (cst.List, cst.Tuple)):
        for element in expr.elements:
            yield from _callables(facts, element.value, scope, role, depth + 1)
        return
    if isinstance(expr, cst.Call):
        called = facts.evaluator.value(expr.func, scope)
        if isinstance(called, Qual) and called.name.startswith(knowledge.TRANSFORM_HOLDERS):
            for arg in expr.args:
                if not arg.star and arg.keyword is None:
                    yield from _callables(facts, arg.value, scope, role, depth + 1)
            return
    if isinstance(expr, cst.Name) and depth < 3:
        built, owner = _definition(expr, scope)
        if isinstance(built, (cst.Call, cst.List, cst.Tuple)) and owner is not None:
            yield from _callables(facts, built, owner, role, depth + 1)
            return
    yield Sent(expr, scope, role)


def _init_parameters(klass: cst.ClassDef) -> list[str]:
    init = _init_of(klass)
    if init is None:
        return []
    return [p.name.value for p in [*init.params.posonly_params, *init.params.params][1:]]


def _kept_parameters(klass: cst.ClassDef) -> frozenset[str] | None:
    """The ``__init__`` parameters the class stores on ``self`` as they are; None without an
    ``__init__`` of its own."""
    init = _init_of(klass)
    if init is None:
        return None
    kept: set[str] = set()
    for node in _ordered(init.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name):
            for target in node.targets:
                attr = target.target
                if (isinstance(attr, cst.Attribute) and isinstance(attr.value, cst.Name)
                        and attr.value.value == "self"):
                    kept.add(node.value.value)
    return frozenset(kept)


def _init_of(klass: cst.ClassDef) -> cst.FunctionDef | None:
    body = klass.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    return next((s for s in body.body if isinstance(s, cst.FunctionDef)
                 and s.name.value == "__init__"), None)


# -- tensors that require grad, returned by a dataset --------------------------------------------
@dataclass(frozen=True, eq=False)
class GradSample:
    """A sample a dataset method returns or yields that requires grad."""

    expr: cst.BaseExpression  # the returned or yielded expression
    origin: cst.Call  # the call that creates the tensor with requires_grad=True
    method: cst.FunctionDef  # ``__getitem__`` or ``__iter__``
    klass: cst.ClassDef
    verb: str  # "returns" or "yields"


_SAMPLE_METHODS = frozenset({"__getitem__", "__iter__"})
_MAX_HOPS = 6


def grad_samples(facts: ModuleFacts, work: WorkSite) -> list[GradSample]:
    """Samples that require grad, from the dataset class of this module a DataLoader with
    workers batches with its default ``collate_fn``: ``torch.stack(..., out=...)`` into
    shared memory refuses them in the worker."""
    if (work.kind is not ApiKind.DATALOADER or not work.payload
            or keyword_argument(work.site.node, "collate_fn") is not None
            or _is_none(keyword_argument(work.site.node, "batch_size"))):
        return []
    value = facts.evaluator.value(work.payload[0].expr, work.scope or work.site.scope)
    if not isinstance(value, Instance) or value.klass.evaluator is not facts.evaluator:
        return []
    klass = value.klass
    found: list[GradSample] = []
    for method in _own_methods(klass.node, _SAMPLE_METHODS):
        scope = facts.evaluator.function_scope(method)
        if scope is None or _grad_off(facts, method, scope):
            continue
        for sample, verb in _samples(method):
            for expr in _fields(sample):
                origin = _grad_origin(facts, expr, scope, klass, 0)
                if origin is not None:
                    found.append(GradSample(expr, origin, method, klass.node, verb))
    return found


def _grad_origin(facts: ModuleFacts, expr: cst.BaseExpression, scope: Scope, klass: Klass,
                 hops: int) -> cst.Call | None:
    """The call that creates, with ``requires_grad=True``, the tensor ``expr``'s value is
    derived from (indexing, arithmetic, methods that keep autograd history, ``clone()``)."""
    if hops > _MAX_HOPS:
        return None
    parts: list[cst.BaseExpression] = []
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in knowledge.GRAD_KEEPING_METHODS:
            parts.append(func.value)
        elif _creates_grad(facts, expr, scope):
            return expr
    elif isinstance(expr, cst.Name):
        bindings = scope.bindings.get(expr.value, [])
        if len(bindings) == 1 and bindings[0].kind is BindingKind.ASSIGN and bindings[0].value:
            parts.append(bindings[0].value)
    elif (isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name)
          and expr.value.value == "self"):
        return _attribute_origin(facts, expr.attr.value, klass, hops)
    elif isinstance(expr, cst.Subscript):
        parts.append(expr.value)
    elif isinstance(expr, cst.BinaryOperation):
        parts.extend((expr.left, expr.right))
    elif isinstance(expr, cst.UnaryOperation):
        parts.append(expr.expression)
    elif isinstance(expr, (cst.Tuple, cst.List)):
        parts.extend(e.value for e in expr.elements)
    elif isinstance(expr, cst.Dict):
        parts.extend(e.value for e in expr.elements if isinstance(e, cst.DictElement))
    for part in parts:
        found = _grad_origin(facts, part, scope, klass, hops + 1)
        if found is not None:
            return found
    return None


def _attribute_origin(facts: ModuleFacts, attr: str, klass: Klass, hops: int) -> cst.Call | None:
    """``self.attr`` set once, in ``__init__``, to a tensor that requires grad."""
    scope = klass.evaluator.record.scopes.get(klass.node)
    bindings = scope.attributes.get(attr, []) if scope is not None else []
    if len(bindings) != 1 or bindings[0].value is None:
        return None
    method = bindings[0].scope.node
    if not isinstance(method, cst.FunctionDef) or method.name.value != "__init__":
        return None
    return _grad_origin(facts, bindings[0].value, bindings[0].scope, klass, hops + 1)


def _creates_grad(facts: ModuleFacts, call: cst.Call, scope: Scope) -> bool:
    """``torch.<factory>(..., requires_grad=True)``, or ``x.requires_grad_()``."""
    flag = keyword_argument(call, "requires_grad")
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_":
        return (flag is None and not call.args) or _is_true(flag) or (
            len(call.args) == 1 and _is_true(call.args[0].value))
    called = facts.evaluator.value(call.func, scope)
    if not isinstance(called, Qual):
        return False
    if called.name in knowledge.TORCH_PARAMETERS:
        return flag is None or _is_true(flag)  # a Parameter requires grad by default
    return _is_true(flag) and called.name.startswith(f"{knowledge.TORCH_ROOT}.")


def _grad_off(facts: ModuleFacts, method: cst.FunctionDef, scope: Scope) -> bool:
    """The method turns autograd off somewhere: its samples may not require grad."""
    for decorator in method.decorators:
        expr = decorator.decorator
        expr = expr.func if isinstance(expr, cst.Call) else expr
        if _grad_switch(facts.evaluator.value(expr, scope.parent or scope)):
            return True
    for node in _ordered(method.body):
        if isinstance(node, cst.Call) and _grad_switch(facts.evaluator.value(node.func, scope)):
            return True
    return False


def _grad_switch(value: object) -> bool:
    return isinstance(value, Qual) and value.name in knowledge.GRAD_OFF | {knowledge.GRAD_SWITCH}


def _samples(method: cst.FunctionDef) -> Iterator[tuple[cst.BaseExpression, str]]:
    """What the method returns or yields (not in nested functions)."""
    for node in _ordered(method.body):
        if isinstance(node, cst.Return) and node.value is not None:
            yield node.value, "returns"
        elif isinstance(node, cst.Yield) and isinstance(node.value, cst.BaseExpression):
            yield node.value, "yields"


def _fields(sample: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The fields of a tuple, list or dict sample (each is batched on its own), or the sample."""
    if isinstance(sample, (cst.Tuple, cst.List)):
        return [e.value for e in sample.elements]
    if isinstance(sample, cst.Dict):
        return [e.value for e in sample.elements if isinstance(e, cst.DictElement)]
    return [sample]


def _own_methods(klass: cst.ClassDef, names: frozenset[str]) -> Iterator[cst.FunctionDef]:
    body = klass.body
    if isinstance(body, cst.IndentedBlock):
        yield from (s for s in body.body if isinstance(s, cst.FunctionDef)
                    and s.name.value in names)


def _is_true(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def _is_none(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def worker_functions(facts: ModuleFacts, work: WorkSite) -> list[Func]:
    """Functions of this module a DataLoader's workers run: its dataset class's
    ``__getitem__``/``__getitems__``/``__iter__``, its ``collate_fn`` and ``worker_init_fn``."""
    if work.kind is not ApiKind.DATALOADER:
        return []
    scope = work.scope or work.site.scope
    found: list[Func] = []
    value = facts.evaluator.value(work.payload[0].expr, scope) if work.payload else None
    if isinstance(value, Instance) and value.klass.evaluator is facts.evaluator:
        klass = value.klass
        inner = facts.evaluator.record.scopes.get(klass.node)
        if inner is not None:
            found.extend(Func(method, inner, False, facts.evaluator)
                         for method in _own_methods(klass.node, _WORKER_METHODS))
    for expr in work.callables:
        found.extend(f for f in facts.functions_of(facts.evaluator.value(expr, scope))
                     if f.evaluator is facts.evaluator)
    return found


_WORKER_METHODS = frozenset({"__getitem__", "__getitems__", "__iter__"})
