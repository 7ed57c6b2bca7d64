from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint.analysis import (
    CallSite,
    ModuleFacts,
    WorkSite,
    cuda_call,
    function_of,
    is_cuda_device,
    own_nodes,
    worker_functions,
)
from mplint.fixers.start_method import insert_fixer
from mplint.rules.base import Invalid, Report, Rule, Valid, offer


class CudaBeforeFork(Rule):
    code = "MPL105"
    name = "cuda-before-fork"
    summary = "CUDA initialised in the parent before forking workers that use CUDA"
    what = (
        "Flags a call that initialises CUDA in the parent process (`torch.cuda.is_available()`, "
        "`torch.cuda.set_device(...)`, `get_device_name`, a tensor created with "
        '`device="cuda"`, `.cuda()`, `.to("cuda")`), made before a pool, executor or process '
        "is started with fork (chosen explicitly, or the platform default on Linux up to "
        "Python 3.13) whose task function (for a DataLoader: its dataset's `__getitem__` or "
        "`__iter__`, its `collate_fn` or `worker_init_fn`) uses CUDA itself: in the same "
        "body, inside a helper called first, or before the call that runs the function that "
        "starts them. Lazy calls that do not initialise CUDA (`torch.cuda.device_count()`, "
        "`torch.cuda.manual_seed_all()`) are not reported. "
        "Which targets count as \"the default\" is set by `target-python` and "
        "`target-platforms`."
    )
    why = (
        "A forked child inherits the parent's CUDA state but cannot use it, and cannot "
        "initialise CUDA again: its first CUDA call raises `RuntimeError: Cannot re-initialize "
        "CUDA in forked subprocess. To use CUDA with multiprocessing, you must use the 'spawn' "
        "start method`. Measured on an H100: every call listed above poisons a later fork; under "
        "spawn and forkserver every case works. The same script works on a machine without a "
        "GPU and on macOS and Windows (spawn), so the failure shows up only on the Linux GPU box."
    )
    fix_safety = (
        'Safe: `multiprocessing.set_start_method("spawn")` (through the module\'s own alias) '
        "becomes the first statement of the main guard. Offered only when the start uses the "
        "default method and the module has a plain main guard and no start method of its own; "
        "an explicit `get_context(\"fork\")` is left to the author. Unsafe, with the reason, "
        "where the script would do something else under spawn than the CUDA repair (the "
        "differences MPL103 lists); not offered where the default context is fixed before the "
        "guard runs."
    )
    references = (
        "https://pytorch.org/docs/stable/notes/multiprocessing.html#cuda-in-multiprocessing",
    )
    runtime_errors = (
        "Cannot re-initialize CUDA in forked subprocess",
        "autograd's threading in combination with fork-based multiprocessing",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp
            import torch

            def on_gpu(n):
                return int(torch.arange(n, device="cuda").sum())

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                print(torch.cuda.is_available())
                with mp.Pool(2) as pool:
                    print(pool.map(on_gpu, [3, 4]))
            """,
            "spawn children initialise CUDA for themselves",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def on_gpu(n):
                return int(torch.arange(n, device="cuda").sum())

            if __name__ == "__main__":
                print(torch.cuda.device_count())
                with mp.Pool(2) as pool:
                    print(pool.map(on_gpu, [3, 4]))
            """,
            "device_count() does not initialise CUDA (MPL103 still asks for a start method)",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def tokenize(text):
                return text.split()

            if __name__ == "__main__":
                model = torch.nn.Linear(4, 2).cuda()
                with mp.Pool(2) as pool:
                    print(pool.map(tokenize, ["a b", "c"]))
            """,
            "the forked workers never touch CUDA, so the parent's CUDA state does not matter",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def embed(rows, device):
                return torch.tensor(rows, device=device).mean().item()

            if __name__ == "__main__":
                print("GPU present:", torch.cuda.is_available())
                with mp.Pool(2) as pool:
                    print(pool.starmap(embed, [([1.0, 2.0], "cpu"), ([3.0], "cpu")]))
            """,
            "the device sent to the workers is the CPU: they never touch CUDA",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class OnGpu(Dataset):
                def __len__(self):
                    return 8

                def __getitem__(self, index):
                    return torch.full((2,), index, device="cpu")


            if __name__ == "__main__":
                device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
                loader = DataLoader(OnGpu(), batch_size=4, num_workers=2)
                print([batch.sum().item() for batch in loader])
            """,
            "the workers build their samples on the CPU: the parent's CUDA state does not reach "
            "them",
        ),
    )
    INVALID = (
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class Noisy(Dataset):
                def __init__(self, n):
                    self.scale = torch.ones(n).cuda()

                def __len__(self):
                    return 8

                def __getitem__(self, i):
                    return torch.randn(2, device="cuda") * i


            if __name__ == "__main__":
                for batch in DataLoader(Noisy(8), batch_size=4, num_workers=2):
                    print(batch)
            """,
            (7, 22, "`.cuda()` initialises CUDA in the parent before DataLoader starts children "
                    "with fork (the default on Linux up to Python 3.13), and `__getitem__` uses "
                    "CUDA in them: a forked child cannot re-initialise CUDA (\"Cannot "
                    "re-initialize CUDA in forked subprocess\"); use the spawn start method"),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, Dataset
            import multiprocessing


            class Noisy(Dataset):
                def __init__(self, n):
                    self.scale = torch.ones(n).cuda()

                def __len__(self):
                    return 8

                def __getitem__(self, i):
                    return torch.randn(2, device="cuda") * i


            if __name__ == "__main__":
                multiprocessing.set_start_method("spawn")
                for batch in DataLoader(Noisy(8), batch_size=4, num_workers=2):
                    print(batch)
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def on_gpu(n):
                return int(torch.arange(n, device="cuda").sum())

            if __name__ == "__main__":
                print(torch.zeros(1, device="cuda"))
                with mp.Pool(2) as pool:
                    print(pool.map(on_gpu, [3, 4]))
            """,
            (8, 11, '`torch.zeros(..., device="cuda")` initialises CUDA in the parent before '
                    "Pool.map starts workers with fork (the default on Linux up to Python "
                    "3.13), and `on_gpu` uses CUDA in them: a forked child cannot re-initialise "
                    "CUDA (\"Cannot re-initialize CUDA in forked subprocess\"); use the spawn "
                    "start method"),
            fixed="""
            import multiprocessing as mp
            import torch

            def on_gpu(n):
                return int(torch.arange(n, device="cuda").sum())

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                print(torch.zeros(1, device="cuda"))
                with mp.Pool(2) as pool:
                    print(pool.map(on_gpu, [3, 4]))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def train(rank):
                torch.cuda.set_device(rank)

            if __name__ == "__main__":
                if torch.cuda.is_available():
                    ctx = mp.get_context("fork")
                    procs = [ctx.Process(target=train, args=(r,)) for r in range(2)]
            """,
            (8, 8, "`torch.cuda.is_available()` initialises CUDA in the parent before "
                   "Process starts children with fork, and "
                   "`train` uses CUDA in them: a forked child cannot re-initialise CUDA (\"Cannot "
                   're-initialize CUDA in forked subprocess"); use the spawn start method '
                   "(no automatic fix: the fork start method is chosen explicitly)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def pick_device():
                return "cuda" if torch.cuda.is_available() else "cpu"

            def work(rank):
                torch.cuda.set_device(rank)
                return rank

            def main():
                print(pick_device())
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(2)))

            if __name__ == "__main__":
                main()
            """,
            (5, 22, "`torch.cuda.is_available()` initialises CUDA in the parent before Pool.map "
                    "starts workers with fork (the default on Linux up to Python 3.13), and "
                    "`work` uses CUDA in them: a forked child cannot re-initialise CUDA "
                    "(\"Cannot re-initialize CUDA in forked subprocess\"); use the spawn start "
                    "method"),
            fixed="""
            import multiprocessing as mp
            import torch

            def pick_device():
                return "cuda" if torch.cuda.is_available() else "cpu"

            def work(rank):
                torch.cuda.set_device(rank)
                return rank

            def main():
                print(pick_device())
                with mp.Pool(2) as pool:
                    print(pool.map(work, range(2)))

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                main()
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def embed(rows, device):
                return torch.tensor(rows, device=device).mean().item()

            def main(batches):
                device = "cuda" if torch.cuda.is_available() else "cpu"
                with mp.Pool(2) as pool:
                    return pool.starmap(embed, [(rows, device) for rows in batches])

            if __name__ == "__main__":
                print(main([[1.0, 2.0], [3.0]]))
            """,
            (8, 24, "`torch.cuda.is_available()` initialises CUDA in the parent before "
                    "Pool.starmap starts workers with fork (the default on Linux up to Python "
                    "3.13), and `embed` uses CUDA in them: a forked child cannot re-initialise "
                    "CUDA (\"Cannot re-initialize CUDA in forked subprocess\"); use the spawn "
                    "start method"),
            fixed="""
            import multiprocessing as mp
            import torch

            def embed(rows, device):
                return torch.tensor(rows, device=device).mean().item()

            def main(batches):
                device = "cuda" if torch.cuda.is_available() else "cpu"
                with mp.Pool(2) as pool:
                    return pool.starmap(embed, [(rows, device) for rows in batches])

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                print(main([[1.0, 2.0], [3.0]]))
            """,
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class OnGpu(Dataset):
                def __len__(self):
                    return 8

                def __getitem__(self, index):
                    return torch.full((2,), index, device="cuda")


            if __name__ == "__main__":
                device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
                loader = DataLoader(OnGpu(), batch_size=4, num_workers=2)
                print([batch.sum().item() for batch in loader])
            """,
            (14, 37, "`torch.cuda.is_available()` initialises CUDA in the parent before "
                     "DataLoader starts children with fork (the default on Linux up to Python "
                     "3.13), and `__getitem__` uses CUDA in them: a forked child cannot "
                     "re-initialise CUDA (\"Cannot re-initialize CUDA in forked subprocess\"); "
                     "use the spawn start method"),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, Dataset
            import multiprocessing


            class OnGpu(Dataset):
                def __len__(self):
                    return 8

                def __getitem__(self, index):
                    return torch.full((2,), index, device="cuda")


            if __name__ == "__main__":
                multiprocessing.set_start_method("spawn")
                device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
                loader = DataLoader(OnGpu(), batch_size=4, num_workers=2)
                print([batch.sum().item() for batch in loader])
            """,
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        for work in facts.work:
            if work.cloudpickle or not facts.may_use(work.method, "fork"):
                continue
            user = self._cuda_user(facts, work)
            found = self._parent_cuda(facts, work.site) if user is not None else None
            if found is None:
                continue
            site, what = found
            how = "fork" if work.method == "fork" else (
                "fork (the default on Linux up to Python 3.13)")
            verb = "starts workers" if work.per_task else "starts children"
            message = (f"`{what}` initialises CUDA in the parent before {work.api} {verb} with "
                       f"{how}, and `{user}` uses CUDA in them: a forked child cannot "
                       "re-initialise CUDA (\"Cannot re-initialize CUDA in forked subprocess\"); "
                       "use the spawn start method")
            fix = ("the fork start method is chosen explicitly" if work.method is not None
                   else insert_fixer(facts))
            yield offer(site.node, message, fix)
            return  # one finding per module: one start method choice fixes every start

    def _cuda_user(self, facts: ModuleFacts, work: WorkSite) -> str | None:
        for func in [*facts.task_functions(work), *worker_functions(facts, work)]:
            if func.evaluator is not facts.evaluator:
                continue
            # a device sent to the task; "cuda" if available else "cpu" is CUDA exactly
            # when the parent's availability check has initialised CUDA
            devices = frozenset(
                name for name, (expr, scope) in facts.parameter_expressions(work, func).items()
                if is_cuda_device(expr, scope, facts.evaluator, maybe=True))
            if any(cuda_call(facts.evaluator, site, initialising=False, devices=devices)
                   for site in facts.calls_in(func.node)):
                return func.node.name.value
        return None

    def _parent_cuda(self, facts: ModuleFacts, start: CallSite,
                     depth: int = 0) -> tuple[CallSite, str] | None:
        """The first CUDA-initialising call the parent makes before ``start``: in the same
        body, at import time, inside a helper called before it, or before the call that
        runs ``start``'s function (``main()`` under the guard)."""
        where = function_of(start.scope)
        # calls in the start's own arguments run before it: ``DataLoader(Data(), ...)``
        arguments = {id(node) for arg in start.node.args for node in own_nodes(arg.value)
                     if isinstance(node, cst.Call)}
        for site in facts.record.calls:
            if site.order >= start.order and id(site.node) not in arguments:
                continue
            same_body = function_of(site.scope) is where and (
                where is not None or site.guarded == start.guarded)
            if not (same_body or (site.import_time and function_of(site.scope) is None)):
                continue
            found = facts.cuda_initialised_by(site)
            if found is not None:
                return found
        if where is not None and depth < 3:
            for caller in facts.callers(where):
                found = self._parent_cuda(facts, caller, depth + 1)
                if found is not None:
                    return found
        return None
