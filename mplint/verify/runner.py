"""Runs one script in a fresh Python child under a chosen start method, with a time limit.

The child gets the instrumentation folder on PYTHONPATH, a temporary working directory and a
token in its environment. A notebook runs in a fresh IPython kernel instead, driven by a child
(``kernel/run_notebook.py``) that has the same environment and passes it to the kernel, in a
copy of the notebook's folder; the kernel is then the run's main process. Every process that
inherits the token, pool workers, kernels and processes that left the session included, is found
through /proc and killed when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent / "hook"
NOTEBOOK_DRIVER = Path(__file__).resolve().parent / "kernel" / "run_notebook.py"
KERNEL_PACKAGES = ("ipykernel", "jupyter_client")  # what the driver and its kernel import
_STACK_GRACE = 1.0  # seconds the stuck processes get to write their stacks
_EXIT_GRACE = 2.0  # seconds helpers get to exit on their own after the script ended


@dataclass(frozen=True)
class Run:
    """One script under one start method."""

    script: Path
    method: str
    timeout: float = 60.0


@dataclass
class Outcome:
    """What the child did, before classification."""

    run: Run
    exit_code: int | None  # None: it was killed at the time limit
    stdout: str
    stderr: str
    wall: float
    main_pid: int
    events: list[str] = field(default_factory=list)  # raw JSON lines from every process
    stacks: dict[int, str] = field(default_factory=dict)  # pid -> faulthandler dump
    leftovers: int = 0  # processes still running after the script ended (killed)
    timed_out: bool = False


# The scripts running now (their token and main pid), so an interrupted run can stop them all.
_running: dict[str, int] = {}
_running_lock = threading.Lock()


def stop_all() -> int:
    """Kill every script this process is running, and its processes; how many scripts."""
    with _running_lock:
        running = list(_running.items())
    for token, pid in running:
        _kill_all(token, pid)
    return len(running)


def execute(run: Run) -> Outcome:
    """Run the script to completion or to its time limit; never leaves a process behind."""
    with tempfile.TemporaryDirectory(prefix="mplint-verify-") as tmp:
        root = Path(tmp)
        events, work = root / "events", root / "work"
        events.mkdir()
        work.mkdir()
        token = uuid.uuid4().hex
        with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
            started = time.monotonic()
            # started and registered in one step: another run's orphan sweep must never see
            # this script as an orphan of the verifier (it is a child too) and kill it
            with _running_lock:
                proc = subprocess.Popen(
                    _command(run, work), cwd=work,
                    env=_env(run, events, token), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, start_new_session=True)
                _running[token] = proc.pid
            timed_out = False
            try:
                exit_code: int | None = proc.wait(run.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _dump_stacks(token, proc.pid)
                _kill_all(token, proc.pid)
                proc.wait()
                exit_code = None
            except BaseException:  # interrupted: the script and its children go too
                _kill_all(token, proc.pid)
                proc.wait()
                raise
            finally:
                with _running_lock:
                    _running.pop(token, None)
            wall = time.monotonic() - started
            leftovers = 0 if timed_out else _kill_leftovers(token, proc.pid)
        return Outcome(run, exit_code, _text(root / "stdout"), _text(root / "stderr"), wall,
                       _main_pid(events, proc.pid), _lines(events, "events-*.jsonl"),
                       _stacks(events), leftovers, timed_out)


def is_notebook(path: Path) -> bool:
    return path.suffix == ".ipynb"


def _command(run: Run, work: Path) -> list[str]:
    """The child's command line; for a notebook, first copy its folder into ``work`` so that
    the modules and data beside it are found as in Jupyter."""
    script = run.script.resolve()
    if not is_notebook(script):
        return [sys.executable, str(script)]
    shutil.copytree(script.parent, work, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".*", "__pycache__"))
    return [sys.executable, str(NOTEBOOK_DRIVER), str(work / script.name), str(script),
            str(work.parent / "kernel")]


def _main_pid(events: Path, child: int) -> int:
    """The script's process: the child itself, or the kernel a notebook's child started."""
    try:
        return int((events / "kernel.pid").read_text())
    except (OSError, ValueError):
        return child


def _env(run: Run, events: Path, token: str) -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(HOOK_DIR), path])),
        MPLINT_VERIFY_DIR=str(events),
        MPLINT_VERIFY_METHOD=run.method,
        MPLINT_VERIFY_RUN=token,
        PYTHONWARNINGS="default::DeprecationWarning",  # fork-with-threads warnings
        PYTHONFAULTHANDLER="1",
        PYTHONUNBUFFERED="1",  # what was printed before a kill is kept
    )
    env.pop("PYTHONSTARTUP", None)
    return env


def processes_with(token: str) -> list[int]:
    """Every live process whose environment carries ``token`` (Linux /proc)."""
    marker = f"MPLINT_VERIFY_RUN={token}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def _dump_stacks(token: str, main_pid: int) -> None:
    for pid in {main_pid, *processes_with(token)}:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGUSR1)
    time.sleep(_STACK_GRACE)


def _kill_leftovers(token: str, main_pid: int) -> int:
    """After the script ended: give helpers (the resource tracker) a moment to finish, then
    kill what is still running and say how many that was. A daemon that left the session and
    dropped its environment is still found: orphans are re-parented to this process."""
    deadline = time.monotonic() + _EXIT_GRACE
    while (processes_with(token) or _orphans()) and time.monotonic() < deadline:
        time.sleep(0.05)
    stray = ({*processes_with(token), *_orphans()}) - {main_pid}  # each process counted once
    _kill_all(token, main_pid)
    _kill_orphans()
    return len(stray)


def adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux), so a script's
    daemons cannot escape by detaching; elsewhere a no-op."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_PR_SET_CHILD_SUBREAPER = 36


def _orphans(zombies: bool = False) -> list[int]:
    """Processes re-parented to this one that are not a script it is running (with
    ``zombies``: those that have exited and wait to be reaped)."""
    me = os.getpid()
    with _running_lock:
        scripts = set(_running.values())
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) in scripts:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if (fields[0] == "Z") == zombies and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def _kill_orphans() -> int:
    """Kill the adopted orphans still running, reap every adopted one; how many ran."""
    orphans = _orphans()
    for pid in orphans:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in [*orphans, *_orphans(zombies=True)]:
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)  # adopted: this process reaps them
    return len(orphans)


def _kill_all(token: str, main_pid: int) -> int:
    """Kill the session and every process with the token; return how many were alive."""
    alive = [pid for pid in processes_with(token) if pid != main_pid]
    with contextlib.suppress(OSError):
        os.killpg(main_pid, signal.SIGKILL)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(alive)


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _lines(folder: Path, pattern: str) -> list[str]:
    return [line for path in sorted(folder.glob(pattern))
            for line in _text(path).splitlines() if line.strip()]


def _stacks(folder: Path) -> dict[int, str]:
    found = {}
    for path in folder.glob("stacks-*.txt"):
        text = _text(path).strip()
        if text:
            found[int(path.stem.split("-")[1])] = text
    return found

