from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from mplint.analysis import (
    Context,
    ModuleFacts,
    Qual,
    Tup,
    Value,
    dataset_contents,
    keyword_argument,
    resources_in,
)
from mplint.fixers.base import SAFE, Fixer
from mplint.knowledge import MULTIPROCESSING_MODULES, ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_SEMLOCK_ERROR = "A SemLock created in a fork context is being shared with a process in a"


@dataclass(frozen=True)
class _Handover:
    """Objects sent to the children of one process API when they start."""

    site: cst.Call  # the call that creates the children
    api: str  # how the message names it
    method: str | None  # the children's start method (None: the default)
    sent: Value


class ContextMismatch(Rule):
    code = "MPL206"
    name = "context-mismatch"
    summary = "queue or lock from a fork context handed to a spawn or forkserver process"
    what = (
        "Flags a multiprocessing `Queue`, `SimpleQueue`, `JoinableQueue`, `Lock`, `RLock`, "
        "`Event`, `Condition`, `Semaphore`, `Barrier`, `Value` or `Array` created from a context "
        "that may "
        "fork (the default one on Linux before Python 3.14, or `get_context(\"fork\")`) and "
        "handed to processes of a spawn or forkserver context: in `Process(args=...)` of "
        "`get_context(\"spawn\")`, in a pool's `initargs=`, in a DataLoader's dataset or "
        "`worker_init_fn` with a spawn `multiprocessing_context`, or in "
        "`torch.multiprocessing.spawn` args, which always spawn. Reported at the call that "
        "creates the object."
    )
    why = (
        "These objects hold a semaphore that a spawned child can receive only if it was "
        "created for spawning. `start()` raises `RuntimeError: A SemLock created in a fork "
        "context is being shared with a process in a spawn context` (CPython 3.11.5 and "
        "later; earlier versions could crash the child). The script works wherever the "
        "default context is spawn (Windows, macOS), so the bug shows up only on Linux."
    )
    fix_safety = (
        "Safe: the object is created from the process's context instead (`ctx.Queue()`, or "
        "`mp.get_context(\"spawn\").Queue()` where no context object is in reach). A queue or "
        "lock of a spawn context works with forked children too."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods",
    )
    runtime_errors = (_SEMLOCK_ERROR,)

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                child = ctx.Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
            "the queue comes from the same context as the process",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                queue = mp.Queue()
                child = mp.get_context("spawn").Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
            "the module makes spawn the default, so the default context's queue is a spawn one",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                queue = mp.get_context("spawn").Queue()
                child = mp.get_context("fork").Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
            "a forked child inherits the queue; only spawning needs a spawn-context one",
        ),
        Valid(
            """
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                queue = mp.Manager().Queue()
                child = mp.get_context("spawn").Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
            "a Manager queue is a proxy to another process, with no semaphore of its own",
        ),
        Valid(
            """
            import multiprocessing as mp

            import torch
            from torch.utils.data import DataLoader, Dataset


            class Logged(Dataset):
                def __init__(self, log):
                    self.log = log

                def __len__(self):
                    return 4

                def __getitem__(self, index):
                    self.log.put(index)
                    return torch.tensor(index)


            if __name__ == "__main__":
                log = mp.get_context("spawn").Queue()
                loader = DataLoader(Logged(log), batch_size=2, num_workers=2,
                                    multiprocessing_context="spawn")
                print(list(loader))
            """,
            "the queue the dataset keeps comes from the loader's own spawn context",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            def meet(barrier):
                barrier.wait()

            if __name__ == "__main__":
                barrier = mp.get_context("fork").Barrier(2)
                pair = [mp.get_context("spawn").Process(target=meet, args=(barrier,))
                        for _ in range(2)]
                for p in pair:
                    p.start()
            """,
            (7, 15, "`barrier` (multiprocessing.Barrier) is created from the fork context and "
                    "handed to Process of the spawn context: starting them raises RuntimeError "
                    "\"A SemLock created in a fork context is being shared with a process in a "
                    "spawn context\"; create it from the process's context"),
            fixed="""
            import multiprocessing as mp

            def meet(barrier):
                barrier.wait()

            if __name__ == "__main__":
                barrier = mp.get_context("spawn").Barrier(2)
                pair = [mp.get_context("spawn").Process(target=meet, args=(barrier,))
                        for _ in range(2)]
                for p in pair:
                    p.start()
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = mp.Queue()
                child = ctx.Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
            (8, 13, "`queue` (multiprocessing.Queue) is created from the default context, "
                    "which forks on Linux before Python 3.14, and handed to Process of the "
                    "spawn context: starting them raises RuntimeError \"A SemLock created in "
                    "a fork context is being shared with a process in a spawn context\"; "
                    "create it from the process's context"),
            fixed="""
            import multiprocessing as mp

            def work(queue):
                queue.put("done")

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                child = ctx.Process(target=work, args=(queue,))
                child.start()
                print(queue.get())
                child.join()
            """,
        ),
        Invalid(
            """
            import torch.multiprocessing as mp

            def train(rank, results):
                results.put(rank)

            if __name__ == "__main__":
                results = mp.SimpleQueue()
                mp.spawn(train, args=(results,), nprocs=2)
                print(sorted([results.get(), results.get()]))
            """,
            (7, 15, "`results` (torch.multiprocessing.SimpleQueue) is created from the default "
                    "context, which forks on Linux before Python 3.14, and handed to "
                    "torch.multiprocessing.spawn of the spawn context: starting them raises "
                    "RuntimeError \"A SemLock created in a fork context is being shared with a "
                    "process in a spawn context\"; create it from the process's context"),
            fixed="""
            import torch.multiprocessing as mp

            def train(rank, results):
                results.put(rank)

            if __name__ == "__main__":
                results = mp.get_context("spawn").SimpleQueue()
                mp.spawn(train, args=(results,), nprocs=2)
                print(sorted([results.get(), results.get()]))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            lock = None

            def init(shared_lock):
                global lock
                lock = shared_lock

            def work(x):
                with lock:
                    return x * 2

            if __name__ == "__main__":
                shared = mp.get_context("fork").Lock()
                with mp.get_context("forkserver").Pool(2, initializer=init,
                                                       initargs=(shared,)) as pool:
                    print(pool.map(work, range(4)))
            """,
            (14, 14, "`shared` (multiprocessing.Lock) is created from the fork context and "
                     "handed to Pool initargs of the forkserver context: starting them raises "
                     "RuntimeError \"A SemLock created in a fork context is being shared with a "
                     "process in a spawn context\"; create it from the process's context"),
            fixed="""
            import multiprocessing as mp

            lock = None

            def init(shared_lock):
                global lock
                lock = shared_lock

            def work(x):
                with lock:
                    return x * 2

            if __name__ == "__main__":
                shared = mp.get_context("forkserver").Lock()
                with mp.get_context("forkserver").Pool(2, initializer=init,
                                                       initargs=(shared,)) as pool:
                    print(pool.map(work, range(4)))
            """,
        ),
        Invalid(
            """
            import multiprocessing
            from functools import partial

            import torch

            def attach(counter, worker_id):
                torch.utils.data.get_worker_info().dataset.counter = counter

            def batches(dataset):
                counter = multiprocessing.Value("i", 0)
                return torch.utils.data.DataLoader(
                    dataset, num_workers=2, worker_init_fn=partial(attach, counter),
                    multiprocessing_context=multiprocessing.get_context("spawn"))
            """,
            (10, 15, "`counter` (multiprocessing.Value) is created from the default context, "
                     "which forks on Linux before Python 3.14, and handed to DataLoader of the "
                     "spawn context: starting them raises RuntimeError \"A SemLock created in a "
                     "fork context is being shared with a process in a spawn context\"; create "
                     "it from the process's context"),
            fixed="""
            import multiprocessing
            from functools import partial

            import torch

            def attach(counter, worker_id):
                torch.utils.data.get_worker_info().dataset.counter = counter

            def batches(dataset):
                counter = multiprocessing.get_context("spawn").Value("i", 0)
                return torch.utils.data.DataLoader(
                    dataset, num_workers=2, worker_init_fn=partial(attach, counter),
                    multiprocessing_context=multiprocessing.get_context("spawn"))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            import torch
            from torch.utils.data import DataLoader, Dataset


            class Logged(Dataset):
                def __init__(self, log):
                    self.log = log

                def __len__(self):
                    return 4

                def __getitem__(self, index):
                    self.log.put(index)
                    return torch.tensor(index)


            if __name__ == "__main__":
                log = mp.Queue()
                loader = DataLoader(Logged(log), batch_size=2, num_workers=2,
                                    multiprocessing_context="spawn")
                print(list(loader))
            """,
            (20, 11, "a multiprocessing.Queue is created from the default context, which forks "
                     "on Linux before Python 3.14, and handed to DataLoader of the spawn context: "
                     "starting them raises RuntimeError \"A SemLock created in a fork context is "
                     "being shared with a process in a spawn context\"; create it from the "
                     "process's context"),
            fixed="""
            import multiprocessing as mp

            import torch
            from torch.utils.data import DataLoader, Dataset


            class Logged(Dataset):
                def __init__(self, log):
                    self.log = log

                def __len__(self):
                    return 4

                def __getitem__(self, index):
                    self.log.put(index)
                    return torch.tensor(index)


            if __name__ == "__main__":
                log = mp.get_context("spawn").Queue()
                loader = DataLoader(Logged(log), batch_size=2, num_workers=2,
                                    multiprocessing_context="spawn")
                print(list(loader))
            """,
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        reported: set[cst.Call] = set()
        for handover in _handovers(facts):
            children = facts.methods(handover.method)
            if children is None or "fork" in children:
                continue  # forked children inherit the object, whatever its context
            for resource in resources_in(handover.sent):
                created = resource.origin
                if (not resource.inherit_only or created is None or created in reported
                        or resource.context == handover.method
                        or not facts.may_use(resource.context, "fork")):
                    continue
                reported.add(created)
                yield offer(created, _message(resource.name, resource.label, resource.context,
                                              handover),
                            _fixer(facts, created, resource.label, handover))


def _handovers(facts: ModuleFacts) -> Iterator[_Handover]:
    """What each process API of the module pickles into its children as they start."""
    for work in facts.work:
        if not work.per_task:
            exprs = [*(p.expr for p in work.payload), *work.callables]
            held = [facts.evaluator.value(s.expr, s.scope) for s in dataset_contents(facts, work)]
            sent = Tup((*(facts.work_value(work, expr) for expr in exprs), *held))
            yield _Handover(work.site.node, work.api, work.method, sent)
    for start in facts.starts:
        if start.obj.kind in (ApiKind.POOL, ApiKind.EXECUTOR) and start.via is None:
            initargs = keyword_argument(start.site.node, "initargs")
            if initargs is not None:
                yield _Handover(start.site.node, f"{start.obj.api.rpartition('.')[2]} initargs",
                                start.obj.method, facts.value(initargs, start.site))


def _message(name: str | None, label: str, created: str | None, handover: _Handover) -> str:
    subject = f"`{name}` ({label})" if name else f"a {label}"
    origin = ("the default context, which forks on Linux before Python 3.14," if created is None
              else f"the {created} context")
    return (f"{subject} is created from {origin} and handed to {handover.api} of the "
            f"{handover.method} context: starting them raises RuntimeError "
            f"\"{_SEMLOCK_ERROR} spawn context\"; create it from the process's context")


def _fixer(facts: ModuleFacts, created: cst.Call, label: str,
           handover: _Handover) -> Fixer | str:
    """``ctx.Queue()`` with the process's own context expression, where it means the same
    context at the creating call; else ``mp.get_context("spawn").Queue()``."""
    site = facts.site_of(created)
    if site is None:
        return "the object is created outside this module's code"
    member = cst.Name(label.rpartition(".")[2])
    receiver = handover.site.func.value if isinstance(handover.site.func, cst.Attribute) \
        else None
    if receiver is not None and facts.value(receiver, site) == Context(handover.method):
        new_func = cst.Attribute(receiver.deep_clone(), member)
    elif isinstance(created.func, cst.Attribute) and _is_module(
            facts.value(created.func.value, site)):
        get_context = cst.parse_expression(f'get_context("{handover.method}")')
        assert isinstance(get_context, cst.Call)
        context = get_context.with_changes(
            func=cst.Attribute(created.func.value.deep_clone(), cst.Name("get_context")))
        new_func = cst.Attribute(context, member)
    else:
        return "no multiprocessing module or context name is in reach at the creating call"
    shown = cst.Module([]).code_for_node(new_func)
    return Fixer(SAFE, f"create it with `{shown}()`", replace=[(created.func, new_func)])


def _is_module(value: Value) -> bool:
    return isinstance(value, Qual) and value.name in MULTIPROCESSING_MODULES
