"""The verified fixture suite: pairs of broken and fixed scripts and what each must do.

A manifest is TOML::

    [[pair]]
    name = "unguarded-pool"
    rules = ["MPL101"]
    broken = "unguarded_pool_broken.py"        # paths are relative to the manifest
    fixed = "unguarded_pool_fixed.py"
    requires = ["torch"]                       # importable modules; "cuda" needs a GPU
                                               # (notebooks: the kernel's packages too)
    broken-results = { fork = "ok", spawn = "crash: bootstrapping phase", forkserver = "hang" }
    loads-per-worker = 1                       # load-per-worker pairs: see below
    broken-loads = 8
    autofix = true

A pair passes when the broken script does what ``broken-results`` says under each method
("ok", "hang", or "crash" optionally followed by text its error must contain), the fixed script
is ok under every start method, and, where the broken one works under fork, the fixed one
prints the same output (see :mod:`mplint.verify.compare`).

``autofix = true`` also checks, like the fixed script, what ``mplint --fix --unsafe-fixes``
makes of a copy of the broken one. ``loads-per-worker`` is the most times one worker process of
a fixed (and autofixed) script may load or build any one model, and at least one worker must
load it; ``broken-loads`` is how many times the broken script's workers together load or build
each model (once per item) wherever it runs to the end. Both are read from the run's profile.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mplint.verify.classify import Verdict
from mplint.verify.compare import difference
from mplint.verify.options import START_METHODS
from mplint.verify.runner import KERNEL_PACKAGES, Run, is_notebook


class ManifestError(Exception):
    """The manifest cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Pair:
    name: str
    broken: Path
    fixed: Path
    rules: tuple[str, ...]
    expected: dict[str, str]  # method -> "ok" | "hang" | "crash[: text]"
    requires: tuple[str, ...] = ()
    timeout: float | None = None  # overrides the run's limit (short for pairs that hang)
    loads_per_worker: int | None = None
    broken_loads: int | None = None
    autofix: bool = False

    def fixed_scripts(self, folder: Path | None) -> list[Path]:
        """The hand-written fixed script, and the automatically fixed copy made in ``folder``."""
        return [self.fixed, *([autofixed(self, folder)] if self.autofix and folder else [])]


@dataclass
class PairResult:
    pair: Pair
    status: str  # pass, fail, skip
    problems: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def load(path: Path) -> list[Pair]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{path}: cannot read manifest: {error}") from None
    pairs = []
    for entry in data.get("pair", []):
        try:
            expected = dict(entry["broken-results"])
            pairs.append(Pair(entry["name"], path.parent / entry["broken"],
                              path.parent / entry["fixed"], tuple(entry.get("rules", ())),
                              expected, tuple(entry.get("requires", ())),
                              entry.get("timeout"), entry.get("loads-per-worker"),
                              entry.get("broken-loads"), bool(entry.get("autofix", False))))
        except (KeyError, TypeError) as error:
            raise ManifestError(f"{path}: pair {entry.get('name', '?')}: missing {error}") from None
        unknown = set(expected) - set(START_METHODS)
        if unknown:
            raise ManifestError(f"{path}: pair {entry['name']}: unknown start method "
                                f"{', '.join(sorted(unknown))}")
    return pairs


def autofixed(pair: Pair, folder: Path) -> Path:
    return folder / f"{pair.name}.autofixed.py"


def make_autofixed(pairs: list[Pair], folder: Path) -> None:
    """Copy each autofix pair's broken script into ``folder`` and fix it as a user would, with
    ``mplint --fix --unsafe-fixes`` (its exit status says findings remain: that is not judged
    here; whether the result runs and loads once per worker is)."""
    for pair in pairs:
        if pair.autofix:
            target = autofixed(pair, folder)
            target.write_bytes(pair.broken.read_bytes())
            subprocess.run([sys.executable, "-m", "mplint", "--fix", "--unsafe-fixes",
                            "--no-cache", str(target)],
                           capture_output=True, check=False, timeout=300)


def runs_for(pair: Pair, timeout: float, folder: Path | None = None) -> list[Run]:
    """The broken script under each method it has an expectation for, the fixed ones under all.
    A pair's own limit is short so that expected hangs end soon; a run expected to finish gets
    the run's limit when that is longer (a busy machine slows framework imports)."""
    short = pair.timeout or timeout
    long = max(short, timeout)
    return ([Run(pair.broken, method, short if want.startswith("hang") else long)
             for method, want in pair.expected.items()]
            + [Run(fixed, method, long) for fixed in pair.fixed_scripts(folder)
               for method in START_METHODS])


def missing_requirement(pair: Pair, cuda: bool) -> str | None:
    kernel = KERNEL_PACKAGES if is_notebook(pair.broken) or is_notebook(pair.fixed) else ()
    for name in (*pair.requires, *kernel):
        if name == "cuda":
            if not cuda:
                return "needs CUDA"
        elif importlib.util.find_spec(name) is None:
            return f"needs {name}"
    return None


def cuda_available() -> bool:
    """Asked in a child, so that this process never initialises CUDA itself."""
    probe = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def judge(pair: Pair, verdicts: list[Verdict], folder: Path | None = None) -> PairResult:
    problems: list[str] = []
    broken = {v.method: v for v in verdicts if Path(v.script) == pair.broken}
    for method, want in pair.expected.items():
        problem = _matches(broken[method], want)
        if problem:
            problems.append(f"broken under {method}: {problem}")
        elif pair.broken_loads is not None and broken[method].status == "ok":
            problems.extend(_broken_loads(pair.broken_loads, broken[method]))
    original = broken.get("fork")
    for script in pair.fixed_scripts(folder):
        which = "fixed" if script == pair.fixed else "autofixed"
        fixed = {v.method: v for v in verdicts if Path(v.script) == script}
        for method, verdict in fixed.items():
            if verdict.status != "ok":
                problems.append(f"{which} under {method}: {verdict.status} "
                                f"({verdict.exception or ''}: {verdict.message or ''})")
            elif pair.loads_per_worker is not None:
                problems.extend(f"{which} under {method}: {problem}" for problem
                                in _per_worker(pair.loads_per_worker, verdict))
        if original is not None and original.status == "ok":
            for method, verdict in fixed.items():
                diff = difference(original.stdout, verdict.stdout, original.exit_code,
                                  verdict.exit_code)
                if diff and verdict.status == "ok":
                    problems.append(f"{which} under {method} differs from the original under "
                                    f"fork:\n{diff}")
    return PairResult(pair, "fail" if problems else "pass", problems, verdicts)


def _per_worker(limit: int, verdict: Verdict) -> list[str]:
    profile = verdict.profile
    if profile is None or not profile.most_in_one_worker:
        return ["no worker process loaded or built a model"]
    return [f"{name} x{count} in one worker process (at most {limit} expected)"
            for name, count in profile.most_in_one_worker.items() if count > limit]


def _broken_loads(expected: int, verdict: Verdict) -> list[str]:
    loads = verdict.profile.loads_in_workers if verdict.profile is not None else {}
    wrong = {name: count for name, count in loads.items() if count != expected}
    if loads and not wrong:
        return []
    found = ", ".join(f"{name} x{count}" for name, count in (wrong or loads).items()) or "none"
    return [f"broken under {verdict.method}: model loads in the workers: {found}; "
            f"{expected} of each expected (one per item)"]


def _matches(verdict: Verdict, want: str) -> str | None:
    status, _, text = want.partition(":")
    status, text = status.strip(), text.strip()
    if verdict.status != status:
        detail = f" ({verdict.exception}: {verdict.message})" if verdict.exception else ""
        return f"expected {status}, got {verdict.status}{detail}"
    if text and text not in f"{verdict.message or ''}\n{verdict.stderr}":
        return f"expected the error to mention {text!r}, got {verdict.exception}: {verdict.message}"
    return None
