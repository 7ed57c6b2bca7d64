"""Wall time of mplint against other linters on the same files.

    python benchmarks/bench.py [TREE ...] [--tools mplint,ruff,...] [--others-venv PATH]

With no TREE it measures the installed Python sources of torch and TensorFlow and CPython's Lib.
Each tree's Python files (the ones ``mplint`` discovers) are first copied into a scratch folder
outside any repository, so no tool skips them through a ``.gitignore`` or a virtual-environment
rule; every tool then gets that same explicit list of files, runs once, with its output
discarded. Fixit and TorchFix need their own
libcst, so they are installed into a separate virtual environment (``--others-venv``, created
on first use). Prints, per tree, a table of wall time, lines per second and each tool's time
as a multiple of cold ``mplint``'s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
OTHERS = {"fixit": "fixit==2.2.1", "torchfix": "torchfix==0.7.0"}


@dataclass
class Timing:
    tool: str
    seconds: float | None  # None: not run (missing, failed or over the time limit)
    note: str = ""


def _installed_tree(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_trees() -> list[Path]:
    trees = [_installed_tree("torch"), _installed_tree("tensorflow"),
             Path(sysconfig.get_paths()["stdlib"])]
    return [tree for tree in trees if tree is not None]


def files_of(tree: Path) -> list[Path]:
    sys.path.insert(0, str(HERE.parent))
    from mplint.sources import discover

    return [candidate.path for candidate in discover([tree]) if candidate.error is None]


def others_venv(folder: Path) -> Path:
    """A virtual environment with Fixit and TorchFix (TorchFix pins an older libcst)."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *OTHERS.values()], check=True)
    return folder / "bin"


def commands(others: Path | None) -> dict[str, list[str]]:
    mplint, flake8, ruff = (str(BIN / name) for name in ("mplint", "flake8", "ruff"))
    found = {
        "mplint --no-cache": [mplint, "--no-cache", "--exit-zero"],
        "mplint warm": [mplint, "--exit-zero"],
        "ruff check --no-cache --select F": [ruff, "check", "--no-cache", "--select", "F",
                                             "--exit-zero", "--quiet"],
        "flake8 --select F": [flake8, "--isolated", "--select", "F", "--exit-zero"],
        "flake8 --select F,MPL": [flake8, "--isolated", "--select", "F,MPL", "--exit-zero"],
        "flake8 --select MPL": [flake8, "--isolated", "--select", "MPL", "--exit-zero"],
    }
    if others is not None:
        found["fixit lint"] = [str(others / "fixit"), "lint"]
        found["torchfix"] = [str(others / "torchfix")]
    return found


def measure(name: str, argv: list[str], files: list[Path], cwd: Path, limit: float) -> Timing:
    if not Path(argv[0]).exists():
        return Timing(name, None, "not installed")
    if name == "mplint warm":  # fill the cache first; the timed run only reuses it
        subprocess.run(argv + [str(f) for f in files], cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    start = time.perf_counter()
    # its own session, so that a tool over the limit is stopped with all its worker processes
    proc = subprocess.Popen(argv + [str(f) for f in files], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Timing(name, None, f"over {limit:.0f} s")
    seconds = time.perf_counter() - start
    result = subprocess.CompletedProcess(argv, proc.returncode, b"", stderr)
    if result.returncode not in (0, 1):
        last = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return Timing(name, seconds, f"exit {result.returncode}: {last[0][:60]}")
    return Timing(name, seconds)


def table(tree: Path, files: list[Path], lines: int, timings: list[Timing]) -> str:
    base = next((t.seconds for t in timings if t.tool == "mplint --no-cache"), None)
    out = [f"\n{tree}: {len(files):,} files, {lines:,} lines",
           f"{'tool':<34}{'wall s':>9}{'lines/s':>12}{'x mplint':>10}  note",
           "-" * 75]
    for t in timings:
        if t.seconds is None:
            out.append(f"{t.tool:<34}{'-':>9}{'-':>12}{'-':>10}  {t.note}")
            continue
        ratio = f"{t.seconds / base:.2f}" if base else "-"
        out.append(f"{t.tool:<34}{t.seconds:>9.2f}{lines / t.seconds:>12,.0f}{ratio:>10}  {t.note}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--tools", help="comma-separated names from the table (default: all)")
    parser.add_argument("--others-venv", type=Path, default=HERE / ".venv-others",
                        help="where Fixit and TorchFix are installed")
    parser.add_argument("--no-others", action="store_true", help="skip Fixit and TorchFix")
    parser.add_argument("--limit", type=float, default=1200, help="seconds allowed per tool run")
    options = parser.parse_args()
    others = None if options.no_others else others_venv(options.others_venv)
    chosen = commands(others)
    if options.tools:
        wanted = [name.strip() for name in options.tools.split(",")]
        chosen = {name: argv for name, argv in chosen.items()
                  if any(name.startswith(w) for w in wanted)}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; one run per tool")
    for tree in options.trees or default_trees():
        with tempfile.TemporaryDirectory(prefix="mplint-bench-") as scratch:
            files = copy_tree(tree, files_of(tree), Path(scratch) / tree.name)
            lines = sum(path.read_bytes().count(b"\n") for path in files)
            work = Path(scratch) / "cwd"
            work.mkdir()
            timings = [measure(name, argv, files, work, options.limit)
                       for name, argv in chosen.items()]
        print(table(tree, files, lines, timings), flush=True)
    return 0


def copy_tree(tree: Path, files: list[Path], target: Path) -> list[Path]:
    copies = []
    for path in files:
        copy = target / path.relative_to(tree)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
        copies.append(copy)
    return copies


if __name__ == "__main__":
    sys.exit(main())
