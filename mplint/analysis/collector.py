"""The one traversal of a module: scopes, bindings, calls and the main-guard region."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from mplint import knowledge
from mplint.analysis.scopes import Binding, BindingKind, Scope, ScopeKind
from mplint.analysis.walk import dotted_name, main_guard_test, name_reads, walk
from mplint.modules import absolute


@dataclass(frozen=True, eq=False)
class CallSite:
    """A call expression and where it runs."""

    node: cst.Call
    scope: Scope
    order: int
    import_time: bool  # runs when the module is imported: module level, outside the guard
    guarded: bool  # inside ``if __name__ == "__main__":``
    suites: tuple[cst.CSTNode, ...]  # enclosing statement blocks, outermost first
    statement: cst.BaseStatement  # the statement of the module's body it is part of
    loop_names: frozenset[str] = frozenset()  # names the enclosing loops of its body bind


@dataclass(eq=False)
class ModuleRecord:
    """Everything the traversal saw, for the analysis to query."""

    module: cst.Module
    name: str  # dotted module name, "" when unknown (stdin)
    scope: Scope
    calls: list[CallSite] = field(default_factory=list)
    imported: set[str] = field(default_factory=set)  # every module named by an import
    # each imported module with the function whose body imports it (None: module level)
    imports: list[tuple[str, cst.CSTNode | None]] = field(default_factory=list)
    main_guard: cst.If | None = None
    scopes: dict[cst.CSTNode, Scope] = field(default_factory=dict)  # node -> the scope it opens
    # function or lambda -> every name its body reads (nested bodies included), in source
    # order, with the scope it is read in; attribute names and keyword names are not reads
    reads: dict[cst.CSTNode, list[tuple[cst.Name, Scope]]] = field(default_factory=dict)
    receivers: set[cst.Name] = field(default_factory=set)  # names read as ``name.attr``
    # ``name[key] = value`` statements, each as a binding of ``name`` in the scope it is made
    # in, with the subscript as its node
    stores: list[Binding] = field(default_factory=list)
    star_import: bool = False  # ``from m import *`` somewhere: any name may be bound
    # names of knowledge.UNIMPORTED_NAMES the code reads, bound or not
    conventional_reads: set[str] = field(default_factory=set)


class Collector(cst.CSTVisitor):
    """Records scopes, bindings and calls in one pass over the tree."""

    def __init__(self, module: cst.Module, module_name: str) -> None:
        super().__init__()
        scope = Scope(ScopeKind.MODULE, module, None)
        self.record = ModuleRecord(module, module_name, scope)
        self._scope = scope
        self._order = 0
        self._function_depth = 0
        self._functions: list[cst.CSTNode] = []
        self._guard_depth = 0
        self._suites: list[cst.CSTNode] = []
        self.statement: cst.BaseStatement | None = None  # the top-level statement being walked
        self._readers: list[cst.CSTNode] = []  # functions and lambdas whose body is being walked
        # loops being walked: the function (None: module level) and the names each binds
        self._loops: list[tuple[cst.CSTNode | None, frozenset[str]]] = []
        self._not_read = 0  # inside an attribute's name or an argument's keyword
        self._importing = False  # inside an import statement

    # -- helpers -------------------------------------------------------------------------------
    def _next(self) -> int:
        self._order += 1
        return self._order

    def _bind(self, name: str, kind: BindingKind, **kw: object) -> None:
        scope = self._scope
        if name in scope.global_names:
            scope = scope.module()
        guarded = self._guard_depth > 0
        function = self._functions[-1] if self._functions else None
        binding = Binding(name, kind, self._next(), scope, guarded=guarded,
                          function=function, **kw)  # type: ignore[arg-type]
        scope.bind(binding)

    def _push(self, kind: ScopeKind, node: cst.CSTNode) -> None:
        self._scope = Scope(kind, node, self._scope)
        self.record.scopes[node] = self._scope

    def _pop(self) -> None:
        assert self._scope.parent is not None
        self._scope = self._scope.parent

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None,
                     kind: BindingKind = BindingKind.ASSIGN) -> None:
        if isinstance(target, cst.Name):
            self._bind(target.value, kind, value=value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            values = value.elements if isinstance(value, (cst.Tuple, cst.List)) else None
            same_shape = values is not None and len(values) == len(target.elements)
            if not same_shape and value is not None and kind in (BindingKind.ASSIGN,
                                                                 BindingKind.LOOP):
                self._bind_unpacked(target, value, each=kind is BindingKind.LOOP)
                return
            for i, element in enumerate(target.elements):
                inner = values[i].value if same_shape and values is not None else None
                inner_kind = kind if inner is not None else BindingKind.OTHER
                self._bind_target(element.value, inner, inner_kind)
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            self._bind_attribute(target.value.value, target.attr.value, value)
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, None, BindingKind.OTHER)
        elif isinstance(target, cst.Subscript):
            container: cst.BaseExpression = target
            while isinstance(container, cst.Subscript):
                container = container.value
            if isinstance(container, cst.Attribute) and isinstance(container.value, cst.Name):
                self._bind_attribute(container.value.value, container.attr.value, value,
                                     entry=True)
            elif isinstance(target.value, cst.Name):
                self.record.stores.append(Binding(target.value.value, BindingKind.ASSIGN,
                                                  self._next(), self._scope, value=value,
                                                  node=target))

    def _bind_unpacked(self, target: cst.Tuple | cst.List, value: cst.BaseExpression,
                       each: bool) -> None:
        """``model, tok = build()``: each plain name is the element at its position of what the
        value gives; after a starred element positions are unknown."""
        starred = False
        for i, element in enumerate(target.elements):
            starred = starred or isinstance(element, cst.StarredElement)
            if isinstance(element.value, cst.Name) and not starred:
                self._bind(element.value.value, BindingKind.UNPACK, value=value, index=i,
                           each=each)
            else:
                self._bind_target(element.value, None, BindingKind.OTHER)

    def _bind_attribute(self, owner: str, attr: str, value: cst.BaseExpression | None,
                        entry: bool = False) -> None:
        """``self.attr = value`` (or ``self.attr[key] = value``, an ``entry``) inside a method
        is recorded on the class."""
        cls = self._scope.enclosing_class()
        func = self._scope.node
        if cls is None or not isinstance(func, cst.FunctionDef) or not func.params.params:
            return
        if func.params.params[0].name.value != owner:
            return
        binding = Binding(attr, BindingKind.ASSIGN, self._next(), self._scope, value=value)
        (cls.entries if entry else cls.attributes).setdefault(attr, []).append(binding)

    def _bind_params(self, params: cst.Parameters) -> None:
        every = [*params.posonly_params, *params.params, *params.kwonly_params]
        if isinstance(params.star_arg, cst.Param):
            every.append(params.star_arg)
        if params.star_kwarg is not None:
            every.append(params.star_kwarg)
        for param in every:
            self._bind(param.name.value, BindingKind.PARAM, node=param)

    # -- imports -------------------------------------------------------------------------------
    def _imported(self, module: str) -> None:
        self.record.imported.add(module)
        self.record.imports.append((module, self._functions[-1] if self._functions else None))

    def leave_Import(self, original_node: cst.Import) -> None:
        self._importing = False

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        self._importing = False

    def visit_Import(self, node: cst.Import) -> None:
        self._importing = True
        for alias in node.names:
            full = dotted_name(alias.name)
            self._imported(full)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._bind(alias.asname.name.value, BindingKind.IMPORT, qualname=full, node=node)
            else:
                top = full.partition(".")[0]
                self._bind(top, BindingKind.IMPORT, qualname=top, node=node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_name(node.module) if node.module is not None else ""
        module = absolute(module, len(node.relative), self.record.name)
        self._importing = True
        self._imported(module)
        if isinstance(node.names, cst.ImportStar):
            self.record.star_import = True
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self._imported(f"{module}.{name}")
            self._bind(local, BindingKind.IMPORT, qualname=f"{module}.{name}", node=node)

    # -- definitions ---------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._bind(node.name.value, BindingKind.FUNCTION, node=node)
        self._push(ScopeKind.FUNCTION, node)
        self._function_depth += 1
        self._functions.append(node)
        self._bind_params(node.params)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._function_depth -= 1
        self._functions.pop()
        self._pop()

    def visit_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._readers.append(node)

    def leave_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._readers.pop()

    def visit_Lambda_body(self, node: cst.Lambda) -> None:
        self._readers.append(node)

    def leave_Lambda_body(self, node: cst.Lambda) -> None:
        self._readers.pop()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name):
            self.record.receivers.add(node.value)

    def visit_Attribute_attr(self, node: cst.Attribute) -> None:
        self._not_read += 1

    def leave_Attribute_attr(self, node: cst.Attribute) -> None:
        self._not_read -= 1

    def visit_Arg_keyword(self, node: cst.Arg) -> None:
        self._not_read += 1

    def leave_Arg_keyword(self, node: cst.Arg) -> None:
        self._not_read -= 1

    def visit_Name(self, node: cst.Name) -> None:
        if not self._not_read:
            if node.value in knowledge.UNIMPORTED_NAMES and not self._importing:
                self.record.conventional_reads.add(node.value)
            for reader in self._readers:
                self.record.reads.setdefault(reader, []).append((node, self._scope))

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._push(ScopeKind.LAMBDA, node)
        self._function_depth += 1
        self._bind_params(node.params)

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._function_depth -= 1
        self._pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._bind(node.name.value, BindingKind.CLASS, node=node)
        self._push(ScopeKind.CLASS, node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._pop()

    def visit_Global(self, node: cst.Global) -> None:
        self._scope.global_names.update(item.name.value for item in node.names)

    # -- comprehensions ------------------------------------------------------------------------
    def _enter_comprehension(self, node: cst.BaseComp) -> None:
        self._push(ScopeKind.COMPREHENSION, node)
        comp_for: cst.CompFor | None = node.for_in
        targets: list[cst.BaseExpression] = []
        while comp_for is not None:
            self._bind_target(comp_for.target, comp_for.iter, BindingKind.LOOP)
            targets.append(comp_for.target)
            comp_for = comp_for.inner_for_in
        self._enter_loop(*targets)

    def _leave_comprehension(self) -> None:
        self._loops.pop()
        self._pop()

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._enter_comprehension(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._leave_comprehension()

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._enter_comprehension(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._leave_comprehension()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._enter_comprehension(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._leave_comprehension()

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._enter_comprehension(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._leave_comprehension()

    # -- assignments ---------------------------------------------------------------------------
    def leave_Assign(self, original_node: cst.Assign) -> None:
        for target in original_node.targets:
            self._bind_target(target.target, original_node.value)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if original_node.value is not None:
            self._bind_target(original_node.target, original_node.value)

    def leave_AugAssign(self, original_node: cst.AugAssign) -> None:
        if isinstance(original_node.target, cst.Name):
            self._bind(original_node.target.value, BindingKind.OTHER)

    def leave_NamedExpr(self, original_node: cst.NamedExpr) -> None:
        self._bind_target(original_node.target, original_node.value)

    def visit_For_body(self, node: cst.For) -> None:
        self._bind_target(node.target, node.iter, BindingKind.LOOP)
        self._enter_loop(node.target)

    def leave_For_body(self, node: cst.For) -> None:
        self._loops.pop()

    def _enter_loop(self, *targets: cst.BaseExpression) -> None:
        names = frozenset(name.value for target in targets for name in name_reads(target))
        self._loops.append((self._functions[-1] if self._functions else None, names))

    def leave_WithItem(self, original_node: cst.WithItem) -> None:
        if original_node.asname is not None:
            self._bind_target(original_node.asname.name, original_node.item)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self._bind(node.name.name.value, BindingKind.OTHER)

    # -- the main guard and statement blocks ---------------------------------------------------
    def visit_If_body(self, node: cst.If) -> None:
        if self._is_guard(node, "=="):
            self._guard_depth += 1
            self.record.main_guard = self.record.main_guard or node

    def leave_If_body(self, node: cst.If) -> None:
        if self._is_guard(node, "=="):
            self._guard_depth -= 1

    def visit_If_orelse(self, node: cst.If) -> None:
        if self._is_guard(node, "!="):  # ``if __name__ != "__main__": ... else: <guarded>``
            self._guard_depth += 1
            self.record.main_guard = self.record.main_guard or node

    def leave_If_orelse(self, node: cst.If) -> None:
        if self._is_guard(node, "!="):
            self._guard_depth -= 1

    def _is_guard(self, node: cst.If, operator: str) -> bool:
        return self._scope.kind is ScopeKind.MODULE and main_guard_test(node.test) == operator

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._suites.append(node)

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock) -> None:
        self._suites.pop()

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._suites.append(node)

    def leave_SimpleStatementSuite(self, original_node: cst.SimpleStatementSuite) -> None:
        self._suites.pop()

    # -- calls ---------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        import_time = self._function_depth == 0 and self._guard_depth == 0
        assert self.statement is not None
        function = self._functions[-1] if self._functions else None
        loop_names = frozenset(name for owner, names in self._loops if owner is function
                               for name in names)
        self.record.calls.append(
            CallSite(node, self._scope, self._next(), import_time, self._guard_depth > 0,
                     tuple(self._suites), self.statement, loop_names)
        )



def collect(module: cst.Module, module_name: str = "") -> ModuleRecord:
    collector = Collector(module, module_name)
    plans: dict[type, Any] = {}
    for statement in module.body:  # a module has no other code-holding field
        collector.statement = statement
        walk(statement, collector, plans)
    _bind_unimported(collector.record)
    return collector.record


def _bind_unimported(record: ModuleRecord) -> None:
    """Code shown without its imports: a conventional multiprocessing name it reads and binds
    nowhere (knowledge.UNIMPORTED_NAMES) is imported before its first statement."""
    if record.star_import or not record.conventional_reads:
        return
    scopes = [record.scope, *record.scopes.values()]
    for name in sorted(record.conventional_reads):
        if any(name in scope.bindings for scope in scopes):
            continue
        qualname = knowledge.UNIMPORTED_NAMES[name]
        record.imported.add(qualname.partition(".")[0])
        record.imported.add(qualname)
        binding = Binding(name, BindingKind.IMPORT, 0, record.scope, qualname=qualname)
        record.scope.bindings[name] = [binding]
