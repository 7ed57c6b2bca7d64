"""What a program does differently when its processes start with spawn (or forkserver) instead
of fork: the one check behind every fix that changes when or how processes start.

A forked child is a copy of the parent at the moment of the start: every global, every setting
and every object the parent has. A spawned child is a new interpreter that imports the main
module as ``__mp_main__`` (running its module-level code again, and nothing under the main
guard), then unpickles what it was sent. So a start method fix keeps the program's behaviour
only where nothing below applies; each :class:`Difference` names the code to look at and says
what changes, in words a finding's message can quote. The analysis over-approximates on
purpose where it cannot tell: a safe fix must be shown safe.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from mplint import knowledge
from mplint.analysis.dataloader import start_point
from mplint.analysis.scopes import Binding, BindingKind, Scope, ScopeKind
from mplint.analysis.values import (
    Bound,
    Func,
    Instance,
    Klass,
    LambdaValue,
    Model,
    Partial,
    ProcessObject,
    Qual,
    Value,
    models_in,
    resources_in,
)
from mplint.analysis.walk import children, dotted_name, name_reads
from mplint.knowledge import ApiKind

if TYPE_CHECKING:
    from mplint.analysis.collector import CallSite
    from mplint.analysis.facts import ModuleFacts, WorkSite
    from mplint.analysis.summaries import ModuleSummary

# What a spawned child gets from the parent all the same (multiprocessing sends the parent's
# sys.path and working directory with the preparation data; the environment is inherited).
_INHERITED_BY_SPAWN = ("sys.path", "os.environ")

# Starts whose method the platform default decides, and so a set_start_method() call changes.
_DEFAULT_KINDS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS, ApiKind.MANAGER,
                            ApiKind.DATALOADER, ApiKind.LIBRARY})


@dataclass(frozen=True)
class Difference:
    """One thing the program does differently under spawn than under fork."""

    node: cst.CSTNode  # the code to look at
    text: str  # what changes, as a clause a message can end with


@dataclass(frozen=True)
class DefaultFixed:
    """Code that fixes the default context (the start method no choice was made for) before
    the main guard runs: a ``set_start_method()`` in the guard would raise "context has already
    been set"."""

    node: cst.CSTNode
    what: str  # "`mp.Queue()` (on import)"


class SpawnCheck:
    """The differences between fork and spawn for one module's starts, computed once."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    # -- public --------------------------------------------------------------------------------
    @cached_property
    def changing(self) -> list[WorkSite]:
        """The module's work whose start method the platform default decides."""
        return [work for work in self.facts.work
                if work.method is None and work.kind in _DEFAULT_KINDS and not work.cloudpickle]

    @cached_property
    def differences(self) -> tuple[Difference, ...]:
        """Everything the module's default-method starts would do differently under spawn,
        most telling first."""
        if not self.changing:
            return ()
        found: list[Difference] = []
        for check in (self._runtime_globals, self._sent_to_processes, self._parent_state,
                      self._import_time_effects, self._main_name, self._timed_joins):
            found.extend(check())
        return tuple(found)

    @cached_property
    def default_fixed_on_import(self) -> DefaultFixed | None:
        """The first code that fixes the default context when the module is imported (before
        its main guard runs), in this module or in a module of the tree it imports."""
        facts = self.facts
        for site in sorted(facts.record.calls, key=lambda s: s.order):
            root = facts.import_time_root(site)
            if root is None or root.order >= self.script_order:
                continue
            if self._fixes_default(site):
                via = "" if root is site else f", through `{_code(root.node.func)}()`"
                return DefaultFixed(root.node, f"`{_code(site.node)}` (on import{via})")
        return self._fixed_by_import()

    def default_fixed_before(self, site: CallSite) -> DefaultFixed | None:
        """What fixes the default context (or chooses the start method) on import before the
        module-level call ``site``: code of this module, or a module of the tree it imports
        earlier."""
        found = self.default_fixed_between(-1, site.order)
        if found is not None:
            return found
        return self._fixed_by_import(site.statement)

    def _fixed_by_import(self, until: cst.CSTNode | None = None) -> DefaultFixed | None:
        """A module of the tree, imported at module level (before the statement ``until``),
        whose import-time code chooses the start method or fixes the default context."""
        for name, node in self._imported_modules(until):
            summary = self._summary(name)
            effect = import_effects(summary) if summary is not None else None
            if effect is not None and (effect.chooses or effect.fixes_default is not None):
                what = "set_start_method()" if effect.chooses else effect.fixes_default
                return DefaultFixed(node, f"`{what}` in `{name}`, which the module imports,")
        return None

    def default_fixed_between(self, first: int, last: int) -> DefaultFixed | None:
        """Code that runs on import between two points (call orders) and fixes the default
        context or starts processes with it."""
        for site in sorted(self.facts.record.calls, key=lambda s: s.order):
            root = self.facts.import_time_root(site)
            if root is None or not first < root.order < last:
                continue
            if self._fixes_default(site):
                return DefaultFixed(root.node, f"`{_code(site.node)}`")
        return None

    # -- where the default context gets fixed --------------------------------------------------
    def _fixes_default(self, site: CallSite) -> bool:
        """Whether ``site`` fixes the default context: a Queue, Lock, Pool, Manager,
        ``get_start_method()``, a Process started, a DataLoader that may have workers."""
        facts = self.facts
        if any(site is fixer for fixer, _ in facts.default_fixers):
            return True
        if any(start.site is site and start.obj.method is None
               and start.obj.kind in _DEFAULT_KINDS - {ApiKind.PROCESS}
               for start in facts.starts):
            return True
        if _is_process_start(facts, site):
            return True
        called = facts.value(site.node.func, site)
        return (isinstance(called, Qual) and called.name in knowledge.DATALOADERS
                and _may_have_workers(site.node))

    @cached_property
    def script_order(self) -> int:
        """Where the script part begins: the main guard, or the first start on import, which
        MPL101's fix moves under the guard with everything after it."""
        facts = self.facts
        statements = {point.statement for start in facts.starts
                      if (point := start_point(facts, start)) is not None}
        firsts = [site.order for site in facts.record.calls if site.statement in statements]
        return min([self.guard_order, *firsts])

    @cached_property
    def guard_order(self) -> int:
        """The order of the first call under the main guard (every call when there is none)."""
        guarded = [site.order for site in self.facts.record.calls if site.guarded]
        return min(guarded) if guarded else 1 << 60

    @cached_property
    def import_chooses_start_method(self) -> bool:
        """A module of the tree imported at module level calls set_start_method() when it is
        imported: the program's start method is chosen there."""
        for name, _ in self._imported_modules():
            summary = self._summary(name)
            if summary is not None and import_effects(summary).chooses:
                return True
        return False

    def _imported_modules(self, until: cst.CSTNode | None = None,
                          ) -> Iterator[tuple[str, cst.CSTNode]]:
        """Modules the module imports at module level, outside the guard (up to the statement
        ``until``)."""
        for statement in self.facts.record.module.body:
            if statement is until:
                return
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        yield dotted_name(alias.name), statement
                elif isinstance(small, cst.ImportFrom) and small.module is not None \
                        and not small.relative:
                    yield dotted_name(small.module), statement

    def _summary(self, name: str) -> ModuleSummary | None:
        evaluator = self.facts.evaluator
        project = evaluator.project
        if project is None:
            return None
        path = project.tree.find(name, evaluator.roots)
        return project.summaries.get(path) if path is not None else None

    # -- globals the workers read --------------------------------------------------------------
    @cached_property
    def worker_functions(self) -> list[tuple[WorkSite, Func, list[Func]]]:
        """Each changing work, a task function of this module, and what it runs in the child
        (itself and the functions of the module it calls, three calls deep)."""
        facts = self.facts
        found = []
        for work in self.changing:
            functions = facts.task_functions(work)
            for callable_ in work.callables:
                functions.extend(f for f in facts.functions_of(facts.work_value(work, callable_))
                                 if f not in functions)
            for func in functions:
                if func.evaluator is facts.evaluator:
                    found.append((work, func, reached(facts, func)))
        return found

    def _runtime_globals(self) -> Iterator[Difference]:
        facts = self.facts
        seen: set[str] = set()
        changed = self.changed_in_place
        for _, _, run in self.worker_functions:
            in_child: set[cst.CSTNode] = {f.node for f in run}
            for helper in run:
                for name, node in global_reads(facts, helper):
                    if name in seen:
                        continue
                    where = runtime_setter(facts, in_child, name) or self._script_part(name)
                    if where is not None:
                        seen.add(name)
                        yield Difference(node, (
                            f"workers read `{name}`, which the parent sets at run time "
                            f"({where}): spawned workers would {_unset(facts, name)}"))
                    elif name in changed:
                        seen.add(name)
                        yield Difference(node, (
                            f"workers read `{name}`, which the parent changes at run time "
                            f"(`{changed[name]}`): spawned workers would see it unchanged"))

    def _script_part(self, name: str) -> str | None:
        """Bound at module level after the first start on import: MPL101's fix moves it under
        the guard, where a spawned child never runs it."""
        for binding in self.facts.record.scope.bindings.get(name, []):
            if binding.function is None and not binding.guarded and (
                    self.script_order <= binding.order < self.guard_order):
                return "after the first start, in the script part"
        return None

    @cached_property
    def changed_in_place(self) -> dict[str, str]:
        """Module globals the parent changes in place at run time (under the guard or in a
        function the guard runs), each with the code that does it."""
        found: dict[str, str] = {}
        for body, scope in self._runtime_statements():
            for node in _walk_no_defs(body):
                target = _changed_target(node)
                root = _root_name(target) if target is not None else None
                if target is None or root is None or root.value in found or _is_import(
                        self.facts, root.value):
                    continue
                owner = scope.lookup_scope(root.value)
                if owner is not None and owner.kind is ScopeKind.MODULE:
                    found[root.value] = _code(node if isinstance(node, cst.Call) else target)
        return found

    def _runtime_statements(self) -> Iterator[tuple[cst.CSTNode, Scope]]:
        """The guard's body and the bodies of the functions the guard runs, each with the
        scope its names are read in."""
        record = self.facts.record
        if record.main_guard is not None:
            yield record.main_guard.body, record.scope
        in_children = self.facts.initializers | {
            f.node for _, _, run in self.worker_functions for f in run}
        for function in self._guard_functions - in_children:  # the children set it themselves
            scope = record.scopes.get(function)
            if isinstance(function, cst.FunctionDef) and scope is not None:
                yield function.body, scope

    @cached_property
    def _guard_functions(self) -> frozenset[cst.CSTNode]:
        """Functions of this module the guard runs (through calls), but not the import."""
        facts = self.facts
        guarded = facts.functions_run_by([site for site in facts.record.calls if site.guarded])
        return guarded - facts.import_time_functions

    # -- what the starts send --------------------------------------------------------------------
    def _sent_to_processes(self) -> Iterator[Difference]:
        """A Process's target and arguments are inherited under fork and pickled under spawn."""
        facts = self.facts
        for work in self.changing:
            if work.kind is not ApiKind.PROCESS:
                continue
            held = self._held_by_process_object(work)
            if held is not None:
                yield held
            if work.func is not None:
                problem = unpicklable_callable(facts.work_value(work, work.func))
                if problem is not None:
                    yield Difference(work.func, (
                        f"the target is {problem[1]}: a spawned child cannot unpickle it"))
            for payload in work.payload:
                value = facts.work_value(work, payload.expr)
                yield from self._sent_value(work, payload.expr, value)

    def _held_by_process_object(self, work: WorkSite) -> Difference | None:
        """A Process subclass is pickled whole into a spawned child, with every model it
        holds; a forked child has the parent's object."""
        facts = self.facts
        klass = facts.value(work.site.node.func, work.site)
        if isinstance(klass, Qual):
            klass = facts.evaluator.in_project(klass.name) or klass
        if not isinstance(klass, Klass):
            return None
        held = klass.evaluator.held_models(Instance(klass))
        if not held:
            return None
        return Difference(work.site.node, (
            f"the `{klass.node.name.value}` process object is pickled into its child, with "
            f"`{held[0].name}` ({held[0].label}): under fork the child has the parent's object, "
            "under spawn a copy made through pickling (torch tensors in shared memory)"))

    def _sent_value(self, work: WorkSite, expr: cst.BaseExpression,
                    value: Value) -> Iterator[Difference]:
        for model in models_in(value):
            if model.framework == "torch" and not self.facts.shares_memory(model):
                yield Difference(expr, (
                    f"{_model_name(model)} is sent to {work.api}: under fork each child changes "
                    "a private copy, under spawn torch moves its tensors to shared memory and "
                    "every child changes the same weights"))
                return
        for resource in resources_in(value):
            if resource.inherit_only:
                continue  # a Queue or Lock sent to a Process at its start is inherited: allowed
            yield Difference(expr, (f"{resource.label} sent to {work.api} cannot be pickled: "
                                    "under spawn the process fails to start"))
            return
        for element in _sent_elements(expr):
            inner = self.facts.work_value(work, element)
            problem = unpicklable_callable(inner)
            if problem is not None:
                yield Difference(element, (f"{problem[1]} sent to {work.api} cannot be "
                                           "pickled: under spawn the process fails to start"))
                return
            if self._is_tensor(work, element):
                yield Difference(element, (
                    f"tensor `{_code(element)}` is sent to {work.api}: under fork each child "
                    "changes a private copy, under spawn torch shares its memory with the parent"))
                return

    def _is_tensor(self, work: WorkSite, expr: cst.BaseExpression) -> bool:
        """A name bound to a torch tensor factory's result (``torch.zeros(...)``)."""
        if not isinstance(expr, cst.Name):
            return False
        scope = work.scope or work.site.scope
        owner = scope.lookup_scope(expr.value)
        if owner is None:
            return False
        for binding in owner.bindings.get(expr.value, []):
            if isinstance(binding.value, cst.Call):
                called = self.facts.evaluator.value(binding.value.func, owner)
                if isinstance(called, Qual) and called.name in knowledge.TENSOR_FACTORIES:
                    return True
        return False

    # -- state the parent sets -----------------------------------------------------------------
    def _parent_state(self) -> Iterator[Difference]:
        """Settings the parent makes at run time: a forked child has them, a spawned one
        starts from the library's defaults."""
        facts = self.facts
        for site in sorted(facts.record.calls, key=lambda s: s.order):
            if not self._runs_at_run_time(site):
                continue
            called = facts.value(site.node.func, site)
            name = called.name if isinstance(called, Qual) else None
            if name is not None and (_matches(name, knowledge.INHERITED_STATE)
                                     or _is_setter(name)):
                yield Difference(site.node, (
                    f"the parent calls `{_code(site.node.func)}(...)` at run time: a forked "
                    "child inherits that setting, a spawned child starts without it"))
        for body, _ in self._runtime_statements():
            for node in _walk_no_defs(body):
                patched = self._patched_attribute(node)
                if patched is not None:
                    module = patched.split(".")[0].split("[")[0]
                    yield Difference(node, (
                        f"the parent sets `{patched}` at run time: a forked child inherits it, "
                        f"a spawned child imports `{module}` afresh"))

    def _runs_at_run_time(self, site: CallSite) -> bool:
        """Run by the parent under the guard (directly or through its functions), not on
        import (import-time code runs again in a spawned child)."""
        from mplint.analysis.facts import function_of

        if site.guarded:
            return True
        function = function_of(site.scope)
        return function is not None and function in self._guard_functions

    def _patched_attribute(self, node: cst.CSTNode) -> str | None:
        """``library.attr = value``, ``helpers.CONFIG["k"] = v``, ``helpers.ITEMS.append(x)``
        (also ``decimal.getcontext().prec = 50``): something of an imported module changed in
        place. ``sys.path`` and ``os.environ`` are left out: a spawned child gets them too."""
        target = _changed_target(node)
        if target is None or (isinstance(node, cst.Call) and not isinstance(
                target, cst.Attribute)):
            return None
        changed = target.value if isinstance(node, cst.Call) and isinstance(
            target, cst.Attribute) else target
        if isinstance(node, cst.Call) and not isinstance(changed, (cst.Attribute, cst.Subscript)):
            return None  # ``module.method()``: a library function, judged by its name
        base: cst.BaseExpression = changed
        while isinstance(base, (cst.Attribute, cst.Call, cst.Subscript)):
            base = base.func if isinstance(base, cst.Call) else base.value
        if not (isinstance(base, cst.Name) and _is_import(self.facts, base.value)):
            return None
        shown = _code(changed)
        if any(shown == name or shown.startswith((f"{name}.", f"{name}["))
               for name in _INHERITED_BY_SPAWN):
            return None
        return _code(node) if isinstance(node, cst.Call) else shown

    # -- code that runs again in every spawned child --------------------------------------------
    def _import_time_effects(self) -> Iterator[Difference]:
        facts = self.facts
        for site in sorted(facts.record.calls, key=lambda s: s.order):
            root = facts.import_time_root(site)
            if root is None or root.order >= self.script_order:
                continue  # the script part: MPL101's fix moves it under the guard
            called = facts.value(site.node.func, site)
            name = called.name if isinstance(called, Qual) else _method_name(site.node)
            if name is not None and _matches(name, knowledge.IMPORT_TIME_EFFECTS) and not (
                    _idempotent(site.node)):
                yield Difference(site.node, (
                    f"`{_code(site.node.func)}(...)` runs on import: every spawned child runs "
                    "it again"))
                return
        for name, node in self._imported_modules():
            summary = self._summary(name)
            effect = import_effects(summary) if summary is not None else None
            if effect is not None and effect.output is not None:
                yield Difference(node, (
                    f"importing `{name}` runs `{effect.output}`: every spawned child imports it "
                    "again"))
                return

    def _main_name(self) -> Iterator[Difference]:
        """Children run the main module as ``__mp_main__``: code reading ``__name__`` (a
        logger's name) sees another value than under fork."""
        facts = self.facts
        for _, _, run in self.worker_functions:
            for helper in run:
                for name, node in global_reads(facts, helper):
                    if name == "__name__" or self._module_value_reads_name(name):
                        yield Difference(node, (
                            f"workers read `{name}`, whose value comes from `__name__`: "
                            "spawned children run the module as `__mp_main__`"))
                        return

    def _module_value_reads_name(self, name: str) -> bool:
        for binding in self.facts.record.scope.bindings.get(name, []):
            if binding.function is None and not binding.guarded and binding.value is not None \
                    and any(n.value == "__name__" for n in name_reads(binding.value)):
                return True
        return False

    def _timed_joins(self) -> Iterator[Difference]:
        """``p.join(timeout)`` waits a fixed time: a spawned child needs longer to start."""
        facts = self.facts
        for site in facts.record.calls:
            func = site.node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "join" and site.node.args:
                called = facts.value(func, site)
                if isinstance(called, Bound) and isinstance(called.obj, ProcessObject) \
                        and called.obj.method is None:
                    yield Difference(site.node, (
                        f"`{_code(site.node)}` waits a fixed time and a spawned child takes "
                        "longer to start, so what follows may see it still running"))
                    return


# -- shared with MPL302 --------------------------------------------------------------------------
def reached(facts: ModuleFacts, func: Func, depth: int = 3) -> list[Func]:
    """``func`` and the functions of this module it calls, through up to ``depth`` calls."""
    found, level = [func], [func]
    for _ in range(depth):
        called = [value for current in level for site in facts.calls_in(current.node)
                  if isinstance(value := facts.value(site.node.func, site), Func)
                  and value.evaluator is facts.evaluator]
        level = []
        for candidate in called:
            if all(candidate.node is not f.node for f in found):
                found.append(candidate)
                level.append(candidate)
    return found


def global_reads(facts: ModuleFacts, func: Func) -> Iterator[tuple[str, cst.Name]]:
    """Names the function's body reads that resolve to module globals, with the first read
    (``__name__`` too, which no statement binds)."""
    found: dict[str, cst.Name] = {}
    for node, scope in facts.record.reads.get(func.node, []):
        owner = scope.lookup_scope(node.value)
        if (owner is not None and owner.kind is ScopeKind.MODULE) or (
                owner is None and node.value == "__name__"):
            found.setdefault(node.value, node)
    yield from found.items()


def runtime_setter(facts: ModuleFacts, in_child: set[cst.CSTNode], name: str) -> str | None:
    """Where the parent alone binds ``name`` at run time, or None (also when the child's own
    code binds it)."""
    bindings = facts.record.scope.bindings.get(name, [])
    children_set = in_child | facts.initializers
    if any(b.function is not None and b.function in children_set for b in bindings):
        return None
    for binding in bindings:
        where = _parent_only(facts, binding)
        if where is not None:
            return where
    return None


def _parent_only(facts: ModuleFacts, binding: Binding) -> str | None:
    if binding.function is None:
        return "under the main guard" if binding.guarded else None
    if not isinstance(binding.function, cst.FunctionDef):
        return None
    if binding.function in facts.parent_functions:
        return f"in `{binding.function.name.value}`"
    if not facts.is_entry_script:  # a library's function: its importers call it
        return f"in `{binding.function.name.value}`, which importers of the module call"
    return None


def _unset(facts: ModuleFacts, name: str) -> str:
    module = facts.record.scope.bindings.get(name, [])
    if any(b.function is None and not b.guarded for b in module):
        return "see its import-time value"
    return "not have it (NameError)"


def unpicklable_callable(func: Value) -> tuple[bool, str] | None:
    """(is a local object, how to name it) when ``func`` cannot be found by a spawned child."""
    if isinstance(func, LambdaValue):
        return True, "a lambda"
    if isinstance(func, Func):
        name = func.node.name.value
        outer = func.scope.node
        if name in func.scope.global_names and isinstance(outer, cst.FunctionDef):
            return False, (f"function `{name}` exists only once `{outer.name.value}` has run "
                           "(it is defined there through `global`)")
        if func.scope.inside_function():
            return True, f"nested function `{name}`"
        return (False, f"function `{name}` is defined under the main guard") if func.guarded \
            else None
    if isinstance(func, Klass) and func.scope.inside_function():
        return True, f"local class `{func.node.name.value}`"
    if isinstance(func, Bound) and isinstance(func.obj, Instance):
        klass = func.obj.klass
        if klass.scope.inside_function():
            return True, f"method `{func.attr}` of local class `{klass.node.name.value}`"
    if isinstance(func, Partial):
        return unpicklable_callable(func.func)
    return None


# -- what importing another module of the tree does ----------------------------------------------
@dataclass(frozen=True)
class ImportEffects:
    """What a module's import-time code does that matters to a start method fix."""

    chooses: bool  # it calls set_start_method()
    fixes_default: str | None  # a call that fixes the default context, if any
    output: str | None  # a call that writes output or registers an exit handler, if any


def import_effects(summary: ModuleSummary) -> ImportEffects:
    """Read from the module's top-level code (not its functions, classes or main guard), by
    the calls' spelling: an over-approximation, which can only make a fix more careful."""
    cached = _EFFECTS.get(id(summary))
    if cached is not None and cached[0] is summary:
        return cached[1]
    chooses = False
    fixes: str | None = None
    output: str | None = None
    tree = summary.tree
    for statement in tree.body if tree is not None else ():
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
                isinstance(statement, ast.If) and _ast_guard(statement.test)):
            continue
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            last = _ast_last_name(node.func)
            chooses = chooses or last == "set_start_method"
            if fixes is None and last in knowledge.CONTEXT_FIXING_NAMES:
                fixes = f"{last}()"
            if output is None and last in knowledge.OUTPUT_NAMES:
                output = f"{last}()"
    effects = ImportEffects(chooses, fixes, output)
    _EFFECTS[id(summary)] = (summary, effects)
    return effects


_EFFECTS: dict[int, tuple[ModuleSummary, ImportEffects]] = {}


def _ast_last_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _ast_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


# -- small helpers -----------------------------------------------------------------------------
def _code(node: cst.CSTNode) -> str:
    text = cst.Module([]).code_for_node(node)
    return text if len(text) <= 60 else text[:57] + "..."



def _matches(name: str, table: frozenset[str]) -> bool:
    return name in table or any(name.startswith(prefix) for prefix in table
                                if prefix.endswith("."))


def _idempotent(call: cst.Call) -> bool:
    """``os.makedirs(path, exist_ok=True)``: run again, it does nothing more."""
    return any(arg.keyword is not None and arg.keyword.value == "exist_ok"
               and isinstance(arg.value, cst.Name) and arg.value.value == "True"
               for arg in call.args)


def _is_setter(qualname: str) -> bool:
    """``gym.logger.set_level``, ``tf.keras.utils.set_random_seed``: a library function that by
    its name changes the library's state (``set_start_method`` is the fix itself)."""
    module, _, last = qualname.rpartition(".")
    return bool(module) and last != "set_start_method" and (
        last.startswith(knowledge.SETTER_PREFIXES) or last in knowledge.SETTER_NAMES)


def _method_name(call: cst.Call) -> str | None:
    """``.write`` for ``f.write(...)``: methods named by their attribute alone."""
    func = call.func
    return f".{func.attr.value}" if isinstance(func, cst.Attribute) else None


def _model_name(model: Model) -> str:
    return f"model `{model.name}` ({model.label})" if model.name else f"a {model.label}"


def _sent_elements(expr: cst.BaseExpression) -> Iterable[cst.BaseExpression]:
    if isinstance(expr, (cst.Tuple, cst.List)):
        return [e.value for e in expr.elements]
    if isinstance(expr, cst.Dict):
        return [e.value for e in expr.elements if isinstance(e, cst.DictElement)]
    return [expr]


def _walk_no_defs(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``node``, not entering nested functions, lambdas or classes."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(c for c in children(current)
                     if not isinstance(c, (cst.FunctionDef, cst.Lambda, cst.ClassDef)))


def _changed_target(node: cst.CSTNode) -> cst.BaseExpression | None:
    """What a statement changes in place: ``x[k] = v``, ``x.a = v``, ``x += ...`` on an item,
    or a method call on ``x`` (``x.update(...)``, ``x.append(...)``, ``model.eval()``)."""
    if isinstance(node, cst.Assign):
        for target in node.targets:
            if isinstance(target.target, (cst.Subscript, cst.Attribute)):
                return target.target
    if isinstance(node, cst.AugAssign) and isinstance(node.target, (cst.Subscript,
                                                                    cst.Attribute)):
        return node.target
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
            node.func.attr.value in knowledge.MUTATING_METHODS:
        return node.func
    return None


def _root_name(expr: cst.BaseExpression) -> cst.Name | None:
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return expr if isinstance(expr, cst.Name) else None


def _is_import(facts: ModuleFacts, name: str) -> bool:
    bindings = facts.record.scope.bindings.get(name, [])
    return bool(bindings) and all(b.kind is BindingKind.IMPORT for b in bindings)


def _is_process_start(facts: ModuleFacts, site: CallSite) -> bool:
    """``p.start()`` on a Process of the default context."""
    func = site.node.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "start"):
        return False
    called = facts.value(func, site)
    return (isinstance(called, Bound) and isinstance(called.obj, ProcessObject)
            and called.obj.kind is ApiKind.PROCESS and called.obj.method is None)


def _may_have_workers(call: cst.Call) -> bool:
    """A DataLoader whose worker count is not a literal 0 (or absent)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "num_workers":
            return not (isinstance(arg.value, cst.Integer) and arg.value.evaluated_value == 0)
    return any(arg.star == "**" for arg in call.args) or len(call.args) >= 6

