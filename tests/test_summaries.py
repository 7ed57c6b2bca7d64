"""Other modules of the tree are read through summaries (Python's own parser): a class or a
function there is parsed with libcst only when a rule needs its code, and the findings are
those of parsing every module."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, write

from mplint.analysis.project import ProjectIndex
from mplint.config import Config
from mplint.engine import Engine
from mplint.modules import Tree
from mplint.sources import Source

MODELS = """\
import multiprocessing as mp
import torch.nn as nn
from torch import nn as tnn
from transformers import AutoModel

Base = nn.Module


class A(Base):
    pass


class B(A):
    pass


class Plain:
    pass


class Job(mp.Process):
    pass


Alias = B

if mp.cpu_count() > 1:
    class Cond(tnn.Module):
        pass
else:
    class Cond:
        pass


def make():
    return A()


def passthrough(model):
    return model


passthrough(B())


def unknown(value):
    return value


def numbers():
    for i in range(3):
        yield A()


counter = 0


def bump():
    global counter
    counter += 1
    return counter


def walrus():
    if (found := A()) is not None:
        return found
    return None


def pretrained():
    return AutoModel.from_pretrained("bert-base-uncased")


def moved(model):
    return model.to("cpu")


moved(B())
"""

REEXPORT = "from .impl import Worker as W, build\n"
IMPL = """\
import multiprocessing
import torch


class Worker(multiprocessing.Process):
    pass


def build():
    return torch.nn.Linear(2, 2)
"""

MAIN = """\
import multiprocessing as mp
import models
from models import A, B, Plain, Job, Alias, Cond, make, passthrough, unknown, numbers, bump
from models import walrus, pretrained, moved
from pkg import W, build


def work(item):
    return item


for value in (A(), B(), Plain(), Alias(), Cond(), make(), passthrough(1), unknown(2),
              numbers(), bump(), walrus(), pretrained(), moved(3), build(), models.A()):
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(work, [value])

for value in (A(), B(), Alias(), make(), walrus(), pretrained(), build(), models.B()):
    with mp.get_context("spawn").Pool(2) as pool:
        pool.apply_async(work, (value,))

job = Job()
job.start()
worker = W()
worker.start()
"""


def _lint(paths: list[Path], summaries: bool) -> tuple[list[str], ProjectIndex]:
    engine = Engine(Config(), Tree(boundary=[p.parent for p in paths]))
    index = ProjectIndex(tree=engine.tree, summaries=summaries)
    engine.__dict__["project"] = index  # the engine's index, with or without summaries
    found = [f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}"
             for path in paths for f in engine.lint(Source.load(path), prefilter=False)]
    return found, index


def _tree(tmp_path: Path) -> list[Path]:
    write(tmp_path, "models.py", MODELS)
    write(tmp_path, "pkg/__init__.py", REEXPORT)
    write(tmp_path, "pkg/impl.py", IMPL)
    return [write(tmp_path, "main.py", MAIN)]


def test_summaries_give_the_findings_of_parsing_every_module(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    summarised, index = _lint(paths, summaries=True)
    parsed, _ = _lint(paths, summaries=False)
    assert summarised == parsed
    codes = [line.split(" ")[1] for line in parsed]
    assert codes.count("MPL201") >= 8  # the models reach the pools: the tree is not trivial
    assert "MPL101" in codes  # Job and W start processes at import time
    # a function that may return a model is parsed to know; classes never are here
    assert tmp_path / "pkg" / "__init__.py" not in index.parsed


def test_a_model_class_of_another_module_is_known_without_parsing_it(tmp_path: Path) -> None:
    write(tmp_path, "nets.py", "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n")
    main = write(tmp_path, "train.py", "import multiprocessing as mp\nfrom nets import Net\n\n\n"
                                       "def f(m):\n    return 1\n\n\nif __name__ == '__main__':\n"
                                       "    with mp.get_context('spawn').Pool() as pool:\n"
                                       "        pool.map(f, [Net()])\n")
    found, index = _lint([main], summaries=True)
    assert [line.split(" ", 2)[:2] for line in found] == [[f"{main}:11:9:", "MPL201"]]
    assert "(Net, a torch.nn.Module subclass)" in found[0]
    assert index.parsed == []


@pytest.mark.parametrize("folder", [FIXTURES, FIXTURES / "crossmodule"])
def test_summaries_match_parsing_on_the_fixtures(folder: Path) -> None:
    paths = sorted(folder.glob("*.py"))
    assert _lint(paths, summaries=True)[0] == _lint(paths, summaries=False)[0]


@pytest.mark.parametrize(("body", "model"), [
    ("return build().to('cpu')", True),  # a model method on a call's result
    ("model = build()\n    return model.eval()", True),
    ("return list([build()])[0]", True),  # an item of a known list
    ("return Net", False),  # a class, not an instance
    ("return {'model': build()}['model']", True),
    ("return {'other': build()}['model']", False),  # no such entry
    ("model, size = build(), 2\n    return model", True),
    ("model, size = pair()\n    return model", True),  # a helper that returns a tuple
    ("model, size = pair()\n    return size", False),
    ("return copy.deepcopy(build())", True),
    ("found = {}\n    found['net'] = build()\n    return found['net']", True),
    ("found = []\n    found.append(build())\n    return found[0]", True),
])
def test_functions_of_another_module_return_what_parsing_finds(tmp_path: Path, body: str,
                                                               model: bool) -> None:
    write(tmp_path, "loading.py", "import copy\nimport torch\n\n\n"
                                  "class Net(torch.nn.Module):\n    pass\n\n\n"
                                  "def build():\n    return torch.nn.Linear(2, 2)\n\n\n"
                                  "def pair():\n    return build(), 2\n\n\n"
                                  f"def load():\n    {body}\n")
    main = write(tmp_path, "main.py", "import multiprocessing as mp\nfrom loading import load\n\n\n"
                                      "def f(m):\n    return 1\n\n\nif __name__ == '__main__':\n"
                                      "    with mp.get_context('spawn').Pool() as pool:\n"
                                      "        pool.map(f, [load()])\n")
    summarised, _ = _lint([main], summaries=True)
    assert summarised == _lint([main], summaries=False)[0]
    assert [line.split(" ")[1] for line in summarised] == (["MPL201"] if model else [])
