"""MPL207's fix: move the notebook's own functions and classes that workers need into a module
beside the notebook, and import them where the first of them was defined.

A definition moves with the imports it reads and the other definitions of the notebook it
reads (they move too); one that reads a variable a cell sets, or declares a global, stays, and
the fix says why: in a module it would see that module's globals, not the notebook's.
"""

from __future__ import annotations

import builtins
import keyword
import re
import symtable
from dataclasses import dataclass
from pathlib import PurePath

import libcst as cst

from mplint.fixers.base import UNSAFE, Fixer, names_bound

_Definition = cst.FunctionDef | cst.ClassDef


@dataclass(frozen=True)
class _Plan:
    moved: list[_Definition]  # in the module's order
    imports: list[cst.SimpleStatementLine]  # the module-level imports they read, in order


def module_name(notebook: str) -> str:
    """The name of the module the definitions of the notebook file ``notebook`` move into."""
    stem = re.sub(r"\W+", "_", PurePath(notebook).stem).strip("_") or "notebook"
    if stem[0].isdigit() or keyword.iskeyword(stem):
        stem = f"nb_{stem}"
    return f"{stem}_tasks"


def move_fixer(module: cst.Module, wanted: list[_Definition], notebook: str) -> Fixer | str:
    """The fix that moves the notebook's definitions ``wanted`` into a new module, or why it
    cannot be made."""
    plan = _plan(module, wanted)
    if isinstance(plan, str):
        return plan
    target = module_name(notebook)
    moved = plan.moved
    header = f"# Moved out of {PurePath(notebook).name} so that worker processes can import them.\n"
    parts = [header, *(module.code_for_node(s.with_changes(leading_lines=[]))
                       for s in plan.imports)]
    body = "\n\n".join(module.code_for_node(d.with_changes(leading_lines=[])).rstrip("\n") + "\n"
                       for d in moved)
    content = "".join(parts) + "\n\n" + body
    imported = ", ".join(d.name.value for d in moved)
    statement = cst.parse_statement(f"from {target} import {imported}\n")

    def rewrite(tree: cst.Module) -> cst.Module:
        return _replaced(tree, moved, statement)

    what = "them" if len(moved) > 1 else f"`{moved[0].name.value}`"
    return Fixer(UNSAFE, f"move {what} into {target}.py beside the notebook and import "
                 f"{'them' if len(moved) > 1 else 'it'}", rewrite=rewrite,
                 creates=((f"{target}.py", content),))


def _replaced(tree: cst.Module, moved: list[_Definition],
              statement: cst.BaseStatement) -> cst.Module:
    """``tree`` with the ``moved`` definitions taken out, ``statement`` where the first was;
    the comments above each (the cell marks among them) stay where they were."""
    body: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for node in tree.body:
        if node is moved[0]:
            body.append(statement.with_changes(leading_lines=[*carried, *node.leading_lines]))
            carried = []
        elif any(node is d for d in moved):
            carried.extend(node.leading_lines)
        elif carried:
            body.append(node.with_changes(leading_lines=[*carried, *node.leading_lines]))
            carried = []
        else:
            body.append(node)
    footer = [*carried, *tree.footer]
    return tree.with_changes(body=body, footer=footer)


def _plan(module: cst.Module, wanted: list[_Definition]) -> _Plan | str:
    definitions: dict[str, list[_Definition]] = {}
    imports: dict[str, cst.SimpleStatementLine] = {}
    state: set[str] = set()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            definitions.setdefault(statement.name.value, []).append(statement)
        elif _is_import(statement):
            assert isinstance(statement, cst.SimpleStatementLine)
            for bound in names_bound(statement):
                imports[bound] = statement
        else:
            state |= names_bound(statement)
    todo = list(wanted)
    moved: list[_Definition] = []
    needed: list[cst.SimpleStatementLine] = []
    while todo:
        definition = todo.pop(0)
        name = definition.name.value
        if not any(definition is d for d in definitions.get(name, [])):
            return f"`{name}` is defined inside a block, not at the top of a cell"
        if any(definition is d for d in moved):
            continue
        if any(name == d.name.value for d in moved):
            return f"two definitions of `{name}` would move into one module"
        moved.append(definition)
        free = _free_names(module.code_for_node(definition.with_changes(leading_lines=[])))
        if isinstance(free, str):
            return f"`{name}` {free}"
        for read in sorted(free - {name}):
            if read in state:
                return (f"`{name}` reads `{read}`, which a cell sets and a module would not "
                        "see; pass it as an argument")
            if read in definitions:
                if len(definitions[read]) > 1:
                    return (f"`{name}` reads `{read}`, which the notebook defines more than "
                            "once")
                todo.append(definitions[read][0])
            elif read in imports and imports[read] not in needed:
                needed.append(imports[read])
    order = {id(s): i for i, s in enumerate(module.body)}
    return _Plan(sorted(moved, key=lambda d: order[id(d)]),
                 sorted(needed, key=lambda s: order[id(s)]))


def _is_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)


def _free_names(code: str) -> set[str] | str:
    """The module-level names the definition in ``code`` reads (decorators, bases and
    defaults included), builtins left out; or why it cannot move."""
    table = symtable.symtable(code, "<definition>", "exec")
    found = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    stack = list(table.get_children())
    while stack:
        inner = stack.pop()
        stack.extend(inner.get_children())
        for symbol in inner.get_symbols():
            if symbol.is_declared_global():
                return f"declares `global {symbol.get_name()}`, a variable of the notebook"
            if inner.get_type() == "class":
                free = symbol.is_referenced() and not symbol.is_local() and not symbol.is_free()
            else:
                free = symbol.is_global()
            if free:
                found.add(symbol.get_name())
    return {name for name in found if not hasattr(builtins, name)}
