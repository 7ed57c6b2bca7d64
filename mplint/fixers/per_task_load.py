"""MPL301: build the model once per worker, in the pool's initializer.

The loader call inside the task function is replaced by a module global that an initializer
fills once in each worker; the pool or executor gets ``initializer=``. Offered only when the
loader reads nothing but module-level names (so it is the same for every item) and the pool is
created by a visible call without an initializer. Safe when the task only calls the model (or
puts it in eval mode, moves it, predicts with it): each task then sees the same model it built
before. Unsafe when the task uses it otherwise, since the model is now shared by the tasks of a
worker.
"""

from __future__ import annotations

import libcst as cst

from mplint import knowledge
from mplint.analysis import CallSite, Func, ModuleFacts, Scope, WorkSite
from mplint.fixers.base import (
    SAFE,
    UNSAFE,
    Fixer,
    keyword_arg,
    names_read,
    split_blank_lines,
)
from mplint.fixers.load_per_worker import _creation, _fresh, _module_level
from mplint.knowledge import ApiKind


def per_worker_fixer(facts: ModuleFacts, work: WorkSite, func: Func, site: CallSite,
                     local: str | None) -> Fixer | str:
    """Move the loader call at ``site`` (bound to ``local`` in the task, if it is) into an
    initializer of the pool that runs ``work``."""
    if work.kind in (ApiKind.JOBLIB, ApiKind.RAY, ApiKind.DASK_CLIENT):
        return f"{work.api} has no worker initializer to load it in"
    if func.scope.inside_function() or func.guarded:
        return "the task function is not a module-level function"
    body = facts.evaluator.function_scope(func.node)
    assert body is not None
    for free in sorted(names_read(site.node)):
        owner = body.lookup_scope(free)
        if owner is not None and not _module_level(owner, free):
            return f"the loader reads `{free}`, which a worker initializer cannot see"
    pool = _creation(work.site)
    if isinstance(pool, str):
        return pool
    taken = set(facts.record.scope.bindings)
    stem = local or "model"
    global_name = _fresh(f"_worker_{stem}", taken)
    init_name = _fresh(f"_init_worker_{stem}", taken | {global_name})
    safety = SAFE if local is not None and _read_only(body, func.node, local) else UNSAFE

    def rewrite(module: cst.Module) -> cst.Module:
        """The initializer and its global, just above the task function."""
        newline, indent = module.default_newline, module.default_indent
        source = (f"{global_name} = None{newline}{newline}{newline}"
                  f"def {init_name}():{newline}"
                  f"{indent}global {global_name}{newline}"
                  f"{indent}{global_name} = {module.code_for_node(site.node)}{newline}")
        added = list(cst.parse_module(source).body)
        body: list[cst.BaseStatement] = []
        for statement in module.body:
            if statement is not func.node:
                body.append(statement)
                continue
            blank, function = split_blank_lines(statement)
            body.append(added[0].with_changes(leading_lines=blank))
            body.extend(added[1:])
            body.append(function.with_changes(leading_lines=[
                cst.EmptyLine(), cst.EmptyLine(), *getattr(function, "leading_lines", ())]))
        return module.with_changes(body=body)

    title = f"build it once per worker in `{init_name}` (Pool initializer=)"
    return Fixer(safety, title, rewrite, replace=[(site.node, cst.Name(global_name))],
                 keywords=[(pool, [keyword_arg("initializer", cst.Name(init_name))])])


def _read_only(body: Scope, function: cst.FunctionDef, name: str) -> bool:
    """True when ``function`` only calls ``name`` or calls its read-only methods."""
    ok = True

    class Uses(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> bool:
            func = node.func
            if isinstance(func, cst.Name) and func.value == name:
                for arg in node.args:
                    arg.visit(self)
                return False
            if (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                    and func.value.value == name
                    and func.attr.value in knowledge.READ_ONLY_METHODS):
                for arg in node.args:
                    arg.visit(self)
                return False
            return True

        def visit_Assign(self, node: cst.Assign) -> bool:
            node.value.visit(self)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal ok
            if node.value == name:
                ok = False

    function.body.visit(Uses())
    return ok and len(body.bindings.get(name, [])) == 1
