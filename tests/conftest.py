from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def run(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
        wrapper: list[str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mplint`` (under ``wrapper`` when given) and capture its output."""
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
