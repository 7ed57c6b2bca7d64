from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    BindingKind,
    Bound,
    CallSite,
    Func,
    Model,
    ModuleFacts,
    QueueObject,
    WorkSite,
    models_in,
)
from mplint.rules.base import Invalid, Report, Rule, Valid, task_node


class ModelReturn(Rule):
    code = "MPL202"
    name = "model-return"
    summary = "task function returns a model object to the parent"
    what = (
        "Flags a pool, executor, joblib, ray or dask task whose function (in this module or "
        "another module of the linted tree) returns a model object on every path: typically "
        "\"parallel loading\" that maps a loader over model files; or a task that is a model's "
        "own method returning the model (`delayed(clone(estimator).fit)`); or a task function "
        "that puts a model on a queue or sends it through a pipe (`queue.put(model)`, a "
        "multiprocessing queue or one the task receives). Reported at the "
        "`return` that gives the model when the function is in the same module, else at the "
        "call that sends the task."
    )
    why = (
        "Whatever a task returns is pickled in the worker and unpickled in the parent: each "
        "model is serialised whole (Keras 3 saves the whole model to do it), copied through a "
        "pipe and rebuilt, which costs more than loading it in the parent; under spawn every "
        "worker also imports the framework first. Models holding C, CUDA or graph handles fail "
        "to pickle. Measured: Pool.map over three small Keras models was ~3x slower than a loop "
        "under fork and ~45x slower under spawn."
    )
    fix_safety = (
        "No automatic fix: load in the parent (a loop), or use threads "
        "(`concurrent.futures.ThreadPoolExecutor`) when loading is I/O-bound."
    )
    references = ("https://docs.python.org/3/library/pickle.html#what-can-be-pickled-and-unpickled",)

    VALID = (
        Valid(
            """
            from concurrent.futures import ThreadPoolExecutor
            from tensorflow import keras

            def load(path):
                return keras.models.load_model(path)

            if __name__ == "__main__":
                with ThreadPoolExecutor(4) as ex:
                    models = list(ex.map(load, ["a.keras", "b.keras"]))
            """,
            "threads share the loaded models: nothing is pickled",
        ),
        Valid(
            """
            import multiprocessing as mp
            from tensorflow import keras

            def count(path):
                model = keras.models.load_model(path)
                return model.count_params()

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(count, ["a.keras", "b.keras"]))
            """,
            "the task returns a number; the model stays in the worker",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def train(seed):
                torch.manual_seed(seed)
                net = torch.nn.Linear(4, 1)
                return net.state_dict()

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    states = pool.map(train, [0, 1])
            """,
            "a state dict is plain tensors, which is how weights should come back",
        ),
        Valid(
            """
            from concurrent.futures import ProcessPoolExecutor
            from sklearn.linear_model import Ridge

            def score(alpha, X, y):
                reg = Ridge(alpha=alpha).fit(X, y)
                return alpha, reg.score(X, y)

            def search(X, y):
                with ProcessPoolExecutor() as ex:
                    return list(ex.map(score, [0.1, 1.0], [X, X], [y, y]))
            """,
            "the returned tuple holds numbers; the fitted model stays in the worker",
        ),
        Valid(
            """
            from joblib import Parallel, delayed
            from sklearn.base import clone

            def score(estimator, X, y):
                return estimator.fit(X, y).score(X, y)

            def score_all(estimator, folds):
                return Parallel(n_jobs=4)(
                    delayed(score)(clone(estimator), X, y)
                    for X, y in folds
                )
            """,
            "each task fits its copy and returns a number: the fitted estimator stays in the "
            "worker",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def produce(queue, seed):
                torch.manual_seed(seed)
                net = torch.nn.Linear(4, 1)
                queue.put(net.state_dict())

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                workers = [ctx.Process(target=produce, args=(queue, s)) for s in range(2)]
                for w in workers:
                    w.start()
                states = [queue.get() for _ in workers]
                for w in workers:
                    w.join()
            """,
            "the workers send state dicts: the tensors the parent needs, not the modules",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp
            from tensorflow import keras

            def load(path):
                return keras.models.load_model(path)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    models = pool.map(load, ["a.keras", "b.keras"])
            """,
            (5, 5, "task function `load` returns a model (Keras model), which Pool.map pickles "
                    "back to the parent for every task; load it in the parent, or use threads "
                    "for I/O-bound loading"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import torch

            class Net(torch.nn.Module):
                pass

            def build(seed):
                torch.manual_seed(seed)
                return Net()

            if __name__ == "__main__":
                with ProcessPoolExecutor() as ex:
                    nets = [ex.submit(build, s) for s in range(3)]
            """,
            (9, 5, "task function `build` returns a model (Net, a torch.nn.Module subclass), "
                     "which ProcessPoolExecutor.submit pickles back to the parent for every "
                     "task; load it in the parent, or use threads for I/O-bound loading"),
        ),
        Invalid(
            """
            from concurrent.futures import ProcessPoolExecutor
            import numpy as np
            from sklearn.tree import DecisionTreeRegressor

            class Forest:
                def __init__(self, n_trees):
                    self.n_trees = n_trees
                    self.trees = []

                def _grow(self, job):
                    seed, X, y = job
                    rows = np.random.default_rng(seed).integers(0, len(X), len(X))
                    tree = DecisionTreeRegressor(random_state=seed)
                    tree.fit(X[rows], y[rows])
                    return tree, rows

                def fit(self, X, y):
                    with ProcessPoolExecutor() as ex:
                        jobs = [(seed, X, y) for seed in range(self.n_trees)]
                        self.trees = [t for t, _ in ex.map(self._grow, jobs)]
                    return self
            """,
            (15, 9, "task function `_grow` returns a model (scikit-learn estimator) in the "
                     "tuple it returns, which ProcessPoolExecutor.map pickles back to the parent "
                     "for every task; return only what the parent needs from it (predictions, "
                     "a state dict), or train in threads where the library releases the GIL"),
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
            (6, 17, "task `clone(estimator).fit` returns the model it is called on "
                    "(scikit-learn estimator), which joblib.Parallel pickles back to the parent "
                    "for every task; return only what the parent needs from it (predictions, a "
                    "state dict), or train in threads where the library releases the GIL"),
        ),
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def produce(queue, seed):
                torch.manual_seed(seed)
                net = torch.nn.Linear(4, 1)
                queue.put(net)

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                workers = [ctx.Process(target=produce, args=(queue, s)) for s in range(2)]
                for w in workers:
                    w.start()
                nets = [queue.get() for _ in workers]
                for w in workers:
                    w.join()
            """,
            (7, 5, "task function `produce` sends a model (torch.nn.Module) through `queue`, "
                   "which pickles it for the process that receives it; send only what that "
                   "process needs (predictions, a state dict)"),
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            if not work.returns_results:
                continue
            found = self._returned(facts, work) or _self_returning(facts, work)
            if found is not None and found[0] not in reported:
                reported.add(found[0])
                yield Report(*found)
        for node, message in _queued(facts):
            yield Report(node, message)

    @staticmethod
    def _returned(facts: ModuleFacts, work: WorkSite) -> tuple[cst.CSTNode, str] | None:
        """The task function's ``return`` of a model (in this module; elsewhere the call that
        sends the task), with the message."""
        for func in facts.task_functions(work):
            returned = func.evaluator.returned_model(func)
            if returned is None:
                continue
            alone = isinstance(func.evaluator.returns(func), Model)
            where = "" if alone else " in the tuple it returns"
            node = func.evaluator.model_return(func) if func.evaluator is facts.evaluator \
                else None
            return node or task_node(work), (
                f"task function `{func.node.name.value}` returns a model "
                f"({returned.label}){where}, which {work.api} pickles back to the parent "
                f"for every task; {_advice(_trains(facts, func, returned))}")
        return None


def _self_returning(facts: ModuleFacts, work: WorkSite) -> tuple[cst.CSTNode, str] | None:
    """A task that is a model's own method returning the model (``estimator.fit``)."""
    task = facts.work_value(work, work.func) if work.func is not None else None
    if not isinstance(task, Bound) or not isinstance(task.obj, Model):
        return None
    model = task.obj
    if task.attr not in knowledge.SELF_RETURNING_METHODS[""] | \
            knowledge.SELF_RETURNING_METHODS.get(model.label, frozenset()):
        return None
    assert work.func is not None
    code = cst.Module([]).code_for_node(work.func)
    name = code if len(code) <= 40 else f"{model.name or 'model'}.{task.attr}"
    return task_node(work), (
        f"task `{name}` returns the model it is called on ({model.label}), which {work.api} "
        f"pickles back to the parent for every task; "
        f"{_advice(task.attr in knowledge.TRAINING_METHODS)}")


def _queued(facts: ModuleFacts) -> Iterator[tuple[cst.CSTNode, str]]:
    """A task function of this module that puts a model on a queue or sends it through a
    pipe (a multiprocessing queue, or one it receives as a parameter): the model is pickled
    to whichever process reads it."""
    seen: set[cst.CSTNode] = set()
    for work in facts.work:
        for func in facts.task_functions(work):
            if func.evaluator is not facts.evaluator:
                continue
            for site in facts.calls_in(func.node):
                call = site.node
                if (site.node in seen or not isinstance(call.func, cst.Attribute)
                        or call.func.attr.value not in knowledge.QUEUE_SEND_METHODS
                        or len(call.args) != 1 or not _channel(facts, site, call.func.value)):
                    continue
                models = models_in(facts.value(call.args[0].value, site))
                if models:
                    seen.add(site.node)
                    channel = cst.Module([]).code_for_node(call.func.value)
                    yield call, (
                        f"task function `{func.node.name.value}` sends a model "
                        f"({models[0].label}) through `{channel}`, which pickles it for the "
                        "process that receives it; send only what that process needs "
                        "(predictions, a state dict)")


def _channel(facts: ModuleFacts, site: CallSite, expr: cst.BaseExpression) -> bool:
    """A multiprocessing queue, or a parameter of the function (the queue or pipe end the
    task receives)."""
    if isinstance(facts.value(expr, site), QueueObject):
        return True
    if not isinstance(expr, cst.Name):
        return False
    owner = site.scope.lookup_scope(expr.value)
    return owner is site.scope and all(
        b.kind is BindingKind.PARAM for b in owner.bindings[expr.value])


def _advice(trains: bool) -> str:
    if trains:
        return ("return only what the parent needs from it (predictions, a state dict), or "
                "train in threads where the library releases the GIL")
    return "load it in the parent, or use threads for I/O-bound loading"


def _trains(facts: ModuleFacts, func: Func, model: Model) -> bool:
    """``func`` calls a training method (``fit``, ``train``, ...) on the model it returns."""
    for site in facts.calls_in(func.node):
        target = site.node.func
        if (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                and target.value.value == model.name
                and target.attr.value in knowledge.TRAINING_METHODS):
            return True
    return False
