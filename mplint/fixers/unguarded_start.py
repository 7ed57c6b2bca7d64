"""MPL101: move a module's script part under ``if __name__ == "__main__":``.

Imports, functions, classes, constants and everything that runs before the first process start
stay at module level, where children importing the module find them. The statements from the
first start on move into the guard (an existing one, or a new one at the end of the module).
The fix is safe when no definition that stays reads a name a moved statement binds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import libcst as cst

from mplint.analysis import ModuleFacts, start_method_argument
from mplint.fixers.base import (
    SAFE,
    UNSAFE,
    Fixer,
    contains,
    is_plain_guard,
    names_bound,
    names_read,
    quote,
    split_blank_lines,
)


@dataclass(frozen=True)
class _Plan:
    moved: tuple[int, ...]  # indexes of the module's statements that move into the guard
    conflict: str | None  # why moving is unsafe, if it is


def guard_fixer(facts: ModuleFacts, starts: Sequence[cst.CSTNode]) -> Fixer | str:
    """The fix for every import-time start in the module, or why there is none."""
    module, guard = facts.record.module, facts.record.main_guard
    if guard is not None and (not is_plain_guard(guard) or guard not in module.body):
        return "the module's main guard is not a plain top-level `if __name__ == \"__main__\":`"
    holding = {i for i, stmt in enumerate(module.body)
               if any(contains(stmt, start) for start in starts)}
    if not holding:
        return "the start is not in a top-level statement"
    plan = _plan(module.body, holding, guard)
    if plan.conflict is None and guard is not None and _chosen_method(guard) not in (
            None, "fork") and facts.spawn.differences:
        # the moved starts now follow the guard's choice instead of using the default
        plan = replace(plan, conflict=(
            f"the starts would use the guard's start method; under it, "
            f"{facts.spawn.differences[0].text}"))
    safety = SAFE if plan.conflict is None else UNSAFE
    title = 'move the script part under `if __name__ == "__main__":`'
    if plan.conflict is not None:
        title += f" ({plan.conflict})"
    return Fixer(safety, title, lambda tree: _rewrite(tree, plan.moved, guard))


def _plan(body: Sequence[cst.BaseStatement], holding: set[int], guard: cst.If | None) -> _Plan:
    first = min(holding)
    needed: set[str] = set()
    for statement in body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            needed |= names_read(statement)
    moved: list[int] = []
    moved_names: set[str] = set()
    conflict = None
    earlier = set().union(*(names_bound(statement) for statement in body[:first]))
    for index, statement in enumerate(body):
        if index < first or statement is guard:
            continue
        rebinds = bool(names_bound(statement) & earlier)
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)) and not rebinds:
            continue  # children need it; reading moved names is the conflict noted below
        reads_moved = bool(names_read(statement) & moved_names)
        if _is_definition(statement) and not reads_moved and not rebinds:
            continue  # bound once: whether before or after the start, nothing sees a change
        bound = names_bound(statement)
        if bound & needed and not reads_moved and index not in holding:
            # a definition reads it: it keeps running on import, now before the first start
            if conflict is None:
                conflict = (f"`{sorted(bound & needed)[0]}` is set after the first start and a "
                            "definition reads it: kept on import, it would be set before it")
            continue
        if bound & needed and conflict is None:
            conflict = f"a definition that stays reads `{sorted(bound & needed)[0]}`"
        moved.append(index)
        moved_names |= bound
    return _Plan(tuple(moved), conflict)


def _is_definition(statement: cst.CSTNode) -> bool:
    """Statements children need when they import the module, and that start nothing."""
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return True
    if isinstance(statement, cst.SimpleStatementLine):
        return all(_is_static(small) for small in statement.body)
    if isinstance(statement, cst.If) and "TYPE_CHECKING" in names_read(statement.test):
        return True
    if isinstance(statement, (cst.If, cst.Try)):
        blocks = [statement.body, *(h.body for h in getattr(statement, "handlers", ()))]
        return all(isinstance(block, cst.IndentedBlock) and all(_is_definition(s)
                   for s in block.body) for block in blocks)
    return False


def _is_static(small: cst.BaseSmallStatement) -> bool:
    if isinstance(small, (cst.Import, cst.ImportFrom, cst.Pass, cst.Global)):
        return True
    if isinstance(small, cst.Expr):
        return isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
    if isinstance(small, cst.Assign):
        return all(_plain_target(t.target) for t in small.targets) and not _has_call(small.value)
    if isinstance(small, cst.AnnAssign):
        return _plain_target(small.target) and (small.value is None or not _has_call(small.value))
    return False


def _plain_target(target: cst.BaseExpression) -> bool:
    """Names only: ``x.attr = v`` and ``x[k] = v`` change an object, they define nothing."""
    if isinstance(target, cst.Name):
        return True
    if isinstance(target, (cst.Tuple, cst.List)):
        return all(_plain_target(e.value) for e in target.elements)
    return isinstance(target, cst.StarredElement) and _plain_target(target.value)


def _has_call(node: cst.CSTNode) -> bool:
    from mplint.analysis import children

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Call, cst.Await, cst.Yield, cst.NamedExpr)):
            return True
        stack.extend(children(current))
    return False


def _chosen_method(guard: cst.If) -> str | None:
    """The start method the guard chooses before the moved starts, if it chooses one."""
    assert isinstance(guard.body, cst.IndentedBlock)
    own = list(guard.body.body)
    count = _choice_first(own)
    call = _call_statement(own[count - 1]) if count else None
    return start_method_argument(call) if call is not None else None


def _choice_first(body: Sequence[cst.BaseStatement]) -> int:
    """How many statements at the top of the guard choose the start method and must run
    before the moved starts: up to the last ``set_start_method(...)``, when nothing but
    imports and ``freeze_support()`` comes before it."""
    count = 0
    for index, statement in enumerate(body):
        call = _call_statement(statement)
        name = _callee_name(call) if call is not None else None
        if name == "set_start_method":
            count = index + 1
        elif name != "freeze_support" and not (
                isinstance(statement, cst.SimpleStatementLine)
                and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body)):
            break
    return count


def _call_statement(statement: cst.BaseStatement) -> cst.Call | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            return small.value
    return None


def _callee_name(call: cst.Call) -> str | None:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else None


def _rewrite(module: cst.Module, moved: tuple[int, ...], guard: cst.If | None) -> cst.Module:
    body = list(module.body)
    guard_index = body.index(guard) if guard is not None else len(body)
    before: list[cst.BaseStatement] = [_unindented_blanks(body[i]) for i in moved
                                       if i < guard_index]
    after = [_unindented_blanks(body[i]) for i in moved if i > guard_index]
    kept = [s for i, s in enumerate(body) if i not in moved]
    if guard is not None:
        assert isinstance(guard.body, cst.IndentedBlock)
        own: list[cst.BaseStatement] = list(guard.body.body)
        chosen = _choice_first(own)  # the guard's start method is chosen before any start
        if before:
            before[0] = split_blank_lines(before[0])[1]
        inner: list[cst.BaseStatement] = [*own[:chosen], *before, *own[chosen:], *after]
        inner[0] = split_blank_lines(inner[0])[1]
        new_guard = guard.with_changes(body=guard.body.with_changes(body=inner))
        return module.with_changes(body=[new_guard if s is guard else s for s in kept])
    blank, first = split_blank_lines(before[0])
    test = cst.parse_expression(f"__name__ == {quote(module, '__main__')}")
    new_guard = cst.If(test=test, body=cst.IndentedBlock(body=[first, *before[1:]]),
                       leading_lines=blank)
    return module.with_changes(body=[*kept, new_guard])


def _unindented_blanks(statement: cst.BaseStatement) -> cst.BaseStatement:
    """The statement with the blank lines above it written without the guard's indentation
    (an indented blank line is trailing whitespace, W293); comment lines keep theirs."""
    lines = getattr(statement, "leading_lines", ())
    if not any(line.comment is None and line.indent for line in lines):
        return statement
    return statement.with_changes(leading_lines=[
        line.with_changes(indent=False) if line.comment is None else line for line in lines])
