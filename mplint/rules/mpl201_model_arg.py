from __future__ import annotations

from collections.abc import Iterator

from mplint.analysis import (
    Bound,
    Func,
    Instance,
    LambdaValue,
    Model,
    ModuleFacts,
    Partial,
    PayloadMode,
    Tup,
    Value,
    WorkSite,
    captured,
    item_of,
    models_in,
)
from mplint.fixers.model_arg import load_per_worker_fixer
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer, task_node


class ModelArg(Rule):
    code = "MPL201"
    name = "model-arg"
    summary = "model object pickled into worker processes"
    what = (
        "Flags a model object (built by a known constructor or loader, or an instance of a class "
        "that subclasses `nn.Module`, `keras.Model` or another model base, in this module or "
        "another module of the linted tree) that is sent to other processes: in `args=` or "
        "`kwargs=` of a `Process`, in the iterable of `map`/`starmap` (tuples, comprehensions, "
        "`itertools.repeat`, `zip`), in `submit` or `apply` arguments, through "
        "`functools.partial`, as a bound method (`pool.map(model.predict, xs)`), or captured by "
        "a lambda or nested function used as the task. Models are followed through items of "
        "lists and dicts the code builds (`models.append(m)` then `models[i % n]`, "
        "`parts[\"encoder\"]`), the elements of a tuple a helper returns "
        "(`model, tok = build()`), `dict(...)` keyword dicts (`kwds=`, `kwargs=`), copies "
        "(`copy.deepcopy`, `sklearn.base.clone`) and objects holding them."
    )
    why = (
        "Pools and executors pickle every task: the whole model is serialised and rebuilt for "
        "each item or chunk, which can cost more than the work itself, and models holding C, "
        "CUDA or graph handles fail to pickle at all. Under spawn a `Process` pickles its "
        "arguments as well. Models that call `share_memory()` on purpose (Hogwild-style "
        "training) are not reported."
    )
    fix_safety = (
        "Unsafe: the model's loader moves into `Pool(initializer=..., initargs=...)` (or the "
        "executor's) that stores it in a module global the task function reads; the task "
        "function loses the model parameter and the call stops sending it. A Process target "
        "builds the model itself. The child re-runs the loader instead of receiving the "
        "parent's object, which is the same model only when the loader is deterministic. "
        "When the parent reads the model nowhere else, its own load (and `del model`) goes "
        "too; imports left unused go, a one-argument starmap becomes `map` over the items "
        "themselves. Offered only when the model is built by one assignment, unchanged before "
        "the call, from names the child can have, and the task function is a module-level function "
        "used nowhere else; otherwise the message says why."
    )
    references = ("https://docs.python.org/3/library/multiprocessing.html#multiprocessing.pool.Pool",)

    VALID = (
        Valid(
            """
            import torch
            import torch.multiprocessing as mp

            class Trainer(mp.Process):
                def __init__(self, shared):
                    super().__init__()
                    self.shared = shared

                def run(self):
                    with torch.no_grad():
                        self.shared.weight.add_(1.0)

            if __name__ == "__main__":
                net = torch.nn.Linear(1, 1)
                net.share_memory()
                workers = [Trainer(net) for _ in range(2)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
            """,
            "the model is put in shared memory on purpose and handed to every process object "
            "(Hogwild training): sending it moves no weights",
        ),
        Valid(
            """
            import multiprocessing as mp

            from sklearn.preprocessing import StandardScaler

            def scale(args):
                scaler, rows = args
                return scaler.transform(rows)

            if __name__ == "__main__":
                scaler = StandardScaler().fit([[0.0], [2.0]])
                with mp.Pool(2) as pool:
                    print(pool.map(scale, [(scaler, [[1.0]]), (scaler, [[3.0]])]))
            """,
            "a fitted preprocessing transformer holds a few arrays: cheap to send, not a model",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            _model = None

            def load(path):
                global _model
                _model = torch.load(path)

            def predict(x):
                return _model(x)

            if __name__ == "__main__":
                with mp.Pool(2, initializer=load, initargs=("net.pt",)) as pool:
                    print(pool.map(predict, range(4)))
            """,
            "each worker loads the model once; only the path and the items are pickled",
        ),
        Valid(
            """
            import threading
            import torch

            def run(model, x):
                print(model(x))

            model = torch.nn.Linear(4, 2)
            threading.Thread(target=run, args=(model, torch.ones(4))).start()
            """,
            "threads share memory: nothing is pickled",
        ),
        Valid(
            """
            import torch
            import torch.multiprocessing as mp

            def train(model):
                model.train()

            if __name__ == "__main__":
                model = torch.nn.Linear(4, 2)
                model.share_memory()
                procs = [mp.Process(target=train, args=(model,)) for _ in range(2)]
            """,
            "the weights are moved to shared memory on purpose (Hogwild-style training)",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def predict(path, x):
                return torch.load(path)(x)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    pool.starmap(predict, [("net.pt", x) for x in range(4)])
            """,
            "only the path crosses the process boundary (loading per task is MPL301's concern)",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def score(model, x):
                return model(x)

            def score_in_child(model, x):
                child = mp.Process(target=score, args=(model, x))
                child.start()
                child.join()

            if __name__ == "__main__":
                score_in_child(torch.nn.Linear(2, 1), torch.ones(2))
                score_in_child("net.pt", torch.ones(2))
            """,
            "the helper's callers disagree on what `model` is: the analysis cannot tell, so it "
            "stays silent",
        ),
        Valid(
            """
            import multiprocessing as mp

            class Squares:
                def __init__(self, offset):
                    self.offset = offset

                def square(self, x):
                    return x * x + self.offset

                def run(self, items):
                    with mp.Pool(2) as pool:
                        return pool.map(self.square, items)
            """,
            "the bound method sends `self`, but the object holds no model: pickling it is cheap",
        ),
        Valid(
            """
            import multiprocessing as mp
            import pickle

            class Thresholds:
                def __init__(self, path):
                    with open(path, "rb") as f:
                        saved = pickle.load(f)
                    self.limits = {}
                    self.limits["low"] = saved["low"]
                    self.limits["high"] = saved["high"]

                def flag(self, value):
                    return self.limits["low"] <= value <= self.limits["high"]

                def run(self, values):
                    with mp.Pool(2) as pool:
                        return pool.map(self.flag, values)
            """,
            "entries of a loaded file that are numbers, not models, are cheap to send",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def build():
                return torch.nn.Linear(4, 2), 4

            def report(name, size):
                print(name, size)

            if __name__ == "__main__":
                model, size = build()
                parts = {"model": model, "name": "small"}
                child = mp.get_context("spawn").Process(target=report, args=(parts["name"], size))
                child.start()
            """,
            "only the entries sent cross: a string from the dict and the size from the tuple the "
            "helper returns, not the model beside them",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def size_of(name):
                return len(name)

            if __name__ == "__main__":
                models = {}
                for name in ["small", "large"]:
                    models[name] = torch.load(f"{name}.pt")
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(size_of, models))
            """,
            "iterating a dict gives its keys: only the names are sent",
        ),
        Valid(
            """
            import torch
            import scoring

            if __name__ == "__main__":
                net = torch.nn.Linear(8, 2)
                print(scoring.score_all("net.pt", torch.randn(4, 8)))
            """,
            "the helper of another module sends only what the caller passes, here a path",
            modules={"scoring.py": """
                import multiprocessing

                def score(model, frame):
                    return model(frame)

                def score_all(model, frames):
                    with multiprocessing.get_context("spawn").Pool(4) as pool:
                        return pool.starmap(score, [(model, f) for f in frames])
                """},
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp

            import torch

            class Scorer:
                def __init__(self, model):
                    self.model = model

                def score(self, x):
                    return float(self.model(torch.ones(2) * x).sum())

            def main():
                scorer = Scorer(torch.nn.Linear(2, 1))
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(scorer.score, range(4)))

            if __name__ == "__main__":
                main()
            """,
            (15, 15, "model `self.model` (torch.nn.Module) is pickled with every task of "
                     "Pool.map through the bound method `score` of the object that holds it; "
                     "make the task a module-level function that receives only what it needs, "
                     "and load the model once per worker with initializer= (no automatic fix: "
                     "the task function is not a module-level function of this file)"),
        ),
        Invalid(
            """
            import multiprocessing as mp

            import torch

            class Worker(mp.Process):
                def __init__(self, model, results):
                    super().__init__()
                    self.model = model
                    self.results = results

                def run(self):
                    with torch.no_grad():
                        self.results.put(self.model(torch.ones(1)).item())

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                results = mp.Queue()
                worker = Worker(torch.nn.Linear(1, 1), results)
                worker.start()
                print(results.get())
                worker.join()
            """,
            (18, 14, "a model (torch.nn.Module) is pickled into each child started by Worker "
                     "(multiprocessing.Process subclass); build or load it in the child instead "
                     "(no automatic fix: the model has no name the fix could rebuild it from)"),
        ),
        Invalid(
            """
            import asyncio
            from concurrent.futures import ProcessPoolExecutor

            import joblib

            def score(clf, rows):
                return clf.predict(rows).tolist()

            async def serve(clf, batches):
                loop = asyncio.get_running_loop()
                with ProcessPoolExecutor(2) as pool:
                    jobs = [loop.run_in_executor(pool, score, clf, b) for b in batches]
                    return await asyncio.gather(*jobs)

            if __name__ == "__main__":
                clf = joblib.load("clf.joblib")
                print(asyncio.run(serve(clf, [[[0.0]], [[1.0]]])))
            """,
            (12, 17, "model `clf` (loaded by joblib.load) is pickled with every task of "
                     "ProcessPoolExecutor (run_in_executor); load it once per worker with "
                     "initializer= instead (no automatic fix: the model reaches the workers in "
                     "a way the fix does not rewrite)"),
        ),
        Invalid(
            """
            import multiprocessing
            import torch

            def make_model():
                return torch.nn.Linear(10, 1)

            def run(model, data):
                return model(data).detach()

            if __name__ == "__main__":
                model = make_model()
                inputs = [torch.randn(10) for _ in range(4)]
                with multiprocessing.Pool(4) as pool:
                    out = pool.starmap(run, [(model, d) for d in inputs])
            """,
            (14, 15, "model `model` (torch.nn.Module) is pickled with every task of "
                     "Pool.starmap; load it once per worker with initializer= instead"),
            fixed="""
            import multiprocessing
            import torch

            def make_model():
                return torch.nn.Linear(10, 1)


            _worker_model = None


            def _init_worker_model():
                global _worker_model
                _worker_model = make_model()


            def run(data):
                model = _worker_model
                return model(data).detach()

            if __name__ == "__main__":
                inputs = [torch.randn(10) for _ in range(4)]
                with multiprocessing.Pool(4, initializer=_init_worker_model) as pool:
                    out = pool.map(run, inputs)
            """,
        ),
        Invalid(
            """
            from multiprocessing import Process
            from tensorflow import keras

            def serve(model, port):
                model.summary()

            if __name__ == "__main__":
                net = keras.models.load_model("m.keras")
                p = Process(target=serve, args=(net, 8080))
                p.start()
            """,
            (9, 9, "model `net` (Keras model) is pickled into each child started by Process; "
                   "build or load it in the child instead"),
            fixed="""
            from multiprocessing import Process
            from tensorflow import keras

            def serve(port):
                model = keras.models.load_model("m.keras")
                model.summary()

            if __name__ == "__main__":
                p = Process(target=serve, args=(8080,))
                p.start()
            """,
        ),
        Invalid(
            """
            import functools
            import itertools
            from concurrent.futures import ProcessPoolExecutor
            from sklearn.ensemble import RandomForestClassifier

            def score(clf, row):
                return clf.predict([row])

            if __name__ == "__main__":
                clf = RandomForestClassifier().fit([[0], [1]], [0, 1])
                rows = [[0], [1]]
                with ProcessPoolExecutor() as ex:
                    ex.map(score, itertools.repeat(clf), rows)
                    ex.map(functools.partial(score, clf), rows)
                    ex.map(clf.predict, rows)
                    ex.submit(score, clf, rows[0])
            """,
            (13, 9, "model `clf` (scikit-learn estimator) is pickled with every task of "
                    "ProcessPoolExecutor.map; load it once per worker with initializer= instead "
                    "(no automatic fix: the model reaches the workers in a way the fix does not "
                    "rewrite)"),
            (14, 9, "model `clf` (scikit-learn estimator) is pickled with every task of "
                    "ProcessPoolExecutor.map through functools.partial; load it once per worker "
                    "with initializer= instead (no automatic fix: `score` is also used "
                    "elsewhere, and its signature changes)"),
            (15, 9, "model `clf` (scikit-learn estimator) is pickled with every task of "
                    "ProcessPoolExecutor.map through its bound method `clf.predict`; load it "
                    "once per worker with initializer= instead (no automatic fix: the task "
                    "function is not a module-level function of this file)"),
            (16, 9, "model `clf` (scikit-learn estimator) is pickled with every task of "
                    "ProcessPoolExecutor.submit; load it once per worker with initializer= "
                    "instead (no automatic fix: `score` is also used elsewhere, and its "
                    "signature changes)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def score(model, x):
                return model(x)

            def score_in_child(model, x):
                child = mp.Process(target=score, args=(model, x))
                child.start()
                child.join()

            if __name__ == "__main__":
                net = torch.nn.Linear(2, 1)
                score_in_child(net, torch.ones(2))
                score_in_child(net, torch.zeros(2))
            """,
            (8, 13, "model `model` (torch.nn.Module) is pickled into each child started by "
                    "Process; build or load it in the child instead (no automatic fix: `model` "
                    "is not built by one assignment the worker could repeat)"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            from sklearn.base import BaseEstimator

            class Ensemble(BaseEstimator):
                def score_one(self, row):
                    return sum(row)

                def score_all(self, rows):
                    with ProcessPoolExecutor() as ex:
                        return list(ex.map(self.score_one, rows))
            """,
            (10, 25, "model `self` (Ensemble, a scikit-learn estimator subclass) is pickled with "
                     "every task of ProcessPoolExecutor.map through its bound method "
                     "`self.score_one`; make the task a module-level function that receives "
                     "only what it needs, and load the model once per worker with initializer= "
                     "(no automatic fix: the task function is not a module-level function of "
                     "this file)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            class Scorer:
                def __init__(self, path):
                    self.model = torch.load(path)

                def score(self, x):
                    return self.model(x)

                def run(self, items):
                    with mp.Pool(2) as pool:
                        return pool.map(self.score, items)
            """,
            (13, 20, "model `self.model` (loaded by torch.load) is pickled with every task of "
                     "Pool.map through the bound method `score` of the object that holds it; "
                     "make the task a module-level function that receives only what it needs, "
                     "and load the model once per worker with initializer= (no automatic fix: "
                     "the task function is not a module-level function of this file)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def serve(server, port):
                server.model(torch.ones(2))

            class Server:
                def __init__(self, path):
                    self.model = torch.load(path)

                def launch(self):
                    child = mp.Process(target=serve, args=(self, 8080))
                    child.start()
                    child.join()
            """,
            (12, 17, "model `self.model` (loaded by torch.load) is pickled into each child "
                     "started by Process as an attribute of the object sent; build or load it in "
                     "the child instead (no automatic fix: the model reaches the workers in a "
                     "way the fix does not rewrite)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import pickle

            class Signals:
                def __init__(self, paths):
                    self.entries = {}
                    self.exits = {}
                    for key, path in paths.items():
                        with open(path, "rb") as f:
                            bundle = pickle.load(f)
                        self.entries[key] = {"path": path}
                        self.entries[key]["clf"] = bundle["clf"]
                        self.exits[key] = bundle["exit_model"]

                def score(self, frame):
                    return [e["clf"].predict(frame) for e in self.entries.values()]

                def run(self, frames):
                    with mp.Pool(4) as pool:
                        return pool.map(self.score, frames)
            """,
            (20, 20, "model `self.entries` (loaded by pickle.load) is pickled with every task "
                     "of Pool.map through the bound method `score` of the object that holds it "
                     "(with `self.exits`); make the task a module-level function that receives "
                     "only what it needs, and load the model once per worker with initializer= "
                     "(no automatic fix: the task function is not a module-level function of "
                     "this file)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def score(model, x):
                return model(x).detach()

            if __name__ == "__main__":
                models = []
                for path in ["a.pt", "b.pt"]:
                    models.append(torch.load(path))
                with mp.get_context("spawn").Pool(2) as pool:
                    pool.starmap(score, [(models[i % 2], torch.ones(2)) for i in range(8)])
            """,
            (12, 9, "a model (loaded by torch.load) is pickled with every task of Pool.starmap; "
                    "load it once per worker with initializer= instead (no automatic fix: the "
                    "model has no name the fix could rebuild it from)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def encode(encoder, x):
                print(encoder(x))

            if __name__ == "__main__":
                parts = {"encoder": torch.nn.Linear(4, 2), "name": "small"}
                ctx = mp.get_context("spawn")
                child = ctx.Process(target=encode, args=(parts["encoder"], torch.ones(4)))
                child.start()
            """,
            (10, 13, "a model (torch.nn.Module) is pickled into each child started by Process; "
                     "build or load it in the child instead (no automatic fix: the model has no "
                     "name the fix could rebuild it from)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            from transformers import AutoModel, AutoTokenizer

            def build(name):
                return AutoModel.from_pretrained(name), AutoTokenizer.from_pretrained(name)

            def embed(model, tokenizer, text):
                return model(**tokenizer(text, return_tensors="pt"))

            if __name__ == "__main__":
                model, tokenizer = build("bert-base-uncased")
                with mp.get_context("spawn").Pool(2) as pool:
                    pool.apply_async(embed, kwds=dict(model=model, tokenizer=tokenizer, text="hi"))
            """,
            (13, 9, "model `model` (transformers model) is pickled with every task of "
                    "Pool.apply_async; load it once per worker with initializer= instead (no "
                    "automatic fix: the model reaches the workers in a way the fix does not "
                    "rewrite)"),
            (13, 9, "model `tokenizer` (transformers tokenizer) is pickled with every task of "
                    "Pool.apply_async; load it once per worker with initializer= instead (no "
                    "automatic fix: the model reaches the workers in a way the fix does not "
                    "rewrite)"),
        ),
        Invalid(
            """
            from joblib import Parallel, delayed
            from sklearn.base import clone

            def fit_all(estimator, folds):
                return Parallel(n_jobs=4)(
                    delayed(clone(estimator).fit)(X, y)
                    for X, y in folds
                )
            """,
            (6, 17, "a model (scikit-learn estimator) is pickled with every task of "
                    "joblib.Parallel through its bound method `model.fit`; load it in the task "
                    "function through a functools.cache loader in an importable module (not the "
                    "script) instead (no automatic fix: joblib.Parallel has no worker "
                    "initializer to load it in)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def evaluate(name, model):
                return name, model(torch.ones(2)).sum().item()

            if __name__ == "__main__":
                models = {}
                for name in ["small", "large"]:
                    models[name] = torch.load(f"{name}.pt")
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.starmap(evaluate, models.items()))
            """,
            (12, 15, "a model (loaded by torch.load) is pickled with every task of "
                     "Pool.starmap; load it once per worker with initializer= instead (no "
                     "automatic fix: the model has no name the fix could rebuild it from)"),
        ),
        Invalid(
            """
            import torch
            import scoring

            if __name__ == "__main__":
                net = torch.nn.Linear(8, 2)
                print(scoring.score_all(net, torch.randn(4, 8)))
            """,
            (6, 11, "model `net` (torch.nn.Module) is pickled with every task of Pool.starmap "
                    "in `scoring.score_all`; load it once per worker with initializer= instead "
                    "(no automatic fix: the processes are started in another module)"),
            modules={"scoring.py": """
                import multiprocessing

                def score(model, frame):
                    return model(frame)

                def score_all(model, frames):
                    with multiprocessing.get_context("spawn").Pool(4) as pool:
                        return pool.starmap(score, [(model, f) for f in frames])
                """},
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        through_calls = set(facts.sent_through_calls)
        for work in (*facts.work, *facts.sent_through_calls):
            if not work.per_task and facts.only_fork(work.method):
                continue  # a forked child inherits its arguments: nothing is pickled
            seen: set[tuple[str | None, str]] = set()
            for model, how in self._models(facts, work):
                if facts.shares_memory(model) or (model.name, model.label) in seen:
                    continue
                seen.add((model.name, model.label))
                subject = f"model `{model.name}` ({model.label})" if model.name else (
                    f"a model ({model.label})")
                if work.per_task:
                    message = (f"{subject} is pickled with every task of {work.api}{how}; "
                               f"{_instead(work, model)}")
                else:
                    message = (f"{subject} is pickled into each child started by {work.api}{how}"
                               "; build or load it in the child instead")
                fix = (f"{work.api} has no worker initializer to load it in"
                       if work.kind in (ApiKind.JOBLIB, ApiKind.RAY, ApiKind.DASK_CLIENT,
                                        ApiKind.LIBRARY)
                       else "the processes are started in another module"
                       if work in through_calls
                       else load_per_worker_fixer(facts, work, model))
                yield offer(task_node(work), message, fix)

    def _models(self, facts: ModuleFacts, work: WorkSite) -> Iterator[tuple[Model, str]]:
        for payload in work.payload:
            value = facts.work_value(work, payload.expr)
            if payload.mode is PayloadMode.ITEMS:
                value = item_of(value)
            for model in models_in(value):
                yield model, ""
            for instance in _instances_in(value):
                yield from _held(instance, " as an attribute of the object sent")
        if work.func is not None:
            yield from _through_callable(facts, facts.work_value(work, work.func))


def _instances_in(value: Value) -> Iterator[Instance]:
    """Objects of the module's own classes that pickling ``value`` would pickle."""
    if isinstance(value, Instance):
        yield value
    elif isinstance(value, Tup):
        for item in value.items:
            yield from _instances_in(item)


def _held(instance: Instance, how: str) -> Iterator[tuple[Model, str]]:
    """One finding for all the models an object holds: the first, naming the others."""
    held = instance.klass.evaluator.held_models(instance)
    if held:
        others = ", ".join(f"`{m.name}`" for m in held[1:])
        yield held[0], how + (f" (with {others})" if others else "")


def _instead(work: WorkSite, model: Model) -> str:
    name = model.name or "model"
    if name == "self" or name.startswith("self."):
        return ("make the task a module-level function that receives only what it needs, "
                "and load the model once per worker with initializer=")
    if work.kind is ApiKind.RAY:
        return f"put it in the object store once with `ray.put({name})` or hold it in an actor"
    if work.kind is ApiKind.DASK_CLIENT:
        return f"send it to the workers once with `client.scatter({name})`"
    if work.kind in (ApiKind.JOBLIB, ApiKind.LIBRARY):
        return ("load it in the task function through a functools.cache loader in an importable "
                "module (not the script) instead")
    return "load it once per worker with initializer= instead"


def _through_callable(facts: ModuleFacts, func: Value) -> Iterator[tuple[Model, str]]:
    if isinstance(func, Model):
        yield func, " as the task function itself"
    elif isinstance(func, Bound) and isinstance(func.obj, Model):
        name = func.obj.name or "model"
        yield func.obj, f" through its bound method `{name}.{func.attr}`"
    elif isinstance(func, Bound) and isinstance(func.obj, Instance):
        yield from _held(func.obj, f" through the bound method `{func.attr}` of the object "
                                   "that holds it")
    elif isinstance(func, Partial):
        for model in models_in(Tup(func.args)):
            yield model, " through functools.partial"
        yield from _through_callable(facts, func.func)
    elif isinstance(func, LambdaValue | Func):
        scope = func.scope if isinstance(func, LambdaValue) else (
            func.evaluator.function_scope(func.node))
        if scope is None:
            return
        what = ("a lambda" if isinstance(func, LambdaValue)
                else f"nested function `{func.node.name.value}`")
        owner = func.evaluator if isinstance(func, Func) else facts.evaluator
        for _, value in captured(owner, scope):
            for model in models_in(value):
                yield model, f" through {what} that captures it"
