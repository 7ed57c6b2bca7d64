"""MPL102: move heavy module-level statements to the top of the main guard.

Unsafe: the names they bind no longer exist for code that imports the module. Offered only
when nothing else in the module (functions, classes, other module-level statements) reads
those names, so only the guard sees them, and the guard is the module's last statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from mplint.fixers.base import UNSAFE, Fixer, is_plain_guard, names_bound, names_read

_PINNED = "names it binds are used outside the main guard (e.g. by a task function)"


def move_into_guard_fixers(module: cst.Module, guard: cst.If | None,
                           heavy: Sequence[cst.CSTNode]) -> dict[cst.CSTNode, Fixer | str]:
    """For each statement of ``heavy`` (top-level statements), by id: the fix that moves every
    movable one into the guard, or why this one cannot move."""
    found = _fixer(module, guard, heavy)
    if isinstance(found, str):
        return {s: found for s in heavy}
    fixer, moving = found
    return {s: fixer if s in moving else (
        _PINNED if isinstance(s, cst.SimpleStatementLine) else "it is part of a compound "
        "statement") for s in heavy}


def _fixer(module: cst.Module, guard: cst.If | None,
           heavy: Sequence[cst.CSTNode]) -> tuple[Fixer, set[cst.CSTNode]] | str:
    if guard is None or not is_plain_guard(guard):
        return "the module has no plain main guard to move it into"
    if module.body[-1] is not guard:
        return "code follows the main guard"
    moving = [s for s in heavy if isinstance(s, cst.SimpleStatementLine)]
    changed = True
    while changed:  # a statement that stays can pin the statements whose names it reads
        kept = [s for s in module.body if s is not guard and all(s is not m for m in moving)]
        read_outside = set().union(*(names_read(s) for s in kept)) if kept else set()
        still = [s for s in moving if not names_bound(s) & read_outside]
        changed = len(still) != len(moving)
        moving = still
    if not moving:
        return _PINNED
    names = sorted(set().union(*(names_bound(s) for s in moving)))
    shown = ", ".join(f"`{n}`" for n in names) if names else "nothing"
    ids: set[cst.CSTNode] = set(moving)

    def rewrite(tree: cst.Module) -> cst.Module:
        body = [s for s in tree.body if s not in ids]
        assert isinstance(guard.body, cst.IndentedBlock)
        moved = [s.with_changes(leading_lines=[]) if i == 0 else s
                 for i, s in enumerate(moving)]
        inner = guard.body.with_changes(body=[*moved, *guard.body.body])
        return tree.with_changes(body=[guard.with_changes(body=inner) if s is guard else s
                                       for s in body])

    return Fixer(UNSAFE, f"move it under the main guard (importers lose {shown})", rewrite), ids
