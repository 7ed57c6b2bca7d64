"""Differential execution of mplint's safe fixes: generated programs run before and after
``mplint --fix``, and what they do compared.

    python benchmarks/differential.py [--count N] [--seed S] [--save DIR] [--jobs J]
                                      [--torch-share F] [--timeout T]

The fixes that change when or how processes start (MPL101's main guard, MPL103's and MPL105's
``set_start_method("spawn")``, MPL104's move of a module-level ``set_start_method``, MPL206's
queue from the process's context) are safe only if the program does what it did. Each program
is built from templates that combine the shapes where fork and spawn differ: globals the parent
sets under the guard, in functions and in place, read by workers; state a spawned child does
not inherit (random and torch seeds, the ``decimal`` context, torch's thread count and default
dtype); module-level prints, ``atexit`` handlers and helper modules that re-run in spawned
children; start-method calls in every position, also in a helper's ``try: ... except
RuntimeError``; default-context objects created before the start; starts at module level, in
functions and under the guard; lambdas and functions defined under the guard sent to a
Process; ``join(timeout=...)`` then ``is_alive()``; logger names; exit codes and exceptions in
workers; and, for ``--torch-share`` of them, torch tensors and modules changed in a child, and a
DataLoader with workers before an unguarded Pool. MPL103 applies only to scripts that import a
framework: torch-using programs and a few others import torch itself (1-2 s more per process),
most others a local stand-in module named ``transformers`` (the linter goes by the name, and
loading it costs nothing).

Each program runs under the platform's default start method; ``python -m mplint --fix`` (safe
fixes only) rewrites a copy; when it changes the file, the copy runs the same way. Stdout, the
exit status and the last exception line of stderr are compared. A fixed program that behaves
differently is a behaviour change, unless the original (the parent, or one of its children)
failed with an error mplint predicts for the codes it reported and the fixed one runs without
it and ends as the original meant to (repaired, counted apart; "repaired, fails later" when
the program, getting further, then fails on another error of its own). A difference is
confirmed by running both once more: the original must do what it did, and the fixed program
again something else; one that does not repeat is counted as flaky. The original
also runs under a forced spawn, to count the programs that crash there before the fix and,
fixed, do under spawn what they did under fork (what the fixes are for).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "job.py"
STAND_IN = "transformers"  # a local module named after a framework: MPL103 fires, nothing loads

# Put first on PYTHONPATH, it makes the requested method the default without fixing it (a
# program that chooses its own still can), in the script and in every child it starts.
_FORCE_HOOK = '''\
import os

_method = os.environ.get("DIFFERENTIAL_START_METHOD")
if _method:
    import multiprocessing.context as _context

    _context._default_context._default_context = _context._concrete_contexts[_method]
'''


# -- program generation --------------------------------------------------------------------------
@dataclass(frozen=True)
class State:
    """Something the parent sets at run time and workers read."""

    name: str
    top: str  # module-level definitions (the default value, a setter)
    step: tuple[str, ...]  # what the script part does to it
    reader: str  # the expression a worker prints
    imports: tuple[str, ...] = ()
    assigns: tuple[str, ...] = ()  # module globals the step assigns (``global`` in a function)
    pool_ok: bool = True  # deterministic when read in pool workers under fork
    torch: bool = False


STATES = (
    State("global_under_guard", "TOKEN = None", ('TOKEN = "tok-7"',), "TOKEN",
          assigns=("TOKEN",)),
    State("global_in_function", "LEVEL = 0\n\n\ndef configure():\n    global LEVEL\n    LEVEL = 2",
          ("configure()",), "LEVEL"),
    State("tokenizer", "tokenizer = None\n\n\ndef load_tokenizer():\n    return str.upper",
          ("tokenizer = load_tokenizer()",), 'tokenizer("ab")', assigns=("tokenizer",)),
    State("dict_in_place", 'CONFIG = {"k": 1}', ('CONFIG["k"] = 5',), 'CONFIG["k"]'),
    State("list_append", "ITEMS = []", ("ITEMS.append(7)",), "len(ITEMS)"),
    # seeded at import too, so that a child forked before the step still prints one number
    State("random_seed", "random.seed(1)", ("random.seed(4)",), "round(random.random(), 6)",
          imports=("import random",), pool_ok=False),
    State("decimal_context", "", ("decimal.getcontext().prec = 6",),
          "str(decimal.Decimal(1) / decimal.Decimal(7))", imports=("import decimal",)),
    State("sys_path", "", ('sys.path.append("/nonexistent/extra")',),
          '"/nonexistent/extra" in sys.path', imports=("import sys",)),
    State("environment", "", ('os.environ["RUN_MODE"] = "eval"',), 'os.environ.get("RUN_MODE")',
          imports=("import os",)),
    State("logger_name", "", (), "logging.getLogger(__name__).name",
          imports=("import logging",)),
    State("torch_seed", "torch.manual_seed(1)", ("torch.manual_seed(3)",),
          "round(float(torch.rand(1)), 4)",
          pool_ok=False, torch=True),
    State("torch_threads", "", ("torch.set_num_threads(1)",), "torch.get_num_threads()",
          torch=True),
    State("torch_dtype", "", ("torch.set_default_dtype(torch.float64)",),
          "str(torch.zeros(1).dtype)", torch=True),
)

# Default-context objects: how one is made, the worker that uses it and what the parent does
# around that worker's start (``{o}`` is the object's name).
SYNC_OBJECTS: dict[str, tuple[str, str, str, str]] = {
    # kind: (expression, target, after start, after join)
    "queue": ("mp.Queue()", "put_one", 'print("got", {o}.get(timeout=10))', ""),
    "lock": ("mp.Lock()", "hold", "", ""),
    "rlock": ("mp.RLock()", "hold", "", ""),
    "event": ("mp.Event()", "set_event", "", 'print("event", {o}.is_set())'),
    "semaphore": ("mp.Semaphore(1)", "hold", "", ""),
    "barrier": ("mp.Barrier(2)", "wait_barrier", '{o}.wait(timeout=10)\nprint("barrier passed")',
                ""),
    "value": ('mp.Value("i", 0)', "bump_value", "", 'print("value", {o}.value)'),
    "array": ('mp.Array("i", 3)', "fill_array", "", 'print("array", list({o}))'),
    "manager": ("mp.Manager()", "", "", ""),
    "pool": ("mp.Pool(1)", "", "", ""),
    "get_start_method": ("mp.get_start_method()", "", "", ""),
    "get_context": ("mp.get_context()", "", "", ""),
}

SYNC_WORKERS = '''\
def put_one(queue):
    queue.put("item")


def hold(lock):
    with lock:
        print("held")


def set_event(event):
    event.set()


def wait_barrier(barrier):
    barrier.wait(timeout=10)


def bump_value(value):
    with value.get_lock():
        value.value += 1


def fill_array(array):
    array[0] = 9


def append_item(shared):
    shared.append("from child")


def nap():
    time.sleep(0.05)


def fail():
    raise ValueError("worker failed")


def explode(x):
    if x == 2:
        raise ValueError(f"task {x} failed")
    return x'''

TORCH_WORKERS = '''\
def bump_tensor(tensor):
    tensor.add_(1)


def bump_model(model):
    with torch.no_grad():
        model.weight.add_(1)


def preview():
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=2)
    print("batches", [batch.tolist() for batch in loader])'''

HELPERS = {
    "helper_prints": 'print("helper imported")\n\n\ndef double(x):\n    return 2 * x\n',
    "helper_sets_method": ('import multiprocessing as mp\n\ntry:\n    mp.set_start_method("{m}")\n'
                           "except RuntimeError:\n    pass\n"),
    "helper_lock": "import multiprocessing as mp\n\nLOCK = mp.Lock()\n",
    "helper_quiet": "def double(x):\n    return 2 * x\n",
}


@dataclass
class Step:
    """One statement (or a few) of the script part, in the order it runs."""

    lines: list[str]
    kind: str
    assigns: set[str] = field(default_factory=set)
    after: int | None = None  # index (in creation order) of a step it must follow


@dataclass(frozen=True)
class Program:
    """A generated program: its files (the script is ``SCRIPT``) and what it combines."""

    files: dict[str, str]
    features: tuple[str, ...]
    uses_torch: bool


class _Builder:
    """Collects a program's parts; ``render`` lays them out."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.imports: list[str] = ["import multiprocessing as mp"]
        self.top: list[str] = []
        self.workers: list[str] = []  # kept where the program uses them
        self.module: list[str] = []  # module-level statements before the script part
        self.steps: list[Step] = []
        self.files: dict[str, str] = {}
        self.features: list[str] = []
        self.torch = False
        self.counter = 0

    def need(self, *lines: str) -> None:
        for line in lines:
            if line not in self.imports:
                self.imports.append(line)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def add(self, kind: str, text: str, assigns: Iterable[str] = (),
            after: int | None = None) -> int:
        self.steps.append(Step(text.splitlines(), kind, set(assigns), after))
        return len(self.steps) - 1


def _choose_states(b: _Builder, torch_program: bool) -> list[State]:
    pool = [s for s in STATES if torch_program or not s.torch]
    chosen = b.rng.sample(pool, b.rng.randint(0, 3))
    if torch_program and not any(s.torch for s in chosen):
        chosen.append(b.rng.choice([s for s in STATES if s.torch]))
    for state in chosen:
        b.features.append(state.name)
        b.need(*state.imports)
        if state.top:
            b.top.append(state.top)
        if state.step:
            b.add(state.name, "\n".join(state.step), state.assigns)
    return chosen


def _workers(b: _Builder, states: list[State]) -> None:
    pool_readers = [s.reader for s in states if s.pool_ok] or ["x * x"]
    all_readers = [s.reader for s in states] or ['"ran"']
    b.workers.append("def task(x):\n    return repr((x, " + ", ".join(pool_readers) + "))")
    b.workers.append("def show(tag):\n    print(tag, " + ", ".join(all_readers) + ")")
    b.workers += SYNC_WORKERS.split("\n\n\n")


def _start(b: _Builder, kind: str) -> int:
    """A step that starts processes; its index."""
    p = b.fresh("p")
    process = (f'{p} = mp.Process(target={{t}}, args={{a}})\n{p}.start()\n{p}.join()\n'
               f'print("exit code", {p}.exitcode)')
    texts = {
        "pool": 'with mp.Pool(2) as pool:\n    print("pool", sorted(pool.map(task, range(3))))',
        "pool_unmanaged": (f"{p} = mp.Pool(2)\nprint(\"pool\", sorted({p}.map(task, range(3))))\n"
                           f"{p}.close()\n{p}.join()"),
        "executor": ("with ProcessPoolExecutor(2) as executor:\n"
                     '    print("executor", sorted(executor.map(task, range(3))))'),
        "process": process.format(t="show", a='("child",)'),
        "failing_process": process.format(t="fail", a="()"),
        "failing_pool": 'with mp.Pool(2) as pool:\n    print("pool", pool.map(explode, [1, 2]))',
        "lambda_process": process.format(t='lambda: print("from a lambda")', a="()"),
        "join_timeout": (f"{p} = mp.Process(target=nap)\n{p}.start()\n{p}.join(timeout=1.0)\n"
                         f'print("alive after join", {p}.is_alive())\n{p}.join()'),
        "torch_process": process.format(t="show", a='("torch child",)').replace("mp.", "tmp."),
        "tensor_process": ("tensor = torch.zeros(3)\n"
                           + process.format(t="bump_tensor", a="(tensor,)").replace("mp.", "tmp.")
                           + '\nprint("tensor", tensor.tolist())'),
        "module_process": ("model = torch.nn.Linear(2, 1, bias=False)\nwith torch.no_grad():\n"
                           "    model.weight.zero_()\n"
                           + process.format(t="bump_model", a="(model,)").replace("mp.", "tmp.")
                           + '\nprint("weights", model.weight.tolist())'),
    }
    if kind == "local_function":
        name = b.fresh("local_job")
        text = (f'def {name}():\n    print("local job")\n\n\n'
                + process.format(t=name, a="()"))
        return b.add(kind, text)  # in main() it is a nested function: that is the point
    if kind == "executor":
        b.need("from concurrent.futures import ProcessPoolExecutor")
    if kind in ("torch_process", "tensor_process", "module_process"):
        b.need("import torch.multiprocessing as tmp")
    return b.add(kind, texts[kind])


def _sync_object(b: _Builder, kind: str) -> None:
    """A default-context object made before a start (at module level, in the script part or
    in a function it calls), and the Process that uses it."""
    expression, target, after_start, after_join = SYNC_OBJECTS[kind]
    name = b.fresh(kind.split("_")[-1])
    where = b.rng.choice(("module", "inline", "function"))
    b.features.append(f"{kind}@{where}")
    if where == "function":
        maker = f"make_{name}"
        b.top.append(f"def {maker}():\n    return {expression}")
        expression = f"{maker}()"
    assign = f"{name} = {expression}"
    if where == "module":
        b.module.append(assign)
        created = None
    else:
        created = b.add(f"create_{kind}", assign)
    if kind == "manager":
        shared = b.fresh("shared")
        p = b.fresh("p")
        b.add("use_manager", f"{shared} = {name}.list()\n{p} = mp.Process(target=append_item, "
              f"args=({shared},))\n{p}.start()\n{p}.join()\nprint(\"shared\", list({shared}))\n"
              f"{name}.shutdown()", after=created)
    elif kind == "pool":
        b.add("use_pool", f'print("warm", {name}.apply(abs, (-2,)))\n{name}.close()\n'
              f"{name}.join()", after=created)
    elif target:
        p = b.fresh("p")
        lines = [f"{p} = mp.Process(target={target}, args=({name},))", f"{p}.start()"]
        lines += [line.format(o=name) for line in after_start.splitlines()]
        lines += [f"{p}.join()"] + [line.format(o=name) for line in after_join.splitlines()]
        b.add(f"use_{kind}", "\n".join(lines), after=created)


def _context_process(b: _Builder) -> None:
    """A queue of the default context handed to a process of an explicit context (MPL206)."""
    method = b.rng.choice(("spawn", "forkserver"))
    ctx, queue, p = b.fresh("ctx"), b.fresh("queue"), b.fresh("p")
    b.features.append(f"context_process_{method}")
    b.add("context_process", f'{ctx} = mp.get_context("{method}")\n{queue} = mp.Queue()\n'
          f"{p} = {ctx}.Process(target=put_one, args=({queue},))\n{p}.start()\n"
          f'print("got", {queue}.get(timeout=10))\n{p}.join()')


def _method_calls(b: _Builder) -> None:
    """``set_start_method`` at module level, in the script part, in a function it calls, or
    twice."""
    where = b.rng.choice(("module", "inline", "function", "twice"))
    method = b.rng.choices(("spawn", "fork", "forkserver"), (5, 4, 1))[0]
    force = ", force=True" if b.rng.random() < 0.2 else ""
    call = f'mp.set_start_method("{method}"{force})'
    b.features.append(f"set_start_method_{method}@{where}")
    if where == "module":
        b.module.insert(b.rng.randint(0, len(b.module)), call)
    elif where == "function":
        b.top.append(f"def choose_method():\n    {call}")
        b.add("set_start_method", "choose_method()")
    else:
        for _ in range(2 if where == "twice" else 1):
            b.add("set_start_method", call)


def _order(b: _Builder) -> None:
    """Shuffle the script part, keeping each use after what it uses."""
    indexed = list(enumerate(b.steps))
    b.rng.shuffle(indexed)
    ordered: list[tuple[int, Step]] = []
    placed: set[int] = set()
    pending = indexed
    while pending:
        ready = [item for item in pending if item[1].after is None or item[1].after in placed]
        item = ready[0]
        ordered.append(item)
        placed.add(item[0])
        pending = [other for other in pending if other is not item]
    b.steps = [step for _, step in ordered]


def _framework(b: _Builder, torch_program: bool) -> None:
    roll = b.rng.random()
    if torch_program or roll < 0.12:
        b.need("import torch")
        b.torch = True
        b.features.append("import_torch")
    elif roll < 0.7:
        b.need(f"import {STAND_IN}")
        b.files[f"{STAND_IN}.py"] = ('"""A stand-in: the linter knows the name, loading it costs '
                                     'nothing."""\nVERSION = "0"\n')
        b.features.append("import_framework_stand_in")


def _module_extras(b: _Builder) -> None:
    rng = b.rng
    if rng.random() < 0.25:
        b.module.insert(0, 'print("loading", __name__)')
        b.features.append("print_at_import")
    if rng.random() < 0.15:
        b.need("import atexit")
        b.module.append('atexit.register(print, "exiting")')
        b.features.append("atexit")
    if rng.random() < 0.3:
        kind = rng.choice(tuple(HELPERS))
        text = HELPERS[kind].format(m=rng.choice(("spawn", "fork")))
        b.files["helper.py"] = text
        b.need("import helper")
        b.features.append(kind + ("" if "{m}" not in HELPERS[kind]
                                  else "_" + text.split('"')[1]))


START_KINDS = {"pool": 3.0, "pool_unmanaged": 1.0, "executor": 2.0, "process": 3.0,
               "failing_process": 1.0, "failing_pool": 0.5, "lambda_process": 1.0,
               "local_function": 1.0, "join_timeout": 1.0}
TORCH_STARTS = ("torch_process", "tensor_process", "module_process")


def generate(rng: random.Random, torch_share: float = 0.1) -> Program:
    """One random program."""
    b = _Builder(rng)
    torch_program = rng.random() < torch_share
    _framework(b, torch_program)
    states = _choose_states(b, torch_program)
    _workers(b, states)
    if torch_program:
        b.workers += TORCH_WORKERS.split("\n\n\n")
        b.need("from torch.utils.data import DataLoader")
    kinds = rng.choices(tuple(START_KINDS), tuple(START_KINDS.values()), k=rng.randint(1, 2))
    if torch_program and rng.random() < 0.6:
        kinds.append(rng.choice(TORCH_STARTS))
    for kind in kinds:
        b.features.append(kind)
        _start(b, kind)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        _sync_object(b, rng.choice(tuple(SYNC_OBJECTS)))
    if rng.random() < 0.12:
        _context_process(b)
    if rng.random() < 0.45:
        _method_calls(b)
    _module_extras(b)
    if rng.random() < 0.25:
        b.add("print_between", 'print("between")')
    _order(b)
    if torch_program and rng.random() < 0.35:
        # a DataLoader iterated in a function called before an unguarded Pool
        b.features.append("dataloader_then_pool")
        b.module.append("preview()")
    b.add("print_done", 'print("done")')
    if rng.random() < 0.12:
        b.need("import sys")
        b.add("exit_code", "sys.exit(3)")
        b.features.append("exit_code")
    return _render(b)


def _block(lines: Iterable[str], indent: str) -> list[str]:
    return [indent + line if line else "" for line in lines]


def _render(b: _Builder) -> Program:
    layout = b.rng.choices(("flat", "guard", "main_guard", "main_flat", "split"),
                           (3, 3, 2, 1, 2))[0]
    b.features.append(f"layout_{layout}")
    step_lines = [step.lines for step in b.steps]
    used = "\n".join(b.module + [line for lines in step_lines for line in lines] + b.top)
    workers = [w for w in b.workers if re.search(rf"\b{w.split('(')[0][4:]}\b", used)]
    if any("time.sleep" in w for w in workers):
        b.need("import time")
    out = [*sorted(b.imports, key=lambda line: (line.startswith("from"), line)), "", ""]
    for block in b.top + workers:
        out += [*block.splitlines(), "", ""]
    out += b.module
    if b.module:
        out.append("")
    flat = [line for lines in step_lines for line in lines]
    if layout == "flat":
        out += flat
    elif layout == "guard":
        out += ['if __name__ == "__main__":', *_block(flat, "    ")]
    elif layout in ("main_guard", "main_flat"):
        assigned = sorted(set().union(*(step.assigns for step in b.steps)))
        body = ([f"global {', '.join(assigned)}"] if assigned else []) + flat
        out += ["def main():", *_block(body, "    "), "", ""]
        guarded = layout == "main_guard"
        out += ['if __name__ == "__main__":', "    main()"] if guarded else ["main()"]
    else:
        cut = b.rng.randint(1, max(1, len(step_lines) - 1))
        out += [line for lines in step_lines[:cut] for line in lines]
        rest = [line for lines in step_lines[cut:] for line in lines]
        out += ['if __name__ == "__main__":', *_block(rest or ["pass"], "    ")]
    text = "\n".join(out).rstrip("\n") + "\n"
    if b.rng.random() < 0.3:
        text = re.sub(r"\bmp\.", "multiprocessing.", text).replace(
            "import multiprocessing as mp\n", "import multiprocessing\n")
    files = {SCRIPT: text, **b.files}
    return Program(files, tuple(b.features), b.torch)


# -- running -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one run did: what is compared."""

    exit: int | None  # None: stopped before it ended
    stdout: str
    error: str  # the last exception line of stderr, "" when none
    stopped: str = field(default="", compare=False)  # why it was stopped
    stderr: str = field(default="", compare=False, repr=False)  # children's tracebacks too


    def describe(self) -> str:
        status = f"stopped ({self.stopped})" if self.exit is None else f"exit {self.exit}"
        shown = textwrap.indent(self.stdout.rstrip("\n") or "(no output)", "    ")
        return f"{status}; {self.error or 'no exception'}\n{shown}"

    @property
    def failed(self) -> bool:
        return self.exit != 0


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def last_exception(stderr: str) -> str:
    """The exception line that ends the last traceback in ``stderr``, addresses masked."""
    found, inside = "", False
    for line in stderr.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            inside = True
        elif inside and line and not line[0].isspace():
            found, inside = line, False
    return _ADDRESS.sub("0x?", found)


def hook_folder(base: Path) -> Path:
    """A folder holding the sitecustomize that forces a start method."""
    folder = base / "force-method"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(_FORCE_HOOK)
    return folder


def execute(folder: Path, timeout: float, method: str | None = None,
            hook: Path | None = None) -> Outcome:
    """Run ``SCRIPT`` in ``folder`` (under ``method`` when given, through ``hook``); every
    process it leaves is killed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONSTARTUP", None)
    if method:
        assert hook is not None
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
        env["DIFFERENTIAL_START_METHOD"] = method
    # output goes to files: a pipe would keep the run waiting for any leftover grandchild
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, SCRIPT], cwd=folder, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            code, stopped = _wait(proc, err, timeout)
        finally:
            _kill_group(proc)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Outcome(code, _ADDRESS.sub("0x?", stdout), last_exception(stderr), stopped, stderr)


# a traceback of a child that died while re-running the script, before its task
_STARTUP_DEATH = re.compile(rb", in (?:spawn_main|_serve_one)\n")


def _wait(proc: subprocess.Popen[bytes], err: IO[bytes],
          timeout: float) -> tuple[int | None, str]:
    """The exit status, or None and why the run is stopped: at the time limit, or as soon as
    its pool keeps replacing workers that die in their start-up (it would never end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return proc.wait(0.25), ""
        except subprocess.TimeoutExpired:
            pass
        # pread: a seek would move the offset the script's processes write at
        written = os.pread(err.fileno(), os.fstat(err.fileno()).st_size, 0)
        if len(_STARTUP_DEATH.findall(written)) >= 8:
            return None, "workers keep dying at start-up"
    return None, "time limit"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the run's process group (its pool workers, managers, forkservers), then reap."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass(frozen=True)
class Fix:
    """What ``mplint --fix`` did to a program."""

    changed: bool
    codes: tuple[str, ...]  # codes of the fixes applied
    reported: tuple[str, ...]  # every code reported on the original
    diff: str


_FIXED = re.compile(r"^fixed \S+:\d+:\d+: (MPL\d+)", re.MULTILINE)
_RESOLVED = re.compile(r"^resolved \S+:\d+:\d+: (MPL\d+)", re.MULTILINE)
_REMAINING = re.compile(r"^\S+:\d+:\d+: (MPL\d+)", re.MULTILINE)


def apply_fix(folder: Path) -> Fix:
    """Run the real CLI's safe fixes on ``folder``; the script's diff and the codes."""
    before = (folder / SCRIPT).read_text()
    done = subprocess.run([sys.executable, "-m", "mplint", "--fix", "--no-cache",
                           "--show-fixes", "."], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    after = (folder / SCRIPT).read_text()
    fixed = tuple(sorted(set(_FIXED.findall(done.stdout))))
    reported = tuple(sorted(set(fixed) | set(_RESOLVED.findall(done.stdout))
                            | set(_REMAINING.findall(done.stdout))))
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        f"a/{SCRIPT}", f"b/{SCRIPT}"))
    return Fix(before != after, fixed, reported, diff)


def predicted_errors(codes: Iterable[str]) -> tuple[str, ...]:
    """The runtime error texts of the rules with these codes."""
    from mplint.rules import all_rules

    wanted = set(codes)
    return tuple(text for rule in all_rules() if rule.code in wanted
                 for text in rule.runtime_errors)


# -- judging -------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """One program judged."""

    program: Program
    verdict: str  # unchanged, same, different, repaired, repaired, fails later, flaky
    original: Outcome
    fixed: Outcome | None = None
    fix: Fix | None = None
    spawn_broken: bool = False  # the original under spawn fails where it ran under fork
    spawn_ok_after: bool = False  # ... and the fixed program under spawn does what it did
    timeouts: int = 0
    runs: int = 0


def write(program: Program, folder: Path) -> None:
    """Write the program's files into a new ``folder``."""
    folder.mkdir(parents=True)
    for name, text in program.files.items():
        (folder / name).write_text(text)


def judge(program: Program, timeout: float = 20.0, hook: Path | None = None) -> Verdict:
    """Run ``program`` before and after its safe fix and compare; also under a forced spawn."""
    with tempfile.TemporaryDirectory(prefix="mplint-differential-") as tmp:
        base = Path(tmp)
        hook = hook or hook_folder(base)
        before, after = base / "original", base / "fixed"
        write(program, before)
        shutil.copytree(before, after)
        original = execute(before, timeout)
        fix = apply_fix(after)
        verdict = Verdict(program, "unchanged", original, fix=fix, runs=1)
        spawned = execute(before, timeout, "spawn", hook)
        verdict.runs += 1
        verdict.spawn_broken = spawned != original and spawned.failed and not original.failed
        if fix.changed:
            fixed = execute(after, timeout)
            verdict.fixed, verdict.runs = fixed, verdict.runs + 1
            verdict.verdict = _compare(original, fixed, fix, before, after, timeout, verdict)
            if verdict.spawn_broken:
                verdict.spawn_ok_after = execute(after, timeout, "spawn", hook) == original
                verdict.runs += 1
        outcomes = [original, spawned, verdict.fixed]
        verdict.timeouts = sum(1 for o in outcomes if o is not None and o.stopped == "time limit")
        return verdict


def _compare(original: Outcome, fixed: Outcome, fix: Fix, before: Path, after: Path,
             timeout: float, verdict: Verdict) -> str:
    if fixed == original:
        return "same"
    repaired = _repaired(original, fixed, predicted_errors(fix.reported))
    if repaired is not None:
        return repaired
    if original.exit is None:
        return "original hangs"  # nothing to keep
    # a difference counts when the original repeats what it did and the fixed program again
    # does something else (not necessarily the same thing: it may have become random)
    verdict.runs += 2
    if execute(before, timeout) != original or execute(after, timeout) == original:
        return "flaky"
    return "different"


def _repaired(original: Outcome, fixed: Outcome, expected: tuple[str, ...]) -> str | None:
    """"repaired" when the original (the parent or one of its children) failed with an error a
    reported rule predicts and the fixed program runs without it, ending as the original meant
    to (its own exit status, no exception the original did not show); "repaired, fails later"
    when the predicted error is gone and the program, now getting further, fails on another
    error of its own; None when the predicted error was not the original's failure."""
    if not any(text in original.stderr and text not in fixed.stderr for text in expected):
        return None  # no predicted failure of the original went away
    if (not fixed.error or fixed.error in original.stderr) and (
            not fixed.failed or fixed.exit == original.exit) and not any(
            text in fixed.stderr for text in expected):
        return "repaired"
    return "repaired, fails later" if original.failed or original.error else None


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Figures:
    """What a run found."""

    verdicts: list[Verdict]
    seconds: float

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v.verdict == verdict)

    @property
    def different(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == "different"]

    @property
    def fixed(self) -> int:
        return sum(1 for v in self.verdicts if v.fix is not None and v.fix.changed)

    def summary(self) -> str:
        v = self.verdicts
        codes = Counter(code for verdict in v if verdict.fix for code in verdict.fix.codes)
        broken = sum(1 for x in v if x.spawn_broken)
        broken_fixed = sum(1 for x in v if x.spawn_broken and x.fix and x.fix.changed)
        lines = [
            f"programs generated            {len(v)}",
            f"executed                      {len(v)} ({sum(x.program.uses_torch for x in v)}"
            f" import torch), {sum(x.runs for x in v)} runs",
            f"changed by the safe fixes     {self.fixed} (fixes: "
            + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) + ")",
            f"  same behaviour              {self.count('same')}",
            f"  behaviour changes           {self.count('different')}",
            f"  repaired (predicted error)  {self.count('repaired')}",
            f"  repaired, fails later       {self.count('repaired, fails later')}",
            f"  flaky (not repeated)        {self.count('flaky')}",
            f"  original never ends         {self.count('original hangs')}",
            f"crash under spawn before      {broken} ({broken_fixed} changed by the fix, "
            f"{sum(1 for x in v if x.spawn_ok_after)} of them run under spawn after it as "
            "under fork before)",
            f"timeouts                      {sum(x.timeouts for x in v)}",
            f"seconds                       {self.seconds:.0f}",
        ]
        features = Counter(f for x in self.different for f in x.program.features)
        if features:
            lines.append("features of the behaviour changes: "
                         + ", ".join(f"{f} {n}" for f, n in features.most_common()))
        return "\n".join(lines)


def report(verdict: Verdict) -> str:
    """A behaviour change, in full: the program, the diff and both outcomes."""
    assert verdict.fix is not None and verdict.fixed is not None
    parts = [f"features: {', '.join(verdict.program.features)}",
             f"fixes: {', '.join(verdict.fix.codes)}"]
    for name, text in verdict.program.files.items():
        parts.append(f"--- {name}\n{text}")
    parts += [verdict.fix.diff, "before: " + verdict.original.describe(),
              "after:  " + verdict.fixed.describe()]
    return "\n".join(parts)


def run(count: int, seed: int = 0, jobs: int = 2, torch_share: float = 0.1,
        timeout: float = 20.0) -> Figures:
    """Generate ``count`` programs from ``seed`` and judge each."""
    rng = random.Random(seed)
    programs = [generate(rng, torch_share) for _ in range(count)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mplint-differential-hook-") as tmp:
        hook = hook_folder(Path(tmp))
        with ThreadPoolExecutor(max(1, jobs)) as executor:
            verdicts = list(executor.map(lambda p: judge(p, timeout, hook), programs))
    return Figures(verdicts, time.perf_counter() - started)


def save(figures: Figures, folder: Path) -> None:
    """Each behaviour change (and flaky one) as a folder: its files, the fixed script, the
    diff and both outcomes."""
    for index, verdict in enumerate(figures.verdicts):
        if verdict.verdict not in ("different", "flaky"):
            continue
        target = folder / f"{verdict.verdict}_{index:04d}"
        write(verdict.program, target)
        (target / "report.txt").write_text(report(verdict))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="write every behaviour change to this folder")
    parser.add_argument("--jobs", type=int, default=2, help="programs judged at once")
    parser.add_argument("--torch-share", type=float, default=0.1, metavar="F",
                        help="share of programs that use torch (1-3 s more each)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per run")
    args = parser.parse_args(argv)
    figures = run(args.count, args.seed, args.jobs, args.torch_share, args.timeout)
    for verdict in figures.different:
        print(report(verdict), end="\n\n")
    if args.save:
        save(figures, args.save)
    print(figures.summary())
    print(f"seed {args.seed}")
    return 1 if figures.different else 0


if __name__ == "__main__":
    sys.exit(main())
