"""What a fix is, and the small tree helpers the fixers share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import libcst as cst

from mplint.analysis import children, main_guard_test, name_reads
from mplint.findings import NO_FIX, SAFE, UNSAFE

__all__ = ["SAFE", "UNSAFE", "Fixer", "no_fix"]


@dataclass(frozen=True)
class Fixer:
    """A rule's offer to rewrite the module its finding is in, in the few verbs fixes share.

    The nodes named are those of the module the finding was reported on. ``apply`` runs, in
    order: ``rewrite``, a callback for what the verbs cannot say (moving statements under the
    main guard); ``replace``, each node by its replacement; ``keywords``, keyword arguments
    added to a call; ``imports``, modules imported where the result does not import them yet.
    ``creates`` are new files (name, content) written beside the linted file with the fix.
    The engine refuses results that do not parse or that keep the finding.
    """

    safety: str
    title: str
    rewrite: Callable[[cst.Module], cst.Module] | None = None
    replace: Sequence[tuple[cst.CSTNode, cst.CSTNode]] = ()
    keywords: Sequence[tuple[cst.Call, Sequence[cst.Arg]]] = ()
    imports: tuple[str, ...] = ()
    tidy: bool = False  # drop the module-level imports the fix left unused
    creates: tuple[tuple[str, str], ...] = ()

    def apply(self, module: cst.Module) -> cst.Module:
        """The fixed module."""
        original = module
        if self.rewrite is not None:
            module = self.rewrite(module)  # keeps the identity of the nodes it does not touch
        if self.replace or self.keywords:
            module = module.visit(_Edits(self.replace, self.keywords))
        for name in self.imports:
            module = _import(module, name)
        return drop_unused_imports(original, module) if self.tidy else module


def drop_unused_imports(before: cst.Module, after: cst.Module) -> cst.Module:
    """``after`` without the names its top-level imports bind that ``before`` used and
    ``after`` no longer uses; an import left with no name goes, its comments stay."""
    used_before, used_after = _uses_outside_imports(before), _uses_outside_imports(after)
    for statement in list(after.body):
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            continue
        small = statement.body[0]
        if not isinstance(small, (cst.Import, cst.ImportFrom)) or isinstance(
                small.names, cst.ImportStar):
            continue
        if isinstance(small, cst.ImportFrom) and getattr(small.module, "value", "") == \
                "__future__":
            continue
        kept = [alias for alias in small.names
                if not (used_before[_bound(alias)] and not used_after[_bound(alias)])]
        if len(kept) == len(small.names):
            continue
        if kept:
            trimmed = small.with_changes(names=separated(kept))
            if isinstance(small, cst.ImportFrom) and small.rpar is not None and len(kept) == 1:
                trimmed = trimmed.with_changes(lpar=None, rpar=None)
            after = after.with_changes(body=[s.with_changes(body=[trimmed])
                                             if s is statement else s for s in after.body])
        else:
            after = without(after, statement)
    return after


def _bound(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    top: cst.BaseExpression = alias.name
    while isinstance(top, cst.Attribute):
        top = top.value
    return top.value if isinstance(top, cst.Name) else ""


def _uses_outside_imports(module: cst.Module) -> Counter[str]:
    uses: Counter[str] = Counter()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine) and all(
                isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body):
            continue
        uses.update(name.value for name in name_reads(statement))
    return uses


def _import(module: cst.Module, name: str) -> cst.Module:
    """``module`` with ``import name`` among its first imports, unless it has it already."""
    body = list(module.body)
    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine) and any(
                isinstance(small, cst.Import) and any(
                    alias.asname is None and alias.evaluated_name == name
                    for alias in small.names)
                for small in statement.body):
            return module
    # after the docstring, ``from __future__`` and the imports that open the module
    position = 0
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        small = statement.body[0] if statement.body else None
        opening = (isinstance(small, (cst.Import, cst.ImportFrom))
                   or (index == 0 and isinstance(small, cst.Expr)
                       and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))))
        if not opening:
            break
        position = index + 1
    line = cst.parse_statement(f"import {name}{module.default_newline}")
    if position == 0 and body:  # keep the comments above the first statement on top
        first = body[0]
        line = line.with_changes(leading_lines=first.leading_lines)
        body[0] = first.with_changes(leading_lines=())
    return module.with_changes(body=[*body[:position], line, *body[position:]])


class _Edits(cst.CSTTransformer):
    """Applies a fixer's replacements and added keywords in one pass."""

    def __init__(self, replace: Sequence[tuple[cst.CSTNode, cst.CSTNode]],
                 keywords: Sequence[tuple[cst.Call, Sequence[cst.Arg]]]) -> None:
        super().__init__()
        self.replace: dict[cst.CSTNode, cst.CSTNode] = dict(replace)
        self.keywords: dict[cst.CSTNode, Sequence[cst.Arg]] = dict(keywords)

    def on_leave(self, original_node: cst.CSTNode,  # type: ignore[override]
                 updated_node: cst.CSTNode) -> cst.CSTNode:
        if original_node in self.replace:
            return self.replace[original_node]
        if isinstance(updated_node, cst.Call) and original_node in self.keywords:
            added = self.keywords[original_node]
            return updated_node.with_changes(args=separated([*updated_node.args, *added]))
        return updated_node


_Item = TypeVar("_Item", cst.Arg, cst.Param, cst.Element)


def separated(items: Sequence[_Item]) -> list[_Item]:
    """Items separated by ", " as libcst writes them, without a trailing comma."""
    out: list[_Item] = []
    for position, item in enumerate(items):
        if position == len(items) - 1:
            out.append(item.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        elif isinstance(item.comma, cst.MaybeSentinel):
            out.append(item.with_changes(comma=cst.Comma(
                whitespace_after=cst.SimpleWhitespace(" "))))
        else:
            out.append(item)
    return out


def keyword_arg(keyword: str, value: cst.BaseExpression) -> cst.Arg:
    """``keyword=value`` written without spaces around ``=``."""
    tight = cst.SimpleWhitespace("")
    return cst.Arg(value, keyword=cst.Name(keyword), equal=cst.AssignEqual(tight, tight))


def quote(module: cst.Module, text: str) -> str:
    """``text`` as a string literal in the quotes most of ``module``'s one-line strings use
    (double when there are none or as many)."""
    counts = Counter[str]()
    stack: list[cst.CSTNode] = [module]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.SimpleString):
            body = current.value.lstrip("rbuRBUfF")
            if body[:3] not in ("'" * 3, '"' * 3):
                counts[body[:1]] += 1
        else:
            stack.extend(children(current))
    mark = "'" if counts["'"] > counts['"'] else '"'
    return f"{mark}{text}{mark}"


def no_fix(message: str, reason: str) -> str:
    """A finding's message, saying why no automatic fix is offered."""
    return f"{message}{NO_FIX}{reason})"


def contains(tree: cst.CSTNode, target: cst.CSTNode) -> bool:
    """Whether ``target`` is ``tree`` or one of its descendants."""
    stack = [tree]
    while stack:
        current = stack.pop()
        if current is target:
            return True
        stack.extend(children(current))
    return False


def names_read(tree: cst.CSTNode) -> set[str]:
    """Every plain name ``tree`` reads (attribute and keyword names are not reads)."""
    return {name.value for name in name_reads(tree)}


def names_bound(statement: cst.CSTNode) -> set[str]:
    """The module-level names a top-level statement binds."""
    found: set[str] = set()
    for node in _walk_bindings(statement):
        if isinstance(node, cst.Name):
            found.add(node.value)
    return found


def _walk_bindings(statement: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [statement]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            yield current.name
            continue
        if isinstance(current, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For,
                                cst.NamedExpr)):
            yield from _target_names(current.target)
        elif isinstance(current, cst.AsName):
            yield from _target_names(current.name)
        elif isinstance(current, (cst.Import, cst.ImportFrom)) and not isinstance(
                current.names, cst.ImportStar):
            for alias in current.names:
                if alias.asname is None:
                    top: cst.BaseExpression = alias.name
                    while isinstance(top, cst.Attribute):
                        top = top.value
                    yield top
        if not isinstance(current, (cst.Lambda, cst.BaseComp)):
            stack.extend(children(current))


def _target_names(target: cst.BaseExpression) -> Iterator[cst.CSTNode]:
    if isinstance(target, cst.Name):
        yield target
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _target_names(target.value)


def is_plain_guard(node: cst.CSTNode) -> bool:
    """``if __name__ == "__main__":`` written the usual way, with an indented body."""
    return (isinstance(node, cst.If) and isinstance(node.body, cst.IndentedBlock)
            and main_guard_test(node.test) == "==")


def split_blank_lines(statement: cst.BaseStatement) -> tuple[list[cst.EmptyLine],
                                                              cst.BaseStatement]:
    """The blank lines before a statement's own comments, and the statement without them."""
    lines = list(getattr(statement, "leading_lines", ()))
    blank = 0
    while blank < len(lines) and lines[blank].comment is None:
        blank += 1
    if not blank:
        return [], statement
    return lines[:blank], statement.with_changes(leading_lines=lines[blank:])


def spaced(inserted: cst.BaseStatement, blank: Sequence[cst.EmptyLine],
           previous: cst.BaseStatement | None) -> cst.BaseStatement:
    """``inserted``, a statement a fix adds at module level after ``previous``, with the blank
    lines PEP 8 asks before it: two next to a function or class definition (flake8's E302 and
    E305), else the ``blank`` lines of the statement it is put in front of."""
    definitions = (cst.FunctionDef, cst.ClassDef)
    if previous is not None and (isinstance(previous, definitions)
                                 or isinstance(inserted, definitions)):
        blank = [cst.EmptyLine(), cst.EmptyLine()]
    return inserted.with_changes(leading_lines=list(blank))


def without(module: cst.Module, statement: cst.SimpleStatementLine) -> cst.Module:
    """``module`` without a top-level ``statement``; the comments above it and after it on
    its line stay, above the statement that follows (or at the end of the module)."""
    comments = list(statement.leading_lines)
    trailing = statement.trailing_whitespace.comment
    if trailing is not None:
        comments.append(cst.EmptyLine(comment=trailing))
    if all(line.comment is None for line in comments):
        comments = []
    body = list(module.body)
    index = body.index(statement)
    del body[index]
    if not comments:
        return module.with_changes(body=body)
    if index < len(body):
        following = body[index]
        body[index] = following.with_changes(
            leading_lines=[*comments, *following.leading_lines])
        return module.with_changes(body=body)
    return module.with_changes(body=body, footer=[*comments, *module.footer])
