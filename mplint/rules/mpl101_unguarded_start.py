from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import Iteration, ModuleFacts, ProcessStart, function_of
from mplint.fixers.unguarded_start import guard_fixer
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_GUARD = '`if __name__ == "__main__":`'


class UnguardedStart(Rule):
    code = "MPL101"
    name = "unguarded-start"
    summary = "process started when the module is imported, without a main guard"
    what = (
        "Flags a process start (a `Pool`, `ProcessPoolExecutor`, `Process`, `Manager` or "
        "`torch.multiprocessing.spawn`) that runs when the module is imported: at module level, "
        "or inside a function that module-level code calls (also a function, a class's "
        "constructor or an object's method of another module of the linted tree), with no "
        '`if __name__ == "__main__":` guard around it. A torch DataLoader with workers starts '
        "them where it is iterated (`for batch in loader`, `iter()`, `next()`, `enumerate()`, "
        "`list()`), at module level or in a function module-level code calls (also through "
        "the parameter it is passed to); building one starts nothing, so the finding points "
        "at the iteration. One finding per module, at the first start that runs on import (a "
        "child fails there, and the guard that fixes it fixes every start after it); its "
        "message counts the starts that follow. Not reported in a Jupyter notebook: a child "
        "never re-imports a "
        "kernel's `__main__` (it is not a file), so an unguarded start in a cell is fine there; "
        "what breaks instead is a task defined in the notebook (MPL207). Code shown "
        "without its imports (an excerpt) that reads `mp`, `multiprocessing`, `Pool` or "
        "`Process` and binds it nowhere, with no `import *`, is read as using the "
        "multiprocessing API of that name."
    )
    why = (
        "Under the spawn and forkserver start methods (Windows, macOS, and Linux from Python "
        "3.14) every child process imports the main module again. An unguarded start then runs "
        "in each child, which raises `RuntimeError: An attempt has been made to start a new "
        "process before the current process has finished its bootstrapping phase`, or keeps "
        "creating processes. Under fork the same script works, so the bug stays hidden on a "
        "Linux laptop."
    )
    fix_safety = (
        'Safe: the script part moves under `if __name__ == "__main__":` (an existing guard, or '
        "a new one at the end); imports, functions, classes, constants and what runs before "
        "the first start stay at module level so children can import them. The program's "
        "order is kept: every statement from the first start on moves, in order (a definition "
        "after the first start stays only when nothing before binds its names), and in an "
        "existing guard that begins by choosing the start method the moved starts come after "
        "that choice. Unsafe when a definition that stays reads a name that a moved statement "
        "binds, or a statement after the first start would stay on import before it."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-start-methods",
    )
    runtime_errors = (
        "finished its bootstrapping phase",
    )

    VALID = (
        Valid(
            """
            from dask.distributed import Client

            client = Client("tcp://scheduler:8786")
            print(client.submit(sum, [1, 2]).result())
            """,
            "a Client given an address connects to a cluster that runs elsewhere: nothing "
            "starts here",
        ),
        Valid(
            """
            from transformers import Trainer, TrainingArguments

            trainer = Trainer(model=None, args=TrainingArguments("out"))
            trainer.train()
            """,
            "the Trainer loads batches in this process unless its arguments set "
            "dataloader_num_workers",
        ),
        Valid(
            """
            from mypools import *

            def square(x):
                return x * x

            pool = Pool(4)
            print(pool.map(square, range(8)))
            """,
            "`Pool` may come from the star import: what it is cannot be told, so nothing is said",
        ),
        Valid(
            """
            import multiprocessing

            def square(x):
                return x * x

            if __name__ == "__main__":
                with multiprocessing.Pool(2) as pool:
                    print(pool.map(square, range(8)))
            """,
            "the pool is created only when the file runs as a script",
        ),
        Valid(
            """
            from concurrent.futures import ProcessPoolExecutor

            def work(x):
                return x + 1

            def main():
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(work, range(4)))

            if __name__ == "__main__":
                main()
            """,
            "main() starts processes, but only the guard calls it",
        ),
        Valid(
            """
            from multiprocessing.dummy import Pool

            def fetch(url):
                return len(url)

            with Pool(4) as pool:
                sizes = pool.map(fetch, ["a", "bb"])
            """,
            "multiprocessing.dummy.Pool runs threads, not processes: nothing is re-imported",
        ),
        Valid(
            """
            import multiprocessing as mp

            def run_all(fn, items):
                with mp.Pool() as pool:
                    return pool.map(fn, items)
            """,
            "a library function that starts processes only when a caller calls it",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            loader = DataLoader(TensorDataset(torch.arange(64.0)), batch_size=8, num_workers=2)

            def total():
                return sum(batch.sum().item() for (batch,) in loader)

            if __name__ == "__main__":
                print(total())
            """,
            "the loader is built on import, but its workers start only when main code iterates it",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=0)
            for (batch,) in loader:
                print(batch.sum().item())
            """,
            "num_workers=0 loads every batch in this process: iterating it starts nothing",
        ),
        Valid(
            """
            import spacy

            nlp = spacy.blank("en")
            docs = list(nlp.pipe(["one text", "another"], n_process=1))
            """,
            "spaCy's pipe with one process runs in the calling process",
        ),
        Valid(
            """
            from datasets import load_dataset


            def tokenized(name):
                rows = load_dataset(name, split="train")
                return rows.map(lambda row: {"n": len(row["text"])}, num_proc=4)
            """,
            "a library function: its dataset workers start only when a caller runs it",
        ),
        Valid(
            """
            import shards

            if __name__ == "__main__":
                print(shards.count_all(["a.txt", "b.txt"]))
            """,
            "the helper of another module that starts the pool is called under the main guard",
        modules={"shards.py": """
            import multiprocessing

            def count(path):
                return len(path)

            def count_all(paths):
                with multiprocessing.Pool(4) as pool:
                    return pool.map(count, paths)
            """},
        ),
        Valid(
            """
            import shards

            print(shards.count_all(["a.txt", "b.txt"]))
            """,
            "the other module starts processes only under its own main guard; the function "
            "called here starts none",
            modules={"shards.py": """
                import multiprocessing

                def count_all(paths):
                    return [len(path) for path in paths]

                if __name__ == "__main__":
                    with multiprocessing.Pool(2) as pool:
                        print(pool.map(len, ["a", "b"]))
                """},
        ),
    )
    INVALID = (
        Invalid(
            """
            from dask.distributed import Client

            client = Client(n_workers=2)
            print(client.submit(sum, [1, 2]).result())
            """,
            (3, 10, "dask.distributed.Client starts processes when the module is imported, "
                    f"outside {_GUARD}; under spawn or forkserver every child re-imports the "
                    "module and fails in its bootstrapping phase"),
            fixed="""
            from dask.distributed import Client

            if __name__ == "__main__":
                client = Client(n_workers=2)
                print(client.submit(sum, [1, 2]).result())
            """,
        ),
        Invalid(
            """
            from transformers import Trainer, TrainingArguments

            args = TrainingArguments("out", dataloader_num_workers=2)
            trainer = Trainer(model=None, args=args)
            trainer.train()
            """,
            (5, 1, "Hugging Face Trainer starts processes when the module is imported, "
                   f"outside {_GUARD}; under spawn or forkserver every child re-imports the "
                   "module and fails in its bootstrapping phase"),
            fixed="""
            from transformers import Trainer, TrainingArguments

            args = TrainingArguments("out", dataloader_num_workers=2)
            trainer = Trainer(model=None, args=args)
            if __name__ == "__main__":
                trainer.train()
            """,
        ),
        Invalid(
            """
            def square(x):
                return x * x

            pool = mp.Pool(4)
            print(pool.map(square, range(8)))
            """,
            (4, 8, "multiprocessing.Pool starts processes when the module is imported, "
                   f"outside {_GUARD}; under spawn or forkserver every child re-imports the "
                   "module and fails in its bootstrapping phase"),
            fixed="""
            def square(x):
                return x * x

            if __name__ == "__main__":
                pool = mp.Pool(4)
                print(pool.map(square, range(8)))
            """,
        ),
        Invalid(
            """
            import spacy

            nlp = spacy.blank("en")
            docs = list(nlp.pipe(["one text", "another"], n_process=2))
            print(len(docs))
            """,
            (4, 13, "spaCy nlp.pipe(n_process=...) starts processes when the module is imported, "
                    f"outside {_GUARD}; under spawn or forkserver every child re-imports the "
                    "module and fails in its bootstrapping phase"),
            fixed="""
            import spacy

            nlp = spacy.blank("en")
            if __name__ == "__main__":
                docs = list(nlp.pipe(["one text", "another"], n_process=2))
                print(len(docs))
            """,
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset


            def total(workers):
                data = TensorDataset(torch.arange(8.0))
                loader = DataLoader(data, batch_size=4, num_workers=workers)
                return sum(float(batch[0].sum()) for batch in loader)


            print(total(2))
            """,
            (11, 7, "`total()` starts processes (torch.utils.data.DataLoader in `total`, when "
                    "num_workers > 0) when the module is imported, outside "
                    f"{_GUARD}; under spawn or forkserver every child re-imports the module and "
                    "fails in its bootstrapping phase"),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset


            def total(workers):
                data = TensorDataset(torch.arange(8.0))
                loader = DataLoader(data, batch_size=4, num_workers=workers)
                return sum(float(batch[0].sum()) for batch in loader)


            if __name__ == "__main__":
                print(total(2))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            def work(x):
                return x + 1

            with mp.Pool(2) as pool:
                print(pool.map(work, range(3)))

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                print("done")
            """,
            (6, 6, "multiprocessing.Pool starts processes when the module is imported, outside "
                   f"{_GUARD}; under spawn or forkserver every child re-imports the module and "
                   "fails in its bootstrapping phase"),
            fixed="""
            import multiprocessing as mp

            def work(x):
                return x + 1

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(3)))
                print("done")
            """,
        ),
        Invalid(
            """
            import multiprocessing

            def square(x):
                return x * x

            with multiprocessing.Pool(2) as pool:
                print(pool.map(square, range(8)))
            """,
            (6, 6, "multiprocessing.Pool starts processes when the module is imported, outside "
                   f"{_GUARD}; under spawn or forkserver every child re-imports the module and "
                   "fails in its bootstrapping phase"),
            fixed="""
            import multiprocessing

            def square(x):
                return x * x

            if __name__ == "__main__":
                with multiprocessing.Pool(2) as pool:
                    print(pool.map(square, range(8)))
            """,
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor as Executor

            def work(x):
                return x + 1

            def main():
                with Executor() as ex:
                    return list(ex.map(work, range(4)))

            main()
            """,
            (10, 1, "`main()` starts processes (concurrent.futures.ProcessPoolExecutor in "
                   f"`main`) when the module is imported, outside {_GUARD}; under spawn or "
                   "forkserver every child re-imports the module and fails in its "
                   "bootstrapping phase"),
            fixed="""
            from concurrent.futures import ProcessPoolExecutor as Executor

            def work(x):
                return x + 1

            def main():
                with Executor() as ex:
                    return list(ex.map(work, range(4)))

            if __name__ == "__main__":
                main()
            """,
        ),
        Invalid(
            """
            import torch.multiprocessing as tmp

            def train(rank):
                print(rank)

            tmp.spawn(train, nprocs=2)
            """,
            (6, 1, "torch.multiprocessing.spawn starts processes when the module is imported, "
                   f"outside {_GUARD}; under spawn or forkserver every child re-imports the "
                   "module and fails in its bootstrapping phase"),
            fixed="""
            import torch.multiprocessing as tmp

            def train(rank):
                print(rank)

            if __name__ == "__main__":
                tmp.spawn(train, nprocs=2)
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            def work(x):
                return x * 2

            class Runner:
                def __init__(self, workers):
                    self.pool = mp.Pool(workers)

                def run(self, items):
                    return self.pool.map(work, items)

            runner = Runner(2)
            print(runner.run(range(4)))
            """,
            (13, 10, "`Runner()` starts processes (multiprocessing.Pool in `__init__`) when the "
                     "module is imported, outside `if __name__ == \"__main__\":`; under spawn or "
                     "forkserver every child re-imports the module and fails in its "
                     "bootstrapping phase"),
            fixed="""
            import multiprocessing as mp

            def work(x):
                return x * 2

            class Runner:
                def __init__(self, workers):
                    self.pool = mp.Pool(workers)

                def run(self, items):
                    return self.pool.map(work, items)

            if __name__ == "__main__":
                runner = Runner(2)
                print(runner.run(range(4)))
            """,
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            data = TensorDataset(torch.arange(64.0))
            loader = DataLoader(data, batch_size=8, num_workers=2)
            total = 0.0
            for (batch,) in loader:
                total += batch.sum().item()
            print(total)
            """,
            (7, 1, "iterating torch.utils.data.DataLoader `loader` (with workers) at module level "
                   f"starts processes when the module is imported, outside {_GUARD}; under spawn "
                   "or forkserver every child re-imports the module and fails in its "
                   "bootstrapping phase"),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            data = TensorDataset(torch.arange(64.0))
            loader = DataLoader(data, batch_size=8, num_workers=2)
            total = 0.0
            if __name__ == "__main__":
                for (batch,) in loader:
                    total += batch.sum().item()
                print(total)
            """,
        ),
        Invalid(
            """
            import argparse

            import torch
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--workers", type=int, default=2)
            opt = parser.parse_args()
            loader = DataLoader(TensorDataset(torch.arange(8.0)), num_workers=opt.workers)

            def train(epoch):
                for (batch,) in loader:
                    print(epoch, batch.sum().item())

            for epoch in range(3):
                train(epoch)
            """,
            (16, 5, "`train()` starts processes (torch.utils.data.DataLoader `loader`, iterated "
                    f"in `train`) when the module is imported, outside {_GUARD}; under spawn or "
                    "forkserver every child re-imports the module and fails in its "
                    "bootstrapping phase"),
            fixed="""
            import argparse

            import torch
            from torch.utils.data import DataLoader, TensorDataset

            parser = argparse.ArgumentParser()
            parser.add_argument("--workers", type=int, default=2)
            opt = parser.parse_args()
            loader = DataLoader(TensorDataset(torch.arange(8.0)), num_workers=opt.workers)

            def train(epoch):
                for (batch,) in loader:
                    print(epoch, batch.sum().item())

            if __name__ == "__main__":
                for epoch in range(3):
                    train(epoch)
            """,
        ),
        Invalid(
            """
            import shards

            sizes = shards.count_all(["a.txt", "b.txt"])
            print(sizes)
            """,
            (3, 9, "`shards.count_all()` starts processes (multiprocessing.Pool in "
                   "`shards.count_all`) when the module is imported, outside "
                   '`if __name__ == "__main__":`; under spawn or forkserver every child '
                   "re-imports the module and fails in its bootstrapping phase"),
            fixed="""
            import shards

            if __name__ == "__main__":
                sizes = shards.count_all(["a.txt", "b.txt"])
                print(sizes)
            """,
        modules={"shards.py": """
            import multiprocessing

            def count(path):
                return len(path)

            def count_all(paths):
                with multiprocessing.Pool(4) as pool:
                    return pool.map(count, paths)
            """},
        ),
        Invalid(
            """
            from scoring import Scorer

            scorer = Scorer(4)
            """,
            (3, 10, "`Scorer()` starts processes (concurrent.futures.ProcessPoolExecutor in "
                    "`scoring.Scorer.__init__`) when the module is imported, outside "
                    '`if __name__ == "__main__":`; under spawn or forkserver every child '
                    "re-imports the module and fails in its bootstrapping phase"),
            fixed="""
            from scoring import Scorer

            if __name__ == "__main__":
                scorer = Scorer(4)
            """,
            modules={"scoring.py": """
                from concurrent.futures import ProcessPoolExecutor

                class Scorer:
                    def __init__(self, workers):
                        self.executor = ProcessPoolExecutor(workers)
                """},
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        if facts.notebook:
            return  # a kernel's ``__main__`` is never re-imported by a child
        found = sorted(self._reports(facts), key=lambda pair: pair[0])
        if not found:
            return
        # One finding per module, at the first start on import: the guard that fixes it fixes
        # every start after it, and a child fails at the first one.
        fix = guard_fixer(facts, [report.node for _, report in found])
        first = found[0][1]
        more = len(found) - 1
        tail = f" ({more} more start{'s' if more > 1 else ''} on import after it)" if more else ""
        yield offer(first.node, first.message + tail, fix)

    def _reports(self, facts: ModuleFacts) -> Iterator[tuple[tuple[int, int], Report]]:
        """Each start made on import, with where it runs in the module (its top-level
        statement, then the order of its call)."""
        body = {id(statement): i for i, statement in enumerate(facts.record.module.body)}
        reported: set[cst.CSTNode] = set()
        for start in facts.starts:
            if facts.only_fork(start.obj.method):
                continue  # fork (chosen, or the only default of the targets) does not re-import
            if start.iteration is not None:
                # one finding per statement: moving it under the guard fixes every loader in it
                if start.iteration.statement in reported:
                    continue
                reported.add(start.iteration.statement)
                subject = _iteration_subject(start, start.iteration)
                node: cst.CSTNode = start.iteration.node
                where = (body.get(id(start.iteration.statement), len(body)), start.site.order)
            else:
                root = facts.import_time_root(start.site)
                if root is None or root.node in reported:
                    continue
                reported.add(root.node)
                node = root.node
                condition = (f" (when {start.obj.condition})"
                             if start.obj.maybe and start.obj.condition else "")
                function = start.via or _function_name(function_of(start.site.scope))
                subject = (f"{start.obj.api} starts processes{condition}"
                           if root is start.site and start.via is None
                           else f"`{_call_text(root.node)}` starts processes ({start.obj.api} in "
                                f"`{function}`)")
                where = (body.get(id(root.statement), len(body)), root.order)
            yield where, Report(node, f"{subject} when the module is imported, outside "
                                      f"{_GUARD}; under spawn or forkserver every child "
                                      "re-imports the module and fails in its bootstrapping "
                                      "phase")


def _iteration_subject(start: ProcessStart, iteration: Iteration) -> str:
    """What starts a DataLoader's workers on import: the module-level loop or call that
    iterates it, or the call of the function that does."""
    api, node, function = start.obj.api, iteration.node, iteration.function
    when = f", when {start.obj.condition}" if start.obj.maybe else ""
    if function is None:
        loader = f"{api} `{iteration.loader}`" if iteration.loader else api
        workers = f"when {start.obj.condition}" if start.obj.maybe else "with workers"
        return f"iterating {loader} ({workers}) at module level starts processes"
    call = _call_text(node) if isinstance(node, cst.Call) else "call"
    if function_of(start.site.scope) is function:
        return f"`{call}` starts processes ({api} in `{function.name.value}`{when})"
    return (f"`{call}` starts processes ({api} `{iteration.loader}`, iterated in "
            f"`{function.name.value}`{when})")


def _call_text(call: cst.Call) -> str:
    text = cst.Module([]).code_for_node(call.func)
    return f"{text}()" if len(text) < 40 else "call"


def _function_name(node: cst.CSTNode | None) -> str:
    return node.name.value if isinstance(node, cst.FunctionDef) else "a function"
