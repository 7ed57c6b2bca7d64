from __future__ import annotations

from collections.abc import Iterator

from mplint.analysis import ModuleFacts, WorkSite
from mplint.analysis.values import Bound, Func, Instance, Klass, Partial, Value
from mplint.fixers.notebook_defined_task import move_fixer
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer


class NotebookDefinedTask(Rule):
    code = "MPL207"
    name = "notebook-defined-task"
    summary = "function or class defined in a notebook sent to a spawn or forkserver process"
    notebook = True
    what = (
        "In a Jupyter notebook, flags a function or class defined in a cell (at the top level "
        "of the cell) that a process started under spawn or forkserver needs: a `Pool` or "
        "`ProcessPoolExecutor` task, a `Process` target, a pool's or executor's `initializer=`, "
        "a DataLoader's `collate_fn`/`worker_init_fn`, a DataLoader whose dataset is an "
        "instance of a class defined in the notebook, and an instance or a method of such a "
        "class sent as the task (also through `functools.partial`). The default start method "
        "counts as spawn or forkserver where the targets make it so: macOS and Windows, and "
        "Linux from Python 3.14 (`target-platforms`, `target-python`). Lambdas and nested "
        "functions are MPL203's, in notebooks as in scripts; joblib, ray and dask send "
        "functions by value and are not flagged."
    )
    why = (
        "A spawned or forkserver child finds a function or class by its module and name. In a "
        "Jupyter kernel the notebook's code runs in `__main__`, which is not a file the child "
        "can import, so every worker dies with `AttributeError: Can't get attribute 'square' "
        "on <module '__main__' (built-in)>`; a `Pool` keeps replacing the dying workers and "
        "`map` hangs, and a DataLoader's workers fail the same way. Under fork the child "
        "inherits the kernel's memory and the same notebook works, so it breaks only on "
        "another machine or Python version. `mplint verify nb.ipynb` reproduces it: it runs "
        "the cells in a real kernel under spawn and forkserver (the `notebook` extra) and names "
        "this rule for the crash or hang."
    )
    fix_safety = (
        "Unsafe, and a two-file edit: the functions and classes the notebook's processes need "
        "move into a new module beside the notebook, `<notebook>_tasks.py` (written in one "
        "step; the fix is not offered when that file exists), with the imports they read and "
        "the notebook's other definitions they call, and the cell that defined the first of "
        "them imports them instead (`from explore_tasks import square`); comments above the "
        "moved definitions stay in their cells, every other cell is left alone. It is unsafe "
        "because code now lives in a second file the notebook depends on, and a re-run of the "
        "defining cell no longer redefines it (restart the kernel after editing the module). "
        "Declined, with the reason, when a definition reads a variable a cell sets (in a module "
        "it would not see the notebook's variables), declares a `global`, is defined inside a "
        "block (`if`, `try`), reads a name the notebook defines more than once, or when two "
        "definitions of one name would move; pass the notebook's variables as arguments (or "
        "through `functools.partial`) instead. Only `mplint --fix "
        "--unsafe-fixes` on a notebook file makes it (the library API and stdin have no folder "
        "to write the module in). Choosing fork (`mp.get_context(\"fork\")`) also works, on "
        "Linux and macOS only, where nothing in the kernel runs threads."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#using-a-pool-of-workers",
        "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-start-methods",
    )
    runtime_errors = ("on <module '__main__' (built-in)>",)

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            from tasks import square

            with mp.Pool(2) as pool:
                print(pool.map(square, range(4)))
            """,
            "a function imported from a module next to the notebook is found by every child",
        ),
        Valid(
            """
            import multiprocessing as mp

            def square(x):
                return x * x

            with mp.get_context("fork").Pool(2) as pool:
                print(pool.map(square, range(4)))
            """,
            "a forked child inherits the kernel's `__main__`, the function with it",
        ),
        Valid(
            """
            from multiprocessing.pool import ThreadPool

            def square(x):
                return x * x

            with ThreadPool(2) as pool:
                print(pool.map(square, range(4)))
            """,
            "threads share the kernel's memory: nothing is pickled",
        ),
        Valid(
            """
            from joblib import Parallel, delayed

            def square(x):
                return x * x

            print(Parallel(n_jobs=2)(delayed(square)(x) for x in range(4)))
            """,
            "joblib's workers receive the function by value (cloudpickle)",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            def square(x):
                return x * x

            with mp.Pool(2) as pool:
                print(pool.map(square, range(4)))
            """,
            (7, 11, "function `square` is defined in the notebook, so a child started by "
                    "Pool.map under spawn or forkserver cannot find it (\"Can't get attribute "
                    "'square' on <module '__main__'>\"; a pool then hangs); move it into a "
                    "module beside the notebook and import it"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor

            def load(path):
                return open(path).read()

            def warm_up():
                print("worker ready")

            with ProcessPoolExecutor(2, initializer=warm_up) as ex:
                texts = list(ex.map(load, ["a.txt", "b.txt"]))
            """,
            (9, 6, "function `warm_up` is defined in the notebook, so a child started by "
                   "ProcessPoolExecutor(initializer=...) under spawn or forkserver cannot find it "
                   "(\"Can't get attribute 'warm_up' on <module '__main__'>\"); move it into a "
                   "module beside the notebook and import it"),
            (10, 18, "function `load` is defined in the notebook, so a child started by "
                     "ProcessPoolExecutor.map under spawn or forkserver cannot find it (\"Can't "
                     "get attribute 'load' on <module '__main__'>\"; a pool then hangs); move it "
                     "into a module beside the notebook and import it"),
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset

            class Squares(Dataset):
                def __len__(self):
                    return 8

                def __getitem__(self, index):
                    return torch.tensor(index * index)

            def stack(rows):
                return torch.stack(rows)

            loader = DataLoader(Squares(), batch_size=4, num_workers=2, collate_fn=stack)
            """,
            (14, 10, "function `stack` and class `Squares` are defined in the notebook, so a "
                     "child started by DataLoader under spawn or forkserver cannot find them "
                     "(\"Can't get attribute 'stack' on <module '__main__'>\"); move them into "
                     "a module beside the notebook and import them"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def report(name):
                print("hello", name)

            worker = mp.get_context("spawn").Process(target=report, args=("kernel",))
            worker.start()
            worker.join()
            """,
            (6, 10, "function `report` is defined in the notebook, so a child started by "
                    "Process under spawn or forkserver cannot find it (\"Can't get attribute "
                    "'report' on <module '__main__'>\"); move it into a module beside the "
                    "notebook and import it"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        if not facts.notebook:
            return
        found: list[tuple[WorkSite, list[Func | Klass]]] = []
        for work in facts.work:
            if work.cloudpickle or not facts.may_use(work.method, "spawn", "forkserver"):
                continue
            names: list[Func | Klass] = []
            for value in _sent(facts, work):
                defined = _defined_here(value, facts)
                if defined is not None and all(defined.node is not d.node for d in names):
                    names.append(defined)
            if names:
                found.append((work, names))
        if not found:
            return
        # one fix moves every definition the notebook's processes need
        everything = list(dict.fromkeys(d.node for _, names in found for d in names))
        fix = move_fixer(facts.record.module, everything, facts.notebook)
        for work, names in found:
            yield offer(work.site.node, _message(names, work), fix)


def _sent(facts: ModuleFacts, work: WorkSite) -> list[Value]:
    """The callables ``work`` sends, and a DataLoader's dataset."""
    sent = [facts.work_value(work, expr) for expr in (work.func, *work.callables)
            if expr is not None]
    if work.kind is ApiKind.DATALOADER and work.payload:
        sent.append(facts.work_value(work, work.payload[0].expr))
    return sent


def _defined_here(value: Value, facts: ModuleFacts) -> Func | Klass | None:
    """The notebook's own top-level function or class that sending ``value`` pickles by
    reference; None for anything else."""
    if isinstance(value, Partial):
        return _defined_here(value.func, facts)
    if isinstance(value, Bound):
        return _defined_here(value.obj, facts)
    if isinstance(value, Instance):
        value = value.klass
    if isinstance(value, (Func, Klass)) and value.evaluator is facts.evaluator \
            and not value.scope.inside_function():
        return value
    return None


def _message(defined: list[Func | Klass], work: WorkSite) -> str:
    names = [("function" if isinstance(d, Func) else "class", d.node.name.value)
             for d in defined]
    listed = [f"{kind} `{name}`" for kind, name in names]
    what = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"
    verb, pronoun = ("is", "it") if len(names) == 1 else ("are", "them")
    hang = "; a pool then hangs" if work.per_task else ""
    return (f"{what} {verb} defined in the notebook, so a child started by {work.api} under "
            f"spawn or forkserver cannot find {pronoun} (\"Can't get attribute '{names[0][1]}' "
            f"on <module '__main__'>\"{hang}); move {pronoun} into a module beside the notebook "
            f"and import {pronoun}")
