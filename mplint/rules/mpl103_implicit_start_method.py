from __future__ import annotations

from collections.abc import Iterator

from mplint.analysis import ModuleFacts, ProcessStart
from mplint.fixers.base import Fixer
from mplint.fixers.start_method import insert_fixer
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_DEFAULT_CONTEXT_KINDS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS,
                                    ApiKind.MANAGER})


class ImplicitStartMethod(Rule):
    code = "MPL103"
    name = "implicit-start-method"
    summary = "ML script starts processes with the platform's default start method"
    what = (
        "Flags an ML entry script (it has a main guard or starts processes at module level, and "
        "imports a framework that runs threads or CUDA: torch, tensorflow, keras, jax, "
        "transformers, sentence_transformers, onnxruntime, mxnet) that starts processes through "
        "`multiprocessing`, `torch.multiprocessing` or `ProcessPoolExecutor` and never chooses a "
        "start method. Reported once per module, at the first start that uses the default. "
        "Library modules (no entry point) are not reported. A Jupyter notebook counts as an "
        "entry script; the message there suggests a context (`get_context`) rather than "
        "`set_start_method`, which fails when its cell runs a second time."
    )
    why = (
        "The default differs by platform and version: fork on Linux up to Python 3.13, "
        "forkserver on Linux from 3.14, spawn on Windows and macOS. Forking after a framework "
        "has started threads or CUDA is unsafe (CUDA cannot be re-initialised in the child, "
        "TensorFlow is not fork-safe, Python 3.12+ warns about forking a multi-threaded "
        "process), and fork hides every spawn bug on the developer's own machine."
    )
    fix_safety = (
        '`set_start_method("spawn")` becomes the first statement of the main guard (after a '
        "leading `freeze_support()`), through the module's own name for multiprocessing "
        "(`import multiprocessing` is added when it has none). Safe only where the script "
        "provably does the same under spawn as under fork: its workers read no global the "
        "parent sets or changes at run time, no torch tensor or module, lambda, local function "
        "or lock is sent to a Process, the parent sets no state a spawned child would not "
        "inherit (random seeds, `torch.set_num_threads`, logging and warnings configuration, "
        "library attributes), no module-level code writes output or files (a spawned child "
        "runs it again), workers do not read `__name__`, and no `join(timeout)` waits on a "
        "child. Otherwise the fix is unsafe and its title names the first difference, which "
        "the message names too. No fix when the default context is already fixed before the "
        "guard runs (a module-level Queue, Lock, Value, Manager, `get_start_method()`, a "
        "DataLoader with workers iterated on import, an imported module of the project that "
        "does one of these): the message says which. No fix without a main guard (fix MPL101 "
        "first), nor in a notebook."
    )
    references = ("https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods",)

    VALID = (
        Valid(
            """
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            "the script chooses spawn before it starts anything",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                ctx = mp.get_context("forkserver")
                with ctx.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            "the pool comes from an explicit context",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def shard(items):
                with mp.Pool() as pool:
                    return pool.map(len, items)
            """,
            "a library module: the application that imports it chooses the start method",
        ),
        Valid(
            """
            import multiprocessing as mp
            import numpy as np

            if __name__ == "__main__":
                with mp.Pool() as pool:
                    print(pool.map(np.sqrt, range(4)))
            """,
            "no threaded ML framework is imported, so the default is harmless",
        ),
        Valid(
            """
            import multiprocessing as mp

            def embed(text):
                import torch  # only the workers import the framework

                return torch.tensor([len(text)])

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(embed, ["a", "bb"]))
            """,
            "the parent never imports a threaded framework, so forking it is safe; only the "
            "workers import torch",
        ),
        Valid(
            """
            import torch
            import shards

            if __name__ == "__main__":
                print(shards.count_all(["a.txt", "b.txt"]))
            """,
            "the helper of another module starts its pool from an explicit spawn context",
            modules={"shards.py": """
                import multiprocessing

                def count_all(paths):
                    with multiprocessing.get_context("spawn").Pool(4) as pool:
                        return pool.map(len, paths)
                """},
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            (8, 10, "multiprocessing.Pool uses the platform's default start method (fork on "
                    "Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and macOS) "
                    "in a script that imports torch; choose one, e.g. "
                    'multiprocessing.set_start_method("spawn") first thing under the main guard'),
            fixed="""
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import tensorflow as tf

            def score(path):
                return len(path)

            def main():
                with ProcessPoolExecutor(4) as ex:
                    print(list(ex.map(score, ["a", "b"])))

            if __name__ == "__main__":
                main()
            """,
            (8, 10, "concurrent.futures.ProcessPoolExecutor uses the platform's default start "
                    "method (fork on Linux up to Python 3.13, forkserver from 3.14, spawn on "
                    "Windows and macOS) in a script that imports tensorflow; choose one, e.g. "
                    'multiprocessing.set_start_method("spawn") first thing under the main guard'),
            fixed="""
            from concurrent.futures import ProcessPoolExecutor
            import tensorflow as tf
            import multiprocessing

            def score(path):
                return len(path)

            def main():
                with ProcessPoolExecutor(4) as ex:
                    print(list(ex.map(score, ["a", "b"])))

            if __name__ == "__main__":
                multiprocessing.set_start_method("spawn")
                main()
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            import torch

            tokenizer = None

            def encode(text):
                return tokenizer(text)

            if __name__ == "__main__":
                tokenizer = str.upper
                with mp.Pool(2) as pool:
                    print(pool.map(encode, ["a", "b"]))
            """,
            (12, 10, "multiprocessing.Pool uses the platform's default start method (fork on "
                     "Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and "
                     "macOS) in a script that imports torch; choose one, e.g. "
                     'multiprocessing.set_start_method("spawn") first thing under the main '
                     "guard; under spawn, workers read `tokenizer`, which the parent sets at run "
                     "time (under the main guard): spawned workers would see its import-time "
                     "value"),
            fixed="""
            import multiprocessing as mp

            import torch

            tokenizer = None

            def encode(text):
                return tokenizer(text)

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                tokenizer = str.upper
                with mp.Pool(2) as pool:
                    print(pool.map(encode, ["a", "b"]))
            """,
        ),
        Invalid(
            """
            import multiprocessing as mp

            import torch

            results = mp.Queue()

            def work(x):
                results.put(x * 2)

            if __name__ == "__main__":
                procs = [mp.Process(target=work, args=(i,)) for i in range(2)]
                for p in procs:
                    p.start()
                print(sorted(results.get() for _ in procs))
            """,
            (11, 14, "multiprocessing.Process uses the platform's default start method (fork on "
                     "Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and "
                     "macOS) in a script that imports torch; choose one, e.g. "
                     'multiprocessing.set_start_method("spawn") first thing under the main '
                     "guard (no automatic fix: `mp.Queue()` (on import) fixes the default start "
                     "method before the main guard runs, so a set_start_method() there would "
                     'raise "context has already been set")'),
        ),
        Invalid(
            """
            import torch
            import torch.multiprocessing as mp

            def square(x):
                return torch.tensor(x) ** 2

            with mp.Pool(2) as pool:
                print(pool.map(square, [1, 2]))

            if __name__ == "__main__":
                mp.set_start_method("spawn")
            """,
            (7, 6, "torch.multiprocessing.Pool uses the platform's default start method (fork on "
                   "Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and macOS) in "
                   "a script that imports torch; the module's set_start_method() runs only after "
                   "it; start processes under the main guard, after the choice (no automatic fix: "
                   "the choice is there, the start runs on import before it)"),
        ),
        Invalid(
            """
            import torch
            import shards

            if __name__ == "__main__":
                print(shards.count_all(["a.txt", "b.txt"]))
            """,
            (5, 11, "multiprocessing.Pool uses the platform's default start method (fork on "
                    "Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and macOS) "
                    "in a script that imports torch; choose one, e.g. "
                    'multiprocessing.set_start_method("spawn") first thing under the main guard'),
            fixed="""
            import torch
            import shards
            import multiprocessing

            if __name__ == "__main__":
                multiprocessing.set_start_method("spawn")
                print(shards.count_all(["a.txt", "b.txt"]))
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
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        if facts.framework is None or not facts.is_entry_script:
            return
        if facts.delegates_start_method:
            return
        for start in facts.starts:
            if facts.start_method_calls and not _before_any_choice(facts, start):
                continue
            if start.obj.kind in _DEFAULT_CONTEXT_KINDS and start.obj.method is None:
                choice = ('choose one, e.g. multiprocessing.set_start_method("spawn") first '
                          "thing under the main guard")
                fix: Fixer | str = insert_fixer(facts)
                if facts.start_method_calls:
                    choice = ("the module's set_start_method() runs only after it; start "
                              "processes under the main guard, after the choice")
                    fix = "the choice is there, the start runs on import before it"
                if facts.notebook:
                    choice = ('choose one with a context, e.g. multiprocessing.get_context('
                              '"spawn"), since set_start_method() fails when its cell runs again')
                    fix = "a notebook has no main guard to choose the start method in"
                differences = facts.spawn.differences
                detail = f"; under spawn, {differences[0].text}" if differences else ""
                kind = "notebook" if facts.notebook else "script"
                yield offer(start.site.node, (
                    f"{start.obj.api} uses the platform's default start method (fork on Linux up "
                    "to Python 3.13, forkserver from 3.14, spawn on Windows and macOS) in a "
                    f"{kind} that imports {facts.framework}; {choice}"), fix, detail)
                return


def _before_any_choice(facts: ModuleFacts, start: ProcessStart) -> bool:
    """A start on import that runs before every ``set_start_method()`` of the module: the
    choice comes too late for it (the calls under the guard, or later in the module)."""
    root = facts.import_time_root(start.site)
    if root is None:
        return False
    return all(call.site.order > root.order and (call.site.guarded or call.site.import_time)
               for call in facts.start_method_calls)
