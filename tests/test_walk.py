"""The fast read-only walk visits what libcst's own traversal visits, in the same order."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from mplint.analysis._cst_fields import CHILD_FIELDS
from mplint.analysis.walk import SKIPPED_FIELDS, derive_child_fields, walk

ROOT = Path(__file__).resolve().parent.parent


def test_field_table_matches_the_installed_libcst() -> None:
    assert derive_child_fields() == CHILD_FIELDS, "run scripts/write_cst_fields.py"


class _Recorder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.seen.append(type(node).__name__)
        return True


class _Calls(cst.CSTVisitor):
    """Uses the hooks the analysis uses: node visits, field visits, leaves, skipping."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.events.append(f"call {cst.Module([]).code_for_node(node.func)}")

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self.events.append("lambda (skipped)")
        return False

    def visit_If_body(self, node: cst.If) -> None:
        self.events.append("if body")

    def leave_If_body(self, node: cst.If) -> None:
        self.events.append("end if body")

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.events.append(f"end def {original_node.name.value}")


class _WalkRecorder:
    """Answers every ``visit_<Node>`` hook the walk looks up by recording the node's type."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("visit_") and attr.count("_") == 1:
            return lambda node: self.seen.append(type(node).__name__)
        raise AttributeError(attr)


_PUNCTUATION = {
    "SimpleWhitespace", "ParenthesizedWhitespace", "TrailingWhitespace", "Newline", "EmptyLine",
    "Comment", "Comma", "Semicolon", "Dot", "Colon", "AssignEqual", "LeftParen", "RightParen",
    "LeftSquareBracket", "RightSquareBracket", "LeftCurlyBrace", "RightCurlyBrace",
    "Asynchronous", "ImportStar", "Add", "Subtract", "Multiply", "Divide", "Modulo", "Power",
    "FloorDivide", "MatrixMultiply", "LeftShift", "RightShift", "BitOr", "BitAnd", "BitXor",
    "And", "Or", "Not", "Minus", "Plus", "BitInvert", "Equal", "NotEqual", "LessThan",
    "LessThanEqual", "GreaterThan", "GreaterThanEqual", "In", "NotIn", "Is", "IsNot",
    "AddAssign", "SubtractAssign", "MultiplyAssign", "DivideAssign", "ModuloAssign",
    "PowerAssign", "FloorDivideAssign", "MatrixMultiplyAssign", "LeftShiftAssign",
    "RightShiftAssign", "BitOrAssign", "BitAndAssign", "BitXorAssign",
}


def _sources() -> list[Path]:
    return sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "mplint").rglob("*.py"))


@pytest.mark.slow
def test_walk_visits_code_nodes_in_libcst_order() -> None:
    assert "operator" in SKIPPED_FIELDS
    for path in _sources():
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        theirs, ours = _Recorder(), _WalkRecorder()
        module.visit(theirs)
        walk(module, ours)  # type: ignore[arg-type]
        # libcst's order without the punctuation and whitespace nodes the walk skips
        assert ours.seen == [n for n in theirs.seen if n not in _PUNCTUATION], path


def test_walk_calls_node_field_and_leave_hooks_like_libcst() -> None:
    source = ("def outer(x):\n    if x:\n        run(lambda: hidden())\n"
              "    else:\n        stop()\n    return done(x)\n")
    module = cst.parse_module(source)
    theirs, ours = _Calls(), _Calls()
    module.visit(theirs)
    walk(module, ours)
    assert ours.events == theirs.events == [
        "if body", "call run", "lambda (skipped)", "end if body", "call stop", "call done",
        "end def outer"]
