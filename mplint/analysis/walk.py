"""A fast read-only traversal of a libcst tree with ``CSTVisitor``'s dispatch.

``CSTNode.visit`` rebuilds and re-validates every node it passes, whitespace included, which
made it most of the cost of linting a file. Analysis never changes the tree, so this walk only
reads: it follows the fields that can hold code, in the order libcst visits them, and calls the
visitor's ``visit_<Node>``, ``visit_<Node>_<field>``, ``leave_<Node>_<field>`` and
``leave_<Node>`` methods as libcst would (a ``visit_<Node>`` returning False skips the children).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import libcst as cst

from mplint.analysis._cst_fields import CHILD_FIELDS

# Fields that hold only whitespace, comments, brackets and punctuation: nothing to analyse.
SKIPPED_FIELDS = frozenset({
    "asynchronous", "colon", "comma", "comment", "dot", "empty_lines", "equal", "first_colon",
    "first_line", "footer", "header", "last_line", "lbrace", "lbracket", "leading_lines",
    "leading_whitespace", "lines_after_decorators", "lpar", "newline", "operator",
    "posonly_ind", "rbrace", "rbracket", "relative", "rpar", "second_colon", "semicolon",
    "separator", "trailing_comma", "trailing_whitespace",
})

_Hook = Callable[[Any], object] | None
_Plan = tuple[_Hook, _Hook, tuple[tuple[str, _Hook, _Hook], ...]]


def child_fields(cls: type[cst.CSTNode]) -> tuple[str, ...]:
    """The code-holding fields of a node class, in libcst's visiting order."""
    known = CHILD_FIELDS.get(cls.__name__)
    if known is not None:
        return known
    # A node class newer than the table: its dataclass fields, in declaration order.
    return tuple(f.name for f in dataclasses.fields(cls)
                 if f.name not in SKIPPED_FIELDS and not f.name.startswith("whitespace"))


def walk(node: cst.CSTNode, visitor: cst.CSTVisitor,
         plans: dict[type, _Plan] | None = None) -> None:
    """Visit ``node`` and its descendants as ``node.visit(visitor)`` would, without rebuilding.
    ``plans`` carries the visitor's dispatch from one walk to the next with the same visitor."""
    plans = {} if plans is None else plans

    def plan(cls: type) -> _Plan:
        name = cls.__name__
        fields = tuple((f, getattr(visitor, f"visit_{name}_{f}", None),
                        getattr(visitor, f"leave_{name}_{f}", None)) for f in child_fields(cls))
        made = (getattr(visitor, f"visit_{name}", None), getattr(visitor, f"leave_{name}", None),
                fields)
        plans[cls] = made
        return made

    def go(current: cst.CSTNode) -> None:
        visit, leave, fields = plans.get(type(current)) or plan(type(current))
        if visit is None or visit(current) is not False:
            for name, enter_field, leave_field in fields:
                if enter_field is not None:
                    enter_field(current)
                child = getattr(current, name)
                if isinstance(child, cst.CSTNode):
                    go(child)
                elif isinstance(child, (list, tuple)):
                    for item in child:
                        if isinstance(item, cst.CSTNode):
                            go(item)
                if leave_field is not None:
                    leave_field(current)
        if leave is not None:
            leave(current)

    go(node)


def derive_child_fields() -> dict[str, tuple[str, ...]]:
    """Read the visiting order from the installed libcst (used to write and check the table)."""
    import inspect
    import re

    visits = re.compile(r'visit_(?:required|optional|sequence|body_sequence|sentinel|iterable|'
                        r'body_iterable)\(\s*self,\s*"(\w+)"')
    table: dict[str, tuple[str, ...]] = {}
    for name in dir(cst):
        cls = getattr(cst, name)
        if not (isinstance(cls, type) and issubclass(cls, cst.CSTNode)) or inspect.isabstract(cls):
            continue
        method = next((k.__dict__["_visit_and_replace_children"] for k in cls.__mro__
                       if "_visit_and_replace_children" in k.__dict__), None)
        if method is None or getattr(method, "__isabstractmethod__", False):
            continue
        found = visits.findall(inspect.getsource(method))
        table[cls.__name__] = tuple(dict.fromkeys(  # a field visited in two branches: once
            f for f in found if f not in SKIPPED_FIELDS and not f.startswith("whitespace")))
    return table


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The code-holding children of ``node`` (``node.children`` without the rebuilding)."""
    found: list[cst.CSTNode] = []
    for name in child_fields(type(node)):
        child = getattr(node, name)
        if isinstance(child, cst.CSTNode):
            found.append(child)
        elif isinstance(child, (list, tuple)):
            found.extend(item for item in child if isinstance(item, cst.CSTNode))
    return found


def own_nodes(tree: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The nodes of ``tree`` (a function: of its body), not those of the functions, classes
    and lambdas nested in it (the nested definition itself is yielded)."""
    stack: list[cst.CSTNode] = [tree.body if isinstance(tree, cst.FunctionDef) else tree]
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack.extend(children(current))


def main_guard_test(test: cst.BaseExpression) -> str | None:
    """``"=="`` for ``__name__ == "__main__"`` (either side first), ``"!="`` for the negated
    test, None for anything else."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    target = test.comparisons[0]
    sides = (test.left, target.comparator)
    if not (any(isinstance(s, cst.Name) and s.value == "__name__" for s in sides)
            and any(isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"
                    for s in sides)):
        return None
    if isinstance(target.operator, cst.Equal):
        return "=="
    return "!=" if isinstance(target.operator, cst.NotEqual) else None


def name_reads(tree: cst.CSTNode) -> list[cst.Name]:
    """Every plain name ``tree`` reads, in source order; attribute names (``x.attr``) and
    keyword names (``f(key=...)``) are not reads."""
    found: list[cst.Name] = []
    stack = [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.append(current)
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            stack.append(current.value)
        else:
            stack.extend(reversed(children(current)))
    return found


def dotted_name(node: cst.BaseExpression) -> str:
    """``a.b.c`` for the expression ``a.b.c`` (an import's module), "" for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted_name(node.value)}.{node.attr.value}"
    return ""
