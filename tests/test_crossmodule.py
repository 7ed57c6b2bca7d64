"""Model classes and loaders defined in other modules of the linted tree."""

from __future__ import annotations

from pathlib import Path

from conftest import cli, report, write

USE = """\
import multiprocessing as mp
{import_line}

def infer(model, x):
    return x

if __name__ == "__main__":
    model = {call}
    with mp.get_context("spawn").Pool() as pool:
        pool.starmap(infer, [(model, x) for x in range(4)])
"""


def _codes(tmp_path: Path, *paths: str) -> list[str]:
    return [line.split(": ", 1)[0] + ": " + line.split()[1]
            for line in report(cli(*paths, cwd=tmp_path).stdout)]


def test_class_defined_in_a_sibling_module(tmp_path: Path) -> None:
    write(tmp_path, "models.py", "import torch.nn as nn\n\nclass Net(nn.Module):\n    pass\n")
    write(tmp_path, "train.py", USE.format(import_line="from models import Net", call="Net()"))
    # found whether the other module is linted too or only the user
    assert _codes(tmp_path, ".") == ["train.py:10:9: MPL201"]
    assert _codes(tmp_path, "train.py") == ["train.py:10:9: MPL201"]


def test_relative_import_inside_a_package_and_inherited_base(tmp_path: Path) -> None:
    write(tmp_path, "app/__init__.py", "")
    write(tmp_path, "app/base.py", "from tensorflow import keras\n\nclass Base(keras.Model):\n"
                                   "    pass\n")
    write(tmp_path, "app/nets.py", "from .base import Base\n\nclass Tower(Base):\n    pass\n")
    write(tmp_path, "app/run.py", USE.format(import_line="from . import nets",
                                             call="nets.Tower()"))
    lines = report(cli("app/run.py", cwd=tmp_path).stdout)
    assert len(lines) == 1
    assert lines[0].startswith("app/run.py:10:9: MPL201 model `model` (Tower, a Keras model "
                               "subclass) is pickled with every task of Pool.starmap")


def test_loader_function_in_another_module(tmp_path: Path) -> None:
    write(tmp_path, "loading.py", "import torch\n\ndef load_checkpoint(path):\n"
                                  "    model = torch.jit.load(path)\n    return model.eval()\n")
    write(tmp_path, "serve.py", USE.format(import_line="from loading import load_checkpoint",
                                           call='load_checkpoint("m.pt")'))
    assert _codes(tmp_path, "serve.py") == ["serve.py:10:9: MPL201"]


def test_plain_classes_elsewhere_are_not_models(tmp_path: Path) -> None:
    write(tmp_path, "config.py", "class Settings:\n    pass\n")
    write(tmp_path, "job.py", USE.format(import_line="from config import Settings",
                                         call="Settings()"))
    assert _codes(tmp_path, ".") == []


def test_import_cycle_and_broken_module_do_not_stop_the_run(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "from b import Net\n")
    write(tmp_path, "b.py", "from a import Net\n")
    write(tmp_path, "broken.py", "class Net(:\n")
    write(tmp_path, "job.py", USE.format(import_line="from a import Net", call="Net()"))
    write(tmp_path, "job2.py", USE.format(import_line="from broken import Net", call="Net()"))
    assert _codes(tmp_path, "job.py", "job2.py") == []


def test_start_method_chosen_by_a_helper_in_another_module(tmp_path: Path) -> None:
    write(tmp_path, "mpsetup.py", "import multiprocessing\n\ndef use_spawn():\n"
                                  "    multiprocessing.set_start_method('spawn')\n")
    job = """\
import multiprocessing as mp
import torch
{setup_import}

if __name__ == "__main__":
    {setup_call}
    with mp.Pool() as pool:
        pool.map(abs, [1, 2])
"""
    write(tmp_path, "job.py", job.format(setup_import="from mpsetup import use_spawn",
                                         setup_call="use_spawn()"))
    write(tmp_path, "job2.py", job.format(setup_import="import os", setup_call="os.getpid()"))
    assert _codes(tmp_path, "job.py", "job2.py") == ["job2.py:7:10: MPL103"]
