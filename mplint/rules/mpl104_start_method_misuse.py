from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import (
    CallSite,
    ModuleFacts,
    StartMethodCall,
    function_of,
    start_method_argument,
)
from mplint.fixers.base import Fixer
from mplint.fixers.start_method import context_fixer, move_fixer
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_ALREADY_SET = 'raises RuntimeError "context has already been set"'
# Creating these with the default context fixes it, so a later set_start_method fails.
_FIXING_KINDS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.MANAGER})


class StartMethodMisuse(Rule):
    code = "MPL104"
    name = "start-method-misuse"
    summary = "set_start_method() at import time, twice, or after the default context was used"
    what = (
        "Flags `multiprocessing.set_start_method()` (or torch's) when it runs on import (module "
        "level outside the main guard; with `force=True` only in library code, where it "
        "overrides the start method of every program that imports it), in a method of "
        "library code that forces it and then starts its own processes, "
        "when it is called a second time, or when it comes after a pool, executor, manager, "
        "queue or `get_start_method()` has already fixed the default context."
    )
    why = (
        "The start method can be set once per process. A module-level call runs again in every "
        "spawned child, which re-imports the main module, and raises RuntimeError \"context has "
        "already been set\"; in library code it silently changes the start method of every "
        "application that imports it. After the default context is in use, the call raises too."
    )
    fix_safety = (
        'Safe: a module-level call moves to the top of `if __name__ == "__main__":` (or goes '
        "away, its comments kept, when the guard already chooses the start method). Unsafe: in "
        "library code (no main guard, no start at import) it goes away and the module's own "
        'pools, processes and queues are created from `get_context("spawn")` (executors get '
        "`mp_context=`), leaving the global default to the program, which may have relied on "
        "it; a library module that starts nothing itself keeps its call, the project's choice. "
        "No automatic fix for a second call or a call after the default was fixed, nor where "
        "code between the call and the guard (a Queue, Lock, Value, pool or started process of "
        "the default context, `get_start_method()`) fixes the default: moved below it, the "
        'call would raise "context has already been set".'
    )
    references = ("https://docs.python.org/3/library/multiprocessing.html#multiprocessing.set_start_method",)
    runtime_errors = (
        "context has already been set",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            def work(x):
                return -x

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(3)))
            """,
            "set once, under the guard, before any pool exists",
        ),
        Valid(
            """
            import multiprocessing as mp

            _ctx = mp.get_context("spawn")

            def run(fn, items):
                with _ctx.Pool() as pool:
                    return pool.map(fn, items)
            """,
            "library code takes a context instead of changing the global start method",
        ),
        Valid(
            """
            import multiprocessing as mp

            if __name__ == "__main__":
                try:
                    mp.set_start_method("spawn")
                except RuntimeError:
                    mp.set_start_method("spawn", force=True)
            """,
            "the second call is in the except branch and uses force=True",
        ),
        Valid(
            """
            import multiprocessing as mp

            mp.set_start_method("spawn", force=True)

            def work(x):
                return x * 2

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            "force=True replaces the start method instead of raising; in each spawned child, "
            "which imports the script again, it sets the same method again",
        ),
        Valid(
            """
            import multiprocessing as mp

            def use_spawn():
                try:
                    mp.set_start_method("spawn", force=True)
                except RuntimeError:
                    pass
            """,
            "a helper the program calls to choose its start method: choosing is its job",
        ),
        Valid(
            """
            import multiprocessing as mp

            class Job:
                def run(self, items):
                    mp.set_start_method("spawn", force=True)
                    with mp.Pool(2) as pool:
                        return pool.map(abs, items)

            if __name__ == "__main__":
                print(Job().run([-1, -2]))
            """,
            "a script's own class: the program is choosing its own start method",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            mp.set_start_method("fork")
            lock = mp.Lock()

            def work(x):
                return x + 1

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(3)))
            """,
            (3, 1, "multiprocessing.set_start_method() runs when the module is imported, so it "
                   "runs again in every spawned child and in every importer (RuntimeError "
                   '"context has already been set"); call it under the main guard or use '
                   "get_context() (no automatic fix: `mp.Lock()` runs between the call and the "
                   "main guard and fixes the default start method: the call must come before "
                   "it)"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            mp.set_start_method("spawn")

            def work(x):
                return -x

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(3)))
            """,
            (3, 1, "multiprocessing.set_start_method() runs when the module is imported, so it "
                   "runs again in every spawned child and in every importer (RuntimeError "
                   '"context has already been set"); call it under the main guard or use '
                   "get_context()"),
            fixed="""
            import multiprocessing as mp

            def work(x):
                return -x

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(3)))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            if __name__ == "__main__":
                pool = mp.Pool(2)
                mp.set_start_method("spawn")
                mp.set_start_method("forkserver")
            """,
            (5, 5, "multiprocessing.set_start_method() after multiprocessing.Pool(...) has fixed "
                   f"the default context {_ALREADY_SET}"),
            (6, 5, "second multiprocessing.set_start_method() without force=True "
                   f"{_ALREADY_SET}"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            if mp.get_start_method(allow_none=True) != "spawn":
                mp.set_start_method("spawn", force=True)
            """,
            (4, 5, "multiprocessing.set_start_method(..., force=True) runs when the module is "
                   "imported and replaces the start method of every program that imports it; "
                   "choose the method in the program's main guard, or use get_context() for "
                   "this module's own processes (no automatic fix: removing it changes the "
                   "start method of the programs that rely on it)"),
        ),
        Invalid(
            """
            import torch.multiprocessing as mp

            class Evaluator:
                def __init__(self, workers):
                    self.workers = workers

                def evaluate(self, shards):
                    mp.set_start_method("spawn", force=True)
                    with mp.Pool(self.workers) as pool:
                        return pool.map(len, shards)
            """,
            (8, 9, "torch.multiprocessing.set_start_method(..., force=True) in method `evaluate` "
                   "replaces the start method of the whole program every time it runs, and the "
                   "program's own choice with it; create the torch.multiprocessing.Pool it "
                   "starts from get_context('spawn') instead (no automatic fix: other code of "
                   "the program may rely on the start method it sets)"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        calls = facts.start_method_calls
        fixers = [(s.site, f"{s.obj.api}(...)") for s in facts.starts
                  if s.obj.kind in _FIXING_KINDS and s.obj.method is None]
        fixers += [(site, f"{api}()") for site, api in facts.default_fixers]
        for call in calls:
            root = facts.import_time_root(call.site)
            library = facts.record.main_guard is None and not facts.is_entry_script
            if root is not None and call.force:
                if library:  # a script's own choice, re-made in its children, is harmless
                    yield offer(call.site.node, (
                        f"{call.api}(..., force=True) runs when the module is imported and "
                        "replaces the start method of every program that imports it; choose "
                        "the method in the program's main guard, or use get_context() for this "
                        "module's own processes"),
                        "removing it changes the start method of the programs that rely on it")
                continue
            if root is not None:
                statement = _own_statement(call.site)
                if root is not call.site:
                    fix: Fixer | str = "it runs inside a function that module-level code calls"
                elif library:
                    fix = context_fixer(facts, statement, call.site.node)
                else:
                    fix = move_fixer(facts, call.site, statement,
                                     any(other.site.guarded for other in calls))
                yield offer(call.site.node, (
                    f"{call.api}() runs when the module is imported, so it runs again in every "
                    'spawned child and in every importer (RuntimeError "context has already '
                    'been set"); call it under the main guard or use get_context()'), fix)
            elif not call.force:
                yield from self._repeated(call, calls, fixers)
            elif library:
                yield from self._forced_in_method(facts, call)

    def _forced_in_method(self, facts: ModuleFacts, call: StartMethodCall) -> Iterator[Report]:
        """A method of library code that forces the start method and then starts its own
        processes changes the program's start method as a side effect of its work."""
        method = function_of(call.site.scope)
        if not isinstance(method, cst.FunctionDef) or not _is_method(method):
            return
        started = next((s for s in facts.starts if function_of(s.site.scope) is method
                        and s.site.order > call.site.order and s.obj.method is None), None)
        if started is None:
            return
        chosen = start_method_argument(call.site.node)
        context = f"get_context({chosen!r})" if chosen and chosen != "dynamic" else "get_context()"
        yield offer(call.site.node, (
            f"{call.api}(..., force=True) in method `{method.name.value}` replaces the start "
            "method of the whole program every time it runs, and the program's own choice with "
            f"it; create the {started.obj.api} it starts from {context} instead"),
            "other code of the program may rely on the start method it sets")

    def _repeated(self, call: StartMethodCall, calls: list[StartMethodCall],
                  fixers: list[tuple[CallSite, str]]) -> Iterator[Report]:
        if any(_runs_before(other.site, call.site) for other in calls if other is not call):
            yield Report(call.site.node, f"second {call.api}() without force=True {_ALREADY_SET}")
            return
        for site, what in fixers:
            if _runs_before(site, call.site):
                yield Report(call.site.node, (f"{call.api}() after {what} has fixed the default "
                                              f"context {_ALREADY_SET}"))
                return


def _is_method(function: cst.FunctionDef) -> bool:
    """A method: its first parameter is ``self`` (a class body, or an excerpt of one)."""
    params = function.params.params
    return bool(params) and params[0].name.value == "self"


def _own_statement(site: CallSite) -> cst.SimpleStatementLine | None:
    """The top-level statement that is just this call, if there is one."""
    statement = site.statement
    if (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr) and statement.body[0].value is site.node):
        return statement
    return None


def _runs_before(first: CallSite, then: CallSite) -> bool:
    """``first`` surely runs before ``then``: same function, earlier, in an enclosing block."""
    if function_of(first.scope) is not function_of(then.scope) or first.order >= then.order:
        return False
    prefix = then.suites[: len(first.suites)]
    if len(prefix) != len(first.suites):
        return False
    return all(a is b for a, b in zip(prefix, first.suites, strict=True))
