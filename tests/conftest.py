from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mplint.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """An installed console script: the one next to this interpreter, else on PATH."""
    local = BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the test extras: pip install -e '.[test]'")
    return found


def cli(*args: str, cwd: Path | None = None,
        stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Call ``mplint`` in this process, as ``main(argv)`` with its own streams: the same
    behaviour as the console script for a fraction of the cost of a new interpreter."""
    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(cwd or before)
    try:
        code = main(list(args), stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["mplint", *args], code, out.getvalue(), err.getvalue())


SUMMARY = re.compile(r"All checks passed\.|Found \d+ problems? \(\d+ fixed, \d+ remaining\)\.|"
                     r"Found \d+ problems?( \(.*\))?\.")


def report(stdout: str) -> list[str]:
    """The finding lines of ``mplint``'s text output; its last line must be the summary."""
    lines = stdout.splitlines()
    assert lines and SUMMARY.fullmatch(lines[-1]), lines[-1:] or "no summary line"
    return lines[:-1]


def requires(*modules: str) -> pytest.MarkDecorator:
    """The one skip policy for the frameworks: a test that runs torch or TensorFlow code is
    skipped, with the reason, where the test extras are not installed. Looks the modules up
    without importing them (importing torch costs seconds)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed "
                                                    "(pip install -e '.[test]')")


def package_folder(module: str) -> Path:
    """Where an installed package's sources are, found without importing it."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.submodule_search_locations, module
    return Path(next(iter(spec.submodule_search_locations)))


def run(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
        wrapper: list[str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mplint`` console script in a new process (under ``wrapper`` when
    given) and capture its output."""
    argv = [*(wrapper or []), tool("mplint"), *args]
    proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, timeout=1200,
                          **kw)  # type: ignore[call-overload]
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(), proc.stderr.decode())


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def notebook(*cells: str, outputs: bool = False) -> str:
    """A Jupyter notebook (nbformat 4, as Jupyter writes it) with a markdown cell and then a
    code cell for each of ``cells``; with ``outputs``, each code cell has a stream output,
    an execution count and metadata of its own."""
    import nbformat

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
    book.cells = [nbformat.v4.new_markdown_cell("# Notes")]
    for number, source in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source)
        if outputs:
            cell.execution_count = number
            cell.metadata["tags"] = ["kept"]
            cell.outputs = [nbformat.v4.new_output("stream", text=f"out {number}\n")]
        book.cells.append(cell)
    nbformat.validate(book)
    return str(nbformat.writes(book)) + "\n"


def benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` imported as a module (once: its dataclasses look their
    module up by name)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
