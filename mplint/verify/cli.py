"""``mplint verify``: run scripts under spawn, forkserver and fork, and say what happened.

Verification executes the code it is given, so it runs only when asked, each script in a fresh
child with a temporary working directory; linting never does.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from mplint.verify import manifest as manifests
from mplint.verify.classify import Verdict, classify
from mplint.verify.compare import difference
from mplint.verify.options import DESCRIPTION, add_arguments
from mplint.verify.report import pair_dict, render_pairs, render_verdicts, verdict_dict
from mplint.verify.runner import (
    KERNEL_PACKAGES,
    Run,
    adopt_orphans,
    execute,
    is_notebook,
    stop_all,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mplint verify", description=DESCRIPTION)
    add_arguments(parser)
    return parser


class _Stopped(Exception):
    """SIGTERM arrived: stop like Ctrl-C does."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stopped


def main(argv: Sequence[str]) -> int:
    """Run ``mplint verify`` with its own command line."""
    return run(_parser().parse_args(list(argv)))


def run(options: argparse.Namespace) -> int:
    """Run ``mplint verify`` with parsed options; Ctrl-C or SIGTERM stops every script it
    started (and their children) and ends with one line instead of a traceback."""
    import signal

    if not sys.platform.startswith("linux"):
        print("mplint verify: runs on Linux only (it follows each script's processes through "
              f"/proc); this is {sys.platform}. Linting and fixing work everywhere.",
              file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(options)
    except (KeyboardInterrupt, _Stopped) as stop:
        stopped = stop_all()
        print(f"mplint verify: interrupted; stopped {stopped} running script(s)",
              file=sys.stderr)
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(options: argparse.Namespace) -> int:
    jobs = options.jobs if options.jobs and options.jobs > 0 else (os.cpu_count() or 1)
    if options.manifest is not None:
        return _check_manifest(options, jobs)
    if not options.paths:
        print("mplint verify: give scripts to run, or --manifest", file=sys.stderr)
        return EXIT_USAGE
    scripts, problems = _scripts(options.paths)
    runs = [Run(s, m, options.timeout) for s in scripts for m in options.start_method]
    if options.compare is not None:
        original, more = _scripts([options.compare])
        problems += more
        runs += [Run(s, "fork", options.timeout) for s in original]
    verdicts = problems + run_all(runs, jobs, _progress())
    failed = any(v.status != "ok" for v in verdicts)
    compared: list[str] = []
    if options.compare is not None:
        compared = _compare(verdicts, options.compare)
        failed = failed or bool(compared)
    if options.format == "json":
        print(json.dumps({"runs": [verdict_dict(v) for v in verdicts],
                          "differences": compared}, indent=2))
    else:
        sys.stdout.write(render_verdicts(verdicts))
        for text in compared:
            print(text)
        if options.compare is not None and not compared:
            matched = sum(1 for v in verdicts if v.status == "ok"
                          and Path(v.script) != options.compare)
            print(f"outputs match: {matched} run{'' if matched == 1 else 's'} printed what "
                  f"{options.compare} prints under fork")
    return EXIT_FAILED if failed else EXIT_OK


def run_all(runs: Sequence[Run], jobs: int, progress: Progress | None = None) -> list[Verdict]:
    """Run every script, ``jobs`` at a time; verdicts come back in the order of ``runs``."""
    adopt_orphans()

    def one(run: Run) -> Verdict:
        if progress is not None:
            progress.started(run)
        verdict = classify(execute(run))
        if progress is not None:
            progress.finished(run)
        return verdict

    pool = ThreadPoolExecutor(max(1, min(jobs, len(runs) or 1)))
    try:
        if progress is not None:
            progress.begin(len(runs))
        return _confirmed(list(pool.map(one, runs)))
    finally:  # on an interruption too: no new script starts, running ones are stopped
        if progress is not None:
            progress.end()
        pool.shutdown(wait=False, cancel_futures=True)


def _confirmed(verdicts: list[Verdict]) -> list[Verdict]:
    """Each verdict naming only the rules whose findings the linter reports on its script: a
    failure's text alone can match a rule the script does not break."""
    reported: dict[str, frozenset[str]] = {}
    for verdict in verdicts:
        if verdict.rules:
            if verdict.script not in reported:
                reported[verdict.script] = _reported(Path(verdict.script))
            verdict.rules = [r for r in verdict.rules if r in reported[verdict.script]]
    return verdicts


def _reported(script: Path) -> frozenset[str]:
    """The codes ``mplint`` reports on ``script``, with the configuration of its folder."""
    from mplint.config import Config, ConfigError, find_pyproject, load
    from mplint.engine import Engine
    from mplint.sources import Source, SourceError

    try:
        config = load(find_pyproject(script))
    except ConfigError:
        config = Config()
    try:
        source = Source.load(script)
    except SourceError:
        return frozenset()
    return frozenset(f.code for f in Engine(config).lint(source) if not f.is_error)


def _scripts(paths: Sequence[Path]) -> tuple[list[Path], list[Verdict]]:
    """The scripts to run, and a ready verdict for each path that cannot run at all."""
    scripts: list[Path] = []
    problems: list[Verdict] = []
    for path in paths:
        candidates = _in_folder(path) if path.is_dir() else [path]
        for candidate in candidates:
            problem = _cannot_run(candidate)
            if problem:
                problems.append(Verdict(str(candidate), "-", "error", None, 0.0, [],
                                        message=problem))
            elif not path.is_dir() or is_notebook(candidate) or _has_main_guard(candidate):
                scripts.append(candidate)
    return scripts, problems


def _in_folder(folder: Path) -> list[Path]:
    """A folder's scripts and notebooks; Jupyter's checkpoint copies are not the notebooks."""
    notebooks = [p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted([*folder.rglob("*.py"), *notebooks])


def _cannot_run(path: Path) -> str | None:
    if not path.is_file():
        return "no such file"
    try:
        data = path.read_bytes()
        if is_notebook(path):
            return _cannot_run_notebook(data)
        ast.parse(data, str(path))
    except SyntaxError as error:
        return f"syntax error: {error.msg} (line {error.lineno})"
    except (OSError, ValueError) as error:
        return f"cannot read: {error}"
    return None


# the ``notebook`` extra of pyproject.toml (a test checks)
NOTEBOOK_REQUIREMENTS = ("ipykernel>=6", "nbclient>=0.9")


def _cannot_run_notebook(data: bytes) -> str | None:
    """Why a notebook cannot run: not a notebook, or no Jupyter kernel to run it in (the
    packages are looked up, not imported: the kernel imports them, not the verifier)."""
    from mplint.sources import SourceError, parse_notebook

    try:
        parse_notebook(data)
    except SourceError as error:
        return str(error)
    missing = [name for name in KERNEL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        # mplint is on no package index: the command names the packages, for this interpreter
        wanted = " ".join(f"'{name}'" for name in NOTEBOOK_REQUIREMENTS)
        return (f"{' and '.join(missing)} not installed: notebooks run in a Jupyter kernel "
                f"(the notebook extra); install it with: {sys.executable} -m pip install "
                f"{wanted}")
    return None


def _has_main_guard(path: Path) -> bool:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "__name__" in text and "__main__" in text


def _compare(verdicts: list[Verdict], original: Path) -> list[str]:
    base = next((v for v in verdicts if Path(v.script) == original and v.method == "fork"), None)
    if base is None or base.status != "ok":
        status = base.status if base else "missing"
        return [f"the original {original} does not run under fork ({status}): nothing to compare"]
    found = []
    for verdict in verdicts:
        if verdict is base or verdict.status == "error":
            continue
        diff = difference(base.stdout, verdict.stdout, base.exit_code, verdict.exit_code)
        if diff:
            found.append(f"{verdict.script} [{verdict.method}] differs from {original} [fork]:"
                         f"\n{diff}")
    return found


def _check_manifest(options: argparse.Namespace, jobs: int) -> int:
    try:
        pairs = manifests.load(options.manifest)
    except manifests.ManifestError as error:
        print(f"mplint verify: {error}", file=sys.stderr)
        return EXIT_USAGE
    cuda = any("cuda" in p.requires for p in pairs) and manifests.cuda_available()
    skipped = {p.name: manifests.missing_requirement(p, cuda) for p in pairs}
    with tempfile.TemporaryDirectory(prefix="mplint-autofix-") as name:
        folder = Path(name)
        manifests.make_autofixed([p for p in pairs if not skipped[p.name]], folder)
        runs = [run for p in pairs if not skipped[p.name]
                for run in manifests.runs_for(p, options.timeout, folder)]
        verdicts = run_all(runs, jobs, _progress())
        results = []
        for pair in pairs:
            reason = skipped[pair.name]
            if reason:
                results.append(manifests.PairResult(pair, "skip", [reason]))
                continue
            scripts = {pair.broken, *pair.fixed_scripts(folder)}
            mine = [v for v in verdicts if Path(v.script) in scripts]
            results.append(manifests.judge(pair, mine, folder))
    if options.format == "json":
        print(json.dumps([pair_dict(r) for r in results], indent=2))
    else:
        sys.stdout.write(render_pairs(results))
    return EXIT_FAILED if any(r.status == "fail" for r in results) else EXIT_OK


class Progress:
    """One status line on a terminal: how many runs are done, and which scripts are running and
    for how long, refreshed twice a second. Nothing when stderr is not a terminal."""

    def __init__(self, stream: TextIO, width: int = 100) -> None:
        self.stream = stream
        self.width = width
        self.total = self.done = 0
        self.running: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # runs finish and the refresh draws from many threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, total: int) -> None:
        self.total = total
        self._thread = threading.Thread(target=self._refresh, daemon=True)
        self._thread.start()

    def started(self, run: Run) -> None:
        with self._lock:
            self.running[id(run)] = (f"{run.script.name} [{run.method}]", time.monotonic())

    def finished(self, run: Run) -> None:
        with self._lock:
            self.running.pop(id(run), None)
            self.done += 1
        self._draw()

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._writing:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def line(self, now: float) -> str:
        with self._lock:
            running = sorted(self.running.values(), key=lambda item: item[1])
        shown = ", ".join(f"{name} {now - since:.0f}s" for name, since in running)
        text = f"[{self.done}/{self.total} done] " + (f"running: {shown}" if shown else "")
        return text if len(text) <= self.width else text[:self.width - 1] + "…"

    def _draw(self) -> None:
        with self._writing:
            self.stream.write(f"\r{self.line(time.monotonic())}\x1b[K")
            self.stream.flush()

    def _refresh(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()


def _progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None
    import shutil

    return Progress(sys.stderr, shutil.get_terminal_size().columns - 1)
