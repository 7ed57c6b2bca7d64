"""Safe fixes keep what the program does: one real program per way in which moving code under
the main guard or choosing spawn can change behaviour.

Each test writes a small program, runs it under the platform's default start method, runs
``python -m mplint --fix`` (safe fixes only) on it, runs it again and compares stdout, the exit
status and the last exception line of stderr. A fix that would change any of them must be
declined or marked unsafe. Each test also checks that mplint reports the code whose fix is at
stake on the original, so that none passes because nothing was looked at.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import pytest
from conftest import benchmark, requires

pytestmark = pytest.mark.slow

TIMEOUT = 60.0


def _differential() -> ModuleType:
    return benchmark("differential")


def behaves_the_same(folder: Path, script: str, code: str,
                     helpers: dict[str, str] | None = None) -> str:
    """Run ``script`` (with ``helpers`` beside it) before and after ``mplint --fix`` and assert
    the same outcome; ``code`` must be reported on the original. The fixed script's text."""
    differential = _differential()
    folder.mkdir()
    (folder / differential.SCRIPT).write_text(script)
    for name, text in (helpers or {}).items():
        (folder / name).write_text(text)
    before = differential.execute(folder, TIMEOUT)
    assert before.exit is not None, before.describe()
    fix = differential.apply_fix(folder)
    assert code in fix.reported, f"{code} not reported; reported {fix.reported}"
    after = differential.execute(folder, TIMEOUT) if fix.changed else before
    assert after == before, (f"the safe fix ({', '.join(fix.codes)}) changes what the program "
                             f"does\n{fix.diff}\nbefore: {before.describe()}\n"
                             f"after:  {after.describe()}")
    return str((folder / differential.SCRIPT).read_text())


# -- MPL101: the script part moves under the guard -----------------------------------------------

def test_statements_after_the_first_start_still_run_after_it(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

STAGE = "before"


def tag(x):
    return f"{x}:{STAGE}"


with mp.Pool(2) as pool:
    print(sorted(pool.map(tag, range(2))))
STAGE = "after"
print(STAGE)
''', "MPL101")


def _starts_follow_the_method_call(text: str) -> bool:
    """In the main guard, no Pool or Process is created before its set_start_method call."""
    tree = ast.parse(text)
    guard = next(node for node in tree.body if isinstance(node, ast.If)
                 and "__main__" in ast.unparse(node.test))
    lines = {"method": [], "start": []}  # type: dict[str, list[int]]
    for node in ast.walk(guard):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "set_start_method":
                lines["method"].append(node.lineno)
            elif node.func.attr in ("Pool", "Process"):
                lines["start"].append(node.lineno)
    return not lines["method"] or all(line > min(lines["method"]) for line in lines["start"])


def test_a_move_into_an_existing_guard_keeps_starts_after_its_start_method(
        tmp_path: Path) -> None:
    fixed = behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp


def double(x):
    return 2 * x


with mp.Pool(2) as pool:
    print(sorted(pool.map(double, range(3))))

if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    print("ready")
''', "MPL101")
    assert _starts_follow_the_method_call(fixed), fixed


@requires("torch")
def test_a_dataloader_before_an_unguarded_pool(tmp_path: Path) -> None:
    """The 17-line script: the loader's workers fix the default context before the Pool."""
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch
from torch.utils.data import DataLoader


def square(x):
    return x * x


def preview():
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=2)
    print([batch.tolist() for batch in loader])


preview()
with mp.Pool(2) as pool:
    print(pool.map(square, range(4)))
''', "MPL101")


# -- MPL103: spawn re-runs module-level code in every child --------------------------------------

POOL_UNDER_GUARD = '''
if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(sorted(pool.map(work, range(3))))
'''


@requires("torch")
@pytest.mark.parametrize("module_level", [
    pytest.param('print("loading")', id="print"),
    pytest.param('atexit.register(print, "exiting")', id="atexit"),
])
def test_module_level_output_is_not_repeated_in_children(tmp_path: Path,
                                                         module_level: str) -> None:
    """A Process, not a Pool: pool workers are terminated, and run no exit handlers."""
    behaves_the_same(tmp_path / "p", f'''\
import atexit
import multiprocessing as mp

import torch


def work():
    print("working")


{module_level}

if __name__ == "__main__":
    worker = mp.Process(target=work)
    worker.start()
    worker.join()
''', "MPL103")


@requires("torch")
def test_a_helper_module_with_side_effects_is_not_imported_again(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch

import helper


def work(x):
    return helper.double(x)
''' + POOL_UNDER_GUARD, "MPL103", {"helper.py": '''\
print("helper ready")


def double(x):
    return 2 * x
'''})


# -- MPL103: state the parent sets is not inherited under spawn ----------------------------------

@requires("torch")
def test_a_module_dict_changed_in_place(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch

CONFIG = {"scale": 1}


def work(x):
    return x * CONFIG["scale"]


if __name__ == "__main__":
    CONFIG["scale"] = 10
    with mp.Pool(2) as pool:
        print(sorted(pool.map(work, range(3))))
''', "MPL103")


@requires("torch")
def test_a_tokenizer_assigned_under_the_guard(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch

tokenizer = None


def encode(text):
    return tokenizer(text)


if __name__ == "__main__":
    tokenizer = str.split
    with mp.Pool(2) as pool:
        print(pool.map(encode, ["a b", "c d e"]))
''', "MPL103")


@requires("torch")
def test_a_global_set_in_a_function(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch

VOCABULARY = {}


def setup():
    global VOCABULARY
    VOCABULARY = {"a": 1, "b": 2}


def lookup(word):
    return VOCABULARY.get(word, 0)


def main():
    setup()
    with mp.Pool(2) as pool:
        print(pool.map(lookup, ["a", "b", "c"]))


if __name__ == "__main__":
    main()
''', "MPL103")


@requires("torch")
@pytest.mark.parametrize(("setting", "reader"), [
    pytest.param("torch.manual_seed(3)", "round(float(torch.rand(1)), 4)", id="manual_seed"),
    pytest.param("torch.set_default_dtype(torch.float64)", "torch.zeros(1).dtype",
                 id="set_default_dtype"),
    pytest.param("torch.set_num_threads(1)", "torch.get_num_threads()", id="set_num_threads"),
    pytest.param("decimal.getcontext().prec = 5", "decimal.Decimal(1) / decimal.Decimal(7)",
                 id="decimal_context"),
])
def test_process_state_the_parent_sets(tmp_path: Path, setting: str, reader: str) -> None:
    behaves_the_same(tmp_path / "p", f'''\
import decimal
import multiprocessing as mp

import torch


def show():
    print("child", {reader})


if __name__ == "__main__":
    {setting}
    worker = mp.Process(target=show)
    worker.start()
    worker.join()
''', "MPL103")


# -- MPL103: what is sent to a child -------------------------------------------------------------

@requires("torch")
@pytest.mark.parametrize("target", [
    pytest.param('lambda: print("from a lambda")', id="lambda"),
    pytest.param("report", id="function_defined_under_the_guard"),
])
def test_callables_that_do_not_pickle(tmp_path: Path, target: str) -> None:
    behaves_the_same(tmp_path / "p", f'''\
import multiprocessing as mp

import torch

if __name__ == "__main__":
    def report():
        print("from a local function")

    worker = mp.Process(target={target})
    worker.start()
    worker.join()
    print("exit code", worker.exitcode)
''', "MPL103")


@requires("torch")
@pytest.mark.parametrize(("make", "change", "show"), [
    pytest.param("torch.zeros(3)", "value.add_(1)", "value.tolist()", id="tensor"),
    pytest.param("torch.nn.Linear(2, 1, bias=False)",
                 "value.weight.data.fill_(1.0)", "value.weight.tolist()", id="module"),
])
def test_torch_objects_changed_in_a_child(tmp_path: Path, make: str, change: str,
                                          show: str) -> None:
    """A private copy under fork, shared memory under spawn."""
    behaves_the_same(tmp_path / "p", f'''\
import torch
import torch.multiprocessing as tmp


def change(value):
    {change}


if __name__ == "__main__":
    value = {make}
    if isinstance(value, torch.nn.Module):
        value.weight.data.zero_()
    worker = tmp.Process(target=change, args=(value,))
    worker.start()
    worker.join()
    print("parent sees", {show})
''', "MPL103")


# -- MPL103: the default context is already fixed, or the method already chosen -----------------

@requires("torch")
@pytest.mark.parametrize("made", ["Value('i', 0)", "Array('i', 2)", "Lock()", "RLock()",
                                  "Event()", "Semaphore(1)", "Barrier(1)", "Queue()"])
def test_a_module_level_object_of_the_default_context(tmp_path: Path, made: str) -> None:
    behaves_the_same(tmp_path / "p", f'''\
import multiprocessing as mp

import torch

SHARED = mp.{made}


def work(x):
    return x * 3
''' + POOL_UNDER_GUARD, "MPL103")


@requires("torch")
def test_a_helper_that_already_chose_the_method(tmp_path: Path) -> None:
    """The imported helper chooses the method when it is imported: the script's start method
    is chosen, so there is nothing to report, and nothing to fix."""
    from conftest import cli

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "helper.py").write_text('''\
import multiprocessing as mp

try:
    mp.set_start_method("fork")
except RuntimeError:
    pass
''')
    (folder / "job.py").write_text('''\
import multiprocessing as mp

import torch

import helper


def work(x):
    return x - 1
''' + POOL_UNDER_GUARD)
    assert "MPL103" not in cli("--no-cache", "job.py", cwd=folder).stdout


@requires("torch")
def test_a_helper_that_fixes_the_default_context_on_import(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

import torch

import helper


def work(x):
    return x - 1
''' + POOL_UNDER_GUARD, "MPL103", {"helper.py": '''\
import multiprocessing as mp

GUARD = mp.Lock()
'''})


def test_a_module_level_start_method_moved_below_a_context_use(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp

mp.set_start_method("fork")
LOCK = mp.Lock()


def work(x):
    with LOCK:
        return x * 2


if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(sorted(pool.map(work, range(3))))
''', "MPL104")


# -- MPL103: spawned children start differently --------------------------------------------------

@requires("torch")
def test_join_with_a_timeout_then_is_alive(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import multiprocessing as mp
import time

import torch


def nap():
    time.sleep(0.1)


if __name__ == "__main__":
    worker = mp.Process(target=nap)
    worker.start()
    worker.join(timeout=1.0)
    print("alive", worker.is_alive())
    worker.join()
''', "MPL103")


@requires("torch")
def test_children_run_as_mp_main(tmp_path: Path) -> None:
    behaves_the_same(tmp_path / "p", '''\
import logging
import multiprocessing as mp

import torch


def logger_name(x):
    return logging.getLogger(__name__).name


if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(sorted(set(pool.map(logger_name, range(2)))))
''', "MPL103")


def test_a_start_method_call_that_already_raises_where_it_is_stays(tmp_path: Path) -> None:
    """An imported module fixed the default context: the module-level call raises where it
    stands, and moved into the guard it would raise after other code has run (an exit handler
    registered, output printed)."""
    behaves_the_same(tmp_path / "p", '''\
import atexit
import helper
import multiprocessing as mp


def task(x):
    return x


mp.set_start_method("spawn")
atexit.register(print, "exiting")

if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(pool.map(task, range(3)))
''', "MPL104", {"helper.py": "import multiprocessing as mp\n\nLOCK = mp.Lock()\n"})
