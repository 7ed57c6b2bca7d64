"""Wall time of mplint against other linters on the same files.

    python benchmarks/bench.py [TREE ...] [--tools mplint,ruff,...] [--others-venv PATH]

With no TREE it measures real ML repositories (tinygrad 0.14.0's and torch_geometric 2.8.1's
wheels and fairseq 0.12.2's sdist, downloaded with ``pip download --no-deps`` into
``benchmarks/.trees`` on first use), the installed Python sources of torch and TensorFlow, and
CPython's Lib. Per tree it also prints how many files mplint parses (the others the prefilter
skips), the cold one-file latency of the slowest of the five largest parsed files and of the
five largest skipped ones, as an editor or pre-commit pays it, and what the flake8 plugin adds
to ``flake8 --select F``. Each tool runs three times (``--runs``) and the fastest run counts,
with Python's bytecode cache on as users have it.
Each tree's Python files (the ones ``mplint`` discovers) are first copied into a scratch folder
outside any repository, so no tool skips them through a ``.gitignore`` or a virtual-environment
rule; every tool then gets that same explicit list of files, with its output discarded.
Fixit and TorchFix need their own
libcst, so they are installed into a separate virtual environment (``--others-venv``, created
on first use). Prints, per tree, a table of wall time, lines per second and each tool's time
as a multiple of cold ``mplint``'s and of ``ruff --select F``'s.
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


# (pip requirement, file it downloads, folder of the sources inside it)
DOWNLOADS = (("tinygrad==0.14.0", "tinygrad-0.14.0-py3-none-any.whl", "tinygrad"),
             ("torch_geometric==2.8.1", "torch_geometric-2.8.1-py3-none-any.whl",
              "torch_geometric"),
             ("fairseq==0.12.2", "fairseq-0.12.2.tar.gz", "fairseq-0.12.2"))


def downloaded_trees(folder: Path) -> list[Path]:
    """The ML repositories' sources, downloaded and unpacked once into ``folder``."""
    trees = []
    for requirement, archive, inner in DOWNLOADS:
        target = folder / requirement.replace("==", "-")
        if not (target / inner).is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / archive).exists():
                fetched = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                     "-d", str(folder), requirement], capture_output=True, text=True,
                    check=False)
                if fetched.returncode != 0 or not (folder / archive).exists():
                    print(f"bench: cannot download {requirement}: {fetched.stderr.strip()[-200:]}",
                          file=sys.stderr)
                    continue
            shutil.unpack_archive(folder / archive, target,
                                  "zip" if archive.endswith(".whl") else None)
        trees.append(target / inner)
    return trees


def default_trees(downloads: Path) -> list[Path]:
    trees = [*downloaded_trees(downloads), _installed_tree("torch"),
             _installed_tree("tensorflow"), Path(sysconfig.get_paths()["stdlib"])]
    return [tree for tree in trees if tree is not None]


def parsed_files(files: list[Path], root: Path) -> list[Path]:
    """The files mplint's prefilter lets through to the parser."""
    sys.path.insert(0, str(HERE.parent))
    from mplint.modules import Tree
    from mplint.prefilter import ImportGraph, scan

    def load(path: Path) -> object:
        try:
            return scan(path.read_bytes())
        except OSError:
            return None

    graph = ImportGraph(load, Tree([root]))  # type: ignore[arg-type]
    found = []
    for path in files:
        scanned = load(path)
        if scanned is not None and graph.needs_analysis(path, scanned):  # type: ignore[arg-type]
            found.append(path)
    return found


def one_file(candidates: list[Path], cwd: Path, runs: int) -> tuple[float, Path] | None:
    """The slowest cold ``mplint FILE`` among ``candidates`` (each the fastest of ``runs``)."""
    slowest: tuple[float, Path] | None = None
    for path in candidates:
        seconds = min(_timed([str(BIN / "mplint"), "--no-cache", "--exit-zero", str(path)], cwd)
                      for _ in range(runs))
        if slowest is None or seconds > slowest[0]:
            slowest = (seconds, path)
    return slowest


def _timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, env=ENVIRONMENT)
    return time.perf_counter() - start


def largest(files: list[Path], count: int = 5) -> list[Path]:
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:count]


def files_of(tree: Path) -> list[Path]:
    sys.path.insert(0, str(HERE.parent))
    from mplint.sources import discover

    return [candidate.path for candidate in discover([tree], gitignore=False)
            if candidate.error is None]


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


# Tools run as users run them: with Python's bytecode cache written and read.
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(name: str, argv: list[str], files: list[Path], cwd: Path, limit: float,
            runs: int) -> Timing:
    """The fastest of ``runs`` runs (a run over 20 s is not repeated): this machine's other
    load only ever adds time."""
    if not Path(argv[0]).exists():
        return Timing(name, None, "not installed")
    if name == "mplint warm":  # fill the cache first; the timed run only reuses it
        subprocess.run(argv + [str(f) for f in files], cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, env=ENVIRONMENT)
    best: Timing | None = None
    for _ in range(runs):
        timing = _run_once(name, argv, files, cwd, limit)
        if best is None or best.seconds is None or (
                timing.seconds is not None and timing.seconds < best.seconds):
            best = timing
        if timing.seconds is None or timing.note or timing.seconds > 20:
            break
    assert best is not None
    return best


def _run_once(name: str, argv: list[str], files: list[Path], cwd: Path,
              limit: float) -> Timing:
    start = time.perf_counter()
    # its own session, so that a tool over the limit is stopped with all its worker processes
    proc = subprocess.Popen(argv + [str(f) for f in files], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, env=ENVIRONMENT)
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
    ruff = next((t.seconds for t in timings if t.tool.startswith("ruff")), None)
    out = [f"\n{tree}: {len(files):,} files, {lines:,} lines",
           f"{'tool':<34}{'wall s':>9}{'lines/s':>12}{'x mplint':>10}{'x ruff F':>10}  note",
           "-" * 85]
    for t in timings:
        if t.seconds is None:
            out.append(f"{t.tool:<34}{'-':>9}{'-':>12}{'-':>10}{'-':>10}  {t.note}")
            continue
        ratio = f"{t.seconds / base:.2f}" if base else "-"
        versus = f"{t.seconds / ruff:.2f}" if ruff else "-"
        out.append(f"{t.tool:<34}{t.seconds:>9.2f}{lines / t.seconds:>12,.0f}{ratio:>10}"
                   f"{versus:>10}  {t.note}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--tools", help="comma-separated names from the table (default: all)")
    parser.add_argument("--others-venv", type=Path, default=HERE / ".venv-others",
                        help="where Fixit and TorchFix are installed")
    parser.add_argument("--no-others", action="store_true", help="skip Fixit and TorchFix")
    parser.add_argument("--limit", type=float, default=1200, help="seconds allowed per tool run")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per tool, the fastest counts (a run over 20 s is not repeated)")
    parser.add_argument("--downloads", type=Path, default=HERE / ".trees",
                        help="where the downloaded ML repositories are kept")
    options = parser.parse_args()
    others = None if options.no_others else others_venv(options.others_venv)
    chosen = commands(others)
    if options.tools:
        wanted = [name.strip() for name in options.tools.split(",")]
        chosen = {name: argv for name, argv in chosen.items()
                  if any(name.startswith(w) for w in wanted)}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; the fastest of "
          f"{options.runs} runs per tool")
    for argv in ([str(BIN / "mplint"), "--version"], [str(BIN / "flake8"), "--version"]):
        if Path(argv[0]).exists():  # bytecode written before anything is timed
            _timed(argv, Path.cwd())
    for tree in options.trees or default_trees(options.downloads):
        with tempfile.TemporaryDirectory(prefix="mplint-bench-") as scratch:
            root = Path(scratch) / tree.name
            files = copy_tree(tree, files_of(tree), root)
            lines = sum(path.read_bytes().count(b"\n") for path in files)
            work = Path(scratch) / "cwd"
            work.mkdir()
            timings = [measure(name, argv, files, work, options.limit, options.runs)
                       for name, argv in chosen.items()]
            parsed = parsed_files(files, root)
            slowest_parsed = one_file(largest(parsed), work, options.runs)
            slowest_other = one_file(largest(sorted(set(files) - set(parsed))), work,
                                     options.runs)
        print(table(tree, files, lines, timings), flush=True)
        print(f"files mplint parses: {len(parsed):,} of {len(files):,}")
        for what, slowest in (("a file it parses", slowest_parsed),
                              ("a file it skips", slowest_other)):
            if slowest is not None:
                print(f"one file, cold, {what}: {slowest[0]:.2f} s (the slowest of the five "
                      f"largest: {slowest[1].relative_to(root)})")
        flake8 = {t.tool: t.seconds for t in timings}
        plain, plugin = flake8.get("flake8 --select F"), flake8.get("flake8 --select F,MPL")
        if plain and plugin:
            print(f"the flake8 plugin adds {100 * (plugin - plain) / plain:+.0f}% to "
                  "flake8 --select F")
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
