from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    CallSite,
    ModuleFacts,
    ProcessStart,
    Qual,
    Scope,
    StartMethodCall,
    WorkSite,
    function_of,
    own_nodes,
    start_method_argument,
)
from mplint.fixers.base import Fixer
from mplint.fixers.start_method import context_fixer, move_fixer
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_ALREADY_SET = 'raises RuntimeError "context has already been set"'
# Creating these with the default context fixes it, so a later set_start_method fails.
_FIXING_KINDS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.MANAGER})
_GET_START_METHOD = frozenset(Qual(f"{m}.get_start_method")
                              for m in knowledge.MULTIPROCESSING_MODULES)


class StartMethodMisuse(Rule):
    code = "MPL104"
    name = "start-method-misuse"
    summary = "set_start_method() at import time, twice, or after the default context was used"
    what = (
        "Flags `multiprocessing.set_start_method()` (or torch's) when it runs on import (module "
        "level outside the main guard; with `force=True` only in library code, where it "
        "overrides the start method of every program that imports it), in library code that "
        "forces it and starts its own processes (a method that starts them after the call, a "
        "constructor whose class starts them in its other methods, a function "
        "that builds a pool, processes or a DataLoader with workers and returns it), "
        "when it is called a second time, or when it comes after a pool, executor, manager, "
        "queue or `get_start_method()` has already fixed the default context. The call may "
        "sit in a helper of the module that runs it on every call (called twice, in a loop, "
        "from the constructor of a class built twice), or behind a "
        "`get_start_method(allow_none=True) != \"spawn\"` check, which lets it through once "
        "another default method is in use. Helpers that check `is None`, catch RuntimeError, "
        "return early once done or are decorated (cached) are left alone. In a Jupyter "
        "notebook a call at the top of a cell is not reported as running on import (no child "
        "re-imports a notebook); the other cases are."
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
        Valid(
            """
            import multiprocessing as mp

            def use_spawn():
                if mp.get_start_method(allow_none=True) is None:
                    mp.set_start_method("spawn")

            class Loader:
                def __init__(self):
                    use_spawn()

            if __name__ == "__main__":
                queue = mp.Queue()
                first, second = Loader(), Loader()
                for _ in range(2):
                    use_spawn()
            """,
            "the check skips the call once any method is in use: calling the helper again, "
            "or after the default context was fixed, changes nothing",
        ),
        Valid(
            """
            import multiprocessing as mp

            def use_spawn():
                if mp.get_start_method(allow_none=True) != "spawn":
                    mp.set_start_method("spawn")

            if __name__ == "__main__":
                use_spawn()
                use_spawn()
                with mp.Pool(2) as pool:
                    print(pool.map(abs, [-1, -2]))
            """,
            "the helper runs first, before any pool; called again, its check skips the call",
        ),
        Valid(
            """
            import multiprocessing as mp

            _chosen = False

            def use_spawn():
                global _chosen
                if _chosen:
                    return
                _chosen = True
                mp.set_start_method("spawn")

            if __name__ == "__main__":
                use_spawn()
                use_spawn()
            """,
            "the helper returns early once it has chosen: the call runs once",
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
        Invalid(
            """
            import multiprocessing as mp

            class Loader:
                def __init__(self, paths):
                    mp.set_start_method("spawn")
                    self.paths = paths

            if __name__ == "__main__":
                train = Loader(["train.txt"])
                test = Loader(["test.txt"])
            """,
            (5, 9, "multiprocessing.set_start_method() in `Loader.__init__` runs when `Loader()` "
                   "is called after the start method was already set, without force=True: "
                   f"{_ALREADY_SET}"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def use_spawn():
                mp.set_start_method("spawn")

            def run(items):
                use_spawn()
                with mp.Pool(2) as pool:
                    return pool.map(abs, items)

            if __name__ == "__main__":
                for chunk in ([-1], [-2]):
                    print(run(chunk))
            """,
            (4, 5, "multiprocessing.set_start_method() in `use_spawn` runs on every pass of the "
                   "loop that calls `run()`, without force=True: the second pass "
                   f"{_ALREADY_SET}"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def use_spawn():
                if mp.get_start_method(allow_none=True) != "spawn":
                    mp.set_start_method("spawn")

            if __name__ == "__main__":
                results = mp.Queue()
                use_spawn()
            """,
            (5, 9, "multiprocessing.set_start_method() in `use_spawn` runs when `use_spawn()` is "
                   "called after multiprocessing.Queue() has fixed the default context; where "
                   "the default method is not 'spawn', its get_start_method() check lets it "
                   f"through and it {_ALREADY_SET}"),
        ),
        Invalid(
            """
            import torch.multiprocessing as mp
            from torch.utils.data import DataLoader

            def make_loader(dataset, workers=4):
                mp.set_start_method("spawn", force=True)
                loader = DataLoader(dataset, batch_size=8, num_workers=workers)
                return loader
            """,
            (5, 5, "torch.multiprocessing.set_start_method(..., force=True) in function "
                   "`make_loader` replaces the start method of the whole program every time it "
                   "runs, and the program's own choice with it; pass "
                   "multiprocessing_context='spawn' to the DataLoader it builds instead (no "
                   "automatic fix: other code of the program may rely on the start method it "
                   "sets)"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            class Server:
                def __init__(self, handler):
                    mp.set_start_method("spawn", force=True)
                    self.handler = handler

                def start(self):
                    self.worker = mp.Process(target=self.handler)
                    self.worker.start()
            """,
            (5, 9, "multiprocessing.set_start_method(..., force=True) in method `__init__` "
                   "replaces the start method of the whole program every time it runs, and the "
                   "program's own choice with it; create the multiprocessing.Process class "
                   "`Server` starts from get_context('spawn') instead (no automatic fix: other "
                   "code of the program may rely on the start method it sets)"),
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
            if root is not None and facts.notebook:
                continue  # a cell runs when the user runs it, never on a child's import
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
                repeated = list(self._repeated(call, calls, fixers))
                yield from repeated or self._through_callers(facts, call, calls, fixers)
            elif library:
                yield from self._forced_in_library(facts, call)

    def _forced_in_library(self, facts: ModuleFacts, call: StartMethodCall) -> Iterator[Report]:
        """Library code that forces the start method and then starts its own processes changes
        the program's start method as a side effect of its work: a method that starts them
        after the call, a constructor whose class starts them in another method, or a function
        that builds them after the call and hands them to its caller."""
        function = function_of(call.site.scope)
        if not isinstance(function, cst.FunctionDef):
            return
        # a constructor chooses for the processes its object starts later, in other methods
        owner = call.site.scope.enclosing_class() if function.name.value == "__init__" else None
        if _is_method(function):
            started = next((s for s in _own_starts(facts) if (
                function_of(s.site.scope) is function and s.site.order > call.site.order)
                or _in_class(s.site, owner)), None)
            where = f"method `{function.name.value}`"
            if started is not None and function_of(started.site.scope) is not function:
                subject = f"class `{_display_name(call.site, function).partition('.')[0]}`"
            else:
                subject = "it"
        else:
            started = next((s for s in _own_starts(facts) if function_of(s.site.scope)
                            is function and s.site.order > call.site.order
                            and _returns_built(function, s.site.node)), None)
            where, subject = f"function `{function.name.value}`", "it"
        if started is None:
            return
        chosen = start_method_argument(call.site.node)
        method = chosen if chosen and chosen != "dynamic" else None
        yield offer(call.site.node, (
            f"{call.api}(..., force=True) in {where} replaces the start method of the whole "
            "program every time it runs, and the program's own choice with it; "
            f"{_own_context(started, method, subject)} instead"),
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

    def _through_callers(self, facts: ModuleFacts, call: StartMethodCall,
                         calls: list[StartMethodCall],
                         fixers: list[tuple[CallSite, str]]) -> Iterator[Report]:
        """A helper whose call runs each time the helper does (or once its check of the
        current method lets it through), reached a second time or after the default context
        was fixed, through the calls of this module that run it."""
        function = function_of(call.site.scope)
        if not isinstance(function, cst.FunctionDef):
            return
        always = _runs_whenever_called(call.site, function)
        if not always and (facts.delegates_start_method
                           or not _checked_against_default(facts, call, function)):
            return
        name = _display_name(call.site, function)
        callers = _callers(facts)
        entries = _entry_sites(callers, function)
        # every call that may set the method: the check skips the call once it is chosen
        setting = [site for other in calls for site in _setting_sites(callers, other)]
        for entry in entries:
            if always and entry.loop_names:
                yield Report(call.site.node, (
                    f"{call.api}() in `{name}` runs on every pass of the loop that calls "
                    f"`{_code(entry.node.func)}()`, without force=True: the second pass "
                    f"{_ALREADY_SET}"))
                return
        for entry in entries:
            earlier = [other for other in entries if other is not entry]
            earlier += [other.site for other in calls if other is not call]
            if always and any(_runs_before(other, entry) for other in earlier):
                yield Report(call.site.node, (
                    f"{call.api}() in `{name}` runs when `{_code(entry.node.func)}()` is "
                    "called after the start method was already set, without force=True: "
                    f"{_ALREADY_SET}"))
                return
            if not always and any(_may_run_before(other, entry) for other in setting):
                continue  # the method may be chosen already, and the check then skips the call
            what = next((what for site, what in fixers if _runs_before(site, entry)), None)
            if what is not None:
                then = ", and" if always else (
                    "; where the default method is not "
                    f"{start_method_argument(call.site.node)!r}, its get_start_method() check "
                    "lets it through and it")
                yield Report(call.site.node, (
                    f"{call.api}() in `{name}` runs when `{_code(entry.node.func)}()` is called "
                    f"after {what} has fixed the default context{then} {_ALREADY_SET}"))
                return


def _is_method(function: cst.FunctionDef) -> bool:
    """A method: its first parameter is ``self`` (a class body, or an excerpt of one)."""
    params = function.params.params
    return bool(params) and params[0].name.value == "self"


def _own_starts(facts: ModuleFacts) -> Iterator[ProcessStart | WorkSite]:
    """The processes, pools and DataLoaders with workers the module creates itself from the
    default context (created from a context of their own, they need no global choice)."""
    yield from (s for s in facts.starts if s.obj.method is None)
    yield from (w for w in facts.work if w.kind is ApiKind.DATALOADER and w.method is None)


def _own_context(started: ProcessStart | WorkSite, method: str | None, subject: str) -> str:
    """How the processes ``started`` creates get their start method without the global one."""
    if isinstance(started, WorkSite):
        return (f"pass multiprocessing_context={method or 'spawn'!r} to the DataLoader "
                f"{subject} builds")
    context = f"get_context({method!r})" if method else "get_context()"
    return f"create the {started.obj.api} {subject} starts from {context}"


def _in_class(site: CallSite, owner: Scope | None) -> bool:
    """``site`` runs in a method of the class ``owner``."""
    function = function_of(site.scope)
    scope: Scope | None = site.scope
    while scope is not None and scope.node is not function:
        scope = scope.parent
    return owner is not None and scope is not None and scope.enclosing_class() is owner


def _returns_built(function: cst.FunctionDef, made: cst.Call) -> bool:
    """``function`` returns what ``made`` builds: ``return made(...)``, or ``return name`` of
    the name it is assigned to. A function that hands its pool or loader to its caller is a
    building block of other programs, not a program choosing its own start method."""
    names = {target.target.value for node in own_nodes(function)
             if isinstance(node, cst.Assign) and node.value is made
             for target in node.targets if isinstance(target.target, cst.Name)}
    return any(isinstance(node, cst.Return) and node.value is not None and (
        node.value is made or (isinstance(node.value, cst.Name) and node.value.value in names))
        for node in own_nodes(function))


def _runs_whenever_called(site: CallSite, function: cst.FunctionDef) -> bool:
    """``site`` is in a statement of ``function``'s own body, outside any if, loop or try,
    that every call of ``function`` reaches."""
    return bool(site.suites) and site.suites[-1] is function.body and _reached(function,
                                                                                site.node)


def _reached(function: cst.FunctionDef, node: cst.CSTNode) -> bool:
    """Every call of ``function`` reaches the statement of its body that holds ``node``: no
    statement before it can leave the function (``if done: return``). A decorated function
    may be cached or wrapped: not known to run its body on every call."""
    body = function.body
    if function.decorators or not isinstance(body, cst.IndentedBlock):
        return False
    for statement in body.body:
        if _contains(statement, node):
            return True
        if any(isinstance(inner, (cst.Return, cst.Raise)) for inner in own_nodes(statement)):
            return False
    return False


def _contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(current is node for current in own_nodes(tree))


def _checked_against_default(facts: ModuleFacts, call: StartMethodCall,
                             function: cst.FunctionDef) -> bool:
    """``if get_start_method(allow_none=True) != "spawn": set_start_method("spawn")`` at the
    top of ``function``: the check lets the call through once another default method is in
    use (a second call is skipped; ``is None`` checks and ``try`` blocks stop both)."""
    chosen = start_method_argument(call.site.node)
    body = function.body
    if (chosen is None or chosen == "dynamic" or not isinstance(body, cst.IndentedBlock)
            or not _reached(function, call.site.node)):
        return False
    for statement in body.body:
        if (isinstance(statement, cst.If) and len(call.site.suites) >= 2
                and call.site.suites[-1] is statement.body
                and call.site.suites[-2] is body):
            return (_compares_current_method(facts, call.site, statement.test, chosen)
                    and bool(facts.default_methods - {chosen}))
    return False


def _compares_current_method(facts: ModuleFacts, site: CallSite, test: cst.BaseExpression,
                             chosen: str) -> bool:
    """``get_start_method(allow_none=True) != chosen`` (either side first)."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    target = test.comparisons[0]
    if not isinstance(target.operator, cst.NotEqual):
        return False
    sides = [test.left, target.comparator]
    literal = [side for side in sides if isinstance(side, cst.SimpleString)]
    asked = [side for side in sides if isinstance(side, cst.Call)
             and facts.value(side.func, site) in _GET_START_METHOD]
    return len(literal) == 1 and literal[0].evaluated_value == chosen and len(asked) == 1


def _callers(facts: ModuleFacts) -> dict[cst.CSTNode, list[CallSite]]:
    """The calls of this module that run each of its functions (constructors, methods)."""
    found: dict[cst.CSTNode, list[CallSite]] = {}
    for site in facts.record.calls:
        for func in facts.runs(site):
            found.setdefault(func.node, []).append(site)
    return found


def _entry_sites(callers: dict[cst.CSTNode, list[CallSite]],
                 function: cst.FunctionDef) -> list[CallSite]:
    """The calls that run ``function``: its callers, and the callers of a function that calls
    it on every run, through up to three calls."""
    found: list[CallSite] = []
    queue = [(site, 0) for site in callers.get(function, [])]
    while queue:
        site, depth = queue.pop(0)
        found.append(site)
        outer = function_of(site.scope)
        if (depth < 2 and isinstance(outer, cst.FunctionDef) and outer is not function
                and _runs_whenever_called(site, outer)):
            queue.extend((caller, depth + 1) for caller in callers.get(outer, []))
    return found


def _setting_sites(callers: dict[cst.CSTNode, list[CallSite]],
                   call: StartMethodCall) -> list[CallSite]:
    """``call`` and the calls of this module that may run it."""
    function = function_of(call.site.scope)
    found = [call.site]
    queue = list(callers.get(function, [])) if function is not None else []
    while queue and len(found) < 64:
        site = queue.pop()
        if site not in found:
            found.append(site)
            outer = function_of(site.scope)
            queue.extend(callers.get(outer, []) if outer is not None else [])
    return found


def _display_name(site: CallSite, function: cst.FunctionDef) -> str:
    owner = site.scope.enclosing_class()
    if owner is not None and isinstance(owner.node, cst.ClassDef):
        return f"{owner.node.name.value}.{function.name.value}"
    return function.name.value


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _own_statement(site: CallSite) -> cst.SimpleStatementLine | None:
    """The top-level statement that is just this call, if there is one."""
    statement = site.statement
    if (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr) and statement.body[0].value is site.node):
        return statement
    return None


def _may_run_before(first: CallSite, then: CallSite) -> bool:
    """``first`` comes earlier in the function that makes ``then``, in any block."""
    return function_of(first.scope) is function_of(then.scope) and first.order < then.order


def _runs_before(first: CallSite, then: CallSite) -> bool:
    """``first`` surely runs before ``then``: same function, earlier, in an enclosing block."""
    if function_of(first.scope) is not function_of(then.scope) or first.order >= then.order:
        return False
    prefix = then.suites[: len(first.suites)]
    if len(prefix) != len(first.suites):
        return False
    return all(a is b for a, b in zip(prefix, first.suites, strict=True))
