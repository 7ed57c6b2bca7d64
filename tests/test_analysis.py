"""How names, models and process starts are resolved: (source, expected findings) pairs.

Each LEFT_ALONE case says why it must stay silent: the analysis cannot tell, or it is correct.
"""

from __future__ import annotations

import textwrap

import pytest

from mplint import lint_source


def codes(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in lint_source(textwrap.dedent(source).lstrip("\n"))]


FLAGGED = [
    pytest.param("""
        from multiprocessing import Pool as P
        import torch.nn as nn
        if __name__ == "__main__":
            net = nn.Conv2d(1, 1, 3)
            with P(2) as p:
                p.map(abs, [net, net])
        """, [(5, "MPL103"), (6, "MPL201")], id="aliased-pool-and-layer-in-list"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def work(m, x):
            return x
        if __name__ == "__main__":
            mp.set_start_method("spawn")
            model = torch.load("m.pt")
            model = model.to("cpu").eval()
            tasks = list(zip([model] * 3, range(3)))
            pool = mp.Pool()
            pool.starmap(work, tasks)
        """, [(11, "MPL201")], id="model-through-reassignment-zip-and-list"),
    pytest.param("""
        import multiprocessing
        import torch
        class Runner:
            def __init__(self):
                self.model = torch.jit.load("m.pt")
                self.pool = multiprocessing.get_context("spawn").Pool(2)
            def run(self, xs):
                return self.pool.map(self.model, xs)
        """, [(8, "MPL201")], id="self-attributes-and-context-pool"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def run(model, x):
            return x
        if __name__ == "__main__":
            models = [torch.load("a.pt"), torch.load("b.pt")]
            ctx = mp.get_context("spawn")
            for model, x in zip(models, range(2)):
                ctx.Process(target=run, args=(model, x)).start()
            for model in models:
                ctx.Process(target=run, kwargs={"model": model, "x": 0}).start()
        """, [(9, "MPL201"), (11, "MPL201")], id="models-of-a-list-by-zip-and-loops"),
    pytest.param("""
        import copy
        import multiprocessing as mp
        import torch
        def pair():
            return torch.nn.Linear(2, 2), "linear"
        def run(model):
            return 1
        if __name__ == "__main__":
            with mp.get_context("spawn").Pool() as pool:
                pool.map(run, [pair()[0]])
                pool.map(run, [copy.deepcopy(pair()[0])])
        """, [(10, "MPL201"), (11, "MPL201")], id="item-of-a-returned-tuple-and-a-copy"),
    pytest.param("""
        import multiprocessing as mp
        from functools import partial
        import spacy
        def tokenize(nlp, text):
            return [t.text for t in nlp(text)]
        def main(texts):
            nlp = spacy.blank("en")
            with mp.get_context("spawn").Pool() as pool:
                return pool.map(partial(tokenize, nlp), texts)
        """, [(9, "MPL201")], id="blank-spacy-pipeline-in-partial"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def run(model, x):
            return x
        if __name__ == "__main__":
            models = {}
            for name in ["a", "b"]:
                models[name] = torch.load(name)
            with mp.get_context("spawn").Pool(2) as pool:
                pool.starmap(run, [(models[n], 1) for n in ["a", "b"]])
                pool.starmap(run, [(m, n) for n, m in models.items()])
        """, [(10, "MPL201"), (11, "MPL201")], id="models-stored-in-a-dict-by-key"),
    pytest.param("""
        import multiprocessing as mp
        from copy import deepcopy
        from functools import partial
        import torch
        def produce(queue, build, seed):
            base = build()
            queue.put(deepcopy(base))
        def main(n):
            ctx = mp.get_context("spawn")
            queue = ctx.Manager().Queue()
            build = partial(torch.nn.Linear, 4, 2)
            with ctx.Pool(n) as pool:
                pool.map(partial(produce, queue, build), range(n))
        """, [(6, "MPL301"), (7, "MPL202")], id="a-builder-bound-by-partial-and-a-queued-copy"),
    pytest.param("""
        from concurrent.futures import ProcessPoolExecutor
        from transformers import AutoModel
        def embed(model, text):
            return text
        def main(texts):
            model = AutoModel.from_pretrained("bert-base-uncased")
            with ProcessPoolExecutor() as ex:
                return [ex.submit(embed, model=model, text=t) for t in texts]
        """, [(8, "MPL201")], id="transformers-model-in-submit-kwargs"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def main():
            model = torch.nn.Linear(2, 2)
            def apply(x):
                return model(x)
            with mp.get_context("spawn").Pool() as pool:
                pool.map(apply, [1, 2])
        """, [(6, "MPL205"), (8, "MPL201"), (8, "MPL203")],
        id="nested-function-closing-over-model"),
    pytest.param("""
        import torch.multiprocessing as mp
        import torch
        def train(rank, model):
            pass
        if __name__ == "__main__":
            model = torch.nn.Linear(2, 2)
            mp.spawn(train, args=(model,), nprocs=2)
        """, [(7, "MPL201")], id="torch-spawn-args"),
    pytest.param("""
        import multiprocessing as mp
        def helper():
            mp.set_start_method("spawn")
        helper()
        """, [(3, "MPL104")], id="set-start-method-in-function-called-on-import"),
    pytest.param("""
        import multiprocessing as mp
        if __name__ == "__main__":
            q = mp.Queue()
            mp.set_start_method("spawn")
        """, [(4, "MPL104")], id="set-start-method-after-queue"),
    pytest.param("""
        import multiprocessing as mp
        def use_spawn():
            mp.set_start_method("spawn")
        def prepare():
            use_spawn()
            return 1
        if __name__ == "__main__":
            prepare()
            prepare()
        """, [(3, "MPL104")], id="set-start-method-in-helper-of-helper-called-twice"),
    pytest.param("""
        import multiprocessing as mp
        class Job:
            def __init__(self):
                self.prepare()
            def prepare(self):
                mp.set_start_method("spawn")
        if __name__ == "__main__":
            jobs = [Job() for _ in range(2)]
        """, [(6, "MPL104")], id="set-start-method-in-method-of-constructor-in-comprehension"),
    pytest.param("""
        import multiprocessing as mp
        def make_pool(n):
            mp.set_start_method("forkserver", force=True)
            return mp.Pool(n)
        """, [(3, "MPL104")], id="library-function-forces-and-returns-pool"),
    pytest.param("""
        import multiprocessing as mp
        def evaluate(self, shards):
            mp.set_start_method("spawn", force=True)
            with mp.Pool(2) as pool:
                return pool.map(len, shards)
        """, [(3, "MPL104")], id="method-of-a-class-excerpt-forces-and-starts-a-pool"),
    pytest.param("""
        import multiprocessing as mp
        class Local:
            pass
        def main():
            class Job:
                def run(self, x):
                    return x
            with mp.Pool() as pool:
                pool.map(Job().run, [1])
        """, [(9, "MPL203")], id="method-of-local-class-instance"),
    pytest.param("""
        import multiprocessing
        class Loader(multiprocessing.Process):
            def run(self):
                print("loading")
        class ImageLoader(Loader):
            pass
        ImageLoader().start()
        """, [(7, "MPL101")], id="process-subclass-started-on-import"),
]


LEFT_ALONE = [
    pytest.param("""
        import multiprocessing as mp
        import torch
        def run(sd, x):
            return x
        if __name__ == "__main__":
            mp.set_start_method("spawn")
            model = torch.nn.Linear(2, 2)
            state = model.state_dict()
            with mp.Pool() as pool:
                pool.starmap(run, [(state, x) for x in range(3)])
        """, id="state-dict-is-not-the-model"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def run(x):
            return x
        if __name__ == "__main__":
            mp.set_start_method("spawn")
            model = torch.nn.Linear(2, 2)
            model = None
            with mp.Pool() as pool:
                pool.map(run, [model])
        """, id="rebound-to-none-before-use"),
    pytest.param("""
        import multiprocessing as mp
        def get(cond, m):
            return m if cond else None
        if __name__ == "__main__":
            mp.set_start_method("spawn")
            with mp.Pool() as pool:
                pool.map(abs, get(True, 3))
        """, id="unknown-values-are-not-guessed"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def build():
            return torch.nn.Linear(2, 2), 4
        def run(x):
            return x
        if __name__ == "__main__":
            model, size = build()
            first, *rest = build()
            parts = {"model": model, "size": size}
            with mp.get_context("spawn").Pool() as pool:
                pool.map(run, [size, parts["size"], rest])
        """, id="entries-beside-a-model-are-not-the-model"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def build(small):
            if small:
                return torch.nn.Linear(2, 2), 2
            return "remote", 4
        def run(x):
            return x
        if __name__ == "__main__":
            model, size = build(True)
            with mp.get_context("spawn").Pool() as pool:
                pool.map(run, [model])
        """, id="returns-that-disagree-at-a-position"),
    pytest.param("""
        import multiprocessing as mp
        import spacy
        nlp = spacy.blank("en")
        def run(x):
            return x
        if __name__ == "__main__":
            with mp.get_context("spawn").Pool() as pool:
                pool.map(run, range(3))
        """, id="a-blank-pipeline-is-cheap-to-build-at-import"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def run(x):
            return x
        if __name__ == "__main__":
            models = {}
            models["net"] = torch.load("net.pt")
            models["size"] = 3
            with mp.get_context("spawn").Pool(2) as pool:
                pool.map(run, models)
                pool.map(run, [models["size"]])
        """, id="a-dict-iterates-over-its-keys-and-other-entries-are-not-models"),
    pytest.param("""
        from multiprocessing.pool import ThreadPool
        import torch
        model = torch.nn.Linear(2, 2)
        with ThreadPool() as pool:
            pool.map(model, [torch.ones(2)])
        """, id="thread-pool-pickles-nothing"),
    pytest.param("""
        import torch
        import mp_helpers as mp
        if __name__ == "__main__":
            mp.Pool().map(torch.nn.Linear(2, 2), [1])
        """, id="a-name-spelled-mp-that-is-not-multiprocessing"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def worker(path):
            return path
        def main():
            model = torch.nn.Linear(2, 2)
            torch.save(model, "m.pt")
            with mp.get_context("spawn").Pool() as pool:
                pool.map(worker, ["m.pt"])
        """, id="only-a-path-crosses"),
    pytest.param("""
        import multiprocessing as mp
        if __name__ == "__main__":
            if mp.get_start_method(allow_none=True) is None:
                mp.set_start_method("spawn")
        """, id="get-start-method-with-allow-none-does-not-fix-the-context"),
    pytest.param("""
        import multiprocessing as mp
        if __name__ == "__main__":
            if fast:
                mp.set_start_method("fork")
            else:
                mp.set_start_method("spawn")
        """, id="set-in-exclusive-branches"),
    pytest.param("""
        import multiprocessing as mp
        import torch
        def train(model):
            pass
        if __name__ == "__main__":
            model = torch.nn.Linear(2, 2)
            p = mp.get_context("fork").Process(target=train, args=(model,))
            p.start()
        """, id="explicit-fork-process-inherits-its-arguments"),
    pytest.param("""
        import functools
        import multiprocessing as mp
        @functools.lru_cache(maxsize=None)
        def use_spawn():
            mp.set_start_method("spawn")
        if __name__ == "__main__":
            for _ in range(3):
                use_spawn()
        """, id="cached-helper-runs-its-body-once"),
    pytest.param("""
        import multiprocessing as mp
        def use_spawn():
            mp.set_start_method("spawn", force=True)
        if __name__ == "__main__":
            pool = mp.Pool(2)
            use_spawn()
            use_spawn()
        """, id="forced-helper-called-twice-replaces-instead-of-raising"),
    pytest.param("""
        import multiprocessing as mp
        def use_spawn():
            try:
                mp.set_start_method("spawn")
            except RuntimeError:
                pass
        if __name__ == "__main__":
            queue = mp.Queue()
            for _ in range(2):
                use_spawn()
        """, id="helper-catches-context-already-set"),
    pytest.param("""
        import multiprocessing as mp
        def main():
            mp.set_start_method("spawn", force=True)
            with mp.Pool(2) as pool:
                print(pool.map(abs, [-1, -2]))
        """, id="library-entry-function-forces-and-keeps-its-pool"),
    pytest.param("""
        import multiprocessing as mp
        def use_spawn(flag):
            if flag:
                mp.set_start_method("spawn")
        if __name__ == "__main__":
            use_spawn(True)
            use_spawn(False)
        """, id="helper-sets-only-under-a-condition"),
    pytest.param("""
        import multiprocessing
        import torch.multiprocessing as mp
        def produce(rank, queue):
            queue.put(rank)
        def run(wait):
            queue = multiprocessing.get_context("spawn").SimpleQueue()
            mp.spawn(produce, args=(queue,), nprocs=2, join=wait)
            return queue.get()
        """, id="spawn-join-unknown-is-not-guessed"),
    pytest.param("""
        import multiprocessing as mp
        def choose():
            mp.set_start_method("spawn")
        def use_spawn():
            if mp.get_start_method(allow_none=True) != "spawn":
                mp.set_start_method("spawn")
        if __name__ == "__main__":
            choose()
            queue = mp.Queue()
            use_spawn()
        """, id="checked-helper-after-the-method-was-chosen-skips-its-call"),
    pytest.param("""
        import multiprocessing as mp
        class Checks:
            def probe(self, method):
                child = mp.Process(target=print, args=(method,))
                child.start()
                child.join()
            def switch(self, method):
                mp.set_start_method(method, force=True)
        """, id="forced-in-a-method-other-than-the-constructor-of-a-class-that-starts"),
]


@pytest.mark.parametrize(("source", "expected"), FLAGGED)
def test_flagged(source: str, expected: list[tuple[int, str]]) -> None:
    assert codes(source) == expected


@pytest.mark.parametrize("source", LEFT_ALONE)
def test_left_alone(source: str) -> None:
    assert codes(source) == []
