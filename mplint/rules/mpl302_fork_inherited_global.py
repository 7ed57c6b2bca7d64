from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import (
    Func,
    Model,
    ModuleFacts,
    WorkSite,
    global_reads,
    reached,
    runtime_setter,
)
from mplint.rules.base import Invalid, Report, Rule, Valid


class ForkInheritedGlobal(Rule):
    code = "MPL302"
    name = "fork-inherited-global"
    summary = "task reads a global the parent sets at run time"
    what = (
        "Flags a read, in a process's or pool's task function (or a function of the module it "
        "calls, up to three calls deep), of a module global that the "
        "parent sets only at run time: under `if __name__ == \"__main__\":`, or through "
        "`global` in a function the parent runs (`main()`), or, in a library module with no "
        "entry point, in any of its functions (its importers call them); or one the parent "
        "changes in place at run time (`cfg.update(...)`, `hparams.parse(...)`, "
        "`config[\"lr\"] = ...`). Models changed in place are not settings and are not "
        "reported here. Reported when the start may use "
        "spawn or forkserver (explicitly, or as the platform default of the targets). Globals "
        "set by the pool's initializer or by the task itself are not reported."
    )
    why = (
        "A forked child gets a copy of the parent's memory, so the global has the value the "
        "parent gave it. A spawn or forkserver child imports the module afresh and never runs "
        "the guard or `main()`: the global is missing (NameError) or still has its import-time "
        "value, and the task silently works on stale settings."
    )
    fix_safety = (
        "No automatic fix: pass the value as an argument of the task, or through "
        "`initializer=`/`initargs=` into a global the initializer sets in each worker."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-start-methods",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            _scale = None

            def init(scale):
                global _scale
                _scale = scale

            def work(x):
                return x * _scale

            if __name__ == "__main__":
                with mp.Pool(2, initializer=init, initargs=(3,)) as pool:
                    print(pool.map(work, range(4)))
            """,
            "the initializer sets the global in each worker",
        ),
        Valid(
            """
            import multiprocessing as mp

            SCALE = 3

            def work(x):
                return x * SCALE

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            "the global is set on import, so every child has it",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(x):
                return x * scale

            if __name__ == "__main__":
                scale = 3
                ctx = mp.get_context("fork")
                with ctx.Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            "fork is chosen explicitly: the children inherit the parent's globals",
        ),
        Valid(
            """
            import multiprocessing as mp

            config = {"lr": 0.1}

            def configure(lr):
                config["lr"] = lr

            def step(x):
                return x * config["lr"]

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                with ctx.Pool(2, initializer=configure, initargs=(0.5,)) as pool:
                    print(pool.map(step, range(4)))
            """,
            "each worker's initializer changes the setting itself",
        ),
        Valid(
            """
            from concurrent.futures import ProcessPoolExecutor

            vocabulary = {}

            def load_vocabulary(path):
                global vocabulary
                with open(path) as f:
                    vocabulary = {word.strip(): i for i, word in enumerate(f)}

            def encode(path, word):
                load_vocabulary(path)
                return vocabulary.get(word, 0)

            def encode_all(path, words):
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(encode, [path] * len(words), words))
            """,
            "a library function sets the global, but the task calls it itself in the worker",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            def work(x):
                return x * scale

            if __name__ == "__main__":
                scale = 3
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            (4, 16, "task function `work` reads global `scale`, which the parent sets at run "
                    "time (under the main guard); Pool.map children started with spawn or "
                    "forkserver import the module afresh and do not have it; pass it as an "
                    "argument or through initializer=/initargs="),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor

            VERBOSE = False

            def work(x):
                if VERBOSE:
                    print(x)
                return x

            def main(verbose):
                global VERBOSE
                VERBOSE = verbose
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(work, range(4)))

            if __name__ == "__main__":
                main(True)
            """,
            (6, 8, "task function `work` reads global `VERBOSE`, which the parent sets at run "
                   "time (in `main`); ProcessPoolExecutor.map children started with spawn or "
                   "forkserver import the module afresh and see its import-time value; pass it "
                   "as an argument or through initializer=/initargs="),
        ),
        Invalid(
            """
            import multiprocessing as mp

            SCALE = None

            def scaled(x):
                return x * SCALE

            def work(x):
                return scaled(x) + 1

            if __name__ == "__main__":
                SCALE = 3
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            (6, 16, "task function `work` reads global `SCALE` through `scaled`, which the "
                    "parent sets at run time (under the main guard); Pool.map children started "
                    "with spawn or forkserver import the module afresh and see its import-time "
                    "value; pass it as an argument or through initializer=/initargs="),
        ),
        Invalid(
            """
            import multiprocessing as mp

            config = {"lr": 0.1, "depth": 2}

            def step(x):
                return x * config["lr"]

            if __name__ == "__main__":
                config["lr"] = 0.5
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(step, range(4)))
            """,
            (6, 16, "task function `step` reads global `config`, which the parent changes in "
                    "place at run time (`config[\"lr\"]`); Pool.map children started with spawn "
                    "or forkserver import the module afresh and see it unchanged; pass it as an "
                    "argument or through initializer=/initargs="),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor

            vocabulary = {}

            def load_vocabulary(path):
                global vocabulary
                with open(path) as f:
                    vocabulary = {word.strip(): i for i, word in enumerate(f)}

            def encode(word):
                return vocabulary.get(word, 0)

            def encode_all(words):
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(encode, words))
            """,
            (11, 12, "task function `encode` reads global `vocabulary`, which the parent sets at "
                     "run time (in `load_vocabulary`, which importers of the module call); "
                     "ProcessPoolExecutor.map children started with spawn or forkserver import "
                     "the module afresh and see its import-time value; pass it as an argument or "
                     "through initializer=/initargs="),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        reported: set[tuple[cst.CSTNode, str]] = set()
        for work in facts.work:
            if work.cloudpickle or not facts.may_use(work.method, "spawn", "forkserver"):
                continue  # forked children inherit; cloudpickle sends globals by value
            for func in facts.task_functions(work):
                if func.evaluator is not facts.evaluator:
                    continue
                run = reached(facts, func)
                in_child: set[cst.CSTNode] = {f.node for f in run}
                for helper in run:
                    for name, node in global_reads(facts, helper):
                        key = (func.node, name)
                        where = runtime_setter(facts, in_child, name)
                        if key in reported:
                            continue
                        if where is None:
                            changed = _changed(facts, name, (func, helper), node, work,
                                               in_child)
                            if changed is not None:
                                reported.add(key)
                                yield changed
                            continue
                        reported.add(key)
                        module = facts.record.scope.bindings[name]
                        seen = ("see its import-time value"
                                if any(b.function is None and not b.guarded for b in module)
                                else "do not have it")
                        via = "" if helper is func else f" through `{helper.node.name.value}`"
                        yield Report(node, (
                            f"task function `{func.node.name.value}` reads global `{name}`{via}, "
                            f"which the parent sets at run time ({where}); {work.api} children "
                            f"started with spawn or forkserver import the module afresh and "
                            f"{seen}; pass it as an argument or through initializer=/initargs="))



def _changed(facts: ModuleFacts, name: str, funcs: tuple[Func, Func], node: cst.Name,
             work: WorkSite, in_child: set[cst.CSTNode]) -> Report | None:
    """A global the parent changes in place at run time (``cfg.update(...)``,
    ``config["lr"] = ...``): a spawned child sees the import-time value, unless its own code
    binds the name. Models changed in place (``model.eval()``) are what crosses the boundary,
    not a setting: not reported."""
    change = facts.spawn.changed_in_place.get(name)
    if change is None or isinstance(facts.evaluator.name(name, facts.record.scope), Model):
        return None
    if any(b.function in in_child | facts.initializers
           for b in facts.record.scope.bindings.get(name, ())):
        return None
    func, helper = funcs
    via = "" if helper is func else f" through `{helper.node.name.value}`"
    return Report(node, (
        f"task function `{func.node.name.value}` reads global `{name}`{via}, which the parent "
        f"changes in place at run time (`{change}`); {work.api} children started with spawn "
        f"or forkserver import the module afresh and see it unchanged; pass it as an argument "
        f"or through initializer=/initargs="))
