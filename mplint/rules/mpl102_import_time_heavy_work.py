from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    Bound,
    CallSite,
    Func,
    Instance,
    Klass,
    Model,
    ModuleFacts,
    Qual,
    Resource,
    StartPoint,
    cuda_call,
    function_of,
    start_point,
)
from mplint.fixers.base import contains
from mplint.fixers.import_time_heavy_work import move_into_guard_fixers
from mplint.rules.base import Invalid, Report, Rule, Valid, offer


class ImportTimeHeavyWork(Rule):
    code = "MPL102"
    name = "import-time-heavy-work"
    summary = "model load, data load or CUDA use at import time in a module that starts processes"
    what = (
        "Flags module-level code, outside `if __name__ == \"__main__\":`, that loads or builds a "
        "model (`torch.load`, `from_pretrained`, `load_model`, a model class of the tree, "
        "layers with weights, an object of a class of the module whose `__init__` does one of "
        "these), runs one (`model(x)`, `.fit`, `.predict`), reads a data set "
        "(`pandas.read_*`, `numpy.load`, `datasets.load_dataset`, torchvision datasets) or "
        "initialises CUDA, in a module that starts processes under spawn or forkserver (or the "
        "platform default). Cheap objects are not reported: unfitted scikit-learn estimators, "
        "losses, layers without weights and empty spaCy pipelines (`spacy.blank`). Code that "
        "runs only after the module's first start on import (later statements, the body of "
        "the loop that iterates a DataLoader) is not reported: a child that imports the "
        "module again fails at that start (MPL101) before it gets there. Not reported in a "
        "Jupyter notebook: its children never re-run the notebook's cells."
    )
    why = (
        "Under spawn and forkserver (Windows, macOS, Linux from Python 3.14) every child "
        "imports the main module again, and the module that defines its task function: all of "
        "its module-level code runs once more in each child. N workers load the model N extra "
        "times, hold N copies in memory and start slowly; CUDA is initialised in every child."
    )
    fix_safety = (
        "Unsafe: the statements move to the top of the main guard, so code that imports the "
        "module no longer sees the names they bind. Offered only when nothing outside the guard "
        "reads those names (a task function that needs the model gets it from a worker "
        "initializer instead, which the author writes) and the guard is the module's last "
        "statement."
    )
    references = (
        "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-start-methods",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp

            import gensim.downloader as api

            VECTORS = api.load("glove-wiki-gigaword-50", return_path=True)

            def size(word):
                return len(word)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(size, ["a", "bb"]), VECTORS)
            """,
            "with return_path=True the downloader returns the file's path, it loads nothing",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                model = torch.load("net.pt")
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            "the load runs once, in the parent, under the guard",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch
            from sklearn.linear_model import LogisticRegression

            loss = torch.nn.MSELoss()
            template = LogisticRegression(C=0.5)

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            "a loss and an unfitted estimator cost nothing to build again",
        ),
        Valid(
            """
            import torch

            model = torch.load("net.pt")

            def infer(x):
                return model(x)
            """,
            "the module starts no processes",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader, TensorDataset

            loader = DataLoader(TensorDataset(torch.arange(8.0)), num_workers=2)
            for (batch,) in loader:
                model = torch.load("net.pt")
                print(model(batch))
            """,
            "the load runs only after the loop has started the workers: a child that imports "
            "the module fails at the loop (MPL101) and never reaches it",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            class Scorer:
                def __init__(self, path):
                    self.path = path
                    self.loss = torch.nn.MSELoss()
                    self.model = None

                def load(self):
                    self.model = torch.load(self.path)

            scorer = Scorer("net.pt")

            def double(x):
                return x * 2

            if __name__ == "__main__":
                scorer.load()
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(double, range(4)))
            """,
            "the constructor stores a path and builds a loss; the model is loaded later, under "
            "the guard",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp
            import torch

            weights = torch.load("net.pt")
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
            (4, 11, "`torch.load(...)` loads a model (loaded by torch.load) when the module is "
                    "imported; the module starts processes (multiprocessing.Pool), and under "
                    "spawn or forkserver every child imports it again and repeats this; move it "
                    "under the main guard or into a worker initializer"),
            (5, 33, "`torch.cuda.is_available(...)` initialises CUDA when the module is "
                    "imported; the module starts processes (multiprocessing.Pool), and under "
                    "spawn or forkserver every child imports it again and repeats this; move it "
                    "under the main guard or into a worker initializer"),
            fixed="""
            import multiprocessing as mp
            import torch

            def infer(x):
                return x * 2

            if __name__ == "__main__":
                weights = torch.load("net.pt")
                device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
                with mp.Pool(2) as pool:
                    print(pool.map(infer, range(4)))
            """,
        ),
        Invalid(
            """
            from multiprocessing import Pool
            import pandas as pd

            table = pd.read_csv("rows.csv")

            def work(i):
                return len(table) + i

            if __name__ == "__main__":
                with Pool(2) as pool:
                    print(pool.map(work, range(4)))
            """,
            (4, 9, "`pd.read_csv(...)` loads data (data loaded by pandas) when the module is "
                   "imported; the module starts processes (multiprocessing.Pool), and under "
                   "spawn or forkserver every child imports it again and repeats this; move it "
                   "under the main guard or into a worker initializer (no automatic fix: names "
                   "it binds are used outside the main guard (e.g. by a task function))"),
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

            scorer = Scorer("net.pt")

            def double(x):
                return x * 2

            if __name__ == "__main__":
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(double, range(4)))
                print(scorer.score(torch.ones(2)))
            """,
            (11, 10, "`Scorer(...)` builds `Scorer`, whose `__init__` loads a model (loaded by "
                     "torch.load), when the module is imported; the module starts processes "
                     "(multiprocessing.get_context('spawn').Pool), and under spawn or forkserver "
                     "every child imports it again and repeats this; move it under the main "
                     "guard or into a worker initializer"),
            fixed="""
            import multiprocessing as mp
            import torch

            class Scorer:
                def __init__(self, path):
                    self.model = torch.load(path)

                def score(self, x):
                    return self.model(x)

            def double(x):
                return x * 2

            if __name__ == "__main__":
                scorer = Scorer("net.pt")
                with mp.get_context("spawn").Pool(2) as pool:
                    print(pool.map(double, range(4)))
                print(scorer.score(torch.ones(2)))
            """,
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        if facts.notebook:
            return  # a child never re-imports a kernel's ``__main__``
        start = next((s for s in facts.starts
                      if facts.may_use(s.obj.method, "spawn", "forkserver")), None)
        if start is None:
            return
        module = facts.record.module
        first = _first_start(facts)
        found: dict[cst.CSTNode, tuple[CallSite, str]] = {}
        for site in facts.record.calls:
            if not site.import_time or function_of(site.scope) is not None:
                continue
            if first is not None and _after(module, site, first):
                continue  # a child re-importing the module fails at that start before this
            statement = site.statement
            if isinstance(statement, (cst.FunctionDef, cst.ClassDef)) or statement in found:
                continue
            what = _heavy(facts, site)
            if what is not None:
                found[statement] = (site, what)
        if not found:
            return
        heavy = [s for s in module.body if s in found]
        fixes = move_into_guard_fixers(module, facts.record.main_guard, heavy)
        for key, (site, what) in found.items():
            text = f"{cst.Module([]).code_for_node(site.node.func)}(...)"
            message = (f"`{text}` {what} when the module is imported; the module starts "
                       f"processes ({start.obj.api}), and under spawn or forkserver every "
                       "child imports it again and repeats this; move it under the main guard "
                       "or into a worker initializer")
            yield offer(site.node, message, fixes[key])


def _first_start(facts: ModuleFacts) -> StartPoint | None:
    """The first start that runs on import under spawn or forkserver: a child that imports
    the module again raises there (bootstrapping phase), so what follows never runs in it."""
    body = facts.record.module.body
    points = [point for start in facts.starts
              if facts.may_use(start.obj.method, "spawn", "forkserver")
              and (point := start_point(facts, start)) is not None and point.statement in body]
    return min(points, key=lambda p: body.index(p.statement), default=None)


def _after(module: cst.Module, site: CallSite, point: StartPoint) -> bool:
    """Whether ``site`` runs only after the start at ``point``: in a later statement, or in
    the body of the loop whose iteration starts the processes."""
    body = module.body
    if site.statement not in body:
        return False
    if body.index(site.statement) != body.index(point.statement):
        return body.index(site.statement) > body.index(point.statement)
    return isinstance(point.node, cst.For) and contains(point.node.body, site.node)


def _heavy(facts: ModuleFacts, site: CallSite) -> str | None:
    """What the call does that a child should not repeat, or None."""
    func = facts.value(site.node.func, site)
    if isinstance(func, Qual):
        label = knowledge.first_match(func.name, knowledge.DATA_LOADERS)
        if label is not None:
            return f"loads data ({label})"
        if knowledge.cheap_to_build(func.name):
            return None
    if (isinstance(func, Bound) and isinstance(func.obj, Resource)
            and func.obj.label == "open file" and func.attr in knowledge.FILE_READ_METHODS):
        return "reads a whole file"
    if isinstance(func, Model) or (isinstance(func, Bound) and isinstance(func.obj, Model)
                                   and func.attr in knowledge.MODEL_RUN_METHODS):
        model = func if isinstance(func, Model) else func.obj
        assert isinstance(model, Model)
        return f"runs a model ({model.label})"
    value = facts.value(site.node, site)
    if isinstance(value, Model) and not (isinstance(func, Bound)):
        verb = "builds" if isinstance(func, Klass | Func) or _constructs(func) else "loads"
        return f"{verb} a model ({value.label})"
    if isinstance(value, Instance):
        return _heavy_init(value.klass)
    if cuda_call(facts.evaluator, site) is not None:
        return "initialises CUDA"
    return None


def _heavy_init(klass: Klass) -> str | None:
    """An object whose class's ``__init__`` builds or loads a model: building it does too."""
    found = [(model, called) for model, called in klass.evaluator.init_models(klass)
             if not (isinstance(called, Qual) and knowledge.cheap_to_build(called.name))]
    if not found:
        return None
    model, called = found[0]
    verb = "builds" if isinstance(called, Klass | Func) or _constructs(called) else "loads"
    return f"builds `{klass.node.name.value}`, whose `__init__` {verb} a model ({model.label}),"


def _constructs(func: object) -> bool:
    return isinstance(func, Qual) and func.name.rpartition(".")[2][:1].isupper()
