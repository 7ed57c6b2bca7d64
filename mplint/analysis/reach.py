"""What a call into another module of the linted tree starts and sends.

A script that calls ``helpers.parallel_preprocess(model, data)`` at module level starts the
pool that function creates when the script is imported, and the pool pickles what the script
passes in. The summary of the other module (``Summaries.may_start``, Python's own parser)
says cheaply whether a function, a class's constructor or its methods can start processes at
all, through the module's own calls and those into further modules; only then is the module
parsed and its facts computed, and the starts its code makes (with their API kind and start
method) and the parameters its process APIs pickle are read from those facts. A start that
runs only under a condition of the called code (an ``if``, a loop, after an early return) is
left out: the call may well not make it. Calls are followed through at most ``_DEPTH``
modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import libcst as cst

from mplint.analysis.evaluator import argument
from mplint.analysis.facts import (
    ModuleFacts,
    Payload,
    PayloadMode,
    WorkSite,
    _method,
    function_of,
)
from mplint.analysis.scopes import BindingKind, Scope, ScopeKind
from mplint.analysis.values import (
    Bound,
    Func,
    Instance,
    Klass,
    ProcessObject,
    Qual,
    Summarised,
    Value,
)
from mplint.analysis.walk import children, name_reads, own_nodes

if TYPE_CHECKING:
    from mplint.analysis.collector import CallSite
    from mplint.analysis.evaluator import Evaluator
    from mplint.analysis.project import ProjectIndex

_DEPTH = 3  # modules a chain of calls is followed through


@dataclass(frozen=True)
class Reached:
    """A start that calling a function of another module makes."""

    obj: ProcessObject
    where: str  # the function whose code makes it: "helpers.parallel_preprocess"


@dataclass(frozen=True)
class Sent:
    """A parameter of the called function that one of its process APIs pickles."""

    index: int  # its position among the call's positional arguments
    keyword: str  # its name, for a call that passes it by keyword ("" for positional-only)
    where: str  # the function: "helpers.parallel_preprocess"
    work: WorkSite  # the work site of the other module that sends it


@dataclass(frozen=True)
class Effect:
    """What calling a function of another module does: the starts it makes, what it sends."""

    starts: tuple[Reached, ...] = ()
    sent: tuple[Sent, ...] = ()


_NOTHING = Effect()


class Reach:
    """The effects of the tree's functions, computed once per run from their modules' facts."""

    def __init__(self) -> None:
        self._facts: dict[int, ModuleFacts | None] = {}  # by evaluator; None: in progress
        self._effects: dict[int, Effect] = {}  # by function node
        self._conditionals: dict[int, frozenset[int]] = {}  # by function node: its calls
        self._active = 0  # modules whose facts are being computed

    def facts(self, evaluator: Evaluator) -> ModuleFacts | None:
        """The facts of another module; None while they are being computed (a cycle) or when
        the chain of calls is already ``_DEPTH`` modules long."""
        key = id(evaluator)
        if key not in self._facts:
            if self._active >= _DEPTH:
                return None
            self._facts[key] = None
            self._active += 1
            try:
                self._facts[key] = ModuleFacts(evaluator)
            finally:
                self._active -= 1
        return self._facts[key]

    def effect(self, func: Func) -> Effect:
        """What calling ``func`` (of another module) starts and sends."""
        key = id(func.node)
        if key in self._effects:
            return self._effects[key]
        facts = self.facts(func.evaluator)
        if facts is None:
            return _NOTHING  # not kept: a later, shorter chain may read it
        scope = facts.evaluator.function_scope(func.node)
        found = _NOTHING if scope is None else Effect(
            tuple(self._starts(facts, func)), tuple(self._sent(facts, func, scope)))
        self._effects[key] = found
        return found

    def _starts(self, facts: ModuleFacts, func: Func) -> Iterator[Reached]:
        """The starts calling ``func`` makes for sure: in its body or in the functions of its
        module it calls, not under a condition."""
        calls = [s for s in facts.calls_in(func.node)
                 if not self._conditional(func.node, s.node)]
        reached = {func.node} | facts.functions_run_by(calls)
        for start in facts.starts:
            owner = function_of(start.site.scope)
            if owner is None or owner not in reached or self._conditional(owner,
                                                                          start.site.node):
                continue
            obj = start.obj
            if obj.method is None and facts.start_method_calls:
                obj = replace(obj, method="dynamic")  # its module chooses one somewhere
            yield Reached(obj, start.via or _qualname(facts, owner))

    def _sent(self, facts: ModuleFacts, func: Func, scope: Scope) -> Iterator[Sent]:
        """The parameters of ``func`` that a process API in its own body pickles."""
        positional = [*func.node.params.posonly_params, *func.node.params.params]
        if func.scope.kind is ScopeKind.CLASS:
            positional = positional[1:]
        keyword_only = {p.name.value for p in func.node.params.kwonly_params}
        positional_only = {p.name.value for p in func.node.params.posonly_params}
        names = [p.name.value for p in positional]
        where = _qualname(facts, func.node)
        for work in (*facts.work, *facts.sent_through_calls):
            if function_of(work.site.scope) is not func.node or self._conditional(
                    func.node, work.site.node):
                continue
            inner = work.scope or work.site.scope
            exprs = [p.expr for p in work.payload] + ([work.func] if work.func else [])
            reached: set[str] = set()
            for expr in exprs:
                reached |= _parameters_read(expr, inner, scope, 0)
            for name in sorted(reached):
                if name in names or name in keyword_only:
                    index = names.index(name) if name in names else 1 << 30
                    yield Sent(index, "" if name in positional_only else name, where, work)

    def _conditional(self, function: cst.CSTNode, call: cst.Call) -> bool:
        """Whether ``call`` in ``function``'s own body runs only under a condition: inside
        an ``if``, a ``match`` or a conditional expression, or after a statement that may
        return or raise (``if n_jobs == 1: return ...``). Loops count as running."""
        key = id(function)
        if key not in self._conditionals:
            self._conditionals[key] = frozenset(_conditional_calls(function))
        return id(call) in self._conditionals[key]


_REACHES: WeakKeyDictionary[ProjectIndex, Reach] = WeakKeyDictionary()


def effect_of_call(facts: ModuleFacts, site: CallSite) -> Effect:
    """What ``site`` starts and sends through a function, constructor or method of another
    module of the tree that it calls."""
    project = facts.evaluator.project
    if project is None:
        return _NOTHING
    targets = _targets(facts, site)
    if not targets:
        return _NOTHING
    reach = _REACHES.setdefault(project, Reach())
    effects = [reach.effect(target) for target in targets]
    return Effect(tuple(s for e in effects for s in e.starts),
                  tuple(s for e in effects for s in e.sent))


_PROJECT_NAMES: WeakKeyDictionary[Evaluator, dict[str, Value]] = WeakKeyDictionary()


def _in_project(evaluator: Evaluator, called: Qual) -> Value:
    """What a qualified name called in the module names in the tree (the name itself when it
    names nothing there), looked up once per module and name."""
    known = _PROJECT_NAMES.setdefault(evaluator, {})
    if called.name not in known:
        known[called.name] = evaluator.in_project(called.name) or called
    return known[called.name]


def _targets(facts: ModuleFacts, site: CallSite) -> list[Func]:
    """The functions of other modules the call runs: the function, the constructor of a
    class, the method of an instance of a class; only those whose summary allows a start."""
    called = facts.value(site.node.func, site)
    if isinstance(called, Qual):
        called = _in_project(facts.evaluator, called)
    owner: Func | Klass | None = None
    name = "__init__"
    if isinstance(called, Func | Klass):
        owner = called
    elif isinstance(called, Bound) and isinstance(called.obj, Instance):
        owner, name = called.obj.klass, called.attr
    if owner is None or (not isinstance(owner, Summarised) and owner.evaluator is facts.evaluator):
        return []
    if isinstance(owner, Summarised) and not owner.may_start():
        return []
    if isinstance(owner, Klass):
        return _method(owner, name)
    return [owner]


def _parameters_read(expr: cst.BaseExpression, scope: Scope, function: Scope,
                     depth: int) -> set[str]:
    """The parameters of ``function`` whose values ``expr`` reads, directly or through names
    of the function assigned from them."""
    found: set[str] = set()
    for name in {n.value for n in name_reads(expr)}:
        if scope.lookup_scope(name) is not function:
            continue
        for binding in function.bindings[name]:
            if binding.kind is BindingKind.PARAM:
                found.add(name)
            elif binding.kind is BindingKind.ASSIGN and binding.value is not None and depth < 3:
                found |= _parameters_read(binding.value, function, function, depth + 1)
    return found


def _conditional_calls(function: cst.CSTNode) -> Iterator[int]:
    """The ids of the calls of ``function``'s own body that run only under a condition."""
    body = getattr(function, "body", None)
    statements = list(body.body) if isinstance(body, cst.IndentedBlock) else []
    after_exit = False
    for statement in statements:
        stack: list[tuple[cst.CSTNode, bool]] = [(statement, after_exit)]
        while stack:
            node, inside = stack.pop()
            if isinstance(node, cst.Call) and inside:
                yield id(node)
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            branch = isinstance(node, (cst.If, cst.Match, cst.IfExp))
            stack.extend((child, inside or branch) for child in children(node))
        if not after_exit and isinstance(statement, (cst.If, cst.Try, cst.For, cst.While,
                                                     cst.With, cst.Match)):
            after_exit = _exits(statement)


def _exits(statement: cst.CSTNode) -> bool:
    """Whether a compound statement has a ``return`` or ``raise`` in it."""
    return any(isinstance(node, (cst.Return, cst.Raise)) for node in own_nodes(statement))


def _qualname(facts: ModuleFacts, function: cst.CSTNode) -> str:
    """``module.function`` or ``module.Class.method``, as messages name it."""
    assert isinstance(function, cst.FunctionDef)
    parts = [function.name.value]
    scope = facts.evaluator.function_scope(function)
    parent = scope.parent if scope is not None else None
    if parent is not None and parent.kind is ScopeKind.CLASS and isinstance(parent.node,
                                                                            cst.ClassDef):
        parts.insert(0, parent.node.name.value)
    module = facts.record.name
    return ".".join([module, *parts]) if module else ".".join(parts)


def sent_work(site: CallSite, sent: Sent, expr: cst.BaseExpression) -> WorkSite:
    """The work the calling module's ``site`` sends: ``expr``, passed for a parameter that
    the other module's process API pickles."""
    work = sent.work
    return WorkSite(site, f"{work.api} in `{sent.where}`", work.kind, None,
                    (Payload(expr, PayloadMode.VALUE),), work.per_task, work.method,
                    cloudpickle=work.cloudpickle)


def payload_of(call: cst.Call, sent: Sent) -> cst.BaseExpression | None:
    """What ``call`` passes for the parameter ``sent`` names."""
    return argument(call, sent.index, sent.keyword or "\0")

