"""The worker initializer both load-per-worker fixes build (MPL201, MPL301): a module global
that starts as ``None``, a function that fills it in each worker, the pool's or executor's
``initializer=``/``initargs=``, and the place before the task function where they go."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from mplint.fixers.base import keyword_arg, separated, spaced, split_blank_lines


def initializer(module: cst.Module, global_name: str, init_name: str, params: Sequence[str],
                value: str, body: Sequence[cst.BaseStatement] = ()) -> list[cst.BaseStatement]:
    """``<global_name> = None`` and ``def <init_name>(params)`` that runs ``body`` and sets
    the global to ``value``, as module statements in the module's newline and indent. The
    first statement of ``body`` keeps its comments, not its blank lines."""
    newline, indent = module.default_newline, module.default_indent
    source = (f"{global_name} = None{newline}{newline}{newline}"
              f"def {init_name}({', '.join(params)}):{newline}"
              f"{indent}global {global_name}{newline}"
              f"{indent}{global_name} = {value}{newline}")
    added: list[cst.BaseStatement] = list(cst.parse_module(source).body)
    if not body:
        return added
    function = added[-1]
    assert isinstance(function, cst.FunctionDef) and isinstance(function.body, cst.IndentedBlock)
    declare, assign = function.body.body
    first = body[0].with_changes(leading_lines=[
        line for line in getattr(body[0], "leading_lines", ()) if line.comment is not None])
    added[-1] = function.with_changes(body=function.body.with_changes(
        body=[declare, first, *body[1:], assign]))
    return added


def with_initializer(call: cst.Call, init_name: str,
                     initargs: Sequence[cst.BaseExpression]) -> cst.Call:
    """The pool's or executor's creation with ``initializer=`` (and ``initargs=``) added."""
    extra = [keyword_arg("initializer", cst.Name(init_name))]
    if initargs:
        extra.append(keyword_arg("initargs", cst.Tuple([cst.Element(e) for e in initargs])))
    return call.with_changes(args=separated([*call.args, *extra]))


def insert_before(body: Sequence[cst.BaseStatement], at: int,
                  added: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """``body`` with ``added`` before its statement ``at`` (the task function), which moves
    down with two blank lines before it; PEP 8's blank lines around what is added."""
    blank, function = split_blank_lines(body[at])
    first = spaced(added[0], blank, body[at - 1] if at else None)
    function = function.with_changes(
        leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *getattr(function, "leading_lines", ())])
    return [*body[:at], first, *added[1:], function, *body[at + 1:]]
