"""The codemods as (before, after) pairs, the cases they leave alone and why, and the safety
net around them: refusals, idempotence, and files written without damage."""

from __future__ import annotations

import ast
import itertools
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from conftest import FIXTURES, cli, report, run, tool, write
from hypothesis import given, settings
from hypothesis import strategies as st

from mplint import Config, fix_source, lint_source
from mplint.analysis.facts import ModuleFacts
from mplint.engine import Engine
from mplint.findings import edits_between
from mplint.fixers.base import SAFE, Fixer
from mplint.rules import all_rules
from mplint.rules.base import Report, Rule
from mplint.sources import Source, physical_lines


def _code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _pair(before: str, after: str, unsafe: bool = True, select: str = "MPL") -> None:
    before, after = _code(before), _code(after)
    fixed = fix_source(before, config=Config(select=(select,)), unsafe=unsafe)
    assert fixed == after
    ast.parse(fixed)
    assert fix_source(fixed, config=Config(select=(select,)), unsafe=unsafe) == fixed


# -- main guard (MPL101) ---------------------------------------------------------------------
GUARD_PAIRS = {
    "script-part-moves-definitions-stay": (
        """
        import multiprocessing

        SIZE = 8
        numbers = list(range(SIZE))  # runs before the start: stays


        def square(x):
            return x * x


        # fan out
        with multiprocessing.Pool(2) as pool:
            squares = pool.map(square, numbers)
        print(squares)
        """,
        """
        import multiprocessing

        SIZE = 8
        numbers = list(range(SIZE))  # runs before the start: stays


        def square(x):
            return x * x


        if __name__ == "__main__":
            # fan out
            with multiprocessing.Pool(2) as pool:
                squares = pool.map(square, numbers)
            print(squares)
        """,
    ),
    "into-an-existing-guard": (
        """
        from concurrent.futures import ProcessPoolExecutor


        def work(x):
            return x + 1


        executor = ProcessPoolExecutor(2)

        if __name__ == "__main__":
            print(list(executor.map(work, range(3))))
        """,
        """
        from concurrent.futures import ProcessPoolExecutor


        def work(x):
            return x + 1

        if __name__ == "__main__":
            executor = ProcessPoolExecutor(2)
            print(list(executor.map(work, range(3))))
        """,
    ),
    "a-definition-after-the-start-stays-at-module-level": (
        """
        import multiprocessing as mp

        def run():
            with mp.Pool(2) as pool:
                return pool.map(double, [1, 2])

        print(run())

        def double(x):
            return 2 * x
        """,
        """
        import multiprocessing as mp

        def run():
            with mp.Pool(2) as pool:
                return pool.map(double, [1, 2])

        def double(x):
            return 2 * x

        if __name__ == "__main__":
            print(run())
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), GUARD_PAIRS.values(), ids=GUARD_PAIRS.keys())
def test_main_guard_fix(before: str, after: str) -> None:
    _pair(before, after, unsafe=False, select="MPL101")


UNSAFE_GUARD = """
import multiprocessing as mp

pool = mp.Pool(2)


def work(x):
    return pool.apply(abs, (x,))
"""


def test_main_guard_fix_is_unsafe_when_a_definition_reads_a_moved_name() -> None:
    [finding] = [f for f in lint_source(_code(UNSAFE_GUARD)) if f.code == "MPL101"]
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert "a definition that stays reads `pool`" in finding.fix.title
    assert fix_source(_code(UNSAFE_GUARD), config=Config(select=("MPL101",))) \
        == _code(UNSAFE_GUARD)
    moved = fix_source(_code(UNSAFE_GUARD), config=Config(select=("MPL101",)), unsafe=True)
    assert moved.endswith('if __name__ == "__main__":\n    pool = mp.Pool(2)\n')


def test_main_guard_left_alone_with_an_unusual_guard() -> None:
    source = _code("""
        import multiprocessing as mp

        pool = mp.Pool(2)

        if __name__ != "__main__":
            pass
        else:
            print("script")
        """)
    [finding] = [f for f in lint_source(source) if f.code == "MPL101"]
    assert finding.fix is None
    assert finding.message.endswith("(no automatic fix: the module's main guard is not a plain "
                                    'top-level `if __name__ == "__main__":`)')
    assert fix_source(source, unsafe=True) == source


# -- start method (MPL103, MPL104) -----------------------------------------------------------
START_PAIRS = {
    "from-import-adds-import-multiprocessing": (
        """
        from multiprocessing import Pool
        import torch

        if __name__ == "__main__":
            with Pool(2) as pool:
                pool.map(abs, [1])
        """,
        """
        from multiprocessing import Pool
        import torch
        import multiprocessing

        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn")
            with Pool(2) as pool:
                pool.map(abs, [1])
        """,
    ),
    "torch-multiprocessing-alias": (
        """
        import torch.multiprocessing as tmp

        if __name__ == "__main__":
            # one worker per shard
            workers = [tmp.Process(target=print, args=(i,)) for i in range(2)]
        """,
        """
        import torch.multiprocessing as tmp

        if __name__ == "__main__":
            tmp.set_start_method("spawn")
            # one worker per shard
            workers = [tmp.Process(target=print, args=(i,)) for i in range(2)]
        """,
    ),
    "imported-set-start-method-is-used": (
        """
        from multiprocessing import Pool, set_start_method
        from tensorflow import keras

        def main():
            with Pool() as pool:
                pool.map(abs, [1])

        if __name__ == "__main__":
            main()
        """,
        """
        from multiprocessing import Pool, set_start_method
        from tensorflow import keras

        def main():
            with Pool() as pool:
                pool.map(abs, [1])

        if __name__ == "__main__":
            set_start_method("spawn")
            main()
        """,
    ),
    "library-module-uses-a-context-instead": (
        """
        \"\"\"Parallel helpers.\"\"\"
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import Process

        mp.set_start_method("forkserver")


        def run_all(fn, items):
            with mp.Pool(4) as pool:
                return pool.map(fn, items)


        def run_executor(fn, items):
            results = mp.Queue()
            with ProcessPoolExecutor(2) as ex:
                return list(ex.map(fn, items)), results


        def one(fn):
            return Process(target=fn)
        """,
        """
        \"\"\"Parallel helpers.\"\"\"
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import Process


        def run_all(fn, items):
            with mp.get_context("forkserver").Pool(4) as pool:
                return pool.map(fn, items)


        def run_executor(fn, items):
            results = mp.get_context("forkserver").Queue()
            with ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver")) as ex:
                return list(ex.map(fn, items)), results


        def one(fn):
            return mp.get_context("forkserver").Process(target=fn)
        """,
    ),
    "module-level-call-moves-with-its-comment": (
        """
        import multiprocessing as mp
        import torch

        # CUDA needs spawn
        mp.set_start_method("spawn")


        def work(x):
            return x


        if __name__ == "__main__":
            with mp.Pool(2) as pool:
                pool.map(work, [1])
        """,
        """
        import multiprocessing as mp
        import torch


        def work(x):
            return x


        if __name__ == "__main__":
            # CUDA needs spawn
            mp.set_start_method("spawn")
            with mp.Pool(2) as pool:
                pool.map(work, [1])
        """,
    ),
}


# Unsafe: a program that imports the library module may rely on the start method it sets.
_UNSAFE_START = frozenset({"library-module-uses-a-context-instead"})


@pytest.mark.parametrize(("before", "after"), START_PAIRS.values(), ids=START_PAIRS.keys())
def test_start_method_fix(before: str, after: str,
                          request: pytest.FixtureRequest) -> None:
    unsafe = request.node.callspec.id in _UNSAFE_START
    _pair(before, after, unsafe=unsafe)
    if unsafe:
        assert fix_source(_code(before), config=Config(select=("MPL",))) == _code(before)


SETTINGS_MODULE = """\
import multiprocessing as mp

# every entry point imports this module; spawn is the project's choice
mp.set_start_method("spawn")

WORKERS = 4
"""


def test_a_settings_module_keeps_its_start_method_choice() -> None:
    """A library module that starts nothing itself chooses the start method for the programs
    that import it: removing the call would silently move them to fork."""
    [finding] = lint_source(SETTINGS_MODULE)
    assert finding.code == "MPL104" and finding.fix is None
    assert finding.message.endswith(
        "(no automatic fix: the module starts no processes of its own: the call chooses the "
        "start method for the programs that import it)")
    assert fix_source(SETTINGS_MODULE, unsafe=True) == SETTINGS_MODULE


def test_a_module_level_call_next_to_a_guarded_one_is_removed_with_its_comments() -> None:
    _pair("""
        import multiprocessing as mp

        # spawn everywhere
        mp.set_start_method("spawn")  # (see the docs)

        def work(x):
            return x

        if __name__ == "__main__":
            mp.set_start_method("spawn", force=True)
            with mp.Pool(2) as pool:
                pool.map(work, [1])
        """, """
        import multiprocessing as mp

        # spawn everywhere
        # (see the docs)

        def work(x):
            return x

        if __name__ == "__main__":
            mp.set_start_method("spawn", force=True)
            with mp.Pool(2) as pool:
                pool.map(work, [1])
        """, unsafe=False)


@pytest.mark.parametrize(("source", "code", "reason"), [
    ("import multiprocessing as mp\n\ndef setup():\n    mp.set_start_method('spawn')\n\n"
     "setup()\n", "MPL104", "it runs inside a function that module-level code calls"),
    ("import multiprocessing as mp\nmp.set_start_method(METHOD)\n\ndef run(f, xs):\n"
     "    with mp.Pool() as pool:\n        return pool.map(f, xs)\n", "MPL104",
     "the start method is not a string literal"),
], ids=["inside-a-function-called-on-import", "library-with-a-computed-method"])
def test_start_method_left_alone(source: str, code: str, reason: str) -> None:
    [finding] = [f for f in lint_source(source) if f.code == code]
    assert finding.message.endswith(f"(no automatic fix: {reason})")
    assert fix_source(source, unsafe=True) == source


# -- load per worker (MPL201) ----------------------------------------------------------------
WORKER_PAIRS = {
    "starmap-with-two-arguments-left": (
        """
        import multiprocessing as mp
        import torch

        def score(x, model, scale):
            return float(model(x)) * scale

        if __name__ == "__main__":
            mp.set_start_method("spawn")
            path = "weights.pt"
            model = torch.load(path)
            with mp.Pool(2) as pool:
                print(pool.starmap(score, [(x, model, 2) for x in range(3)]))
        """,
        """
        import multiprocessing as mp
        import torch

        _worker_model = None


        def _init_worker_model(path):
            global _worker_model
            _worker_model = torch.load(path)


        def score(x, scale):
            model = _worker_model
            return float(model(x)) * scale

        if __name__ == "__main__":
            mp.set_start_method("spawn")
            path = "weights.pt"
            with mp.Pool(2, initializer=_init_worker_model, initargs=(path,)) as pool:
                print(pool.starmap(score, [(x, 2) for x in range(3)]))
        """,
    ),
    "partial-drops-the-model": (
        """
        import functools
        import multiprocessing as mp
        from tensorflow import keras

        def predict(net, batch):
            return net.predict(batch)

        def main(batches):
            net = keras.models.load_model("net.keras")
            with mp.get_context("spawn").Pool(2) as pool:
                return pool.map(functools.partial(predict, net), batches)
        """,
        """
        import multiprocessing as mp
        from tensorflow import keras

        _worker_net = None


        def _init_worker_net():
            global _worker_net
            _worker_net = keras.models.load_model("net.keras")


        def predict(batch):
            net = _worker_net
            return net.predict(batch)

        def main(batches):
            with mp.get_context("spawn").Pool(2, initializer=_init_worker_net) as pool:
                return pool.map(predict, batches)
        """,
    ),
    "apply-async-arguments": (
        """
        import multiprocessing as mp
        import joblib

        def label(clf, row):
            return clf.predict([row])

        if __name__ == "__main__":
            clf = joblib.load("clf.joblib")
            with mp.get_context("spawn").Pool(2) as pool:
                job = pool.apply_async(label, (clf, [0, 1]))
                print(job.get())
        """,
        """
        import multiprocessing as mp
        import joblib

        _worker_clf = None


        def _init_worker_clf():
            global _worker_clf
            _worker_clf = joblib.load("clf.joblib")


        def label(row):
            clf = _worker_clf
            return clf.predict([row])

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2, initializer=_init_worker_clf) as pool:
                job = pool.apply_async(label, ([0, 1],))
                print(job.get())
        """,
    ),
    "process-target-builds-the-model-from-the-loader-arguments": (
        """
        import torch
        import torch.multiprocessing as mp

        def serve(model, port):
            print(port, model)

        if __name__ == "__main__":
            mp.set_start_method("spawn")
            checkpoint = "model.pt"
            model = torch.jit.load(checkpoint)
            p = mp.Process(target=serve, args=(model, 8080))
            p.start()
            p.join()
        """,
        """
        import torch
        import torch.multiprocessing as mp

        def serve(checkpoint, port):
            model = torch.jit.load(checkpoint)
            print(port, model)

        if __name__ == "__main__":
            mp.set_start_method("spawn")
            checkpoint = "model.pt"
            p = mp.Process(target=serve, args=(checkpoint, 8080))
            p.start()
            p.join()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), WORKER_PAIRS.values(), ids=WORKER_PAIRS.keys())
def test_load_per_worker_fix(before: str, after: str) -> None:
    _pair(before, after, select="MPL201")


def test_load_per_worker_fix_is_unsafe_only() -> None:
    before = _code(WORKER_PAIRS["apply-async-arguments"][0])
    [finding] = [f for f in lint_source(before) if f.code == "MPL201"]
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert finding.fix.title == ("load `clf` once in each worker instead of sending it "
                                 "(the parent, which only sent it, no longer loads it)")
    assert fix_source(before, config=Config(select=("MPL201",))) == before


LEFT_ALONE = {
    "model-built-in-two-places": (
        """
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        def run_all(xs, small):
            if small:
                model = torch.load("small.pt")
            else:
                model = torch.load("large.pt")
            with mp.get_context("spawn").Pool() as pool:
                return pool.starmap(infer, [(model, x) for x in xs])
        """,
        "`model` is not built by one assignment the worker could repeat",
    ),
    "model-changed-after-it-is-built": (
        """
        import multiprocessing as mp
        from sklearn.linear_model import LogisticRegression

        def label(clf, row):
            return clf.predict([row])

        if __name__ == "__main__":
            clf = LogisticRegression()
            clf.fit([[0], [1]], [0, 1])
            with mp.get_context("spawn").Pool() as pool:
                print(pool.starmap(label, [(clf, [r]) for r in range(2)]))
        """,
        "`clf` is used after it is built (`clf.fit([[0], [1]], [0, 1])`), so rebuilding it in "
        "the worker could lose that",
    ),
    "task-function-also-called-directly": (
        """
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        if __name__ == "__main__":
            model = torch.load("m.pt")
            print(infer(model, 0))
            with mp.get_context("spawn").Pool() as pool:
                pool.starmap(infer, [(model, x) for x in range(3)])
        """,
        "`infer` is also used elsewhere, and its signature changes",
    ),
    "pool-has-an-initializer": (
        """
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        if __name__ == "__main__":
            model = torch.load("m.pt")
            with mp.get_context("spawn").Pool(2, initializer=print) as pool:
                pool.starmap(infer, [(model, x) for x in range(3)])
        """,
        "the pool already has an initializer",
    ),
    "iterable-built-elsewhere": (
        """
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        if __name__ == "__main__":
            model = torch.load("m.pt")
            jobs = [(model, x) for x in range(3)]
            with mp.get_context("spawn").Pool(2) as pool:
                pool.starmap(infer, jobs)
        """,
        "the model reaches the workers in a way the fix does not rewrite",
    ),
}


@pytest.mark.parametrize(("source", "reason"), LEFT_ALONE.values(), ids=LEFT_ALONE.keys())
def test_load_per_worker_left_alone(source: str, reason: str) -> None:
    source = _code(source)
    [finding] = [f for f in lint_source(source) if f.code == "MPL201"]
    assert finding.fix is None
    assert finding.message.endswith(f"(no automatic fix: {reason})")
    assert fix_source(source, config=Config(select=("MPL201",)), unsafe=True) == source


def test_load_per_worker_fix_keeps_the_parents_load_when_the_parent_uses_it() -> None:
    _pair("""
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        if __name__ == "__main__":
            model = torch.load("m.pt")
            with mp.get_context("spawn").Pool(2) as pool:
                print(pool.starmap(infer, [(model, x) for x in range(3)]))
            print(model)
        """, """
        import multiprocessing as mp
        import torch

        _worker_model = None


        def _init_worker_model():
            global _worker_model
            _worker_model = torch.load("m.pt")


        def infer(x):
            model = _worker_model
            return model(x)

        if __name__ == "__main__":
            model = torch.load("m.pt")
            with mp.get_context("spawn").Pool(2, initializer=_init_worker_model) as pool:
                print(pool.map(infer, range(3)))
            print(model)
        """, select="MPL201")


def test_load_per_worker_fix_keeps_the_comments_of_the_parents_load_and_del() -> None:
    _pair("""
        import multiprocessing as mp
        from transformers import AutoModel

        def embed(model, text):
            return model(text)

        def main(texts):
            # the big one
            model = AutoModel.from_pretrained('gpt2')  # 500 MB
            with mp.get_context('spawn').Pool(2) as pool:
                out = pool.starmap(embed, [(model, t) for t in texts])
            del model  # free it
            return out
        """, """
        import multiprocessing as mp
        from transformers import AutoModel

        _worker_model = None


        def _init_worker_model():
            global _worker_model
            _worker_model = AutoModel.from_pretrained('gpt2')


        def embed(text):
            model = _worker_model
            return model(text)

        def main(texts):
            # the big one
            # 500 MB
            with mp.get_context('spawn').Pool(2, initializer=_init_worker_model) as pool:
                out = pool.map(embed, texts)
            # free it
            return out
        """, select="MPL201")


def test_load_per_worker_fix_drops_only_the_imports_it_left_unused() -> None:
    _pair("""
        import functools
        import itertools
        import multiprocessing as mp
        import torch

        def infer(model, x):
            return model(x)

        def run(xs):
            model = torch.jit.load("m.pt")
            with mp.get_context("spawn").Pool(2) as pool:
                return pool.map(functools.partial(infer, model), xs)
        """, """
        import itertools
        import multiprocessing as mp
        import torch

        _worker_model = None


        def _init_worker_model():
            global _worker_model
            _worker_model = torch.jit.load("m.pt")


        def infer(x):
            model = _worker_model
            return model(x)

        def run(xs):
            with mp.get_context("spawn").Pool(2, initializer=_init_worker_model) as pool:
                return pool.map(infer, xs)
        """, select="MPL201")


def test_per_task_load_fix_moves_the_whole_load_and_takes_its_value_out_of_the_items() -> None:
    """The fixture's load: build, weights, eval, all in the initializer; the checkpoint path
    goes once through initargs and leaves the items it only served."""
    source = (FIXTURES / "pairs" / "per_task_load_broken.py").read_text()
    [finding] = [f for f in lint_source(source) if f.code == "MPL301"]
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert finding.fix.title == ("build it once per worker in `_init_worker_model` (Pool "
                                 "initializer=); unsafe: the task's parameters and the items "
                                 "change")
    fixed = fix_source(source, config=Config(select=("MPL301",)), unsafe=True)
    assert _code("""
        def _init_worker_model(path):
            global _worker_model
            model = torch.nn.Linear(4, 1)  # expect: MPL301
            model.load_state_dict(torch.load(path, weights_only=True))
            _worker_model = model


        def score(value):
            model = _worker_model
            with torch.no_grad():
        """) in fixed
    assert ("multiprocessing.Pool(2, initializer=_init_worker_model, initargs=(path,))"
            in fixed)
    assert "pool.map(score, [float(i) for i in range(8)])" in fixed


def test_per_task_load_fix_is_unsafe_even_when_nothing_but_the_load_moves() -> None:
    """A load that fails in an initializer makes a Pool restart its workers forever, where
    the task used to raise: never safe."""
    source = _code("""
        import multiprocessing as mp
        import torch

        def infer(x):
            net = torch.jit.load("net.pt")
            net.eval()
            return float(net(torch.tensor([x])))

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2) as pool:
                print(pool.map(infer, range(8)))
        """)
    [finding] = [f for f in lint_source(source) if f.code == "MPL301"]
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert finding.fix.title.endswith("unsafe: a load that fails now fails in every worker's "
                                      "start-up, not in each task")
    assert fix_source(source, config=Config(select=("MPL301",))) == source
    fixed = fix_source(source, config=Config(select=("MPL301",)), unsafe=True)
    assert "    net = torch.jit.load(\"net.pt\")\n    net.eval()\n    _worker_net = net\n" in fixed
    assert "def infer(x):\n    net = _worker_net\n    return" in fixed


@pytest.mark.parametrize(("source", "reason"), [
    ("""
     import multiprocessing as mp
     import torch

     def infer(path, x):
         return torch.load(path)(x)

     def run(paths, xs):
         with mp.Pool(2) as pool:
             return pool.starmap(infer, zip(paths, xs))
     """, None),
    ("""
     import multiprocessing as mp
     import torch

     def infer(path, x):
         model = torch.load(path)
         return model(x)

     def run(xs):
         with mp.Pool(2) as pool:
             path = "late.pt"
             return pool.starmap(infer, [(path, x) for x in xs])
     """, "the load reads `path`, which is not known yet where the pool is made"),
    ("""
     import multiprocessing as mp
     import torch

     def infer(path, x):
         model = torch.load(path)
         return model(x)

     def run(xs, path):
         with mp.Pool(2) as pool:
             return [pool.apply_async(infer, (path, x)).get() for x in xs]
     """, "the load reads `path`, which is the same for every item but sent in a way the fix "
          "cannot pass to an initializer"),
    ("""
     import multiprocessing as mp
     import torch

     def infer(path, x):
         model = torch.nn.Linear(4, 1)
         model.load_state_dict(torch.load(path))
         return model(x)

     def run(paths, xs):
         with mp.Pool(2) as pool:
             return pool.starmap(infer, zip(paths, xs))
     """, "setting the model up reads `path`, which changes from one item to the next, so the "
          "load depends on the item"),
], ids=["per-item-path-is-not-flagged", "value-set-after-the-pool", "apply-async-arguments",
        "weights-per-item"])
def test_per_task_load_fix_declined(source: str, reason: str | None) -> None:
    source = _code(source)
    found = [f for f in lint_source(source) if f.code == "MPL301"]
    if reason is None:
        assert found == []
        return
    [finding] = found
    assert finding.fix is None
    assert finding.message.endswith(f"(no automatic fix: {reason})")


def test_fixes_write_strings_in_the_files_own_quotes() -> None:
    _pair("""
        import multiprocessing as mp
        import torch

        def work(x):
            return x * 2

        if __name__ == '__main__':
            with mp.Pool(2) as pool:
                print(pool.map(work, range(4)))
        """, """
        import multiprocessing as mp
        import torch

        def work(x):
            return x * 2

        if __name__ == '__main__':
            mp.set_start_method('spawn')
            with mp.Pool(2) as pool:
                print(pool.map(work, range(4)))
        """, select="MPL103")


# -- the safety net --------------------------------------------------------------------------
BROKEN_SOURCE = "import multiprocessing\n\nmultiprocessing.Pool(2)  # keep me\n"


class _BadFixRule(Rule):
    """A rule whose fix is broken in the way ``kind`` says."""

    code = "MPL999"
    name = "bad-fix"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        if facts.starts:
            yield Report(facts.starts[0].site.node, "test finding", Fixer(SAFE, self.kind,
                                                                          self._rewrite))

    def _rewrite(self, module: cst.Module) -> cst.Module:
        if self.kind == "no-parse":  # a keyword where a name should be: "class" alone
            keyword = cst.SimpleStatementLine([cst.Expr(cst.Name("class"))])
            return module.with_changes(body=[*module.body, keyword])
        if self.kind == "keeps-finding":
            return module
        # drops its own finding (no start is left) but adds an import-time MPL104
        return module.with_changes(body=[module.body[0], *cst.parse_module(
            "multiprocessing.set_start_method('spawn')  # keep me\n").body])


def _engine_with(rule: Rule) -> Engine:
    engine = Engine(Config(select=("MPL",)))
    engine.rules = [rule]
    return engine


def test_a_fix_that_keeps_its_finding_is_refused() -> None:
    result = _engine_with(_BadFixRule("keeps-finding")).fix(Source(BROKEN_SOURCE, "job.py"))
    assert result.text == BROKEN_SOURCE and result.fixed == []
    assert [reason for _, reason in result.refused] == ["the finding is still there after "
                                                        "the fix"]


def test_a_fix_that_adds_a_finding_is_refused() -> None:
    engine = _engine_with(_BadFixRule("adds-finding"))
    engine.rules.append(next(r for r in Engine().rules if r.code == "MPL104"))
    result = engine.fix(Source(BROKEN_SOURCE, "job.py"))
    assert result.text == BROKEN_SOURCE
    assert [reason for _, reason in result.refused] == ["the fix would add MPL104"]


def test_a_fix_whose_result_does_not_parse_is_not_offered() -> None:
    engine = _engine_with(_BadFixRule("no-parse"))
    [finding] = engine.lint(Source(BROKEN_SOURCE, "job.py"))
    assert finding.fix is None
    assert finding.message.startswith("test finding (no automatic fix: the fixed code does "
                                      "not parse (")
    result = engine.fix(Source(BROKEN_SOURCE, "job.py"))
    assert (result.text, result.fixed) == (BROKEN_SOURCE, [])
    [(_, reason)] = result.refused
    assert reason.startswith("the fixed code does not parse (")


def test_a_fix_the_engine_would_refuse_is_not_marked_in_lint_output() -> None:
    """Lint tries each fix the way --fix will: no ``[*]`` for one that would be refused."""
    [finding] = _engine_with(_BadFixRule("keeps-finding")).lint(Source(BROKEN_SOURCE, "job.py"))
    assert finding.fix is None
    assert finding.message == ("test finding (no automatic fix: the finding is still there "
                               "after the fix)")


TWO_STARTS = """\
import multiprocessing as mp


def work(x):
    return x


with mp.Pool(2) as pool:
    pool.map(work, [1])
child = mp.Process(target=work, args=(1,))
child.start()
"""


class _StatementRule(Rule):
    """Flags the top-level statement ``<flagged> = 1`` (when ``needs`` is also bound) and
    offers to turn it into ``<into> = 1``, or to delete it when ``into`` is empty."""

    name = "statement"

    def __init__(self, code: str, flagged: str, into: str, needs: str = "") -> None:
        self.code, self.flagged, self.into, self.needs = code, flagged, into, needs

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        body = facts.record.module.body
        names = {cst.Module([]).code_for_node(s).split(" =")[0] for s in body}
        if self.needs and self.needs not in names:
            return
        for statement in body:
            if cst.Module([]).code_for_node(statement).startswith(f"{self.flagged} = "):
                yield Report(statement, f"{self.flagged} found",
                             Fixer(SAFE, "rewrite", self._rewrite))

    def _rewrite(self, module: cst.Module) -> cst.Module:
        body = []
        for statement in module.body:
            text = cst.Module([]).code_for_node(statement)
            if not text.startswith(f"{self.flagged} = "):
                body.append(statement)
            elif self.into:
                body.append(cst.parse_statement(f"{self.into} = 1\n"))
        return module.with_changes(body=body)


def test_a_fix_refused_early_is_tried_again_after_other_fixes() -> None:
    """``a`` -> ``b`` would add a finding while ``c`` exists; once ``c``'s own fix removes
    it, the first fix is made in the same run: a second run has nothing to do."""
    engine = Engine(Config(select=("MPL",)))
    engine.rules = [_StatementRule("MPL997", "a", "b"),
                    _StatementRule("MPL998", "b", "b", needs="c"),
                    _StatementRule("MPL999", "c", "")]
    source = "a = 1\nc = 1\n"
    result = engine.fix(Source(source, "job.py"), prefilter=False)
    assert result.text == "b = 1\n"
    assert [f.code for f in result.fixed] == ["MPL999", "MPL997"]
    assert engine.fix(Source(result.text, "job.py"), prefilter=False).text == result.text


def test_one_fix_that_clears_two_findings_is_credited_with_both() -> None:
    engine = Engine(Config(select=("MPL",)))
    engine.rules = [_StatementRule("MPL999", "a", "b")]  # one fix rewrites both statements
    result = engine.fix(Source("a = 1\nc = 2\na = 1\n", "job.py"), prefilter=False)
    assert result.text == "b = 1\nc = 2\nb = 1\n"
    assert [(f.code, f.line) for f in result.fixed] == [("MPL999", 1), ("MPL999", 3)]
    assert result.remaining == [] and result.refused == []


def test_the_guard_fix_moves_every_start_after_the_first() -> None:
    """MPL101 reports the module once, at its first start; its fix guards the later ones too."""
    result = Engine(Config(select=("MPL101",))).fix(Source(TWO_STARTS, "job.py"))
    assert [(f.code, f.line, f.message.endswith("(1 more start on import after it)"))
            for f in result.fixed] == [("MPL101", 8, True)]
    assert result.text.endswith('if __name__ == "__main__":\n    with mp.Pool(2) as pool:\n'
                                "        pool.map(work, [1])\n"
                                "    child = mp.Process(target=work, args=(1,))\n"
                                "    child.start()\n")
    assert result.remaining == [] and result.refused == []


def test_the_guard_fix_keeps_every_comment_around_what_it_moves() -> None:
    _pair("""
        import multiprocessing as mp


        def work(x):
            return x * 2


        # build the inputs
        data = [1, 2, 3]
        # run the pool
        # (two workers)
        with mp.Pool(2) as pool:
            print(pool.map(work, data))  # trailing
            # indented comment after the block
        # the end
        """, """
        import multiprocessing as mp


        def work(x):
            return x * 2


        # build the inputs
        data = [1, 2, 3]
        if __name__ == "__main__":
            # run the pool
            # (two workers)
            with mp.Pool(2) as pool:
                print(pool.map(work, data))  # trailing
                # indented comment after the block
        # the end
        """, unsafe=False, select="MPL101")


# -- the safety net every fix passes ---------------------------------------------------------
GUARD_ABOVE_SCRIPT = """\
import multiprocessing as mp
def work(x): return x * 2
if __name__ == "__main__":
    print("first")
data = [1, 2, 3]
with mp.Pool(2) as pool:
    print(pool.map(work, data))
"""
GUARD_ABOVE_IMPORT = """\
if __name__ == "__main__":
    print("hello")
import multiprocessing as mp
mp.set_start_method("spawn")

def work(x):
    return x * 2
"""


@pytest.mark.parametrize(("source", "code", "name"), [
    (GUARD_ABOVE_SCRIPT, "MPL101", "data"),
    (GUARD_ABOVE_IMPORT, "MPL104", "mp"),
])
def test_a_fix_that_would_read_a_name_before_it_is_bound_is_not_offered(
        source: str, code: str, name: str) -> None:
    """Moving a start or a start-method call into a guard that stands above the assignment or
    import it needs would raise NameError: no fix, and the message says why."""
    [finding] = [f for f in Engine().lint(Source(source, "job.py")) if f.code == code]
    assert finding.fix is None
    assert finding.message.endswith(f"(no automatic fix: the fixed code would read `{name}` "
                                    "before it is assigned or imported)")
    result = Engine().fix(Source(source, "job.py"), unsafe=True)
    assert result.text == source


def test_the_safety_net_finds_lost_comments_and_early_reads() -> None:
    from mplint.fixers.safety import problem

    def check(before: str, after: str) -> str | None:
        return problem(cst.parse_module(before), before, cst.parse_module(after), after)

    assert check("x = 1  # one\nprint(x)\n", "x = 1\nprint(x)\n") == (
        "it would drop the comment `# one`")
    assert check("x = 1\nprint(x)\n", "print(x)\nx = 1\n") == (
        "the fixed code would read `x` before it is assigned or imported")
    # a function called before the global it reads is assigned
    assert check("def f():\n    return x\nx = 1\nf()\n", "def f():\n    return x\nf()\nx = 1\n") \
        == "the fixed code would read `x` before it is assigned or imported"
    # reads that were already early before the change are not the fix's doing
    assert check("print(x)\nx = 1\n", "print(x)\nx = 1\nprint(x)\n") is None
    # a branch that may not run leaves the name possibly unbound; a name bound in every branch
    # is bound after the if
    assert check("if c():\n    x = 1\nelse:\n    x = 2\nprint(x)\n",
                 "if c():\n    x = 1\nprint(x)\n") == (
        "the fixed code would read `x` before it is assigned or imported")
    assert check("import os\nprint(os.sep)\n", "import os\n\nprint(os.sep)\n") is None


# -- files, the command line and the fixtures ------------------------------------------------
BAD = ("import multiprocessing as mp\nimport torch\n\n\ndef square(x):\n    return x * x\n\n\n"
       "with mp.Pool(2) as pool:  # trailing comment\n    print(pool.map(square, range(4)))\n")
FIXED = ("import multiprocessing as mp\nimport torch\n\n\ndef square(x):\n    return x * x\n\n\n"
         'if __name__ == "__main__":\n    mp.set_start_method("spawn")\n'
         "    with mp.Pool(2) as pool:  # trailing comment\n"
         "        print(pool.map(square, range(4)))\n")


def test_fix_writes_the_file_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", BAD)
    result = cli("--fix", "job.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert (result.stdout, result.stderr) == ("Found 2 problems (2 fixed, 0 remaining).\n", "")
    assert path.read_text() == FIXED
    again = cli("--fix", "--show-fixes", "job.py", cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "All checks passed.\n", "")
    assert path.read_text() == FIXED
    # no temporary files left (the cache is shared with linting)
    assert not [p for p in tmp_path.iterdir() if p.name not in ("job.py", ".mplint_cache")]


def test_diff_writes_nothing_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", BAD)
    result = cli("--diff", "job.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("--- a/job.py\n+++ b/job.py\n")
    assert '+if __name__ == "__main__":\n' in result.stdout
    assert path.read_text() == BAD
    write(tmp_path, "job.py", FIXED)
    assert cli("--diff", "job.py", cwd=tmp_path).returncode == 0


# A form feed and a U+2028 are ordinary characters inside a Python line; the last line has no
# newline.
ODD_LINES = ("import multiprocessing as mp\n\x0c\ndef work(x):\n    return x  # a\u2028b\n\n"
             "with mp.Pool(2) as pool:\n    pool.map(work, [1])")


@pytest.mark.parametrize("tool", [["git", "apply"], ["patch", "-p1", "-s"]])
def test_diff_applies_with_patch_tools_to_odd_lines(tmp_path: Path, tool: list[str]) -> None:
    """``--diff`` counts lines the way Python does and marks a missing final newline, so
    ``patch`` and ``git apply`` turn the file into exactly what ``--fix`` writes."""
    import shutil
    import subprocess

    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} is not installed")
    fixed_dir, patched_dir = tmp_path / "fixed", tmp_path / "patched"
    for folder in (fixed_dir, patched_dir):
        folder.mkdir()
        (folder / "job.py").write_bytes(ODD_LINES.encode())
    diff = cli("--diff", "job.py", cwd=patched_dir).stdout
    assert diff.endswith('+        pool.map(work, [1])\n\\ No newline at end of file\n')
    assert "-    pool.map(work, [1])\n\\ No newline at end of file\n" in diff
    subprocess.run([*tool], input=diff.encode(), cwd=patched_dir, check=True)
    assert cli("--fix", "job.py", cwd=fixed_dir).returncode == 0
    assert (patched_dir / "job.py").read_bytes() == (fixed_dir / "job.py").read_bytes()


def test_noqa_lines_are_counted_as_python_counts_them() -> None:
    source = ("import multiprocessing as mp\nx = 1  # a\u2028b\x0c c\n"
              "mp.set_start_method('spawn')  # noqa: MPL104\n")
    assert lint_source(source) == []
    assert [f.line for f in lint_source(source.replace("  # noqa: MPL104", ""))] == [3]


def test_fix_through_a_symlink_fixes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = write(tmp_path, "real.py", BAD)
    link = tmp_path / "job.py"
    link.symlink_to(target.name)
    result = cli("--fix", "job.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert link.is_symlink() and os.readlink(link) == "real.py"
    assert target.read_text() == FIXED


def test_a_failed_write_reports_the_findings_the_file_still_has(tmp_path: Path) -> None:
    """An immutable folder refuses the new file even to root: no "fixed" line, the original
    findings and one MPL000 line saying why."""
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    path = write(folder, "job.py", BAD)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = cli("--fix", "locked/job.py", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert result.returncode == 1
    assert "fixed" not in result.stderr
    codes = [line.split()[1] for line in report(result.stdout)]
    assert codes == ["MPL000", "MPL101", "MPL103"]
    assert "MPL000 cannot write the fixed file: " in result.stdout
    assert path.read_text() == BAD


def test_a_file_edited_while_it_is_fixed_is_left_alone(tmp_path: Path) -> None:
    from mplint.sources import SourceError, write_atomically

    path = write(tmp_path, "job.py", BAD)
    path.write_text(BAD + "# edited meanwhile\n")
    with pytest.raises(SourceError, match=r"^the file changed while it was being fixed; "
                                          r"nothing was written$"):
        write_atomically(path, FIXED, "utf-8", read_as=BAD)
    assert path.read_text() == BAD + "# edited meanwhile\n"


def test_show_fixes_and_unsafe_fixes(tmp_path: Path) -> None:
    write(tmp_path, "job.py", _code(WORKER_PAIRS["apply-async-arguments"][0]))
    lint = cli("job.py", cwd=tmp_path).stdout
    assert "MPL201 model" in lint and "[*]" not in lint  # unsafe: not fixable by --fix
    assert "MPL201 [*] model" in cli("--unsafe-fixes", "job.py", cwd=tmp_path).stdout
    safe_only = cli("--fix", "--show-fixes", "job.py", cwd=tmp_path)
    assert safe_only.returncode == 1 and "fixed " not in safe_only.stdout
    result = cli("--fix", "--unsafe-fixes", "--show-fixes", "job.py", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == ("fixed job.py:10:15: MPL201 load `clf` once in each worker "
                             "instead of sending it (the parent, which only sent it, no longer "
                             "loads it)\nFound 1 problem (1 fixed, 0 remaining).\n")
    assert (tmp_path / "job.py").read_text() == _code(WORKER_PAIRS["apply-async-arguments"][1])


def test_stdin_prints_the_fixed_source(tmp_path: Path) -> None:
    result = cli("--fix", "-", cwd=tmp_path, stdin=BAD.encode())
    assert result.returncode == 0
    assert result.stdout == FIXED
    source = _code(WORKER_PAIRS["apply-async-arguments"][0])
    left = cli("--fix", "-", cwd=tmp_path, stdin=source.encode())
    assert left.returncode == 1 and left.stdout.startswith("import multiprocessing as mp")
    assert "-:10:15: MPL201 model `clf`" in left.stderr


@pytest.mark.parametrize(("name", "before", "after"), [
    ("latin-1 cookie", b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + BAD.encode(),
     b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + FIXED.encode()),
    ("BOM", b"\xef\xbb\xbf" + BAD.encode(), b"\xef\xbb\xbf" + FIXED.encode()),
    ("CRLF", BAD.replace("\n", "\r\n").encode(), FIXED.replace("\n", "\r\n").encode()),
    ("no final newline", BAD.rstrip("\n").encode(), FIXED.rstrip("\n").encode()),
])
def test_fix_keeps_encoding_bom_line_endings_and_mode(tmp_path: Path, name: str, before: bytes,
                                                      after: bytes) -> None:
    path = write(tmp_path, "job.py", before)
    path.chmod(0o754)
    assert cli("--fix", "job.py", cwd=tmp_path).returncode == 0, name
    assert path.read_bytes() == after
    assert path.stat().st_mode & 0o777 == 0o754


def test_an_unwritable_file_gets_a_one_line_error_and_the_run_goes_on(tmp_path: Path) -> None:
    locked = write(tmp_path, "a_locked.py", BAD)
    other = write(tmp_path, "b_other.py", BAD)
    locked.chmod(0o444)
    wrapper = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
               "--"] if os.geteuid() == 0 else []
    result = run("--fix", ".", cwd=tmp_path, wrapper=wrapper)
    assert result.returncode == 1
    assert report(result.stdout)[0] == (
        "a_locked.py:1:1: MPL000 cannot write the fixed file: Permission denied")
    assert locked.read_text() == BAD
    assert other.read_text() == FIXED


def _fixture_copies(tmp_path: Path) -> Path:
    folder = tmp_path / "fixtures"
    for path in FIXTURES.rglob("*.py"):
        target = folder / path.relative_to(FIXTURES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return folder


def test_fixing_every_fixture_parses_removes_what_it_targets_and_is_idempotent(
        tmp_path: Path) -> None:
    folder = _fixture_copies(tmp_path)
    result = cli("--fix", "--unsafe-fixes", ".", cwd=folder)
    assert result.returncode == 1  # rules without a fix, and findings whose fix is declined
    for path in folder.rglob("*.py"):
        ast.parse(path.read_bytes(), str(path))
    left = report(cli(".", cwd=folder).stdout)
    without_fix = {rule.code for rule in all_rules() if rule.fix_safety.startswith("No ")}
    assert left and all(line.split()[1] in without_fix or "(no automatic fix: " in line
                        for line in left), left
    assert not any(code in line for line in left for code in ("MPL101", "MPL103", "MPL104"))
    snapshot = {p: p.read_bytes() for p in folder.rglob("*.py")}
    again = cli("--fix", "--unsafe-fixes", ".", cwd=folder)
    assert again.stderr == ""
    assert {p: p.read_bytes() for p in folder.rglob("*.py")} == snapshot


def _apply(text: str, edits: list[dict[str, Any]]) -> str:
    """``edits`` (JSON output's, positions in ``text``) applied from the last to the first."""
    lines = text.splitlines(keepends=True)

    def offset(line: int, column: int) -> int:
        return sum(len(each) for each in lines[:line - 1]) + column - 1

    for edit in reversed(edits):
        start = offset(edit["line"], edit["column"])
        end = offset(edit["end_line"], edit["end_column"])
        text = text[:start] + edit["content"] + text[end:]
    return text


def test_json_and_sarif_carry_the_edits_that_fix_applies(tmp_path: Path) -> None:
    write(tmp_path, "job.py", BAD)
    [guard, _] = json.loads(cli("--format", "json", "job.py", cwd=tmp_path).stdout)
    edits = guard["fix"]["edits"]
    assert _apply(BAD, edits) == fix_source(BAD, config=Config(select=("MPL101",)))
    sarif = json.loads(cli("--format", "sarif", "job.py", cwd=tmp_path).stdout)
    [fix] = sarif["runs"][0]["results"][0]["fixes"]
    [change] = fix["artifactChanges"]
    assert [r["insertedContent"]["text"] for r in change["replacements"]] == [
        e["content"] for e in edits]
    assert fix["description"]["text"].endswith("(safe)")


def test_a_fix_of_a_few_lines_in_a_long_file_is_a_few_small_edits(tmp_path: Path) -> None:
    """Edits carry what changes, not everything between the first and the last change."""
    filler = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(300))
    text = BAD.replace("def square", filler + "def square", 1)
    write(tmp_path, "job.py", text)
    [guard, _] = json.loads(cli("--format", "json", "job.py", cwd=tmp_path).stdout)
    edits = guard["fix"]["edits"]
    assert _apply(text, edits) == fix_source(text, config=Config(select=("MPL101",)))
    assert sum(len(e["content"]) for e in edits) < 60, edits


_LINES = st.lists(st.sampled_from(["x = 1", "    x = 1", "if a:", "  # note", "", "y = 2  # z",
                                   "\tz = [", "é = 'ü'"]), max_size=12)
_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_LINES.map(tuple), _ENDS), min_size=2, max_size=2))
def test_edits_between_turn_the_text_into_the_fixed_text(pair: list[Any]) -> None:
    """For any two texts (any line ends, indentation changes, moved lines), applying the edits
    in reverse order gives the second text, and the edits are ordered and do not overlap."""
    (lines_a, end_a), (lines_b, end_b) = pair
    before, after = end_a.join(lines_a) + end_a, end_b.join(lines_b) + end_b
    edits = edits_between(before, after)
    starts = [0]
    for line in physical_lines(before, keepends=True):
        starts.append(starts[-1] + len(line))
    spans = [(starts[e.line - 1] + e.column - 1, starts[e.end_line - 1] + e.end_column - 1,
              e.content) for e in edits]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    text = before
    for start, end, content in reversed(spans):
        text = text[:start] + content + text[end:]
    assert text == after


class _NamingRule(Rule):
    """Flags every top-level ``<name> = 1`` whose name starts with ``x``, naming it, and
    offers to rename ``x`` to ``xx``: the fix leaves the finding, with a new message, on the
    line it wrote."""

    name = "naming"
    code = "MPL996"

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        for statement in facts.record.module.body:
            text = cst.Module([]).code_for_node(statement)
            if text.startswith("x"):
                yield Report(statement, f"`{text.split(' =')[0]}` found",
                             Fixer(SAFE, "rename", lambda module, s=statement: module.with_changes(
                                 body=[cst.parse_statement("xx = 1\n") if b is s else b
                                       for b in module.body])))


def test_a_fix_that_leaves_a_new_finding_where_it_wrote_is_refused() -> None:
    engine = Engine(Config(select=("MPL",)))
    engine.rules = [_NamingRule()]
    result = engine.fix(Source("x = 1\n", "job.py"), prefilter=False)
    assert result.text == "x = 1\n"
    assert result.refused == [(result.remaining[0], "the fixed code would get MPL996 at line 1: "
                                                    "`xx` found")]


GUARD_CHOOSES = """\
import multiprocessing as mp


def work(x):
    return x + 1


with mp.Pool(2) as pool:
    print(pool.map(work, range(3)))

if __name__ == "__main__":
    mp.set_start_method("spawn")
    print("done")
"""


def test_findings_another_fix_makes_go_away_are_resolved_not_fixed(tmp_path: Path) -> None:
    """MPL101's move puts the pool after the guard's own start method choice: that clears
    MPL104 too, which is listed as resolved by it, with its line."""
    write(tmp_path, "job.py", GUARD_CHOOSES)
    shown = cli("--fix", "--show-fixes", "job.py", cwd=tmp_path)
    assert shown.stdout.splitlines() == [
        'fixed job.py:8:6: MPL101 move the script part under `if __name__ == "__main__":`',
        "resolved job.py:12:5: MPL104 by the fix for MPL101 at line 8",
        "Found 2 problems (1 fixed, 1 resolved by those fixes, 0 remaining).",
    ]
    assert (tmp_path / "job.py").read_text().endswith(
        'if __name__ == "__main__":\n    mp.set_start_method("spawn")\n'
        "    with mp.Pool(2) as pool:\n        print(pool.map(work, range(3)))\n"
        '    print("done")\n')


TOKENIZER = """\
import multiprocessing as mp

import torch

tokenizer = None


def encode(text):
    return tokenizer(text)


if __name__ == "__main__":
    tokenizer = str.upper
    with mp.Pool(2) as pool:
        print(pool.map(encode, ["a", "b"]))
"""


def test_the_start_method_fix_is_unsafe_where_workers_read_a_runtime_global(
        tmp_path: Path) -> None:
    write(tmp_path, "job.py", TOKENIZER)
    safe = cli("--fix", "--show-fixes", "--select", "MPL103", "job.py", cwd=tmp_path)
    assert (tmp_path / "job.py").read_text() == TOKENIZER
    finding = json.loads(cli("--format", "json", "--select", "MPL103", "job.py",
                             cwd=tmp_path).stdout)[0]
    assert finding["fix"]["safety"] == "unsafe"
    assert finding["fix"]["title"] == (
        'call `mp.set_start_method("spawn")` first in the main guard (unsafe: workers read '
        "`tokenizer`, which the parent sets at run time (under the main guard): spawned workers "
        "would see its import-time value)")
    assert safe.stdout.splitlines()[-1] == "Found 1 problem (1 more with `--unsafe-fixes`)."


def test_a_fix_whose_other_findings_only_change_their_details_is_not_refused() -> None:
    """MPL201's fix stops sending the model: MPL103's detail about it goes, the finding is
    the same, so the fix stands."""
    source = textwrap.dedent("""\
        import torch
        import torch.multiprocessing as mp


        def train(model):
            print(model.weight.shape)


        if __name__ == "__main__":
            model = torch.nn.Linear(2, 1, bias=False)
            workers = [mp.Process(target=train, args=(model,)) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        """)
    before = {f.code: f for f in lint_source(source)}
    assert "torch moves its tensors to shared memory" in before["MPL103"].message
    assert before["MPL201"].fix is not None and before["MPL201"].fix.safety == "unsafe"
    result = Engine(Config(select=("MPL201", "MPL103"))).fix(Source(source, "job.py"),
                                                            unsafe=True)
    assert sorted(f.code for f in result.fixed) == ["MPL103", "MPL201"]


_CRAMPED = {
    "after a decorated function (MPL301)": """\
import functools
import multiprocessing as mp

import torch


@functools.lru_cache
def helper():
    return 1

def score(path, value):
    model = torch.load(path)
    return model(value)


if __name__ == "__main__":
    mp.set_start_method("spawn")
    with mp.Pool(2) as pool:
        print(pool.map(functools.partial(score, "net.pt"), range(8)))
""",
    "after a class (MPL201)": """\
import multiprocessing as mp

import torch


class Settings:
    size = 4

def predict(model, x):
    return model(x)


if __name__ == "__main__":
    mp.set_start_method("spawn")
    model = torch.load("net.pt")
    with mp.Pool(2) as pool:
        print(pool.starmap(predict, [(model, x) for x in range(3)]))
""",
}


def _blank_line_problems(folder: Path) -> list[str]:
    """What real flake8 says about blank lines around definitions (E30x) under ``folder``."""
    import subprocess

    found = subprocess.run([tool("flake8"), "--isolated", "--select", "E30", "."], cwd=folder,
                           capture_output=True, text=True, timeout=300)
    return found.stdout.splitlines()


@pytest.mark.slow
def test_inserted_functions_have_pep8_blank_lines(tmp_path: Path) -> None:
    """The load-per-worker fixes insert a global and an initializer before the task function:
    two blank lines around them (E302, E305), also where the code before them is cramped (one
    blank line after a definition, which the fix must not copy)."""
    for number, text in enumerate(_CRAMPED.values()):
        write(tmp_path, f"job{number}.py", text)
    assert len(_blank_line_problems(tmp_path)) == len(_CRAMPED)  # each task def: E302
    result = cli("--fix", "--unsafe-fixes", "--no-cache", ".", cwd=tmp_path)
    assert result.stdout.endswith("remaining).\n") and "0 remaining" in result.stdout
    for number in range(len(_CRAMPED)):
        assert "def _init_worker_model(" in (tmp_path / f"job{number}.py").read_text()
    assert _blank_line_problems(tmp_path) == []


@pytest.mark.slow
def test_fixed_fixtures_are_pep8_spaced(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)
    assert _blank_line_problems(copy) == []
    cli("--fix", "--unsafe-fixes", "--no-cache", ".", cwd=copy)
    assert _blank_line_problems(copy) == []
