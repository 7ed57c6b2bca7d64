"""MPL301: build the model once per worker, in the pool's initializer.

The whole load moves: the statement that builds the model and the set-up calls that follow it on
the same object (``model.load_state_dict(torch.load(path))``, ``model.eval()``,
``model = model.to(device)``), with the helper assignments that only feed them. An initializer
runs them once in each worker and stores the model in a module global that the task reads
instead. The values the load reads that are the same for every item (bound by
``functools.partial``, ``itertools.repeat``, a starmap row position that does not read the loop
variable, a ``submit`` argument that does not change in the loop, a position of the tuple each
item unpacks into) are passed once through ``initargs``; where the task used such a value only
for the load, it leaves the items and the task's parameters.

Offered for pools and executors made by a visible call without an initializer, when the task is
a module-level function. Always unsafe, and the title says the weightiest reason: the items or
the task's parameters change; a value passed through ``initargs`` is computed by a call (it now
runs once); the load was conditional; the task uses the model otherwise than by calling it (the
tasks of a worker now share one model); and in every case a load that fails now fails in each
worker's start-up (a Pool restarts such a worker forever, an executor breaks) instead of raising
in the task for its item.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    BindingKind,
    CallSite,
    Func,
    ModuleFacts,
    Partial,
    Scope,
    ScopeKind,
    Shape,
    WorkSite,
    comp_fors,
    name_reads,
)
from mplint.fixers.base import (
    UNSAFE,
    Fixer,
    contains,
    names_bound,
    names_read,
    separated,
)
from mplint.fixers.initializer import initializer, insert_before, with_initializer
from mplint.fixers.model_arg import _creation, _fresh, _module_level, _uses, plain_items

# Where the workers take no initializer: why no fix, and what to do instead. (A cached loader
# in the script itself does not help joblib: loky sends the script's functions by value, and a
# cached one fails to unpickle in the worker; from an importable module it loads once per worker.)
_NO_INITIALIZER = {
    knowledge.ApiKind.JOBLIB: (
        "joblib's workers take no initializer",
        "load it in a functools.cache function of an importable module (not the script), which "
        "each reused worker runs once"),
    knowledge.ApiKind.RAY: (
        "ray tasks take no initializer", "load it once in the __init__ of an actor"),
    knowledge.ApiKind.DASK_CLIENT: (
        "dask workers take no initializer",
        "load it once per worker in a WorkerPlugin's setup"),
    knowledge.ApiKind.LIBRARY: (
        "the library's workers take no initializer the fix can write",
        "load it once per worker through a functools.cache loader in an importable module"),
}
_STAR_TO_PLAIN = {"starmap": "map", "starmap_async": "map_async"}


@dataclass(frozen=True)
class _Source:
    """Where the value a task parameter (or unpacked name) receives is written in the call."""

    expr: cst.BaseExpression  # the value, the same for every item
    kind: str  # partial, row, zip, arg, unpack
    position: int  # among the partial's arguments, a row, zip's or the call's arguments
    inline: bool  # written in the work call itself, so the fix can take it out of the items
    param: int | None = None  # the task parameter it fills (None for an unpacked name)
    holder: str = ""  # for an unpacked name: the parameter the item tuple arrives in


@dataclass
class _Plan:
    function: cst.FunctionDef
    block: list[cst.BaseStatement]  # statements of the task that make the model, in order
    local: str | None  # the name the task binds the model to (None: a call inside an expr)
    call: cst.Call
    passed: list[tuple[str, _Source]]  # initializer parameters and what fills them
    creation: cst.Call
    work: cst.Call
    global_name: str
    init_name: str
    dropped: list[tuple[str, _Source]] = field(default_factory=list)  # values leaving items
    nested: bool = False  # the load is inside an if, loop, with or try of the task
    unpack: cst.SimpleStatementLine | None = None  # ``path, value = args`` in the task


def worker_advice(work: WorkSite) -> str:
    """How to load once per worker with the API that runs ``work``."""
    if work.kind in _NO_INITIALIZER:
        return _NO_INITIALIZER[work.kind][1]
    return "do it once per worker in a Pool initializer"


def per_worker_fixer(facts: ModuleFacts, work: WorkSite, func: Func, site: CallSite,
                     local: str | None) -> Fixer | str:
    """Move the load at ``site`` (bound to ``local`` in the task, if it is) and its set-up into
    an initializer of the pool that runs ``work``."""
    if work.kind in _NO_INITIALIZER:
        return _NO_INITIALIZER[work.kind][0]
    if func.scope.kind is not ScopeKind.MODULE or func.guarded \
            or func.evaluator is not facts.evaluator:
        return "the task function is not a module-level function of this file"
    body = facts.evaluator.function_scope(func.node)
    assert body is not None
    sources = _sources(facts, work, func)
    plan = _plan(facts, work, func, site, body, sources)
    if isinstance(plan, str):
        return plan
    title = (f"build it once per worker in `{plan.init_name}` (Pool initializer=); unsafe: "
             f"{_unsafe(plan, body)}")
    return Fixer(UNSAFE, title, lambda module: module.visit(_Rewriter(plan)),
                 tidy=True)


def _plan(facts: ModuleFacts, work: WorkSite, func: Func, site: CallSite, body: Scope,
          sources: dict[str, _Source]) -> _Plan | str:
    statements = func.node.body.body if isinstance(func.node.body, cst.IndentedBlock) else ()
    start = next((i for i, s in enumerate(statements) if contains(s, site.node)), None)
    if start is None:
        return "the load is not in the task's own body"

    def unreachable(names: set[str], bound: set[str]) -> str | None:
        """The first name an initializer could not get, else None."""
        for name in sorted(names - bound):
            owner = body.lookup_scope(name)
            if owner is None or (owner.kind is ScopeKind.MODULE and _module_level(owner, name)):
                continue
            if not (owner is body and name in sources):
                return name
        return None

    def cannot(name: str) -> str:
        if name in facts.invariant_parameters(work, func):
            return (f"the load reads `{name}`, which is the same for every item but sent in a "
                    "way the fix cannot pass to an initializer")
        return f"the load reads `{name}`, which changes from one item to the next"

    local = _bound_name(statements[start], site.node)
    if local is None:
        block: list[cst.BaseStatement] = []
        missing = unreachable(_read_names(site.node), set())
        if missing is not None:
            return cannot(missing)
    else:
        found = _block(statements, start, local, unreachable)
        if isinstance(found, str):
            return found
        if isinstance(found, tuple):
            return cannot(found[0])
        block = found
    pool = _creation(work.site)
    if isinstance(pool, str):
        return pool
    made = next((c for c in facts.record.calls if c.node is pool), None)
    bound = {name for statement in block for name in names_bound(statement)}
    order = [n for n in _first_reads(block or [site.node]) if n in sources and n not in bound]
    for name in order:
        late = _unbound_at(made, sources[name].expr)
        if late is not None:
            where = "" if late == name else f" (through `{late}`)"
            return (f"the load reads `{name}`{where}, which is not known yet where the pool is "
                    "made")
    taken = set(facts.record.scope.bindings)
    stem = local or "model"
    global_name = _fresh(f"_worker_{stem}", taken)
    init_name = _fresh(f"_init_worker_{stem}", taken | {global_name})
    plan = _Plan(func.node, block, local, site.node, [(n, sources[n]) for n in order], pool,
                 work.site.node, global_name, init_name,
                 nested=not isinstance(statements[start], cst.SimpleStatementLine))
    _take_out_of_items(facts, plan, statements)
    return plan


def _bound_name(statement: cst.BaseStatement, call: cst.Call) -> str | None:
    """``name`` when ``statement`` is ``name = <expression containing call>``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target = small.target
    else:
        return None
    value = small.value
    if isinstance(target, cst.Name) and value is not None and contains(value, call):
        return target.value
    return None


def _block(statements: Sequence[cst.BaseStatement], start: int, local: str,
           unreachable: Callable[[set[str], set[str]], str | None],
           ) -> list[cst.BaseStatement] | str | tuple[str]:
    """The statements that make the model: the one at ``start``, the set-up calls after it on
    the same object and the helper assignments around them that only feed them; or why they
    cannot move (a 1-tuple: the name they read that an initializer cannot get)."""
    first = statements[start]
    before: list[cst.BaseStatement] = []  # ``state = {...}`` just above ``model = load(**state)``
    needed = _read_names(first)
    at = start
    while at > 0:
        fed = _helper(statements[at - 1])
        if not fed or fed == local or fed not in needed:
            break
        at -= 1
        before.insert(0, statements[at])
        needed |= _read_names(statements[at])
    bound: set[str] = set()
    for statement in [*before, first]:
        missing = unreachable(_read_names(statement), bound)
        if missing is not None:
            return (missing,)
        bound |= names_bound(statement)
    block = [*before, first]
    for statement in statements[start + 1:]:
        fed = _helper(statement)
        setup = _setup(statement, local)
        if not (setup or (fed and fed != local)):
            break
        missing = unreachable(_read_names(statement), bound)
        if missing is not None and setup:
            return (f"setting the model up reads `{missing}`, which changes from one item to the "
                    "next, so the load depends on the item")
        if missing is not None:
            break
        block.append(statement)
        bound |= names_bound(statement)
    while block[-1] is not first and not _setup(block[-1], local):
        block.pop()  # helpers at the end feed nothing that moves
    after = statements[statements.index(block[-1]) + 1:]
    rest = [*statements[:statements.index(block[0])], *after]
    for statement in block:
        fed = _helper(statement)
        if fed and fed != local and any(fed in _read_names(s) for s in rest):
            if statement in before:
                return f"`{fed}`, which the load reads, is also used by the rest of the task"
            block = block[:block.index(statement)]
            while block[-1] is not first and not _setup(block[-1], local):
                block.pop()
            break
    return block


def _helper(statement: cst.BaseStatement) -> str | None:
    """``name`` for a plain ``name = value`` statement."""
    if (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Assign)
            and len(statement.body[0].targets) == 1
            and isinstance(statement.body[0].targets[0].target, cst.Name)):
        return statement.body[0].targets[0].target.value
    return None


def _setup(statement: cst.BaseStatement, local: str) -> bool:
    """``local.eval()``, ``local.load_state_dict(...)``, ``local = local.to(device).eval()``,
    ``local.encoder.requires_grad_(False)``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not (isinstance(small, cst.Expr)
            or (isinstance(small, cst.Assign) and _helper(statement) == local)):
        return False
    value = small.value
    calls = 0
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
            and value.func.attr.value in knowledge.SETUP_METHODS:
        value, calls = value.func.value, calls + 1
    while isinstance(value, cst.Attribute) and isinstance(small, cst.Expr):
        value = value.value
    return calls > 0 and isinstance(value, cst.Name) and value.value == local


def _first_reads(nodes: Sequence[cst.CSTNode]) -> list[str]:
    """Names read by ``nodes``, in order of first appearance."""
    seen: list[str] = []
    for node in nodes:
        text = cst.Module([]).code_for_node(node)
        found = names_read(node)
        for name in sorted(found, key=lambda n: (text.find(n), n)):
            if name not in seen:
                seen.append(name)
    return seen


def _unbound_at(made: CallSite | None, expr: cst.BaseExpression) -> str | None:
    """A name ``expr`` reads that may not be set yet where the pool is made."""
    if made is None:
        return "the pool"
    for name in sorted(names_read(expr)):
        owner = made.scope.lookup_scope(name)
        if owner is None:
            if hasattr(builtins, name):
                continue
            return name  # a comprehension's variable, or a name the analysis cannot see
        if owner is made.scope and any(b.order > made.order for b in owner.bindings[name]):
            return name
        if owner is not made.scope and owner.kind is not ScopeKind.MODULE:
            return name
    return None


# -- where each same-for-every-item value is written --------------------------------------------
def _sources(facts: ModuleFacts, work: WorkSite, func: Func) -> dict[str, _Source]:
    params = [p.name.value for p in facts.task_parameters(func)]
    invariant = facts.invariant_parameters(work, func)
    found: dict[str, _Source] = {}
    offset = 0
    task = facts.work_value(work, work.func) if work.func is not None else None
    if isinstance(task, Partial) and work.func is not None:
        call = facts.definition(work, work.func)
        if isinstance(call, cst.Call):
            positional = [a for a in call.args[1:] if a.keyword is None and not a.star]
            for index, arg in enumerate(positional):
                if index < len(params) and params[index] in invariant:
                    found[params[index]] = _Source(arg.value, "partial", index + 1,
                                                   call is work.func, index)
            offset = len(positional)
    exprs = [p.expr for p in work.payload if p.keyword is None]
    if not exprs:
        return found
    if work.shape is Shape.STAR_ITEMS:
        rows = facts.definition(work, exprs[0])
        inline = rows is exprs[0]
        if isinstance(rows, (cst.ListComp, cst.GeneratorExp)) and isinstance(rows.elt, cst.Tuple):
            items: list[cst.BaseExpression | None] = [e.value for e in rows.elt.elements]
            kind = "row"
        elif isinstance(rows, cst.Call) and not any(a.star or a.keyword for a in rows.args):
            items = [_repeated(facts, work, a.value) for a in rows.args]
            kind = "zip"
        else:
            return found
        for index, item in enumerate(items):
            at = offset + index
            if item is not None and at < len(params) and params[at] in invariant:
                found[params[at]] = _Source(item, kind, index, inline, at)
    elif work.shape is Shape.ZIP_ITEMS:
        for index, expr in enumerate(exprs):
            at, value = offset + index, _repeated(facts, work, expr)
            if value is not None and at < len(params) and params[at] in invariant:
                found[params[at]] = _Source(value, "arg", index + 1, True, at)
    elif work.shape is Shape.ARGS:
        for index, expr in enumerate(exprs):
            at = offset + index
            if at < len(params) and params[at] in invariant:
                found[params[at]] = _Source(expr, "arg", index + 1, True, at)
    elif work.shape is Shape.ITEMS and offset < len(params):
        found.update(_unpacked(facts, work, func, params[offset], exprs[0]))
    return found


def _repeated(facts: ModuleFacts, work: WorkSite, expr: cst.BaseExpression,
              ) -> cst.BaseExpression | None:
    """``x`` for items that are all ``x``: ``repeat(x)``, ``[x] * n``, ``[x for _ in r]``."""
    if not facts.is_repeat(work, expr):
        return None
    expr = facts.definition(work, expr)
    if isinstance(expr, cst.Call):
        return expr.args[0].value if expr.args and not expr.args[0].keyword else None
    if isinstance(expr, cst.BinaryOperation):
        for side in (expr.left, expr.right):
            if isinstance(side, (cst.List, cst.Tuple)) and len(side.elements) == 1:
                return side.elements[0].value
        return None
    return expr.elt if isinstance(expr, (cst.ListComp, cst.GeneratorExp)) else None


def _unpacked(facts: ModuleFacts, work: WorkSite, func: Func, param: str,
              items: cst.BaseExpression) -> dict[str, _Source]:
    """``def f(args): path, value = args`` over items ``[(path, float(i)) for i in ...]``:
    the unpacked names whose tuple position does not read the loop variables."""
    rows = facts.definition(work, items)
    body = func.node.body
    if not (isinstance(rows, (cst.ListComp, cst.GeneratorExp)) and isinstance(rows.elt, cst.Tuple)
            and isinstance(body, cst.IndentedBlock) and body.body):
        return {}
    first = body.body[0]
    if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1 \
            and isinstance(first.body[0], cst.Expr) and isinstance(
                first.body[0].value, (cst.SimpleString, cst.ConcatenatedString)) \
            and len(body.body) > 1:
        first = body.body[1]  # after the docstring
    targets = _unpack_targets(first, param)
    if targets is None or len(targets) != len(rows.elt.elements):
        return {}
    loop = {n for comp in comp_fors(rows) for n in names_read(comp.target)}
    found = {}
    for index, (target, element) in enumerate(zip(targets, rows.elt.elements, strict=True)):
        if target is not None and not names_read(element.value) & loop and not isinstance(
                element, cst.StarredElement):
            found[target] = _Source(element.value, "unpack", index, rows is items,
                                    holder=param)
    return found


def _unpack_targets(statement: cst.BaseStatement, param: str) -> list[str | None] | None:
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return None
    small = statement.body[0]
    if not (isinstance(small, cst.Assign) and len(small.targets) == 1
            and isinstance(small.value, cst.Name) and small.value.value == param):
        return None
    target = small.targets[0].target
    if not isinstance(target, (cst.Tuple, cst.List)):
        return None
    return [e.value.value if isinstance(e.value, cst.Name) and isinstance(e, cst.Element)
            else None for e in target.elements]


# -- taking values out of the items -------------------------------------------------------------
def _take_out_of_items(facts: ModuleFacts, plan: _Plan,
                       statements: Sequence[cst.BaseStatement]) -> None:
    """Mark the passed values the task read only for the load: they leave the items."""
    if _uses(facts.record.module, plan.function.name.value) > 2:
        return  # the task is used elsewhere: its parameters stay as they are
    rest = [s for s in statements if s not in plan.block]
    free = [(name, source) for name, source in plan.passed
            if source.inline and not any(_reads(s, name) for s in rest)]
    plain = [c for c in free if c[1].kind != "unpack"]
    params = len([*plan.function.params.posonly_params, *plan.function.params.params])
    if len({s.kind for _, s in plain}) > 1 or len(plain) >= params:
        plain = []  # values in more than one kind of place, or nothing left to send
    if plain:
        plan.dropped = plain
        return
    unpacks = [c for c in free if c[1].kind == "unpack"]
    if not unpacks:
        return
    holder = unpacks[0][1].holder
    statement = next((s for s in rest if _unpack_targets(s, holder) is not None), None)
    targets = _unpack_targets(statement, holder) if statement is not None else None
    if (targets is None or len(unpacks) >= len(targets)
            or sum(_reads(s, holder) for s in statements) != 1):
        return
    assert isinstance(statement, cst.SimpleStatementLine)
    plan.unpack, plan.dropped = statement, unpacks


def _reads(node: cst.CSTNode, name: str) -> int:
    """How many times ``node`` reads ``name`` (plain assignment targets are not reads)."""
    return sum(1 for found in _read_nodes(node) if found.value == name)


def _read_names(node: cst.CSTNode) -> set[str]:
    return {found.value for found in _read_nodes(node)}


def _read_nodes(node: cst.CSTNode) -> list[cst.Name]:
    if not isinstance(node, cst.SimpleStatementLine):
        return name_reads(node)
    found: list[cst.Name] = []
    for small in node.body:
        if isinstance(small, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) \
                else [small.target]
            for target in targets:
                parts = [e.value for e in target.elements] if isinstance(
                    target, (cst.Tuple, cst.List)) else [target]
                for part in parts:
                    if not isinstance(part, cst.Name):
                        found.extend(name_reads(part))
            if small.value is not None:
                found.extend(name_reads(small.value))
        else:
            found.extend(name_reads(small))
    return found


def _unsafe(plan: _Plan, body: Scope) -> str:
    """Why the fix is unsafe, the weightiest reason first: none of them is ever safe."""
    if plan.dropped:
        return "the task's parameters and the items change"
    if any(_has_call(source.expr) for _, source in plan.passed):
        return "the values passed to the initializer are computed once, not per task"
    if plan.nested:
        return "the load ran only where the task's block reached it; now every worker runs it"
    if plan.local is not None and not _read_only(plan, body):
        return "the tasks of a worker now share one model"
    # what the load does when it fails changes: a Pool restarts a worker whose initializer
    # raises, forever, and an executor breaks, where the task used to raise for its item
    return "a load that fails now fails in every worker's start-up, not in each task"


def _has_call(expr: cst.CSTNode) -> bool:
    return isinstance(expr, cst.Call) or any(_has_call(c) for c in expr.children)


def _read_only(plan: _Plan, body: Scope) -> bool:
    """True when the task, outside the moved block, only calls the model or calls its
    read-only methods, and binds it nowhere else."""
    name = plan.local
    ok = True

    class Uses(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> bool:
            func = node.func
            if isinstance(func, cst.Name) and func.value == name:
                for arg in node.args:
                    arg.visit(self)
                return False
            if (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                    and func.value.value == name
                    and func.attr.value in knowledge.READ_ONLY_METHODS):
                for arg in node.args:
                    arg.visit(self)
                return False
            return True

        def visit_Assign(self, node: cst.Assign) -> bool:
            node.value.visit(self)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal ok
            if node.value == name:
                ok = False

    assert isinstance(plan.function.body, cst.IndentedBlock)
    outside = [s for s in plan.function.body.body if s not in plan.block]
    for statement in outside:
        statement.visit(Uses())
        if name in names_bound(statement):
            return False
    return ok and all(b.kind is not BindingKind.PARAM for b in body.bindings.get(name or "", []))


# -- the rewrite -------------------------------------------------------------------------------
class _Rewriter(cst.CSTTransformer):
    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan
        self.dropped = {s.position for _, s in plan.dropped if s.kind != "unpack"}
        self.unpacked = {s.position for _, s in plan.dropped if s.kind == "unpack"}
        self.kind = next((s.kind for _, s in plan.dropped if s.kind != "unpack"), None)
        self.params = {s.param for _, s in plan.dropped if s.param is not None}
        self.rows: cst.CSTNode | None = None  # the original items the rows come from
        for _, source in plan.dropped:
            self.rows = self.rows or _rows_of(plan.work, source)
        self.partial = plan.work.args[0].value if self.kind == "partial" else None
        self.holder = next((s.holder for _, s in plan.dropped if s.holder), "")

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        plan = self.plan
        if original_node is not plan.function:
            return updated_node
        block = updated_node.body
        assert isinstance(block, cst.IndentedBlock)
        body: list[cst.BaseStatement] = []
        assert isinstance(original_node.body, cst.IndentedBlock)
        for original, statement in zip(original_node.body.body, block.body, strict=True):
            if original is plan.unpack:
                unpacked = self._unpack(statement)
                if unpacked is None:
                    continue
                statement = unpacked
            if original in plan.block:
                if original is plan.block[0]:
                    body.append(cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(cst.Name(plan.local or ""))],
                                    cst.Name(plan.global_name))]))
                continue
            body.append(statement)
        params = updated_node.params
        every = [*params.posonly_params, *params.params]
        if plan.unpack is not None and len(self.remaining_targets()) == 1:
            at = every.index(next(p for p in every if p.name.value == self.holder))
            every[at] = every[at].with_changes(name=cst.Name(self.remaining_targets()[0]))
        kept = [p for i, p in enumerate(every) if i not in self.params]
        split = len([p for i, p in enumerate(params.posonly_params) if i not in self.params])
        params = params.with_changes(posonly_params=separated(kept[:split]) if split else (),
                                     params=separated(kept[split:]))
        return updated_node.with_changes(params=params, body=block.with_changes(body=body))

    def remaining_targets(self) -> list[str]:
        assert self.plan.unpack is not None
        targets = _unpack_targets(self.plan.unpack, self.holder) or []
        return [t or "" for i, t in enumerate(targets) if i not in self.unpacked]

    def _unpack(self, statement: cst.BaseStatement) -> cst.BaseStatement | None:
        if len(self.remaining_targets()) == 1:
            return None  # the parameter takes the remaining name
        assert isinstance(statement, cst.SimpleStatementLine)
        small = statement.body[0]
        assert isinstance(small, cst.Assign)
        target = small.targets[0].target
        assert isinstance(target, (cst.Tuple, cst.List))
        elements = [e for i, e in enumerate(target.elements) if i not in self.unpacked]
        target = target.with_changes(elements=separated(elements))
        return statement.with_changes(body=[small.with_changes(
            targets=[small.targets[0].with_changes(target=target)])])

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        plan = self.plan
        if original_node is plan.call and plan.local is None:
            return cst.Name(plan.global_name)
        if original_node is plan.creation:
            return with_initializer(updated_node, plan.init_name,
                                    [s.expr for _, s in plan.passed])
        if original_node is self.partial:
            args = [a for i, a in enumerate(updated_node.args) if i not in self.dropped]
            return args[0].value if len(args) == 1 else updated_node.with_changes(
                args=separated(args))
        if original_node is self.rows and self.kind == "zip":
            args = [a for i, a in enumerate(updated_node.args) if i not in self.dropped]
            return updated_node.with_changes(args=separated(args))
        if original_node is plan.work:
            return self._work(updated_node)
        return updated_node

    def _work(self, call: cst.Call) -> cst.Call:
        if self.kind == "arg":
            return call.with_changes(args=separated(
                [a for i, a in enumerate(call.args) if i not in self.dropped]))
        func = call.func
        attr = func.attr.value if isinstance(func, cst.Attribute) else ""
        if self.kind in ("row", "zip") and attr in _STAR_TO_PLAIN:
            at = next((i for i, a in enumerate(call.args) if a.keyword is None and i == 1), None)
            if at is None:
                return call
            items = call.args[at].value
            single = None
            if isinstance(items, cst.Call) and len(items.args) == 1:  # zip(xs)
                single = items.args[0].value
            elif isinstance(items, (cst.ListComp, cst.GeneratorExp)) and not isinstance(
                    items.elt, cst.Tuple):
                single = plain_items(items)
            if single is None:
                return call
            assert isinstance(func, cst.Attribute)
            args = list(call.args)
            args[at] = args[at].with_changes(value=single)
            return call.with_changes(func=func.with_changes(attr=cst.Name(_STAR_TO_PLAIN[attr])),
                                     args=args)
        if self.unpacked:
            args = list(call.args)
            for i, arg in enumerate(args):
                if isinstance(arg.value, (cst.ListComp, cst.GeneratorExp)) \
                        and not isinstance(arg.value.elt, cst.Tuple):
                    args[i] = arg.with_changes(value=plain_items(arg.value))
            return call.with_changes(args=args)
        return call

    def leave_ListComp(self, original_node: cst.ListComp,
                       updated_node: cst.ListComp) -> cst.BaseExpression:
        return self._comprehension(original_node, updated_node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp,
                           updated_node: cst.GeneratorExp) -> cst.BaseExpression:
        return self._comprehension(original_node, updated_node)

    def _comprehension(self, original: cst.ListComp | cst.GeneratorExp,
                       updated: cst.ListComp | cst.GeneratorExp) -> cst.BaseExpression:
        if original is not self.rows or not isinstance(updated.elt, cst.Tuple):
            return updated
        drop = self.unpacked if self.unpacked else self.dropped
        elements = [e for i, e in enumerate(updated.elt.elements) if i not in drop]
        if len(elements) == 1:
            return updated.with_changes(elt=elements[0].value)
        return updated.with_changes(elt=updated.elt.with_changes(elements=separated(elements)))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        plan = self.plan
        at = next(i for i, s in enumerate(original_node.body) if s is plan.function)
        return updated_node.with_changes(
            body=insert_before(updated_node.body, at, _initializer(plan, updated_node)))


def _comments(statement: cst.BaseStatement) -> bool:
    return any(line.comment is not None for line in getattr(statement, "leading_lines", ())) \
        or getattr(getattr(statement, "trailing_whitespace", None), "comment", None) is not None


def _rows_of(work: cst.Call, source: _Source) -> cst.CSTNode | None:
    """The comprehension or ``zip(...)`` call in ``work`` that a dropped value comes from."""
    if source.kind not in ("row", "zip", "unpack"):
        return None
    for arg in work.args:
        if arg.keyword is None and contains(arg.value, source.expr):
            return arg.value
    return None


def _initializer(plan: _Plan, module: cst.Module) -> list[cst.BaseStatement]:
    """``_worker_model = None`` and the initializer that makes the model, as module
    statements: the moved statements keep their text and comments."""
    block = plan.block
    last = plan.local if plan.local is not None else module.code_for_node(plan.call)
    if len(block) == 1 and _helper(block[0]) and not _comments(block[0]):
        small = block[0].body[0]  # type: ignore[attr-defined]
        last, block = module.code_for_node(small.value), []  # ``model = load()``: one line
    return initializer(module, plan.global_name, plan.init_name,
                       [name for name, _ in plan.passed], last, block)
