"""MPL103 and MPL104: choose the start method once, as the first statement of the main guard.

The call goes through the module's own name for multiprocessing (``mp.set_start_method``),
and ``import multiprocessing`` is scheduled when the module has none. A module-level
``set_start_method`` call moves into the guard (or goes away when the guard already chooses);
these are safe: the guard runs once, in the parent, before anything can have fixed the
default. In library code (no guard) it goes away and the module's own starts use
``get_context(method)``: unsafe, since a program importing the module may rely on its choice.
"""

from __future__ import annotations

import libcst as cst

from mplint.analysis import BindingKind, CallSite, ModuleFacts, Scope, start_method_argument
from mplint.fixers.base import (
    SAFE,
    UNSAFE,
    Fixer,
    is_plain_guard,
    quote,
    split_blank_lines,
    without,
)
from mplint.knowledge import ApiKind

_MODULES = ("torch.multiprocessing", "multiprocessing")


def insert_fixer(facts: ModuleFacts, method: str = "spawn") -> Fixer | str:
    """Insert ``set_start_method(method)`` at the top of the guard (after a leading
    ``freeze_support()``). Safe only where the module's starts do the same under spawn as under
    fork; not offered where the default context is fixed before the guard runs."""
    guard = facts.record.main_guard
    if guard is None:
        return "the module has no main guard to choose the start method in (fix MPL101 first)"
    if not is_plain_guard(guard):
        return "the module's main guard is not a plain `if __name__ == \"__main__\":`"
    fixed = facts.spawn.default_fixed_on_import
    if fixed is not None:
        return (f"{fixed.what} fixes the default start method before the main guard runs, "
                "so a set_start_method() there would raise \"context has already been set\"")
    callee, needs_import = _set_start_method_name(facts.record.scope)

    def rewrite(module: cst.Module) -> cst.Module:
        call = cst.parse_statement(f"{callee}({quote(module, method)})\n")
        return _prepend_to_guard(module, guard, call)

    title = f'call `{callee}("{method}")` first in the main guard'
    imports = ("multiprocessing",) if needs_import else ()
    differences = facts.spawn.differences
    if differences:
        return Fixer(UNSAFE, f"{title} (unsafe: {differences[0].text})", rewrite, imports=imports)
    return Fixer(SAFE, title, rewrite, imports=imports)


def move_fixer(facts: ModuleFacts, call: CallSite, statement: cst.SimpleStatementLine | None,
               chosen_in_guard: bool = False) -> Fixer | str:
    """Move a module-level ``set_start_method(...)`` statement to the top of the guard; when
    the guard already chooses the start method, remove it. Not offered where code between the
    call and the guard fixes the default context or starts processes: the call would come
    after it."""
    guard = facts.record.main_guard
    if statement is None or len(statement.body) != 1:
        return "the call is not a statement of its own at module level"
    if guard is None or not is_plain_guard(guard):
        return "the module has no plain main guard to move it into"
    already = facts.spawn.default_fixed_before(call)
    if already is not None:
        return (f"{already.what} fixes the default start method before the call, so it raises "
                "where it is; moved, it would raise after other code has run")
    between = facts.spawn.default_fixed_between(call.order, facts.spawn.guard_order)
    if between is not None:
        return (f"{between.what} runs between the call and the main guard and fixes the default "
                "start method: the call must come before it")
    if chosen_in_guard:
        return Fixer(SAFE, "remove it: the main guard already chooses the start method",
                     lambda module: without(module, statement))

    def rewrite(module: cst.Module) -> cst.Module:
        body = [s for s in module.body if s is not statement]
        moved = split_blank_lines(statement)[1]  # its comments move with it
        return _prepend_to_guard(module.with_changes(body=body), guard, moved)

    return Fixer(SAFE, 'move the call to the top of `if __name__ == "__main__":`', rewrite)


def _set_start_method_name(scope: Scope) -> tuple[str, bool]:
    """How this module spells ``set_start_method``, and whether an import must be added."""
    imported = [(name, b.qualname) for name, bindings in scope.bindings.items()
                for b in bindings if b.kind is BindingKind.IMPORT and b.qualname]
    for wanted in (*(f"{m}.set_start_method" for m in _MODULES), *_MODULES):
        for name, qualname in imported:
            if qualname == wanted:
                return (name if wanted.endswith("set_start_method")
                        else f"{name}.set_start_method"), False
    return "multiprocessing.set_start_method", True


def _prepend_to_guard(module: cst.Module, guard: cst.If,
                      statement: cst.BaseStatement) -> cst.Module:
    """``statement`` first in the guard, after the ``freeze_support()`` call that must stay
    first there."""
    assert isinstance(guard.body, cst.IndentedBlock)
    body = list(guard.body.body)
    position = 1 if body and _is_freeze_support(body[0]) else 0
    inner = [*body[:position], statement, *body[position:]]
    new_guard = guard.with_changes(body=guard.body.with_changes(body=inner))
    return module.with_changes(body=[new_guard if s is guard else s for s in module.body])


def _is_freeze_support(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Call):
        return False
    func = small.value.func
    name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
    return name == "freeze_support"


def context_fixer(facts: ModuleFacts, statement: cst.SimpleStatementLine | None,
                  call: cst.Call) -> Fixer | str:
    """Library code: drop the module-level ``set_start_method(method)`` and create this
    module's processes, pools and queues from ``get_context(method)`` instead, leaving the
    global default to the program that imports it."""
    method = start_method_argument(call)
    if statement is None or len(statement.body) != 1:
        return "the call is not a statement of its own at module level"
    if method is None or method == "dynamic":
        return "the start method is not a string literal"
    edits: dict[cst.Call, cst.Call] = {}
    needs_import = False
    for site, kind in _default_context_calls(facts):
        edited = _in_context(site.node, kind, quote(facts.record.module, method),
                             facts.record.scope)
        if edited is None:
            callee = cst.Module([]).code_for_node(site.node.func)
            return f"`{callee}(...)` cannot be given a context"
        edits[site.node], added = edited
        needs_import = needs_import or added

    if not edits:
        return ("the module starts no processes of its own: the call chooses the start method "
                "for the programs that import it")

    def rewrite(module: cst.Module) -> cst.Module:
        return without(module, statement)

    # unsafe: a program that imports this module may rely on the start method it sets
    return Fixer(UNSAFE, f'create this module\'s processes from `get_context("{method}")` and '
                         "leave the global start method to the program", rewrite,
                 replace=list(edits.items()), imports=("multiprocessing",) if needs_import else ())


def _default_context_calls(facts: ModuleFacts) -> list[tuple[CallSite, ApiKind]]:
    found: list[tuple[CallSite, ApiKind]] = [
        (start.site, start.obj.kind) for start in facts.starts
        if start.obj.method is None and start.obj.kind is not ApiKind.SPAWN
        and start.via is None]  # a call into another module has no context to rewrite
    found += [(site, ApiKind.FIXES_DEFAULT) for site, _ in facts.default_fixers]
    return found


def _in_context(call: cst.Call, kind: ApiKind, method: str,
                scope: Scope) -> tuple[cst.Call, bool] | None:
    """The call made through ``get_context(method)`` (``method`` is a string literal), and
    whether multiprocessing must be imported for it; None when the call's shape does not allow
    it."""
    literal = cst.SimpleString(method)
    if kind is ApiKind.EXECUTOR:
        if any(a.keyword and a.keyword.value == "mp_context" for a in call.args):
            return None
        module, needs_import = _module_name(scope)
        context = cst.parse_expression(f"{module}.get_context({method})")
        tight = cst.SimpleWhitespace("")
        arg = cst.Arg(context, keyword=cst.Name("mp_context"), equal=cst.AssignEqual(tight, tight))
        args = list(call.args)
        if args:
            args[-1] = args[-1].with_changes(comma=cst.Comma(
                whitespace_after=cst.SimpleWhitespace(" ")))
        return call.with_changes(args=[*args, arg]), needs_import
    func = call.func
    if isinstance(func, cst.Attribute):  # mp.Pool(...) -> mp.get_context("spawn").Pool(...)
        getter = cst.Call(cst.Attribute(func.value, cst.Name("get_context")), [cst.Arg(literal)])
        return call.with_changes(func=func.with_changes(value=getter)), False
    if isinstance(func, cst.Name):  # Pool(...) from ``from multiprocessing import Pool``
        module, needs_import = _module_name(scope)
        context = cst.parse_expression(f"{module}.get_context({method})")
        return call.with_changes(func=cst.Attribute(context, cst.Name(func.value))), needs_import
    return None


def _module_name(scope: Scope) -> tuple[str, bool]:
    name, needs_import = _set_start_method_name(scope)
    if name.endswith(".set_start_method"):
        return name.rpartition(".")[0], needs_import
    return "multiprocessing", True
