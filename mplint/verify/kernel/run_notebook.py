"""Runs a notebook's code cells in order in a fresh IPython kernel, as ``mplint verify`` does.

Usage: ``python run_notebook.py COPY.ipynb SHOWN SCRATCH``. The verifier runs this file in its
child process (its environment carries the start method, the instrumentation and the run's
token, and the kernel inherits them). The kernel is this interpreter with ``ipykernel_launcher``,
started in the folder of the notebook's copy; no installed kernelspec is read. Its connection
file, sockets and IPython folder go in SCRATCH, which the verifier removes even when it had to
kill everything. What the cells print goes to
this process's stdout and stderr as it arrives, and a cell's error as a Python traceback whose
cell frames read ``File "SHOWN", cell C, line L``, so that the verifier classifies a notebook
like a script. Exit status: 0 when every cell ran, 1 when one raised (the cells after it are
not run), 3 when the kernel packages are missing, 4 when the kernel died.

Only the standard library and jupyter_client are imported here, never mplint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

MISSING = 3
KERNEL_DIED = 4
_READY_TIMEOUT = 120.0  # seconds a kernel on a busy machine may take to answer
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's frame headers: a cell ("Cell In[3], line 2") and a file ("File /x.py:5, in f(a)")
_CELL = re.compile(r"^\s*Cell In\[(?P<count>\d+)\], line (?P<line>\d+)(?:, in (?P<func>\w+))?")
_FILE = re.compile(r"^\s*File (?P<file>.+?):(?P<line>\d+)(?:, in (?P<func>[\w.<>]+))?")


def _code_cells(path: Path) -> list[tuple[int, str]]:
    """(cell number counted from 1 over all cells, source) of each code cell with code."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    found = []
    for number, cell in enumerate(cells, 1):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and text.strip():
            found.append((number, text))
    return found


def _traceback(content: dict[str, Any], shown: str, cells: dict[int, int]) -> str:
    """A kernel's error message as a Python traceback; ``cells`` maps execution counts to cell
    numbers."""
    frames = []
    for entry in content.get("traceback", []):
        for line in _ANSI.sub("", entry).splitlines():
            cell, file = _CELL.match(line), _FILE.match(line)
            if cell and int(cell["count"]) in cells:
                frames.append(f'  File "{shown}", cell {cells[int(cell["count"])]}, '
                              f'line {cell["line"]}, in {cell["func"] or "<module>"}')
            elif file:
                path = os.path.expanduser(file["file"])
                frames.append(f'  File "{path}", line {file["line"]}, in {file["func"] or "?"}')
    message = content.get("evalue", "")
    last = f"{content.get('ename', 'Error')}: {message}" if message else content.get("ename", "")
    return "\n".join(["Traceback (most recent call last):", *frames, last]) + "\n"


def _write(stream: Any, text: str) -> None:
    stream.write(text)
    stream.flush()


def _on_output(shown: str, cells: dict[int, int]) -> Callable[[dict[str, Any]], None]:
    def hook(message: dict[str, Any]) -> None:
        kind, content = message["header"]["msg_type"], message["content"]
        if kind == "stream":
            _write(sys.stdout if content["name"] == "stdout" else sys.stderr, content["text"])
        elif kind in ("execute_result", "display_data"):
            text = content.get("data", {}).get("text/plain")
            if text is not None:
                _write(sys.stdout, text + "\n")
        elif kind == "error":
            _write(sys.stderr, _traceback(content, shown, cells))
    return hook


def _watch(kernel: subprocess.Popen[bytes], closing: threading.Event) -> None:
    """A kernel that dies while cells run (a segfault, killed by a worker's crash) ends the run
    at once: no reply would ever come."""
    code = kernel.wait()
    if not closing.is_set():
        _write(sys.stderr, f"the notebook's kernel died (exit code {code})\n")
        os._exit(KERNEL_DIED)


def run(notebook: Path, shown: str, scratch: Path) -> int:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    cells = _code_cells(notebook)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=scratch) as tmp:
        # local sockets: no port to find, nothing another user on the machine can reach
        connection, _ = write_connection_file(os.path.join(tmp, "kernel.json"), transport="ipc",
                                              ip=os.path.join(tmp, "socket"))
        # the kernel's history and profile go to the run's own folder, not the user's
        env = dict(os.environ, IPYTHONDIR=os.path.join(tmp, "ipython"))
        kernel = subprocess.Popen(
            [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
             "--HistoryManager.enabled=False"],
            # the kernel's own stdout only carries its start-up banner: the cells' output
            # (the workers' too, through the kernel's captured descriptors) comes as messages
            cwd=notebook.parent, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _record_kernel(kernel.pid)
        closing = threading.Event()
        threading.Thread(target=_watch, args=(kernel, closing), daemon=True).start()
        client = BlockingKernelClient(connection_file=connection)
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=_READY_TIMEOUT)
        except RuntimeError as error:
            _write(sys.stderr, f"the notebook's kernel did not start: {error}\n")
            return KERNEL_DIED
        counts: dict[int, int] = {}
        hook = _on_output(shown, counts)
        status = 0
        for number, code in cells:
            counts[len(counts) + 1] = number  # the kernel counts executions from 1
            reply = client.execute_interactive(code, output_hook=hook, allow_stdin=False)
            if reply["content"]["status"] != "ok":
                status = 1
                break
        closing.set()
        client.shutdown()
        with contextlib.suppress(subprocess.TimeoutExpired):
            kernel.wait(10)
        return status


def _record_kernel(pid: int) -> None:
    """Tell the verifier which process is the notebook's main one."""
    folder = os.environ.get("MPLINT_VERIFY_DIR")
    if folder:
        Path(folder, "kernel.pid").write_text(str(pid))


def _forget_this_process() -> None:
    """This process only drives the kernel: its own events and stacks are not the notebook's."""
    folder = os.environ.get("MPLINT_VERIFY_DIR")
    if folder:
        for name in (f"events-{os.getpid()}.jsonl", f"stacks-{os.getpid()}.txt"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def main() -> int:
    _forget_this_process()
    try:
        import ipykernel  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError as error:
        _write(sys.stderr, f"{error}: notebooks run in a Jupyter kernel (mplint's notebook "
                           "extra: ipykernel and nbclient)\n")
        return MISSING
    return run(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(main())
