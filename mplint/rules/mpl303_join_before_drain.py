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
    function_of,
)
from mplint.rules.base import Invalid, Report, Rule, Valid


class JoinBeforeDrain(Rule):
    code = "MPL303"
    name = "join-before-drain"
    summary = "process joined before the queue it writes to is drained"
    what = (
        "Flags `p.join()` on a process whose target puts on a multiprocessing queue passed in "
        "its `args`, when the parent takes from that queue only after the join (in the same "
        "function or main-guard block). Manager queues, which do not buffer in the child, are "
        "not reported."
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
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        joins = [(site, func.obj) for site in facts.record.calls
                 if isinstance(func := facts.value(site.node.func, site), Bound)
                 and func.attr == "join" and isinstance(func.obj, ProcessObject)]
        for work in facts.work:
            if work.shape is not Shape.ARGS_TUPLE or not work.payload:
                continue
            for queue in self._written_queues(facts, work):
                for join, process in joins:
                    if process.origin is work.site.node and _drained_late(facts, join, queue):
                        target = cst.Module([]).code_for_node(join.node.func)
                        yield Report(join.node, (
                            f"`{target}()` waits for a process that puts on `{queue}` before the "
                            "parent takes anything off it: a child does not exit until its "
                            "queued data is read, so both wait forever once the data outgrows "
                            f"the pipe; get from `{queue}` first, then join"))
                        break

    def _written_queues(self, facts: ModuleFacts, work: WorkSite) -> Iterator[str]:
        """Names of the queues in ``work``'s args that its target puts on."""
        sent = facts.work_value(work, work.payload[0].expr)
        if not isinstance(sent, Tup):
            return
        for func in facts.task_functions(work):
            for param, value in zip(facts.task_parameters(func), sent.items, strict=False):
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


def _calls(site: CallSite, name: str, methods: frozenset[str]) -> bool:
    """``name.method(...)`` for one of ``methods``."""
    func = site.node.func
    return (isinstance(func, cst.Attribute) and func.attr.value in methods
            and isinstance(func.value, cst.Name) and func.value.value == name)
