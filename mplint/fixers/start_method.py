"""MPL103 and MPL104: choose the start method once, as the first statement of the main guard.

The call goes through the module's own name for multiprocessing (``mp.set_start_method``),
and ``import multiprocessing`` is scheduled when the module has none. A module-level
``set_start_method`` call moves into the guard. Both fixes are safe: the guard runs once, in
the parent, before anything can have fixed the default.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from mplint.analysis.scopes import BindingKind, Scope
from mplint.fixers.base import SAFE, Fixer, is_plain_guard, split_blank_lines

_MODULES = ("torch.multiprocessing", "multiprocessing")


def insert_fixer(scope: Scope, guard: cst.If | None, method: str = "spawn") -> Fixer | str:
    """Insert ``set_start_method(method)`` at the top of the guard."""
    if guard is None:
        return "the module has no main guard to choose the start method in (fix MPL101 first)"
    if not is_plain_guard(guard):
        return "the module's main guard is not a plain `if __name__ == \"__main__\":`"
    callee, needs_import = _set_start_method_name(scope)

    def rewrite(module: cst.Module) -> cst.Module:
        call = cst.parse_statement(f"{callee}({method!r})\n".replace("'", '"'))
        module = _prepend_to_guard(module, guard, call)
        if needs_import:
            context = CodemodContext()
            AddImportsVisitor.add_needed_import(context, "multiprocessing")
            module = AddImportsVisitor(context).transform_module(module)
        return module

    return Fixer(SAFE, f'call `{callee}("{method}")` first in the main guard', rewrite)


def move_fixer(statement: cst.SimpleStatementLine | None, guard: cst.If | None) -> Fixer | str:
    """Move a module-level ``set_start_method(...)`` statement to the top of the guard."""
    if statement is None or len(statement.body) != 1:
        return "the call is not a statement of its own at module level"
    if guard is None or not is_plain_guard(guard):
        return "the module has no plain main guard to move it into"

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
    assert isinstance(guard.body, cst.IndentedBlock)
    inner = [statement, *guard.body.body]
    new_guard = guard.with_changes(body=guard.body.with_changes(body=inner))
    return module.with_changes(body=[new_guard if s is guard else s for s in module.body])
