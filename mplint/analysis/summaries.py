"""What other modules of the linted tree offer, read with Python's own parser.

A module being linted names classes and functions of other modules; most of them matter to no
rule: a class that derives from no model or process class, a function that can return no model.
Parsing such a module with libcst to find that out costs ten times what Python's ``ast`` costs,
and in a large tree it is most of a run. A :class:`ModuleSummary` reads a module with ``ast``
and answers, for each module-level name, what the analysis would bind it to (a ``def``, a
``class``, an import) and, for a function or class, whether calling it can give something a
rule looks at. The answers over-approximate the analysis: "cannot be a model" is said only when
the analysis of the parsed module could not find one either. Everything else, and everything
these summaries do not model, goes to the full analysis of the module (``ProjectIndex``).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mplint import knowledge
from mplint.knowledge import ApiKind, ModelPattern
from mplint.modules import Tree, absolute
from mplint.prefilter import NOT_STARTING, callee, start_words, sure_calls

# Every method name that returns the model it is called on, whatever the model.
_SELF_RETURNING = frozenset().union(*knowledge.SELF_RETURNING_METHODS.values(),
                                    {"from_pretrained"})
_NOT_MODELS = frozenset({ApiKind.GET_CONTEXT, ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS,
                         ApiKind.MANAGER, ApiKind.SPAWN, ApiKind.JOBLIB, ApiKind.DATALOADER,
                         ApiKind.DASK_CLIENT})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


_ORDER = itertools.count()  # binding positions: only their order within a module matters


@dataclass(frozen=True)
class Bind:
    """One binding of a name: how the analysis would read it."""

    kind: str  # "def", "class", "import", "assign", "unpack", "param", "loop", "other"
    node: ast.AST | None = None  # the def or class; the assigned value
    qualname: str = ""  # what an import binds
    order: int = field(default_factory=lambda: next(_ORDER), compare=False)  # in the module


@dataclass
class ModuleSummary:
    """The module-level bindings of one module, from ``ast``."""

    path: Path
    name: str  # dotted module name, as the analysis names it
    data: bytes
    bindings: dict[str, list[Bind]] = field(default_factory=dict)
    unsure: set[str] = field(default_factory=set)  # bound in ways not followed here
    tree: ast.Module | None = None
    _calls: dict[str, list[tuple[ast.Call, ast.AST | None]]] | None = None
    _uses: dict[str, int] = field(default_factory=dict)

    @cached_property
    def starting_names(self) -> frozenset[str]:
        """The names a call spells last to start processes, through the process modules this
        module imports (``Pool``, ``Process``, ...)."""
        return frozenset(w.decode().rpartition(".")[2]
                         for w in start_words(self.data)) - NOT_STARTING

    @property
    def sets_start_method(self) -> bool:
        """Whether any code of the module can name ``set_start_method`` (aliases included)."""
        return b"set_start_method" in self.data

    def last(self, name: str, before: int | None = None) -> Bind | None:
        """The binding a read of the module's ``name`` from another module sees (or a read at
        module level made ``before`` a binding's position)."""
        found = [b for b in self.bindings.get(name, ()) if before is None or b.order < before]
        return found[-1] if found else None

    def calls_of(self, name: str) -> list[tuple[ast.Call, ast.AST | None]] | None:
        """Every call of the module's function ``name`` by that name, with the top-level
        function it is in (None: module level; the module itself: deeper, not followed); None
        when the name is also used otherwise (an alias, a callback), so calls are not known."""
        if self._calls is None:
            self._calls, self._uses = _calls(self)
        found = self._calls.get(name, [])
        return found if self._uses.get(name, 0) == len(found) else None


def _calls(summary: ModuleSummary) -> tuple[dict[str, list[tuple[ast.Call, ast.AST | None]]],
                                             dict[str, int]]:
    """The calls of each name, and how often each name is read or written (a call included)."""
    found: dict[str, list[tuple[ast.Call, ast.AST | None]]] = {}
    uses: dict[str, int] = {}
    tree = summary.tree
    assert tree is not None
    stack: list[tuple[ast.AST, ast.AST | None]] = [(node, None) for node in tree.body]
    while stack:
        node, owner = stack.pop()
        if isinstance(node, ast.Name):
            uses[node.id] = uses.get(node.id, 0) + 1
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            found.setdefault(node.func.id, []).append((node, owner))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                uses[name] = uses.get(name, 0) + 1
        inner = owner
        if isinstance(node, _SCOPES):
            inner = node if owner is None and isinstance(node, _FUNCTIONS) else tree
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return found, uses


def summarise(path: Path, data: bytes, name: str) -> ModuleSummary | None:
    """The summary of a module, or None when Python cannot parse it."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    summary = ModuleSummary(path, name, data, tree=tree)
    for statement in tree.body:
        _bind_statement(statement, summary.bindings, name)
    summary.unsure.update(_rebound_elsewhere(tree, data))
    return summary


def _bind_statement(statement: ast.stmt, into: dict[str, list[Bind]], module: str) -> None:
    """Add the bindings one statement makes in the scope it runs in, in the order the analysis
    records them; nested functions and classes are not entered."""

    def add(name: str, bind: Bind) -> None:
        into.setdefault(name, []).append(bind)

    if isinstance(statement, _FUNCTIONS):
        add(statement.name, Bind("def", statement))
    elif isinstance(statement, ast.ClassDef):
        add(statement.name, Bind("class", statement))
    elif isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.asname:
                add(alias.asname, Bind("import", qualname=alias.name))
            else:
                top = alias.name.partition(".")[0]
                add(top, Bind("import", qualname=top))
    elif isinstance(statement, ast.ImportFrom):
        base = absolute(statement.module or "", statement.level, module)
        for alias in statement.names:
            if alias.name != "*":
                add(alias.asname or alias.name, Bind("import", qualname=f"{base}.{alias.name}"))
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            _bind_target(target, statement.value, "assign", add)
    elif isinstance(statement, ast.AnnAssign):
        if statement.value is not None:
            _bind_target(statement.target, statement.value, "assign", add)
    elif isinstance(statement, ast.AugAssign):
        if isinstance(statement.target, ast.Name):
            add(statement.target.id, Bind("other"))
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        _bind_target(statement.target, statement.iter, "loop", add)
        for inner in (*statement.body, *statement.orelse):
            _bind_statement(inner, into, module)
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        for item in statement.items:
            if item.optional_vars is not None:
                _bind_target(item.optional_vars, item.context_expr, "assign", add)
        for inner in statement.body:
            _bind_statement(inner, into, module)
    elif isinstance(statement, (ast.If, ast.While)):
        for inner in (*statement.body, *statement.orelse):
            _bind_statement(inner, into, module)
    elif isinstance(statement, ast.Try | getattr(ast, "TryStar", ast.Try)):
        for inner in statement.body:
            _bind_statement(inner, into, module)
        for handler in statement.handlers:
            if handler.name:
                add(handler.name, Bind("other"))
            for inner in handler.body:
                _bind_statement(inner, into, module)
        for inner in (*statement.orelse, *statement.finalbody):
            _bind_statement(inner, into, module)
    elif isinstance(statement, ast.Match):
        for case in statement.cases:
            for inner in case.body:
                _bind_statement(inner, into, module)


def _bind_target(target: ast.expr, value: ast.expr | None, kind: str,
                 add: Callable[[str, Bind], None]) -> None:
    if isinstance(target, ast.Name):
        add(target.id, Bind(kind, value))
    elif isinstance(target, (ast.Tuple, ast.List)):
        values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
        same = values is not None and len(values) == len(target.elts)
        if not same and value is not None and kind == "assign":
            kind = "unpack"  # ``model, tok = build()``: an element of what the value gives
        for index, element in enumerate(target.elts):
            inner = values[index] if same and values is not None else None
            if kind == "unpack" and isinstance(element, ast.Name):
                add(element.id, Bind(kind, value))
                continue
            _bind_target(element, inner, kind if inner is not None else "other", add)
    elif isinstance(target, ast.Starred):
        _bind_target(target.value, None, "other", add)


_GLOBAL = re.compile(rb"^[ \t]*global[ \t]+(\w+(?:[ \t]*,[ \t]*\w+)*)", re.MULTILINE)


def _rebound_elsewhere(tree: ast.Module, data: bytes) -> set[str]:
    """Names a ``global`` statement in a function, or a ``:=`` at module level, binds: their
    module-level bindings are not followed here. (``global`` lines are found in the text:
    one inside a string only makes a name unsure.)"""
    found = {name.strip().decode() for match in _GLOBAL.finditer(data)
             for name in match.group(1).split(b",")}
    if b":=" in data:
        stack: list[ast.AST] = list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                found.add(node.target.id)
            if not isinstance(node, _SCOPES):
                stack.extend(ast.iter_child_nodes(node))
    return found


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those inside the functions, classes, lambdas and
    comprehensions nested in it (their own scopes; the nested nodes themselves are given)."""
    stack = list(getattr(node, "body", []))
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, _SCOPES):
            stack.extend(ast.iter_child_nodes(current))


@dataclass
class _Function:
    """A function's own bindings, for reading names in its body (``global`` names excluded:
    they read the module's)."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    bindings: dict[str, list[Bind]]


# statements whose own bindings ``_function`` makes itself (their bodies come as own nodes)
_BLOCKS = (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.If, ast.While, ast.Try,
           ast.Match, getattr(ast, "TryStar", ast.Try))


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, module: str) -> _Function:
    bindings: dict[str, list[Bind]] = {}

    def add(name: str, bind: Bind) -> None:
        bindings.setdefault(name, []).append(bind)

    arguments = node.args
    for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                *(a for a in (arguments.vararg, arguments.kwarg) if a is not None)):
        add(arg.arg, Bind("param", arg))
    global_names: set[str] = set()
    for inner in _own_nodes(node):
        if isinstance(inner, ast.Global):
            global_names.update(inner.names)
        elif isinstance(inner, ast.NamedExpr) and isinstance(inner.target, ast.Name):
            add(inner.target.id, Bind("assign", inner.value))
        elif isinstance(inner, (ast.For, ast.AsyncFor)):
            _bind_target(inner.target, inner.iter, "loop", add)
        elif isinstance(inner, (ast.With, ast.AsyncWith)):
            for item in inner.items:
                if item.optional_vars is not None:
                    _bind_target(item.optional_vars, item.context_expr, "assign", add)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            add(inner.name, Bind("other"))
        elif isinstance(inner, ast.stmt) and not isinstance(inner, _BLOCKS):
            _bind_statement(inner, bindings, module)
    for name in global_names:
        bindings.pop(name, None)
    return _Function(node, bindings)


# What a name of the linted tree resolves to, from summaries: a def or a class of a module, or
# None (nothing the analysis would find), or NEEDS_PARSE (only the full analysis can tell).
@dataclass(frozen=True)
class Definition:
    summary: ModuleSummary
    name: str
    bind: Bind

    @property
    def is_class(self) -> bool:
        return self.bind.kind == "class"


NEEDS_PARSE = "needs parse"


class _Nothing:
    """A value that is neither a class nor a qualified name."""


NOTHING = _Nothing()
Found = Definition | None | str


class Summaries:
    """The summaries of the tree's modules, read once each, and the questions they answer."""

    def __init__(self, tree: Tree, read: Callable[[Path], bytes | None],
                 module_name: Callable[[Path], str],
                 extra_models: tuple[ModelPattern, ...] = (),
                 extra_bases: dict[str, str] | None = None) -> None:
        self.tree = tree
        self._read = read
        self._module_name = module_name
        self._extra_models = extra_models
        self.model_bases = {**knowledge.MODEL_BASES, **(extra_bases or {})}
        self._summaries: dict[Path, ModuleSummary | None] = {}
        self._functions: dict[int, _Function] = {}
        self._returns: dict[int, bool | None] = {}  # None: being computed
        self._bases: dict[int, tuple[str, ...] | None] = {}
        self._resolving: set[str] = set()
        self._starts: dict[int, bool] = {}

    def get(self, path: Path) -> ModuleSummary | None:
        if path not in self._summaries:
            data = self._read(path)
            self._summaries[path] = (summarise(path, data, self._module_name(path))
                                     if data is not None else None)
        return self._summaries[path]

    # -- resolution ----------------------------------------------------------------------------
    def resolve(self, qualname: str, importer: str, roots: tuple[str, ...]) -> Found:
        """What ``qualname`` (read in module ``importer``) names in the tree, as
        ``ProjectIndex.resolve`` would find it."""
        if qualname in self._resolving:
            return None
        self._resolving.add(qualname)
        try:
            return self._resolve(qualname, importer, roots)
        finally:
            self._resolving.discard(qualname)

    def _resolve(self, qualname: str, importer: str, roots: tuple[str, ...]) -> Found:
        parts = qualname.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module == importer:
                return None
            path = self.tree.find(module, roots)
            if path is None:
                continue
            summary = self.get(path)
            if summary is None:
                return NEEDS_PARSE
            if cut != len(parts) - 1:
                return None
            return self.member(summary, parts[-1])
        return None

    def member(self, summary: ModuleSummary, name: str) -> Found:
        """What reading ``name`` of the module from elsewhere gives."""
        if name in summary.unsure:
            return NEEDS_PARSE
        bind = summary.last(name)
        if bind is None:
            return None
        if bind.kind in ("def", "class"):
            return Definition(summary, name, bind)
        if bind.kind == "import":
            return self.resolve(bind.qualname, summary.name, self.tree.roots(summary.path))
        if bind.kind == "assign" and isinstance(bind.node, (ast.Name, ast.Attribute)):
            return self._alias(bind, summary)  # ``PatternMatcher = TrackedPatternMatcher``
        return NEEDS_PARSE

    def _alias(self, bind: Bind, summary: ModuleSummary) -> Found:
        """What a module-level ``name = other`` or ``name = module.other`` binds."""
        assert isinstance(bind.node, ast.expr)
        chain = _chain(bind.node)
        if chain is None:
            return NEEDS_PARSE
        root, rest = chain
        if root in summary.unsure:
            return NEEDS_PARSE
        read = summary.last(root, before=bind.order)
        if read is None:  # a builtin's attribute, or a name bound only later: nothing known
            return self.resolve(".".join([root, *rest]), summary.name,
                                self.tree.roots(summary.path)) \
                if rest and root not in summary.bindings else None
        if read.kind == "import":
            return self.resolve(".".join([read.qualname, *rest]), summary.name,
                                self.tree.roots(summary.path))
        if read.kind in ("def", "class") and not rest and summary.last(root) is read:
            return Definition(summary, root, read)
        return NEEDS_PARSE

    # -- questions -----------------------------------------------------------------------------
    def may_start(self, found: Definition, depth: int = 3) -> bool:
        """Whether calling the function (or building an instance of the class, or calling one
        of its methods) can start processes: its code calls a starting API of a process module
        its module imports, or a function or class of its own module or of another module of
        the tree that can, through up to ``depth`` calls; only calls that run whenever it runs
        count (not under an ``if``, nor after an early return), as in the analysis. True
        leaves the question to the analysis of the parsed module; False: no start found (a
        name only the parsed module could resolve is not followed, so a start there is
        missed rather than guessed)."""
        node = found.bind.node
        assert node is not None
        key = id(node)
        if key not in self._starts:
            self._starts[key] = False  # a cycle adds no start
            calls = list(sure_calls(node))
            names = found.summary.starting_names
            try:
                self._starts[key] = any(
                    callee(call) in names or any(k.arg in names for k in call.keywords)
                    for call in calls) or (
                    depth > 0 and any(self.may_start(inner, depth - 1)
                                      for inner in self._called(calls, found.summary)))
            except RecursionError:
                self._starts[key] = True  # let the analysis decide
        return self._starts[key]

    def _called(self, calls: list[ast.Call], summary: ModuleSummary) -> Iterator[Definition]:
        """The functions and classes of the tree that ``calls`` call by name."""
        seen: set[str] = set()
        for inner in calls:
            chain = _chain(inner.func)
            if chain is None or ".".join([chain[0], *chain[1]]) in seen:
                continue
            seen.add(".".join([chain[0], *chain[1]]))
            root, rest = chain
            read = summary.last(root)
            found: Found = None
            if read is not None and read.kind in ("def", "class") and not rest:
                found = Definition(summary, root, read)
            elif read is not None and read.kind == "import":
                qualname = ".".join([read.qualname, *rest])
                if not knowledge.is_known_library(qualname):
                    found = self.resolve(qualname, summary.name, self.tree.roots(summary.path))
            if isinstance(found, Definition):
                yield found

    def may_return_model(self, found: Definition) -> bool:
        """Whether calling the function can give a model: False only when none of its
        ``return`` values can evaluate to one."""
        node = found.bind.node
        assert isinstance(node, _FUNCTIONS)
        key = id(node)
        if key in self._returns:
            known = self._returns[key]
            return True if known is None else known  # a cycle: let the analysis decide
        self._returns[key] = None
        function = self._function_of(node, found.summary)
        try:
            result = any(isinstance(inner, ast.Return) and inner.value is not None
                         and self._model(inner.value, found.summary, function, set())
                         for inner in _own_nodes(node))
        except RecursionError:  # a chain too long to follow here: let the analysis decide
            result = True
        self._returns[key] = result
        return result

    def decorated_by(self, found: Definition, names: frozenset[str]) -> bool | None:
        """Whether a decorator of the definition resolves to one of ``names``; None when the
        summary cannot tell."""
        node = found.bind.node
        assert isinstance(node, (*_FUNCTIONS, ast.ClassDef))
        for decorator in node.decorator_list:
            expr = decorator.func if isinstance(decorator, ast.Call) else decorator
            chain = _chain(expr)
            if chain is None:
                if isinstance(expr, ast.Call):
                    return None
                continue
            root, rest = chain
            read = self._module_read(root, found.summary)
            if read is None:
                qualname = ".".join([root, *rest])
            elif read.kind == "import":
                qualname = ".".join([read.qualname, *rest])
            elif read.kind in ("def", "class"):
                continue
            else:
                return None
            if qualname in names:
                return True
        return False

    def is_generator(self, found: Definition) -> bool:
        node = found.bind.node
        assert node is not None
        return any(isinstance(inner, (ast.Yield, ast.YieldFrom)) for inner in _own_nodes(node))

    def bases(self, found: Definition) -> tuple[str, ...] | None:
        """The qualified names of the classes a class derives from, through the classes of
        the tree, in the analysis's order (``Evaluator.bases``); None when only the parsed
        module can tell."""
        node = found.bind.node
        assert isinstance(node, ast.ClassDef)
        key = id(node)
        if key in self._bases:
            return self._bases[key]
        self._bases[key] = ()  # a cycle adds no base, as in the analysis
        try:
            result = self._compute_bases(node, found)
        except RecursionError:  # a chain too long to follow here: let the analysis decide
            result = None
        self._bases[key] = result
        return result

    def _compute_bases(self, node: ast.ClassDef, found: Definition) -> tuple[str, ...] | None:
        collected: list[str] | None = []
        for base in node.bases:
            value = self._base_value(base, found.summary)
            if value is None or collected is None:
                collected = None
                break
            inner: Found | _Nothing = None
            if isinstance(value, str):
                collected.append(value)
                if not knowledge.is_known_library(value):
                    inner = self.resolve(value, found.summary.name,
                                         self.tree.roots(found.summary.path))
            else:
                inner = value
            if inner == NEEDS_PARSE:
                collected = None
            elif isinstance(inner, Definition) and inner.is_class:
                more = self.bases(inner)
                if more is None:
                    collected = None
                else:
                    collected.extend(more)
        return tuple(collected) if collected is not None else None

    def _base_value(self, base: ast.expr,
                    summary: ModuleSummary) -> str | Definition | _Nothing | None:
        """What a base class expression evaluates to, as far as bases go: a qualified name, a
        class of this module, nothing (None is "unsure", NOTHING is "no class")."""
        chain = _chain(base)
        if chain is None:
            if isinstance(base, ast.Call) and not (isinstance(base.func, ast.Name)
                                                   and base.func.id in knowledge.BUILTIN_WRAPPERS):
                return NOTHING
            return None if isinstance(base, (ast.Call, ast.Starred)) else NOTHING
        return self._chain_value(*chain, summary, None)

    def _chain_value(self, root: str, rest: list[str], summary: ModuleSummary,
                     before: int | None) -> str | Definition | _Nothing | None:
        if root in summary.unsure:
            return None
        read = summary.last(root, before)
        if read is None:  # a builtin, or a name bound only after this read (nothing known)
            return NOTHING if root in summary.bindings else ".".join([root, *rest])
        if read.kind == "import":
            return ".".join([read.qualname, *rest])
        if read.kind == "class" and summary.last(root) is read:
            return NOTHING if rest else Definition(summary, root, read)
        if read.kind in ("def", "class"):
            return NOTHING if rest or read.kind == "def" else None
        if read.kind == "assign" and isinstance(read.node, ast.expr):
            chain = _chain(read.node)
            if chain is not None:
                return self._chain_value(chain[0], [*chain[1], *rest], summary, read.order)
        return None

    def _module_read(self, name: str, summary: ModuleSummary) -> Bind | None:
        """The binding a module-level read of ``name`` sees (the last one); None for a
        builtin."""
        if name in summary.unsure:
            return Bind("other")
        return summary.last(name)

    def _function_of(self, node: ast.FunctionDef | ast.AsyncFunctionDef,
                     summary: ModuleSummary) -> _Function:
        if id(node) not in self._functions:
            self._functions[id(node)] = _function(node, summary.name)
        return self._functions[id(node)]

    # -- can an expression be a model ----------------------------------------------------------
    def _reads(self, name: str, summary: ModuleSummary,
               function: _Function | None) -> list[Bind] | None:
        """The bindings a read of ``name`` may see; None for a builtin."""
        if function is not None and name in function.bindings:
            return function.bindings[name]
        if name in summary.unsure:
            return [Bind("other", None, "?")]
        return summary.bindings.get(name)

    def _model(self, expr: ast.expr, summary: ModuleSummary, function: _Function | None,
               active: set[int]) -> bool:
        """Whether the analysis could evaluate ``expr`` to a model (over-approximated)."""
        if id(expr) in active:
            return False  # a value defined by itself: the analysis finds nothing there either
        active = active | {id(expr)}
        if isinstance(expr, ast.Name):
            if expr.id == "?":
                return True  # anything
            binds = self._reads(expr.id, summary, function)
            return any(self._bind_model(b, expr.id, summary, function, active)
                       for b in binds or ())
        if isinstance(expr, ast.Subscript):  # an item of a container, an entry of a bundle
            return self._model(expr.value, summary, function, active)
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):  # an empty list may be appended to
            return not expr.elts or any(self._model(e, summary, function, active)
                                        for e in expr.elts)
        if isinstance(expr, ast.Dict):  # an empty dict may be filled by ``d[key] = value``
            return not expr.keys or any(self._model(v, summary, function, active)
                                        for v in expr.values)
        if isinstance(expr, ast.Call):
            return self._call_model(expr, summary, function, active)
        return False  # literals, operators, displays, comprehensions, attributes of non-self

    def _bind_model(self, bind: Bind, name: str, summary: ModuleSummary,
                    function: _Function | None, active: set[int]) -> bool:
        if bind.qualname == "?":
            return True
        if bind.kind in ("assign", "unpack") and isinstance(bind.node, ast.expr):
            scope = function if function is not None and name in function.bindings else None
            return self._model(bind.node, summary, scope, active)
        if bind.kind == "param":
            return any(self._model(passed, summary, caller, active)
                       for passed, caller in self._passed(bind, summary, function))
        return bind.kind == "loop"

    def _passed(self, bind: Bind, summary: ModuleSummary,
                function: _Function | None) -> Iterator[tuple[ast.expr, _Function | None]]:
        """What the module's calls of ``function`` pass for its parameter (as the analysis
        reads a parameter); a bare name that reads as anything when calls are not known."""
        if function is None or not isinstance(bind.node, ast.arg):
            return
        sites = summary.calls_of(function.node.name)
        if sites is None or any(owner is summary.tree for _, owner in sites):
            yield ast.Name("?"), None  # unknown callers: read as anything
            return
        arguments = function.node.args
        positional = [*arguments.posonlyargs, *arguments.args]
        index = positional.index(bind.node) if bind.node in positional else 1 << 30
        keyword = bind.node.arg if bind.node not in arguments.posonlyargs else ""
        found: list[tuple[ast.expr, _Function | None]] = []
        for call, owner in sites:
            passed = _argument(call, index, keyword)
            if passed is None:
                return  # a call that leaves it to its default: the analysis knows nothing
            caller = self._function_of(owner, summary) if isinstance(owner, _FUNCTIONS) \
                else None
            found.append((passed, caller))
        yield from found

    def _call_model(self, call: ast.Call, summary: ModuleSummary, function: _Function | None,
                    active: set[int]) -> bool:
        chain = _chain(call.func)
        if chain is None:
            func = call.func
            if isinstance(func, ast.Attribute):  # ``build().to(device)``
                return (func.attr in _SELF_RETURNING
                        and self._model(func.value, summary, function, active)) \
                    or self._qual_value(func.value, summary, function, active)
            return isinstance(func, ast.Call)  # ``make()()``: not followed here
        root, rest = chain
        binds = self._reads(root, summary, function)
        if binds is None:  # a builtin
            return self._qualified_model(".".join([root, *rest]), call, summary, function,
                                         active)
        nested = function is not None and root in function.bindings
        for bind in binds:
            if nested and bind.kind in ("def", "class"):
                return True  # defined in the function: its body reads the function's names
            if bind.kind == "import":
                if self._qualified_model(".".join([bind.qualname, *rest]), call, summary,
                                         function, active):
                    return True
            elif bind.kind == "def" and not rest:
                if self._definition_model(Definition(summary, root, bind)):
                    return True
            elif bind.kind == "class":
                if rest in ([], ["from_pretrained"]) and self._definition_model(
                        Definition(summary, root, bind)):
                    return True
            elif bind.kind == "def" or not self._holds_value(bind, summary, function):
                continue  # an attribute of a function; a name the analysis knows nothing of
            elif not rest or self._maybe_qual(bind, root, summary, function, active):
                return True  # a call of a local value (a class?), or of a module's member
            elif len(rest) == 1 and rest[0] in _SELF_RETURNING and self._bind_model(
                    bind, root, summary, function, active):
                return True  # ``model.to(device)``
        return False

    def _holds_value(self, bind: Bind, summary: ModuleSummary,
                     function: _Function | None) -> bool:
        """Whether the analysis can know a value for a name so bound (else it is unknown)."""
        if bind.kind == "other":
            return bind.qualname == "?"
        if bind.kind == "param":
            return any(True for _ in self._passed(bind, summary, function))
        return True

    def _maybe_qual(self, bind: Bind, name: str, summary: ModuleSummary,
                    function: _Function | None, active: set[int]) -> bool:
        """Whether a name bound by ``bind`` can hold a module or a library class by its
        qualified name (so that one of its attributes can be a model class)."""
        if bind.kind in ("import", "loop"):
            return True
        if bind.kind == "other":
            return self._holds_value(bind, summary, function)
        if bind.kind == "param":
            return any(self._qual_value(passed, summary, caller, active)
                       for passed, caller in self._passed(bind, summary, function))
        if bind.kind != "assign" or not isinstance(bind.node, ast.expr):
            return False
        scope = function if function is not None and name in function.bindings else None
        return self._qual_value(bind.node, summary, scope, active)

    def _qual_value(self, value: ast.expr, summary: ModuleSummary, function: _Function | None,
                    active: set[int]) -> bool:
        """Whether ``value`` can evaluate to a qualified name (a module, a library class)."""
        while isinstance(value, ast.Attribute):
            value = value.value
        if isinstance(value, ast.Call):  # only ``list(x)`` and its kind give back their argument
            return isinstance(value.func, ast.Name) and value.func.id in \
                knowledge.BUILTIN_WRAPPERS
        if isinstance(value, ast.Name) and id(value) not in active:
            if value.id == "?":
                return True
            inner = self._reads(value.id, summary, function)
            return inner is None or any(
                self._maybe_qual(b, value.id, summary, function, active | {id(value)})
                for b in inner)
        return False

    def _definition_model(self, found: Definition) -> bool:
        if found.is_class:
            bases = self.bases(found)
            return bases is None or any(base in self.model_bases for base in bases)
        return self.may_return_model(found)

    def _qualified_model(self, qualname: str, call: ast.Call, summary: ModuleSummary,
                         function: _Function | None, active: set[int]) -> bool:
        kind = knowledge.PROCESS_APIS.get(qualname)
        if kind in _NOT_MODELS or qualname in knowledge.QUEUE_APIS:
            return False
        if qualname in knowledge.BUILTIN_WRAPPERS:
            values = [a for a in call.args if not isinstance(a, ast.Starred)]
            values += [k.value for k in call.keywords if k.arg is not None]
            if len(values) == 1:
                return self._model(values[0], summary, function, active)
        if qualname in knowledge.ESTIMATOR_COPIES:
            return True
        if qualname in knowledge.MODEL_COPIES or qualname == "dict":
            return any(self._model(v, summary, function, active) for v in (
                *call.args, *(k.value for k in call.keywords)))
        if knowledge.model_label(qualname, self._extra_models) is not None:
            return True
        if knowledge.is_known_library(qualname):
            return False
        found = self.resolve(qualname, summary.name, self.tree.roots(summary.path))
        if isinstance(found, Definition):
            return self._definition_model(found)
        return found is not None


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    """The value a call passes by ``keyword`` or at ``index`` (not after a ``*``), as the
    analysis reads an argument."""
    for passed in call.keywords:
        if keyword and passed.arg == keyword:
            return passed.value
    if index < len(call.args) and not any(isinstance(a, ast.Starred)
                                          for a in call.args[:index + 1]):
        return call.args[index]
    return None


def _chain(expr: ast.expr) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"]); None for anything but names and attributes."""
    rest: list[str] = []
    while isinstance(expr, ast.Attribute):
        rest.insert(0, expr.attr)
        expr = expr.value
    return (expr.id, rest) if isinstance(expr, ast.Name) else None
