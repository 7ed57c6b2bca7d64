from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    BindingKind,
    Bound,
    CallSite,
    Func,
    Klass,
    Model,
    ModuleFacts,
    Qual,
    Scope,
    decorated_by,
)
from mplint.fixers.base import names_read
from mplint.fixers.per_task_load import per_worker_fixer, worker_advice
from mplint.rules.base import Invalid, Report, Rule, Valid, offer


class PerTaskLoad(Rule):
    code = "MPL301"
    name = "per-task-load"
    summary = "model built or loaded inside the function that runs once per item"
    what = (
        "Flags a model constructor or loader called in the body of a pool, executor, joblib, "
        "ray or dask task function, when what it builds is the same for every item: it reads "
        "constants, module globals, or only arguments that are the same for every task "
        "(bound by `functools.partial`, `itertools.repeat(path)` zipped with the items, a "
        "starmap tuple position that does not read the loop variable, a `submit` argument "
        "that does not change from one loop iteration to the next). Not reported: models "
        "trained in the task (`fit`, an optimiser over `parameters()`, `backward()`), which "
        "must be fresh per item; models built from per-item arguments (a hyper-parameter "
        "search); loaders cached in a global or by `functools.cache`; tasks that return the "
        "model (MPL202); tasks that serve until stopped (a `while True:` loop in their body), "
        "one per worker; copies (`copy.deepcopy`)."
    )
    why = (
        "The task function runs once per item, so the model is built or read from disk once "
        "per item instead of once per worker: for a checkpoint of a few hundred megabytes that "
        "is seconds per item, and it usually dwarfs the work the task does with it."
    )
    fix_safety = (
        "The whole load moves into a new initializer that stores the model in a module global: "
        "the statement that builds it, the set-up calls that follow on the same object "
        "(`load_state_dict(torch.load(path))`, `eval()`, `model = model.to(device)`, "
        "`requires_grad_(False)`) and the helper assignments that only feed them. The values "
        "it reads that are the same for every item (a `partial` argument, `repeat(path)`, a "
        "starmap position or a position of the tuple each item unpacks into that does not "
        "read the loop variable, a `submit` argument that does not change in the loop) go "
        "once through `initargs`; where the task used such a value only for the load, it "
        "leaves the items and the task's parameters (a starmap left with one argument becomes "
        "`map`). Always unsafe: a load that fails now fails in every worker's start-up (a "
        "Pool restarts such a worker forever, an executor breaks) instead of raising in the "
        "task; the title also says when the parameters change, an `initargs` value is computed "
        "by a call (it now runs once), the load was conditional, or the task uses the model "
        "otherwise than by calling it (the tasks of a worker now share one model). Not offered "
        "when the pool "
        "already has an initializer, when the load reads a per-item value or one that is not "
        "known where the pool is made, or for joblib, ray and dask, whose workers take no "
        "initializer: the message says what to use instead."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#multiprocessing.pool.Pool",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp
            import torch

            _model = None

            def load():
                global _model
                _model = torch.jit.load("net.pt")

            def infer(x):
                return float(_model(torch.tensor([x])))

            if __name__ == "__main__":
                with mp.Pool(2, initializer=load) as pool:
                    print(pool.map(infer, range(8)))
            """,
            "the initializer loads the model once per worker",
        ),
        Valid(
            """
            import multiprocessing as mp
            from sklearn.ensemble import RandomForestClassifier

            def evaluate(depth):
                clf = RandomForestClassifier(max_depth=depth)
                clf.fit([[0], [1]], [0, 1])
                return clf.score([[0], [1]], [0, 1])

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(evaluate, [2, 4, 8]))
            """,
            "each task trains a different model: a fresh one per item is the point",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def evaluate(path):
                net = torch.jit.load(path)
                return float(net(torch.ones(1)))

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(evaluate, ["a.pt", "b.pt"]))
            """,
            "every item is a different checkpoint: loading it is the task",
        ),
        Valid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import torch

            def evaluate(path, x):
                return torch.load(path)(x)

            if __name__ == "__main__":
                with ProcessPoolExecutor(2) as ex:
                    for path in ["a.pt", "b.pt"]:
                        ex.submit(evaluate, path, torch.ones(2))
            """,
            "each submitted task gets a different checkpoint from the loop",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def serve(rank, jobs):
                model = torch.jit.load("model.pt")
                while (batch := jobs.get()) is not None:
                    print(rank, model(batch))

            if __name__ == "__main__":
                jobs = mp.Queue()
                workers = [mp.Process(target=serve, args=(r, jobs)) for r in range(4)]
                for w in workers:
                    w.start()
            """,
            "one process per worker (a range), each loading once and serving many items",
        ),
        Valid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import joblib

            def score(model_path, rows):
                model = joblib.load(model_path)
                return model.predict(rows)

            def score_each(model_paths, chunks):
                with ProcessPoolExecutor() as ex:
                    futures = [ex.submit(score, p, c) for p, c in zip(model_paths, chunks)]
                    return [f.result() for f in futures]
            """,
            "each task gets its own model path from the zip: one load per item is the work",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def serve(jobs, results, worker):
                model = torch.load("net.pt")
                while True:
                    x = jobs.get()
                    if x is None:
                        return worker
                    results.put(model(x).detach())

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                manager = ctx.Manager()
                jobs, results = manager.Queue(), manager.Queue()
                with ctx.Pool(2) as pool:
                    done = pool.starmap_async(serve, [(jobs, results, w) for w in range(2)])
                    for x in [torch.ones(2), None, None]:
                        jobs.put(x)
                    done.wait()
            """,
            "each task serves jobs until told to stop (`while True:`): one task per worker, so "
            "the model is loaded once per worker",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def infer(x):
                net = torch.jit.load("net.pt")
                return float(net(torch.tensor([x])))

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(8)))
            """,
            (5, 11, "`torch.jit.load(...)` loads a model (TorchScript module) in `infer`, which "
                    "Pool.map runs once per item: the load is paid for every item instead of "
                    "once per worker; do it once per worker in a Pool initializer"),
            fixed="""
            import multiprocessing as mp
            import torch

            _worker_net = None


            def _init_worker_net():
                global _worker_net
                _worker_net = torch.jit.load("net.pt")


            def infer(x):
                net = _worker_net
                return float(net(torch.tensor([x])))

            if __name__ == "__main__":
                with mp.Pool(2, initializer=_init_worker_net) as pool:
                    print(pool.map(infer, range(8)))
            """,
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            from transformers import AutoModel

            def embed(text):
                model = AutoModel.from_pretrained("bert-base-uncased")
                model.eval()
                return len(text)

            if __name__ == "__main__":
                with ProcessPoolExecutor(2, initializer=print) as ex:
                    print(list(ex.map(embed, ["a", "b"])))
            """,
            (5, 13, "`AutoModel.from_pretrained(...)` loads a model (transformers model) in "
                    "`embed`, which ProcessPoolExecutor.map runs once per item: the load is "
                    "paid for every item instead of once per worker; do it once per worker in "
                    "a Pool initializer (no automatic fix: the pool already has an "
                    "initializer)"),
        ),
        Invalid(
            """
            import itertools
            import multiprocessing as mp
            import torch

            def score(rows, path):
                model = torch.load(path)
                return [model(row) for row in rows]

            def run(chunks, path):
                with mp.Pool(2) as pool:
                    return pool.starmap(score, zip(chunks, itertools.repeat(path)))
            """,
            (6, 13, "`torch.load(...)` loads a model (loaded by torch.load) in `score`, which "
                    "Pool.starmap runs once per item: the load is paid for every item instead "
                    "of once per worker; do it once per worker in a Pool initializer"),
            fixed="""
            import multiprocessing as mp
            import torch

            _worker_model = None


            def _init_worker_model(path):
                global _worker_model
                _worker_model = torch.load(path)


            def score(rows):
                model = _worker_model
                return [model(row) for row in rows]

            def run(chunks, path):
                with mp.Pool(2, initializer=_init_worker_model, initargs=(path,)) as pool:
                    return pool.map(score, chunks)
            """,
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import torch

            def job(device, sizes):
                model = torch.nn.GRU(sizes["inputs"], sizes["outputs"])
                return model.to(device)(torch.ones(1, 1, sizes["inputs"]))

            if __name__ == "__main__":
                with ProcessPoolExecutor(2) as ex:
                    for i in range(2):
                        sizes = {"inputs": 8, "outputs": 1}
                        ex.submit(job, f"cuda:{i}", sizes)
            """,
            (5, 13, "`torch.nn.GRU(...)` builds a model (torch.nn.Module) in `job`, which "
                    "ProcessPoolExecutor.submit runs once per item: the load is paid for every "
                    "item instead of once per worker; do it once per worker in a Pool "
                    "initializer (no automatic fix: the load reads `sizes`, which is not "
                    "known yet where the pool is made)"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def caption(image_path):
                model = torch.jit.load("captioner.pt")
                print(model(image_path))

            if __name__ == "__main__":
                images = ["a.png", "b.png", "c.png"]
                procs = []
                for path in images:
                    procs.append(mp.Process(target=caption, args=(path,)))
                for p in procs:
                    p.start()
                for p in procs:
                    p.join()
            """,
            (5, 13, "`torch.jit.load(...)` loads a model (TorchScript module) in `caption`, "
                    "which runs in a Process of its own for every item of `images`: the load is "
                    "paid for every item instead of once per worker; use a Pool whose "
                    "initializer loads it once per worker (no automatic fix: one process per "
                    "item is a different design from a pool)"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import joblib

            def score(model_path, rows):
                model = joblib.load(model_path)
                return model.predict(rows)

            def score_all(model_path, chunks):
                paths = [model_path for _ in chunks]
                with ProcessPoolExecutor() as ex:
                    jobs = {ex.submit(score, p, c): i
                            for i, (p, c) in enumerate(zip(paths, chunks))}
                    return {jobs[f]: f.result() for f in jobs}
            """,
            (5, 13, "`joblib.load(...)` loads a model (loaded by joblib.load) in `score`, which "
                    "ProcessPoolExecutor.submit runs once per item: the load is paid for every "
                    "item instead of once per worker; do it once per worker in a Pool initializer "
                    "(no automatic fix: the load reads `model_path` (through `p`), which is not "
                    "known yet where the pool is made)"),
        ),
        Invalid(
            """
            import functools
            import multiprocessing as mp
            import torch

            def classify(checkpoint, device, image):
                net = torch.nn.Linear(8, 2)
                # weights from the training run
                net.load_state_dict(torch.load(checkpoint))
                net = net.to(device).eval()
                return int(net(image.to(device)).argmax())

            def run(images, checkpoint):
                with mp.Pool(4) as pool:
                    return pool.map(functools.partial(classify, checkpoint, "cpu"), images)
            """,
            (6, 11, "`torch.nn.Linear(...)` builds a model (torch.nn.Module) in `classify`, which "
                    "Pool.map runs once per item: the load is paid for every item instead of "
                    "once per worker; do it once per worker in a Pool initializer"),
            (8, 25, "`torch.load(...)` loads a model (loaded by torch.load) in `classify`, which "
                    "Pool.map runs once per item: the load is paid for every item instead of "
                    "once per worker; do it once per worker in a Pool initializer"),
            fixed="""
            import functools
            import multiprocessing as mp
            import torch

            _worker_net = None


            def _init_worker_net(checkpoint, device):
                global _worker_net
                net = torch.nn.Linear(8, 2)
                # weights from the training run
                net.load_state_dict(torch.load(checkpoint))
                net = net.to(device).eval()
                _worker_net = net


            def classify(device, image):
                net = _worker_net
                return int(net(image.to(device)).argmax())

            def run(images, checkpoint):
                with mp.Pool(4, initializer=_init_worker_net, initargs=(checkpoint, "cpu")) as pool:
                    return pool.map(functools.partial(classify, "cpu"), images)
            """,
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            from transformers import AutoModel

            def embed(name, text):
                state = {"low_cpu_mem_usage": True}
                model = AutoModel.from_pretrained(name, **state)
                model.requires_grad_(False)
                model.eval()
                return model(text)

            def main(texts):
                with ProcessPoolExecutor() as ex:
                    futures = [ex.submit(embed, "gpt2", t) for t in texts]
                    return [f.result() for f in futures]
            """,
            (6, 13, "`AutoModel.from_pretrained(...)` loads a model (transformers model) in "
                    "`embed`, which ProcessPoolExecutor.submit runs once per item: the load is "
                    "paid for every item instead of once per worker; do it once per worker in "
                    "a Pool initializer"),
            fixed="""
            from concurrent.futures import ProcessPoolExecutor
            from transformers import AutoModel

            _worker_model = None


            def _init_worker_model(name):
                global _worker_model
                state = {"low_cpu_mem_usage": True}
                model = AutoModel.from_pretrained(name, **state)
                model.requires_grad_(False)
                model.eval()
                _worker_model = model


            def embed(text):
                model = _worker_model
                return model(text)

            def main(texts):
                with ProcessPoolExecutor(initializer=_init_worker_model, initargs=("gpt2",)) as ex:
                    futures = [ex.submit(embed, t) for t in texts]
                    return [f.result() for f in futures]
            """,
        ),
        Invalid(
            """
            from joblib import Parallel, delayed
            import joblib

            def predict(rows):
                model = joblib.load("model.pkl")
                return model.predict(rows)

            def run(chunks):
                return Parallel(n_jobs=4)(delayed(predict)(c) for c in chunks)
            """,
            (5, 13, "`joblib.load(...)` loads a model (loaded by joblib.load) in `predict`, which "
                    "joblib.Parallel runs once per item: the load is paid for every item instead "
                    "of once per worker; load it in a functools.cache function of an importable "
                    "module (not the script), which each reused worker runs once (no automatic "
                    "fix: joblib's workers take no initializer)"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            collection = None if work.per_task else facts.per_item_collection(work)
            if not work.per_task and collection is None:
                continue
            for func in facts.task_functions(work):
                if func.evaluator is not facts.evaluator or _not_per_item(func):
                    continue
                invariant = facts.invariant_parameters(work, func)
                for site, local, what in _loads(facts, func, invariant):
                    if site.node in reported:
                        continue
                    reported.add(site.node)
                    text = f"{cst.Module([]).code_for_node(site.node.func)}(...)"
                    name = func.node.name.value
                    if collection is None:
                        yield offer(site.node, (
                            f"`{text}` {what} in `{name}`, which {work.api} runs once per "
                            "item: the load is paid for every item instead of once per "
                            f"worker; {worker_advice(work)}"),
                            per_worker_fixer(facts, work, func, site, local))
                        continue
                    yield offer(site.node, (
                        f"`{text}` {what} in `{name}`, which runs in a {work.api} of its own "
                        f"for every item of `{collection}`: the load is paid for every item "
                        "instead of once per worker; use a Pool whose initializer loads it "
                        "once per worker"),
                        "one process per item is a different design from a pool")


def _not_per_item(func: Func) -> bool:
    """Loaders that are cached, tasks whose job is to return the model, and tasks that serve
    until the pool ends (a ``while True:`` loop): what they build before it, they build once
    per worker."""
    return (decorated_by(func, knowledge.CACHE_DECORATORS)
            or isinstance(func.evaluator.returns(func), Model)
            or any(isinstance(statement, cst.While) and _always(statement.test)
                   for statement in func.node.body.body))


def _always(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Name) and test.value == "True") or (
        isinstance(test, cst.Integer) and test.value == "1")


def _loads(facts: ModuleFacts, func: Func,
           invariant: frozenset[str]) -> Iterator[tuple[CallSite, str | None, str]]:
    """Model builds in ``func``'s body that are the same for every item, with the local name
    each is bound to; ``invariant`` parameters receive the same value for every item."""
    body = facts.evaluator.function_scope(func.node)
    if body is None:
        return
    inputs = _task_inputs(body, invariant)
    trained = _trained(facts, func)
    if "" in trained:
        return  # a backward pass: the task trains whatever it builds
    for site in facts.calls_in(func.node):
        value = facts.value(site.node, site)
        callee = facts.value(site.node.func, site)
        other = (knowledge.first_match(callee.name, knowledge.PER_TASK_LOADS)
                 if isinstance(callee, Qual) else None)
        if other is not None and not names_read(site.node) & inputs:
            yield site, _bound_to(body, site.node), f"loads {other}"
            continue
        if not isinstance(value, Model) or isinstance(callee, Bound) or (
                isinstance(callee, Qual) and knowledge.cheap_to_build(callee.name)):
            continue
        if names_read(site.node) & inputs:
            continue
        local = _bound_to(body, site.node)
        if local is None and _cached_globally(facts, func, site.node):
            continue
        if local is not None and local in trained:
            continue
        verb = "builds" if _constructs(callee) else "loads"
        yield site, local, f"{verb} a model ({value.label})"


def _task_inputs(body: Scope, invariant: frozenset[str]) -> set[str]:
    """The task's per-item parameters and the local names computed from them."""
    # parameters, and names bound in ways the analysis does not follow or that unpack a value
    # (``a, b = args``, ``x, y = jobs.get()``)
    found = {name for name, bindings in body.bindings.items() if name not in invariant
             and any(b.kind in (BindingKind.PARAM, BindingKind.UNPACK)
                     or (b.kind is BindingKind.OTHER and b.value is None) for b in bindings)}
    changed = True
    while changed:
        changed = False
        for name, bindings in body.bindings.items():
            if name not in found and any(b.value is not None and names_read(b.value) & found
                                         for b in bindings):
                found.add(name)
                changed = True
    return found


def _trained(facts: ModuleFacts, func: Func) -> set[str]:
    """Names the task trains (``""`` when it runs a backward pass on anything)."""
    found: set[str] = set()
    for site in facts.calls_in(func.node):
        target = site.node.func
        if isinstance(target, cst.Attribute) and target.attr.value in knowledge.TRAINING_METHODS:
            if target.attr.value == "backward":
                found.add("")
            for name in names_read(target.value):
                found.add(name)
    return found


def _bound_to(body: Scope, call: cst.Call) -> str | None:
    for name, bindings in body.bindings.items():
        if any(b.value is call for b in bindings):
            return name
    return None


def _cached_globally(facts: ModuleFacts, func: Func, call: cst.Call) -> bool:
    """``global _model; _model = load()``: a lazy per-process cache."""
    return any(b.value is call and b.function is func.node
               for bindings in facts.record.scope.bindings.values() for b in bindings)


def _constructs(callee: object) -> bool:
    if isinstance(callee, Klass):
        return True
    return isinstance(callee, Qual) and callee.name.rpartition(".")[2][:1].isupper()
