from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import ModuleFacts, Sent, WorkSite, dataset_contents, unpicklable_callable
from mplint.analysis.values import Func
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid


class UnpicklableCallable(Rule):
    code = "MPL203"
    name = "unpicklable-callable"
    summary = "lambda, nested function or local class sent to a process"
    what = (
        "Flags a lambda, a function defined inside another function, a class defined inside a "
        "function, a method of an instance of such a class, or a function defined under "
        '`if __name__ == "__main__":`, used as a `Process` target, a pool or executor task, or '
        "a `torch.multiprocessing.spawn` function (also through `functools.partial`), and "
        "as a pool's or executor's `initializer=`. A DataLoader's dataset travels to every "
        "worker under spawn and forkserver, so the same callables are flagged in it: its "
        "transforms (inside torchvision `Compose`/`Lambda` too), values assigned to its "
        "attributes, and what its class's `__init__` stores on `self`. In a Jupyter notebook "
        "a function defined under the main guard is MPL207's, as every function of the "
        "notebook is."
    )
    why = (
        "Functions are pickled by reference: the child looks them up by module and name. "
        "Local objects have no importable name, so pools and executors fail under every start "
        "method with `Can't pickle local object`, and a `Process` fails under spawn and "
        "forkserver. A function defined under the main guard does not exist in a spawned child, "
        "which re-imports the module as `__mp_main__` without running the guard: "
        "`Can't get attribute`."
    )
    fix_safety = (
        "No automatic fix yet. Define the function at module level; pass what it closed over "
        "as arguments or through `functools.partial`."
    )
    references = ("https://docs.python.org/3/library/pickle.html#what-can-be-pickled-and-unpickled",)
    runtime_errors = (
        "Can't pickle local object",
        "Can't get local object",
        "Can't get attribute",
        "attribute lookup <lambda>",
    )

    VALID = (
        Valid(
            """
            import asyncio

            async def total(values):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, lambda: sum(values))

            if __name__ == "__main__":
                print(asyncio.run(total([1, 2, 3])))
            """,
            "run_in_executor(None, ...) runs the lambda in the loop's default thread pool: "
            "nothing is pickled",
        ),
        Valid(
            """
            import argparse

            import torch
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--workers", type=int, default=0)

            if __name__ == "__main__":
                args = parser.parse_args()
                data = TensorDataset(torch.arange(8.0))
                loader = DataLoader(data, batch_size=2, num_workers=args.workers,
                                    multiprocessing_context="spawn", collate_fn=lambda rows: rows)
                print(len(list(loader)))
            """,
            "the option's default is 0: the loader has no workers unless the user asks",
        ),
        Valid(
            """
            import multiprocessing as mp

            def double(x):
                return 2 * x

            if __name__ == "__main__":
                with mp.Pool() as pool:
                    print(pool.map(double, range(4)))
            """,
            "a module-level function is pickled by name and found by every child",
        ),
        Valid(
            """
            import multiprocessing as mp

            if __name__ == "__main__":
                ctx = mp.get_context("fork")
                p = ctx.Process(target=lambda: print("hi"))
                p.start()
            """,
            "an explicit fork context copies the process: the lambda is never pickled",
        ),
        Valid(
            """
            from multiprocessing.pool import ThreadPool

            def main():
                with ThreadPool() as pool:
                    print(pool.map(lambda x: x + 1, range(4)))
            """,
            "a thread pool does not pickle its tasks",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(x):
                return x * 2

            def run(model_path):
                with mp.get_context("fork").Pool(2, initializer=lambda: print(model_path)) as p:
                    return p.map(work, range(4))
            """,
            "a forked worker inherits its initializer: nothing is pickled",
        ),
        Valid(
            """
            import multiprocessing as mp

            def describe():
                probe = mp.Process(target=lambda: print("never runs"))
                return probe.name
            """,
            "the Process is built for its attributes and never started: nothing is pickled",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader
            from torchvision import datasets, transforms


            def to_rgb(img):
                return img.convert("RGB")


            def main(root):
                data = datasets.MNIST(root, transform=transforms.Compose([
                    transforms.Lambda(to_rgb),
                    transforms.ToTensor(),
                ]))
                loader = DataLoader(data, batch_size=32, num_workers=4)
                return sum(len(images) for images, _ in loader)


            if __name__ == "__main__":
                print(main("data"))
            """,
            "a module-level function in the transforms is pickled by name: workers find it",
        ),
    )
    INVALID = (
        Invalid(
            """
            import argparse

            import torch
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--workers", type=int, default=4)

            if __name__ == "__main__":
                args = parser.parse_args()
                data = TensorDataset(torch.arange(8.0))
                loader = DataLoader(data, batch_size=2, num_workers=args.workers,
                                    multiprocessing_context="spawn", collate_fn=lambda rows: rows)
                print(len(list(loader)))
            """,
            (12, 14, "a lambda passed to DataLoader cannot be pickled under spawn or forkserver "
                     "(\"Can't pickle local object\"); define it at module level"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            if __name__ == "__main__":
                with mp.Pool() as pool:
                    print(pool.map(lambda x: 2 * x, range(4)))
            """,
            (5, 15, "a lambda passed to Pool.map cannot be pickled under any start method "
                    "(\"Can't pickle local object\"); define it at module level"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor

            def main(scale):
                def scaled(x):
                    return scale * x
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(scaled, range(4)))
            """,
            (7, 21, "nested function `scaled` passed to ProcessPoolExecutor.map cannot be "
                    "pickled under any start method (\"Can't pickle local object\"); define it "
                    "at module level"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            if __name__ == "__main__":
                def work(x):
                    return x + 1

                procs = [mp.Process(target=work, args=(i,)) for i in range(2)]
            """,
            (7, 14, "function `work` is defined under the main guard, so a child started by "
                    "Process under spawn or forkserver cannot find it (\"Can't get attribute\"); "
                    "define it at module level"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def work(x):
                return x * 2

            def run(model_path):
                with mp.Pool(2, initializer=lambda: print(model_path)) as pool:
                    return pool.map(work, range(4))
            """,
            (7, 10, "a lambda passed to Pool(initializer=...) cannot be pickled under spawn or "
                    "forkserver (\"Can't pickle local object\"); define it at module level"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def main(offset):
                global work

                def work(x):
                    return x + offset

                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(work, range(4)))

            if __name__ == "__main__":
                main(1)
            """,
            (10, 15, "function `work` exists only once `main` has run (it is defined there "
                     "through `global`), so a child started by Pool.map under spawn or "
                     "forkserver cannot find it (\"Can't get attribute\"); define it at "
                     "module level"),
        ),
        Invalid(
            """
            from torch.utils.data import DataLoader
            from torchvision import datasets, transforms


            def main(root):
                data = datasets.MNIST(root, transform=transforms.Compose([
                    transforms.Lambda(lambda img: img.convert("RGB")),
                    transforms.ToTensor(),
                ]))
                loader = DataLoader(data, batch_size=32, num_workers=4)
                return sum(len(images) for images, _ in loader)


            if __name__ == "__main__":
                print(main("data"))
            """,
            (7, 27, "a lambda in the dataset's `transform` is pickled with the dataset into every "
                    "worker of DataLoader under spawn or forkserver, and fails (\"Can't pickle "
                    "local object\"); define it at module level"),
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class Scaled(Dataset):
                def __init__(self, rows, factor):
                    self.rows = rows
                    self.scale = lambda row: row * factor

                def __len__(self):
                    return len(self.rows)

                def __getitem__(self, index):
                    return self.scale(self.rows[index])


            if __name__ == "__main__":
                loader = DataLoader(Scaled(torch.ones(8, 2), 3.0), batch_size=4, num_workers=2)
                print([batch.shape for batch in loader])
            """,
            (8, 22, "a lambda in `self.scale` of dataset class `Scaled` is pickled with the "
                    "dataset into every worker of DataLoader under spawn or forkserver, and fails "
                    "(\"Can't pickle local object\"); define it at module level"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        for work in facts.work:
            if work.cloudpickle:
                continue  # cloudpickle sends lambdas and local functions by value
            if not work.per_task and facts.only_fork(work.method):
                continue  # a forked child inherits its target
            for func in (work.func, *work.callables):
                if func is None:
                    continue
                value = facts.work_value(work, func)
                problem = unpicklable_callable(value)
                if problem is not None:
                    local, what = problem
                    if not local and facts.only_fork(work.method):
                        continue  # a forked child has the parent's globals: it finds it
                    if facts.notebook and isinstance(value, Func) and value.guarded:
                        continue  # a notebook's guard is no different from its cells: MPL207
                    yield Report(work.site.node, _message(local, what, work, func is work.func))
        yield from self._in_datasets(facts)

    def _in_datasets(self, facts: ModuleFacts) -> Iterator[Report]:
        """Callables a DataLoader's dataset holds go to the workers with it."""
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            if work.kind is not ApiKind.DATALOADER or facts.only_fork(work.method):
                continue
            for sent in dataset_contents(facts, work):
                problem = unpicklable_callable(facts.evaluator.value(sent.expr, sent.scope))
                if problem is not None and sent.expr not in reported:
                    reported.add(sent.expr)
                    yield Report(sent.expr, _dataset_message(*problem, sent, work))


def _dataset_message(local: bool, what: str, sent: Sent, work: WorkSite) -> str:
    why = ("\"Can't pickle local object\"" if local else
           "\"Can't get attribute\": a spawned child does not run the main guard")
    return (f"{what} in {sent.role} is pickled with the dataset into every worker of "
            f"{work.api} under spawn or forkserver, and fails ({why}); define it at module "
            "level")


def _message(local: bool, what: str, work: WorkSite, task: bool = True) -> str:
    if not local:
        return (f"{what}, so a child started by {work.api} under spawn or forkserver cannot find "
                "it (\"Can't get attribute\"); define it at module level")
    when = "under any start method" if work.per_task else "under spawn or forkserver"
    role = "passed to" if work.per_task or not task else "as the target of"
    return (f"{what} {role} {work.api} cannot be pickled {when} (\"Can't pickle local object\"); "
            "define it at module level")

