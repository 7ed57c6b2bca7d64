"""Scopes and name bindings recorded by the collector, in source order."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import libcst as cst


class BindingKind(enum.Enum):
    ASSIGN = "assign"  # name = value, with ... as name, walrus
    IMPORT = "import"
    FUNCTION = "function"
    CLASS = "class"
    PARAM = "param"
    LOOP = "loop"  # for name in value / comprehension target
    # a, b = value / for a, b in value: element ``index`` of the value (of each item, in a loop)
    UNPACK = "unpack"
    OTHER = "other"  # anything whose value the analysis does not follow


class ScopeKind(enum.Enum):
    MODULE = "module"
    CLASS = "class"
    FUNCTION = "function"
    LAMBDA = "lambda"
    COMPREHENSION = "comprehension"


@dataclass(eq=False)
class Binding:
    """One place where a name gets a value."""

    name: str
    kind: BindingKind
    order: int  # position in traversal order; later bindings shadow earlier ones
    scope: Scope
    value: cst.BaseExpression | None = None
    node: cst.CSTNode | None = None  # the def/class node, or the statement
    qualname: str | None = None  # for imports
    guarded: bool = False  # bound under ``if __name__ == "__main__":``
    function: cst.CSTNode | None = None  # the function whose body binds it (``global x``)
    index: int | None = None  # UNPACK: the position of the name in the target
    each: bool = False  # UNPACK: a loop target, unpacking each item of ``value``


@dataclass(eq=False)
class Scope:
    """A Python scope: names bound in it, and the scope it is nested in."""

    kind: ScopeKind
    node: cst.CSTNode
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    # On class scopes: ``self.attr = value`` assignments made in its methods.
    attributes: dict[str, list[Binding]] = field(default_factory=dict)
    # On class scopes: ``self.attr[key] = value`` (at any depth) stored in its methods.
    entries: dict[str, list[Binding]] = field(default_factory=dict)

    def bind(self, binding: Binding) -> None:
        self.bindings.setdefault(binding.name, []).append(binding)

    @property
    def is_function_like(self) -> bool:
        return self.kind in (ScopeKind.FUNCTION, ScopeKind.LAMBDA)

    def enclosing_class(self) -> Scope | None:
        """The class whose method this scope is, if it is one."""
        if self.kind is ScopeKind.FUNCTION and self.parent and self.parent.kind is ScopeKind.CLASS:
            return self.parent
        return None

    def module(self) -> Scope:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope

    def lookup_scope(self, name: str) -> Scope | None:
        """The scope whose binding of ``name`` a read in this scope sees (Python's LEGB)."""
        if name in self.global_names:
            module = self.module()
            return module if name in module.bindings else None
        scope: Scope | None = self
        while scope is not None:
            if name in scope.bindings and (scope is self or scope.kind is not ScopeKind.CLASS):
                return scope
            scope = scope.parent
        return None

    def inside_function(self) -> bool:
        """True when this scope is, or lives inside, a function: its defs are local objects."""
        scope: Scope | None = self
        while scope is not None:
            if scope.is_function_like:
                return True
            scope = scope.parent
        return False
