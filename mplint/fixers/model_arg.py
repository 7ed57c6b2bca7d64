"""MPL201: load the model once per worker instead of sending it with the work.

For a pool or executor, the model's loader expression moves into an initializer that stores the
model in a module global; the task function reads the global instead of taking the model as a
parameter, the pool gets ``initializer=``/``initargs=``, and the call stops sending the model
(starmap tuples left with one item become plain ``map`` items). For ``Process(target=f,
args=(model, ...))`` the target builds the model itself from the loader's arguments. When the
parent reads the model nowhere but in that call, its own load and ``del`` of it go as well, and
imports the fix leaves unused are dropped.

Offered only where the loader can run again in the child: the model is built by one assignment,
is not used between that assignment and the call, and the loader's free names are module-level
or can be passed along; the task function is a module-level function of this file used nowhere
else. Always unsafe: signatures change, and the child rebuilds the model rather than receiving
the parent's object (identical only when the loader is deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from mplint.analysis import (
    Binding,
    BindingKind,
    CallSite,
    Func,
    Model,
    ModuleFacts,
    Partial,
    Scope,
    ScopeKind,
    WorkSite,
    children,
    walk,
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

_STAR_TO_PLAIN = {"starmap": "map", "starmap_async": "map_async"}


@dataclass(frozen=True)
class _Plan:
    function: cst.FunctionDef  # the task function
    index: int  # position of the model among its parameters
    loader: cst.BaseExpression
    passed: tuple[str, ...]  # the loader's free names that only the parent has
    creation: cst.Call | None  # the pool or executor, None for a Process
    work: cst.Call
    partial: cst.Call | None  # ``partial(f, model)`` as the task, if that is how it travels
    global_name: str
    init_name: str
    # the parent's own load and ``del`` of the model, when nothing else in the parent uses it
    parent: tuple[cst.SimpleStatementLine, ...] = ()
    name: str = ""


def load_per_worker_fixer(facts: ModuleFacts, work: WorkSite, model: Model) -> Fixer | str:
    """The fix for one model sent by one work call, or why there is none."""
    found = _plan(facts, work, model)
    if isinstance(found, str):
        return found
    where = "in each worker" if found.creation is not None else "in the child"
    title = f"load `{model.name}` once {where} instead of sending it"
    if found.parent:
        title += " (the parent, which only sent it, no longer loads it)"
    return Fixer(UNSAFE, title, lambda module: _rewrite(module, found), tidy=True)


def _plan(facts: ModuleFacts, work: WorkSite, model: Model) -> _Plan | str:
    if model.name is None:
        return "the model has no name the fix could rebuild it from"
    site, name = work.site, model.name
    task = facts.value(work.func, site) if work.func is not None else None
    partial_call = work.func if isinstance(task, Partial) else None
    function = task.func if isinstance(task, Partial) else task
    if not isinstance(function, Func) or function.scope.kind is not ScopeKind.MODULE \
            or function.guarded or function.evaluator is not facts.evaluator:
        return "the task function is not a module-level function of this file"
    index = _model_position(work, name, partial_call)
    if isinstance(index, str):
        return index
    params = [*function.node.params.posonly_params, *function.node.params.params]
    if index >= len(params):
        return f"`{function.node.name.value}` takes no parameter at the model's position"
    if _uses(facts.record.module, function.node.name.value) > 2:
        return f"`{function.node.name.value}` is also used elsewhere, and its signature changes"
    loader = _loader(facts, site, name)
    if isinstance(loader, str):
        return loader
    binding, passed = loader
    assert binding.value is not None
    creation: cst.Call | None = None
    if work.per_task:
        made = _creation(site)
        if isinstance(made, str):
            return made
        creation = made
    taken = set(facts.record.scope.bindings)
    param = params[index].name.value
    partial_node = partial_call if isinstance(partial_call, cst.Call) else None
    return _Plan(function.node, index, binding.value, passed, creation, site.node, partial_node,
                 _fresh(f"_worker_{param}", taken), _fresh(f"_init_worker_{param}", taken),
                 _parent_only_sends(binding, site.node, name), name)


def _parent_only_sends(binding: Binding, work: cst.Call, name: str,
                       ) -> tuple[cst.SimpleStatementLine, ...]:
    """The parent's ``name = load(...)`` statement and its ``del name`` statements, when the
    parent reads ``name`` nowhere but in the work call: the fixed parent need not load it."""
    owner = binding.scope.node
    statements: list[cst.SimpleStatementLine] = []
    reads = 0
    stack: list[cst.CSTNode] = [owner]
    while stack:
        current = stack.pop()
        if current is work or (current is not owner and _rebinds(current, name)):
            continue
        if isinstance(current, cst.SimpleStatementLine) and len(current.body) == 1:
            small = current.body[0]
            if isinstance(small, cst.Assign) and small.value is binding.value and len(
                    small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                statements.append(current)
                continue
            if isinstance(small, cst.Del) and _del_names(small) == [name]:
                statements.append(current)
                continue
        if isinstance(current, cst.Name):
            reads += current.value == name
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            stack.append(current.value)
        else:
            stack.extend(children(current))
    if reads or not any(binding.value in (getattr(s.body[0], "value", None),)
                        for s in statements):
        return ()
    return tuple(statements)


def _rebinds(node: cst.CSTNode, name: str) -> bool:
    """A function or lambda whose own ``name`` (a parameter or a local) hides the parent's."""
    if not isinstance(node, (cst.FunctionDef, cst.Lambda)):
        return False
    params = node.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    if any(p.name.value == name for p in every):
        return True
    return isinstance(node, cst.FunctionDef) and name in names_bound(node.body) \
        and not _declares_global(node.body, name)


def _declares_global(body: cst.CSTNode, name: str) -> bool:
    """``global name`` in a function's own body (not in functions nested in it)."""
    found = False

    class Globals(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            nonlocal found
            found = found or any(g.name.value == name for g in node.names)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

    walk(body, Globals())
    return found


def _del_names(statement: cst.Del) -> list[str]:
    target = statement.target
    targets = [e.value for e in target.elements] if isinstance(target, (cst.Tuple, cst.List)) \
        else [target]
    return [t.value if isinstance(t, cst.Name) else "" for t in targets]


def _model_position(work: WorkSite, name: str, partial_call: cst.BaseExpression | None,
                    ) -> int | str:
    """Where the model sits among the task function's arguments."""
    unsupported = "the model reaches the workers in a way the fix does not rewrite"
    call = work.site.node
    if isinstance(partial_call, cst.Call):
        return _index_of(partial_call.args[1:], name, unsupported)
    attr = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
    if not work.per_task:  # Process(target=f, args=(model, ...))
        return _index_of(_tuple_items(_keyword(call, "args")), name, unsupported)
    if attr in ("apply", "apply_async"):
        return _index_of(_tuple_items(_keyword(call, "args") or _positional(call, 1)), name,
                         unsupported)
    if attr == "submit":
        return _index_of([a for a in call.args[1:] if a.keyword is None], name, unsupported)
    if attr in _STAR_TO_PLAIN:
        rows = _rows(_positional(call, 1) or _keyword(call, "iterable"))
        if rows:
            positions = {_index_of(row, name, unsupported) for row in rows}
            if len(positions) == 1:
                return positions.pop()
    return unsupported


def _index_of(items: Sequence[cst.Arg | cst.BaseElement], name: str, reason: str) -> int | str:
    """The position of the bare name ``name`` among call arguments or tuple elements."""
    hits = [i for i, item in enumerate(items)
            if isinstance(item.value, cst.Name) and item.value.value == name
            and not (isinstance(item, cst.Arg) and item.keyword is not None)]
    starred = any(isinstance(item, cst.StarredElement) or (isinstance(item, cst.Arg)
                  and item.star) for item in items[:hits[0] + 1]) if hits else True
    return hits[0] if len(hits) == 1 and not starred else reason


def _rows(iterable: cst.BaseExpression | None) -> list[Sequence[cst.BaseElement]]:
    """The argument tuples of a starmap iterable written as a comprehension or a literal."""
    if isinstance(iterable, (cst.ListComp, cst.GeneratorExp)):
        return [iterable.elt.elements] if isinstance(iterable.elt, cst.Tuple) else []
    if isinstance(iterable, (cst.List, cst.Tuple)):
        rows = [e.value.elements for e in iterable.elements if isinstance(e.value, cst.Tuple)]
        return rows if len(rows) == len(iterable.elements) else []
    return []


def _tuple_items(expr: cst.BaseExpression | None) -> Sequence[cst.BaseElement]:
    return expr.elements if isinstance(expr, (cst.Tuple, cst.List)) else ()


def _keyword(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    return next((a.value for a in call.args if a.keyword and a.keyword.value == keyword), None)


def _positional(call: cst.Call, index: int) -> cst.BaseExpression | None:
    positional = [a for a in call.args if a.keyword is None]
    return positional[index].value if index < len(positional) else None


def _uses(module: cst.Module, name: str) -> int:
    count = 0
    stack: list[cst.CSTNode] = [module]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            count += current.value == name
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            stack.append(current.value)  # ``x.name`` and ``f(name=...)`` do not use ``name``
        else:
            stack.extend(children(current))
    return count


def _loader(facts: ModuleFacts, site: CallSite, name: str) -> tuple[Binding, tuple[str, ...]] | str:
    """The one assignment that builds the model, and the loader's names only the parent has."""
    owner = site.scope.lookup_scope(name)
    bindings = owner.bindings.get(name, []) if owner is not None else []
    if owner is site.scope:
        bindings = [b for b in bindings if b.order < site.order]
    if len(bindings) != 1 or bindings[0].kind is not BindingKind.ASSIGN \
            or bindings[0].value is None or owner is None:
        return f"`{name}` is not built by one assignment the worker could repeat"
    binding = bindings[0]
    for other in facts.record.calls:
        if other.scope is owner and binding.order < other.order < site.order \
                and name in names_read(other.node) and not contains(other.node, site.node):
            return (f"`{name}` is used after it is built (`{_short(other.node)}`), so "
                    "rebuilding it in the worker could lose that")
    passed: list[str] = []
    assert binding.value is not None
    for free in sorted(names_read(binding.value)):
        scope = owner.lookup_scope(free)
        if scope is None or _module_level(scope, free):
            continue
        if scope.kind is ScopeKind.CLASS:
            return f"the loader reads `{free}` from a class body"
        passed.append(free)
    return binding, tuple(passed)


def _module_level(scope: Scope, name: str) -> bool:
    """A name children see when they import the module: module scope, outside the guard."""
    return scope.kind is ScopeKind.MODULE and not any(b.guarded for b in scope.bindings[name])


def _creation(site: CallSite) -> cst.Call | str:
    func = site.node.func
    pool = func.value if isinstance(func, cst.Attribute) else None
    created: cst.BaseExpression | None = pool
    if isinstance(pool, cst.Name):
        owner = site.scope.lookup_scope(pool.value)
        bindings = owner.bindings.get(pool.value, []) if owner is not None else []
        created = bindings[-1].value if len(bindings) == 1 else None
    if not isinstance(created, cst.Call):
        return "the pool is not created by a call in this file the fix could extend"
    if any(a.keyword and a.keyword.value == "initializer" for a in created.args):
        return "the pool already has an initializer"
    if len([a for a in created.args if a.keyword is None]) > 1:
        return "the pool's settings are positional; name them to let the fix add an initializer"
    return created


def _fresh(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def _short(node: cst.CSTNode) -> str:
    text = cst.Module([]).code_for_node(node)
    return text if len(text) <= 40 else text[:37] + "..."


# -- the rewrite -------------------------------------------------------------------------------
def _rewrite(module: cst.Module, plan: _Plan) -> cst.Module:
    return module.visit(_Rewriter(plan))


class _Rewriter(cst.CSTTransformer):
    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        if original_node is not self.plan.function:
            return updated_node
        plan = self.plan
        params = updated_node.params
        every = [*params.posonly_params, *params.params]
        param = every[plan.index]
        if plan.creation is None:  # the child builds the model from what the parent passes
            value = plan.loader
            replacement = [cst.Param(cst.Name(n)) for n in plan.passed]
        else:
            value, replacement = cst.Name(plan.global_name), []
        kept = [*every[:plan.index], *replacement, *every[plan.index + 1:]]
        split = len(params.posonly_params)
        new_params = params.with_changes(posonly_params=separated(kept[:split]) if split else (),
                                         params=separated(kept[split:]))
        first = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(param.name)], value)])
        body = updated_node.body
        assert isinstance(body, cst.IndentedBlock)
        return updated_node.with_changes(params=new_params,
                                         body=body.with_changes(body=[first, *body.body]))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        plan = self.plan
        if original_node is plan.creation:
            return with_initializer(updated_node, plan.init_name,
                                    [cst.Name(n) for n in plan.passed])
        if original_node is plan.partial:
            args = [a for i, a in enumerate(updated_node.args) if i != plan.index + 1]
            return args[0].value if len(args) == 1 else updated_node.with_changes(
                args=separated(args))
        if original_node is plan.work:
            return _without_model(updated_node, plan)
        return updated_node

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        if not self.plan.parent:
            return updated_node
        kept, left = _drop(original_node.body, updated_node.body, self.plan.parent)
        body = [statement for _, statement in kept] or [cst.SimpleStatementLine([cst.Pass()])]
        return updated_node.with_changes(body=body, footer=[*left, *updated_node.footer])

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        kept, left = _drop(original_node.body, updated_node.body, self.plan.parent)
        originals = [original for original, _ in kept]
        body = [statement for _, statement in kept]
        footer = [*left, *updated_node.footer]
        if self.plan.creation is None:
            return updated_node.with_changes(body=body, footer=footer)
        plan = self.plan
        added = initializer(updated_node, plan.global_name, plan.init_name, plan.passed,
                            updated_node.code_for_node(plan.loader))
        return updated_node.with_changes(
            body=insert_before(body, originals.index(plan.function), added), footer=footer)


def _drop(originals: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement],
          dropped: Sequence[cst.BaseStatement],
          ) -> tuple[list[tuple[cst.BaseStatement, cst.BaseStatement]], list[cst.EmptyLine]]:
    """The statements of a block without ``dropped`` (as (original, updated) pairs), and the
    comments of dropped statements that no statement follows. A dropped statement's comments
    go above the statement that follows it."""
    kept: list[tuple[cst.BaseStatement, cst.BaseStatement]] = []
    carried: list[cst.EmptyLine] = []
    for original, statement in zip(originals, updated, strict=True):
        if any(original is d for d in dropped):
            assert isinstance(statement, cst.SimpleStatementLine)
            carried += [line for line in statement.leading_lines if line.comment]
            if statement.trailing_whitespace.comment is not None:
                carried.append(cst.EmptyLine(comment=statement.trailing_whitespace.comment))
            continue
        if carried:
            statement = statement.with_changes(
                leading_lines=[*carried, *getattr(statement, "leading_lines", ())])
            carried = []
        kept.append((original, statement))
    return kept, carried


def _without_model(call: cst.Call, plan: _Plan) -> cst.Call:
    """The work call without the model among the arguments it sends."""
    func = call.func
    attr = func.attr.value if isinstance(func, cst.Attribute) else ""
    if plan.partial is not None:
        return call
    if plan.creation is None or attr in ("apply", "apply_async"):
        keyword = "args"
        positional = 1 if attr in ("apply", "apply_async") else None
        names = [cst.Name(n) for n in plan.passed] if plan.creation is None else []
        args = []
        for i, arg in enumerate(call.args):
            is_target = (arg.keyword is not None and arg.keyword.value == keyword) or (
                arg.keyword is None and positional is not None and i == positional)
            if is_target and isinstance(arg.value, (cst.Tuple, cst.List)):
                arg = arg.with_changes(value=_replace_element(arg.value, plan.index, names))
            args.append(arg)
        return call.with_changes(args=args)
    if attr == "submit":
        model_arg = plan.index + 1
        return call.with_changes(args=separated([a for i, a in enumerate(call.args)
                                               if i != model_arg]))
    # starmap: drop the model from every row; single remaining items become plain map items
    iterable_index = next(i for i, a in enumerate(call.args)
                          if (a.keyword is None and i == 1) or (a.keyword and
                                                                a.keyword.value == "iterable"))
    iterable = call.args[iterable_index].value
    single = False
    if isinstance(iterable, (cst.ListComp, cst.GeneratorExp)):
        assert isinstance(iterable.elt, cst.Tuple)
        elt = _replace_element(iterable.elt, plan.index, [])
        single = len(elt.elements) == 1
        iterable = iterable.with_changes(elt=elt.elements[0].value if single else elt)
        if single:
            iterable = plain_items(iterable)
    elif isinstance(iterable, (cst.List, cst.Tuple)):
        rows = [_replace_element(e.value, plan.index, []) for e in iterable.elements
                if isinstance(e.value, cst.Tuple)]
        single = all(len(r.elements) == 1 for r in rows)
        iterable = iterable.with_changes(elements=[
            e.with_changes(value=r.elements[0].value if single else r)
            for e, r in zip(iterable.elements, rows, strict=True)])
    args = list(call.args)
    args[iterable_index] = args[iterable_index].with_changes(value=iterable)
    call = call.with_changes(args=args)
    if single and isinstance(func, cst.Attribute) and attr in _STAR_TO_PLAIN:
        call = call.with_changes(func=func.with_changes(attr=cst.Name(_STAR_TO_PLAIN[attr])))
    return call


def plain_items(items: cst.ListComp | cst.GeneratorExp) -> cst.BaseExpression:
    """``rows`` for ``[r for r in rows]`` (one ``for``, no ``if``, the item is the loop
    variable): a pool takes any iterable, so the copy says nothing; else ``items``."""
    loop = items.for_in
    if (loop.inner_for_in is None and not loop.ifs and loop.asynchronous is None
            and isinstance(loop.target, cst.Name) and isinstance(items.elt, cst.Name)
            and items.elt.value == loop.target.value
            and not items.lpar and not items.rpar):
        return loop.iter.with_changes(lpar=(), rpar=()) if isinstance(
            loop.iter, cst.Name) else loop.iter
    return items


def _replace_element(sequence: cst.Tuple | cst.List, index: int,
                     names: Sequence[cst.Name]) -> cst.Tuple | cst.List:
    elements = list(sequence.elements)
    elements[index:index + 1] = [cst.Element(n) for n in names]
    return sequence.with_changes(elements=separated(elements))


def _tuple(names: Sequence[cst.Name]) -> cst.Tuple:
    return cst.Tuple([cst.Element(n) for n in names])

