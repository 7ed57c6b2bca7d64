from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    Bound,
    CallSite,
    ModuleFacts,
    ProcessObject,
    QueueObject,
    Shape,
    Tup,
    WorkSite,
    argument,
    function_of,
)
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid

_DEADLOCK = ("a child does not exit until its queued data is read, so both wait forever once "
             "the data outgrows the pipe")


class JoinBeforeDrain(Rule):
    code = "MPL303"
    name = "join-before-drain"
    summary = "process joined before the queue it writes to is drained"
    what = (
        "Flags `p.join()` on a process whose target puts on a multiprocessing queue passed in "
        "its `args`, when the parent takes from that queue only after the join (in the same "
        "function or main-guard block). The same for the context that "
        "`torch.multiprocessing.spawn(..., join=False)` or `start_processes(..., join=False)` "
        "returns, and for `spawn`/`start_processes` left to join their processes themselves "
        "(`join=True`, the default) when the parent drains the queue after they return. "
        "Manager queues, which do not buffer in the child, are not reported."
    )
    why = (
        "A child that put data on a queue does not exit until a feeder thread has written all "
        "of it into the pipe, and the pipe holds only a few kilobytes: the child waits for the "
        "parent to read, the parent waits in `join()` for the child to exit. Small results slip "
        "through, so the script works in tests and hangs on real data. The multiprocessing "
        "programming guidelines call this out (\"Joining processes that use queues\")."
    )
    fix_safety = "No automatic fix: take every item off the queue, then join."
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#programming-guidelines",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            def produce(queue):
                queue.put(bytes(1 << 22))

            if __name__ == "__main__":
                queue = mp.Queue()
                child = mp.Process(target=produce, args=(queue,))
                child.start()
                data = queue.get()
                child.join()
            """,
            "the parent drains the queue, then joins",
        ),
        Valid(
            """
            import multiprocessing as mp

            def produce(queue):
                queue.put(bytes(1 << 22))

            if __name__ == "__main__":
                queue = mp.Manager().Queue()
                child = mp.Process(target=produce, args=(queue,))
                child.start()
                child.join()
                data = queue.get()
            """,
            "a Manager queue lives in the manager process: the child does not wait for a reader",
        ),
        Valid(
            """
            import multiprocessing as mp

            def consume(queue):
                print(queue.get())

            if __name__ == "__main__":
                queue = mp.Queue()
                child = mp.Process(target=consume, args=(queue,))
                child.start()
                queue.put("job")
                child.join()
                queue.get()
            """,
            "the child only reads from the queue; nothing it wrote can block its exit",
        ),
        Valid(
            """
            import torch.multiprocessing as mp

            def produce(rank, queue):
                queue.put(bytes(1 << 22))

            if __name__ == "__main__":
                queue = mp.get_context("spawn").SimpleQueue()
                context = mp.spawn(produce, args=(queue,), nprocs=2, join=False)
                data = [queue.get() for _ in range(2)]
                context.join()
            """,
            "spawn(join=False) returns at once: the parent drains the queue, then joins the "
            "context",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            def produce(queue):
                queue.put(bytes(1 << 22))

            if __name__ == "__main__":
                queue = mp.Queue()
                child = mp.Process(target=produce, args=(queue,))
                child.start()
                child.join()
                data = queue.get()
            """,
            (10, 5, "`child.join()` waits for a process that puts on `queue` before the parent "
                    "takes anything off it: a child does not exit until its queued data is "
                    "read, so both wait forever once the data outgrows the pipe; get from "
                    "`queue` first, then join"),
        ),
        Invalid(
            """
            import torch.multiprocessing as mp

            def square(rank, results):
                results.put(rank * rank)

            def main():
                results = mp.SimpleQueue()
                procs = [mp.Process(target=square, args=(r, results)) for r in range(4)]
                for p in procs:
                    p.start()
                for p in procs:
                    p.join()
                return [results.get() for _ in procs]

            if __name__ == "__main__":
                print(main())
            """,
            (12, 9, "`p.join()` waits for a process that puts on `results` before the parent "
                    "takes anything off it: a child does not exit until its queued data is "
                    "read, so both wait forever once the data outgrows the pipe; get from "
                    "`results` first, then join"),
        ),
        Invalid(
            """
            import multiprocessing

            def produce(item, queue):
                queue.put([item, bytes(1 << 20)])

            if __name__ == "__main__":
                queue = multiprocessing.Queue()
                processes = []
                for item in range(3):
                    process = multiprocessing.Process(target=produce, args=(item, queue))
                    processes.append(process)
                for process in processes:
                    process.start()
                    process.join()
                for _ in processes:
                    print(len(queue.get()[1]))
            """,
            (14, 9, "`process.join()` waits for a process that puts on `queue` before the parent "
                    "takes anything off it: a child does not exit until its queued data is "
                    "read, so both wait forever once the data outgrows the pipe; get from "
                    "`queue` first, then join"),
        ),
        Invalid(
            """
            import torch.multiprocessing as mp

            def produce(rank, queue):
                queue.put(bytes(1 << 22))

            def main():
                queue = mp.get_context("spawn").SimpleQueue()
                context = mp.spawn(produce, args=(queue,), nprocs=2, join=False)
                while not context.join():
                    pass
                return [queue.get() for _ in range(2)]

            if __name__ == "__main__":
                print(len(main()))
            """,
            (9, 15, "`context.join()` waits for a process that puts on `queue` before the "
                    "parent takes anything off it: a child does not exit until its queued data "
                    "is read, so both wait forever once the data outgrows the pipe; get from "
                    "`queue` first, then join"),
        ),
        Invalid(
            """
            import torch.multiprocessing as mp

            def produce(rank, queue):
                queue.put(bytes(1 << 22))

            if __name__ == "__main__":
                queue = mp.get_context("spawn").SimpleQueue()
                mp.spawn(produce, args=(queue,), nprocs=2)
                data = [queue.get() for _ in range(2)]
            """,
            (8, 5, "`mp.spawn(...)` joins the processes it starts before it returns, and they "
                   "put on `queue`, which the parent takes from only afterwards: a child does "
                   "not exit until its queued data is read, so both wait forever once the data "
                   "outgrows the pipe; pass join=False, get from `queue`, then join the context "
                   "it returns"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        joins = [(site, func.obj) for site in facts.record.calls
                 if isinstance(func := facts.value(site.node.func, site), Bound)
                 and func.attr == "join" and isinstance(func.obj, ProcessObject)]
        for work in facts.work:
            if work.shape is not Shape.ARGS_TUPLE and work.kind is not ApiKind.SPAWN:
                continue
            for queue in self._written_queues(facts, work):
                yield from self._joined_early(facts, work, queue, joins)

    def _joined_early(self, facts: ModuleFacts, work: WorkSite, queue: str,
                      joins: list[tuple[CallSite, ProcessObject]]) -> Iterator[Report]:
        """The first join of ``work``'s processes that comes before ``queue`` is drained."""
        if work.kind is ApiKind.SPAWN and _joins_itself(work.site.node):
            # spawn(join=True), the default, joins every process before it returns
            if _drained_late(facts, work.site, queue):
                yield Report(work.site.node, (
                    f"`{_code(work.site.node.func)}(...)` joins the processes it starts before "
                    f"it returns, and they put on `{queue}`, which the parent takes from only "
                    f"afterwards: {_DEADLOCK}; pass join=False, get from `{queue}`, then join "
                    "the context it returns"))
            return
        for join, process in joins:
            if process.origin is work.site.node and _drained_late(facts, join, queue):
                yield Report(join.node, (
                    f"`{_code(join.node.func)}()` waits for a process that puts on `{queue}` "
                    f"before the parent takes anything off it: {_DEADLOCK}; get from `{queue}` "
                    "first, then join"))
                return

    def _written_queues(self, facts: ModuleFacts, work: WorkSite) -> Iterator[str]:
        """Names of the queues in ``work``'s args that its target puts on."""
        if not work.payload:
            return
        sent = facts.work_value(work, work.payload[0].expr)
        if not isinstance(sent, Tup):
            return
        for func in facts.task_functions(work):
            params = facts.task_parameters(func)
            if work.kind is ApiKind.SPAWN:  # spawn(fn, args) calls fn(rank, *args)
                params = params[1:]
            for param, value in zip(params, sent.items, strict=False):
                if isinstance(value, QueueObject) and value.name and _puts_on(
                        facts, func.node, param.name.value):
                    yield value.name


def _puts_on(facts: ModuleFacts, function: cst.CSTNode, name: str) -> bool:
    return any(_calls(site, name, knowledge.QUEUE_PUTS) for site in facts.calls_in(function))


def _drained_late(facts: ModuleFacts, join: CallSite, queue: str) -> bool:
    """True when the join's block takes from ``queue`` only after the join."""
    where = function_of(join.scope)
    gets = [site.order for site in facts.record.calls
            if function_of(site.scope) is where and _calls(site, queue, knowledge.QUEUE_GETS)]
    return bool(gets) and min(gets) > join.order


def _joins_itself(call: cst.Call) -> bool:
    """``spawn(...)`` surely joins its processes before it returns: ``join`` is left at its
    default or passed as ``True`` (``join=False`` returns a context the caller joins)."""
    if any(a.star == "**" for a in call.args):
        return False
    given = argument(call, 3, "join")  # spawn/start_processes(fn, args, nprocs, join, ...)
    return given is None or (isinstance(given, cst.Name) and given.value == "True")


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _calls(site: CallSite, name: str, methods: frozenset[str]) -> bool:
    """``name.method(...)`` for one of ``methods``."""
    func = site.node.func
    return (isinstance(func, cst.Attribute) and func.attr.value in methods
            and isinstance(func.value, cst.Name) and func.value.value == name)
