"""What every fix must keep, checked on the whole file before and after it: each comment, and
each name bound before the module's own code reads it.

The second check follows the module's top-level code in execution order (``if`` and ``try``
branches may or may not run, loop bodies may not run at all, function bodies run when a call
at that point runs them) and counts the reads of a module-level name at a point where it may
not be bound yet. The count is compared before and after the fix, so the approximations it
makes cancel out: a fix is refused only when it adds such a read, as moving a statement above
the assignment or import it needs does.
"""

from __future__ import annotations

import io
import tokenize
from collections import Counter
from collections.abc import Iterable, Sequence

import libcst as cst

from mplint.analysis.walk import children


def problem(before: cst.Module, before_text: str, after: cst.Module,
            after_text: str) -> str | None:
    """Why the change from ``before`` to ``after`` is not a fix that keeps the code working,
    or None."""
    lost = comments(before_text) - comments(after_text)
    if lost:
        return f"it would drop the comment `{min(lost)}`"
    early = _early_reads(after) - _early_reads(before)
    if early:
        name = min(early)
        return f"the fixed code would read `{name}` before it is assigned or imported"
    return None


def comments(text: str) -> Counter[str]:
    """Every comment of ``text``, counted."""
    found: Counter[str] = Counter()
    try:
        # lines split as Python splits them (a lone \r ends a line: Python 3.12's tokenizer
        # fails on one it is handed inside a line)
        for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            if token.type == tokenize.COMMENT:
                found[token.string.rstrip()] += 1
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # what parses for libcst but not for tokenize keeps what was read so far
    return found


def _early_reads(module: cst.Module) -> Counter[str]:
    flow = _Flow(module)
    flow.block(module.body, frozenset())
    return flow.early


class _Flow:
    """Module-level names read where they may still be unbound."""

    def __init__(self, module: cst.Module) -> None:
        self.names = _module_names(module)
        self.functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
        self.early: Counter[str] = Counter()
        self._free: dict[str, frozenset[str]] = {}

    # -- statements ----------------------------------------------------------------------------
    def block(self, statements: Sequence[cst.CSTNode], bound: frozenset[str]) -> frozenset[str]:
        for statement in statements:
            if isinstance(statement, cst.BaseSmallStatement):  # ``if x: a = 1``
                bound = self.small(statement, bound)
            else:
                bound = self.statement(statement, bound)
        return bound

    def statement(self, node: cst.CSTNode, bound: frozenset[str]) -> frozenset[str]:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                bound = self.small(small, bound)
            return bound
        if isinstance(node, cst.FunctionDef):
            for decorator in node.decorators:
                self.read(decorator.decorator, bound)
            for param in _params(node.params):
                if param.default is not None:
                    self.read(param.default, bound)
            return bound | {node.name.value}
        if isinstance(node, cst.ClassDef):
            for part in (*node.decorators, *node.bases, *node.keywords):
                self.read(part, bound)
            self.block(_body(node.body), bound)
            return bound | {node.name.value}
        if isinstance(node, cst.If):
            self.read(node.test, bound)
            taken = self.block(_body(node.body), bound)
            other = self._orelse(node.orelse, bound)
            return taken & other
        if isinstance(node, cst.For):
            self.read(node.iter, bound)
            self.block(_body(node.body), bound | _targets(node.target))
            self._orelse(node.orelse, bound)
            return bound
        if isinstance(node, cst.While):
            self.read(node.test, bound)
            self.block(_body(node.body), bound)
            self._orelse(node.orelse, bound)
            return bound
        if isinstance(node, cst.With):
            for item in node.items:
                self.read(item.item, bound)
                if item.asname is not None:
                    bound = bound | _targets(item.asname.name)
            return self.block(_body(node.body), bound)
        if isinstance(node, (cst.Try, cst.TryStar)):
            done = self.block(_body(node.body), bound)
            if node.orelse is not None:
                done = self.block(_body(node.orelse.body), done)
            for handler in node.handlers:
                if handler.type is not None:
                    self.read(handler.type, bound)
                caught = bound | (_targets(handler.name.name) if handler.name else frozenset())
                done = done & self.block(_body(handler.body), caught)
            if node.finalbody is not None:
                done = self.block(_body(node.finalbody.body), done)
            return done
        self.read(node, bound)  # match and anything newer: read everything, bind nothing
        return bound

    def _orelse(self, node: cst.CSTNode | None, bound: frozenset[str]) -> frozenset[str]:
        if node is None:
            return bound
        if isinstance(node, cst.If):  # elif
            return self.statement(node, bound)
        if isinstance(node, cst.Else):
            return self.block(_body(node.body), bound)
        return bound

    def small(self, node: cst.BaseSmallStatement, bound: frozenset[str]) -> frozenset[str]:
        if isinstance(node, cst.Assign):
            self.read(node.value, bound)
            for target in node.targets:
                self._read_target(target.target, bound)
            return bound | frozenset().union(*(_targets(t.target) for t in node.targets))
        if isinstance(node, cst.AnnAssign):
            if node.value is None:
                return bound
            self.read(node.value, bound)
            self._read_target(node.target, bound)
            return bound | _targets(node.target)
        if isinstance(node, cst.AugAssign):
            self.read(node.target, bound)
            self.read(node.value, bound)
            return bound
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            return bound | _bound_by(node)
        if isinstance(node, cst.Del):
            return bound - _targets(node.target)
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            return bound
        self.read(node, bound)
        return bound

    # -- reads ---------------------------------------------------------------------------------
    def _read_target(self, target: cst.BaseExpression, bound: frozenset[str]) -> None:
        """``a[i] = v`` and ``a.b = v`` read ``a`` (and ``i``); plain names are not read."""
        if isinstance(target, (cst.Subscript, cst.Attribute)):
            self.read(target, bound)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._read_target(element.value, bound)
        elif isinstance(target, cst.StarredElement):
            self._read_target(target.value, bound)

    def read(self, node: cst.CSTNode, bound: frozenset[str]) -> None:
        for name, called in _reads(node):
            if name in self.names and name not in bound:
                self.early[name] += 1
            if called and name in self.functions:
                for free in self._free_of(name, frozenset()):
                    if free in self.names and free not in bound:
                        self.early[free] += 1

    def _free_of(self, name: str, seen: frozenset[str]) -> frozenset[str]:
        """The module names a module-level function reads when called (through the module
        functions it calls)."""
        if name in self._free:
            return self._free[name]
        function = self.functions[name]
        own = _locals(function)
        found: set[str] = set()
        for read, called in _reads(function.body):
            if read in own:
                continue
            found.add(read)
            if called and read in self.functions and read not in seen and read != name:
                found |= self._free_of(read, seen | {name})
        self._free[name] = frozenset(found)
        return self._free[name]


def _reads(node: cst.CSTNode) -> Iterable[tuple[str, bool]]:
    """Names ``node`` reads when it runs, each with whether it is called; the bodies of
    lambdas and functions, and names a comprehension binds, are left out."""
    local: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    found: list[tuple[str, bool]] = []
    called: set[int] = set()
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.append((current.value, id(current) in called))
            continue
        if isinstance(current, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            continue
        if isinstance(current, cst.Attribute):
            stack.append(current.value)
            continue
        if isinstance(current, cst.Arg):
            stack.append(current.value)
            continue
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Name):
            called.add(id(current.func))
        if isinstance(current, cst.CompFor):
            local |= _targets(current.target)
        stack.extend(children(current))
    return [(name, was_called) for name, was_called in found if name not in local]


def _module_names(module: cst.Module) -> frozenset[str]:
    """Names the module binds anywhere at its top level (in blocks too), or through
    ``global`` in a function."""
    found: set[str] = set()
    stack: list[cst.CSTNode] = list(module.body)
    while stack:
        current = stack.pop()
        found |= _bound_by(current)
        if isinstance(current, cst.FunctionDef):
            for inner in _walk(current.body):
                if isinstance(inner, cst.Global):
                    found.update(n.name.value for n in inner.names)
        elif not isinstance(current, cst.ClassDef):
            stack.extend(children(current))
    return frozenset(found)


def _locals(function: cst.FunctionDef) -> frozenset[str]:
    """Names a function binds for itself: parameters and assignments not declared global."""
    declared: set[str] = set()
    bound = {p.name.value for p in _params(function.params)}
    for node in _walk(function.body):
        if isinstance(node, cst.Global):
            declared.update(n.name.value for n in node.names)
        bound |= _bound_by(node)
    return frozenset(bound - declared)


def _bound_by(node: cst.CSTNode) -> frozenset[str]:
    """The names one statement or clause binds where it stands."""
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return frozenset({node.name.value})
    if isinstance(node, cst.Assign):
        return frozenset().union(*(_targets(t.target) for t in node.targets))
    if isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor)):
        return _targets(node.target)
    if isinstance(node, cst.WithItem) and node.asname is not None:
        return _targets(node.asname.name)
    if isinstance(node, cst.ExceptHandler) and node.name is not None:
        return _targets(node.name.name)
    if isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(
            node.names, cst.ImportStar):
        return frozenset(_imported(node))
    return frozenset()


def _imported(node: cst.Import | cst.ImportFrom) -> Iterable[str]:
    assert not isinstance(node.names, cst.ImportStar)
    for alias in node.names:
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            yield alias.asname.name.value
        elif isinstance(node, cst.Import):
            yield alias.evaluated_name.partition(".")[0]
        else:
            yield alias.evaluated_name


def _walk(node: cst.CSTNode) -> Iterable[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def _targets(target: cst.CSTNode) -> frozenset[str]:
    """The plain names an assignment target binds."""
    if isinstance(target, cst.Name):
        return frozenset({target.value})
    if isinstance(target, (cst.Tuple, cst.List)):
        return frozenset().union(*(_targets(e.value) for e in target.elements))
    if isinstance(target, cst.StarredElement):
        return _targets(target.value)
    return frozenset()


def _params(params: cst.Parameters) -> list[cst.Param]:
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            every.append(star)
    return every


def _body(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return suite.body

