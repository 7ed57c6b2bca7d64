from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import (
    ModuleFacts,
    Partial,
    PayloadMode,
    Resource,
    Sent,
    WorkSite,
    dataset_contents,
    item_of,
    resources_in,
)
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid


class UnpicklableResource(Rule):
    code = "MPL204"
    name = "unpicklable-resource"
    summary = "lock, open file, socket, connection or generator sent to a process"
    what = (
        "Flags arguments of a process, pool, executor, joblib, ray or dask task that cannot be "
        "pickled: `threading` locks, conditions and events, open files, sockets, database "
        "connections, TensorFlow sessions, generators. Also flags multiprocessing locks, "
        "queues and shared values sent through a pool's or executor's tasks, which may only "
        "reach a child by inheritance. A DataLoader's dataset counts too: an open file, lock "
        "or connection its class's `__init__` stores on `self`, given to its constructor or "
        "assigned to it travels to every worker under spawn and forkserver."
    )
    why = (
        "Each of these wraps state of the parent process (a kernel handle, an OS lock, a "
        "suspended frame). Pickling fails: `TypeError: cannot pickle '_thread.lock' object`, "
        "`cannot pickle '_io.TextIOWrapper' object`, `cannot pickle 'generator' object`; "
        "a multiprocessing Queue or Lock in a pool task raises `RuntimeError: Queue objects "
        "should only be shared between processes through inheritance`. `Process(args=...)` "
        "under fork inherits them, so the bug appears only under spawn and forkserver."
    )
    fix_safety = (
        "No automatic fix: pass what the worker needs to rebuild the resource (a path, a URL, "
        "connection settings) and open it in the worker; pass multiprocessing locks and queues "
        "through `initializer=`/`initargs=`, or use a `Manager()` queue."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#programming-guidelines",
    )
    runtime_errors = (
        "cannot pickle '_thread.lock' object",
        "cannot pickle '_thread.RLock' object",
        "cannot pickle '_io.",
        "cannot pickle 'generator' object",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            def count(path):
                with open(path) as handle:
                    return sum(1 for _ in handle)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(count, ["a.txt", "b.txt"]))
            """,
            "only the path crosses; each task opens the file itself",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(lock, i):
                with lock:
                    print(i)

            if __name__ == "__main__":
                lock = mp.Lock()
                procs = [mp.Process(target=work, args=(lock, i)) for i in range(2)]
            """,
            "a multiprocessing lock passed to Process is inherited, which is what it is for",
        ),
        Valid(
            """
            import multiprocessing as mp

            def square(x):
                return x * x

            def numbers():
                yield from range(10)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(square, numbers()))
            """,
            "a generator as the iterable is consumed in the parent; only its items are sent",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader, Dataset


            class Lines(Dataset):
                def __init__(self, path):
                    self.path = path
                    self.handle = None
                    self.offsets = [0, 10, 20]

                def __len__(self):
                    return len(self.offsets)

                def __getitem__(self, index):
                    if self.handle is None:
                        self.handle = open(self.path)
                    self.handle.seek(self.offsets[index])
                    return self.handle.readline()


            if __name__ == "__main__":
                loader = DataLoader(Lines("rows.txt"), batch_size=2, num_workers=2)
                print(list(loader))
            """,
            "the dataset keeps the path and each worker opens the file on first use",
        ),
    )
    INVALID = (
        Invalid(
            """
            import threading
            from concurrent.futures import ProcessPoolExecutor

            def log(lock, line):
                with lock:
                    print(line)

            if __name__ == "__main__":
                lock = threading.Lock()
                with ProcessPoolExecutor() as ex:
                    ex.submit(log, lock, "hello")
            """,
            (11, 9, "`lock` (threading.Lock) cannot be pickled into another process, so "
                    "ProcessPoolExecutor.submit fails; pass what the worker needs to create it "
                    "(a path, a URL) and create it there"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            def work(queue, item):
                queue.put(item * 2)

            if __name__ == "__main__":
                queue = mp.Queue()
                with open("log.txt", "w") as out:
                    with mp.Pool(2) as pool:
                        pool.starmap(work, [(queue, i) for i in range(4)])
                    mp.Process(target=print, args=(out,)).start()
            """,
            (10, 13, "`queue` (multiprocessing.Queue) may only be shared with a child by "
                     "inheritance, so Pool.starmap raises RuntimeError; pass it through "
                     "initializer=/initargs=, or use a Manager().Queue()"),
            (11, 9, "`out` (open file) cannot be pickled into another process, so Process "
                    "fails under spawn or forkserver; pass what the worker needs to create it "
                    "(a path, a URL) and create it there"),
        ),
        Invalid(
            """
            from torch.utils.data import DataLoader, Dataset


            class Lines(Dataset):
                def __init__(self, path):
                    self.handle = open(path)
                    self.offsets = [0, 10, 20]

                def __len__(self):
                    return len(self.offsets)

                def __getitem__(self, index):
                    self.handle.seek(self.offsets[index])
                    return self.handle.readline()


            if __name__ == "__main__":
                loader = DataLoader(Lines("rows.txt"), batch_size=2, num_workers=2)
                print(list(loader))
            """,
            (6, 23, "`open(path)` (open file) in `self.handle` of dataset class `Lines` cannot "
                    "be pickled, and DataLoader pickles the dataset into every worker under spawn "
                    "or forkserver; keep what opens it (a path, a URL) on the dataset and open it "
                    "in the worker, on first use in `__getitem__`"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        for work in facts.work:
            inherited = not work.per_task
            if inherited and facts.only_fork(work.method):
                continue  # a forked child inherits its arguments
            seen: set[tuple[str | None, str]] = set()
            for resource in self._resources(facts, work):
                if resource.inherit_only and inherited:
                    continue
                if (resource.name, resource.label) in seen:
                    continue
                seen.add((resource.name, resource.label))
                yield Report(work.site.node, _message(resource, work))
        yield from self._in_datasets(facts)

    def _in_datasets(self, facts: ModuleFacts) -> Iterator[Report]:
        """Resources a DataLoader's dataset holds go to the workers with it."""
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            if work.kind is not ApiKind.DATALOADER or facts.only_fork(work.method):
                continue
            for sent in dataset_contents(facts, work):
                value = facts.evaluator.value(sent.expr, sent.scope)
                for resource in resources_in(value):
                    if not resource.inherit_only and sent.expr not in reported:
                        reported.add(sent.expr)
                        yield Report(sent.expr, _dataset_message(resource, sent, work))

    def _resources(self, facts: ModuleFacts, work: WorkSite) -> Iterator[Resource]:
        for payload in work.payload:
            value = facts.work_value(work, payload.expr)
            if payload.mode is PayloadMode.ITEMS:
                value = item_of(value)
            yield from resources_in(value)
        if work.func is not None:
            func = facts.work_value(work, work.func)
            if isinstance(func, Partial):
                yield from resources_in(func)


def _dataset_message(resource: Resource, sent: Sent, work: WorkSite) -> str:
    text = cst.Module([]).code_for_node(sent.expr)
    text = text if len(text) <= 40 else text[:37] + "..."
    return (f"`{text}` ({resource.label}) in {sent.role} cannot be pickled, and {work.api} "
            "pickles the "
            "dataset into every worker under spawn or forkserver; keep what opens it (a path, "
            "a URL) on the dataset and open it in the worker, on first use in `__getitem__`")


def _message(resource: Resource, work: WorkSite) -> str:
    subject = f"`{resource.name}` ({resource.label})" if resource.name else (
        f"a {resource.label}")
    if resource.inherit_only:
        return (f"{subject} may only be shared with a child by inheritance, so {work.api} "
                "raises RuntimeError; pass it through initializer=/initargs=, or use a "
                "Manager().Queue()")
    when = "" if work.per_task else " under spawn or forkserver"
    return (f"{subject} cannot be pickled into another process, so {work.api} fails{when}; "
            "pass what the worker needs to create it (a path, a URL) and create it there")
