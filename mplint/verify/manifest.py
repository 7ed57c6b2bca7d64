"""The verified fixture suite: pairs of broken and fixed scripts and what each must do.

A manifest is TOML::

    [[pair]]
    name = "unguarded-pool"
    rules = ["MPL101"]
    broken = "unguarded_pool_broken.py"        # paths are relative to the manifest
    fixed = "unguarded_pool_fixed.py"
    requires = ["torch"]                       # importable modules; "cuda" needs a GPU
    broken-results = { fork = "ok", spawn = "crash: bootstrapping phase", forkserver = "hang" }

A pair passes when the broken script does what ``broken-results`` says under each method
("ok", "hang", or "crash" optionally followed by text its error must contain), the fixed script
is ok under every start method, and, where the broken one works under fork, the fixed one
prints the same output (see :mod:`mplint.verify.compare`).
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
from mplint.verify.runner import START_METHODS, Run


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
                              entry.get("timeout")))
        except (KeyError, TypeError) as error:
            raise ManifestError(f"{path}: pair {entry.get('name', '?')}: missing {error}") from None
        unknown = set(expected) - set(START_METHODS)
        if unknown:
            raise ManifestError(f"{path}: pair {entry['name']}: unknown start method "
                                f"{', '.join(sorted(unknown))}")
    return pairs


def runs_for(pair: Pair, timeout: float) -> list[Run]:
    """The broken script under each method it has an expectation for, the fixed one under all.
    A pair's own limit is short so that expected hangs end soon; a run expected to finish gets
    the run's limit when that is longer (a busy machine slows framework imports)."""
    short = pair.timeout or timeout
    long = max(short, timeout)
    return ([Run(pair.broken, method, short if want.startswith("hang") else long)
             for method, want in pair.expected.items()]
            + [Run(pair.fixed, method, long) for method in START_METHODS])


def missing_requirement(pair: Pair, cuda: bool) -> str | None:
    for name in pair.requires:
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


def judge(pair: Pair, verdicts: list[Verdict]) -> PairResult:
    problems: list[str] = []
    broken = {v.method: v for v in verdicts if Path(v.script) == pair.broken}
    fixed = {v.method: v for v in verdicts if Path(v.script) == pair.fixed}
    for method, want in pair.expected.items():
        problem = _matches(broken[method], want)
        if problem:
            problems.append(f"broken under {method}: {problem}")
    for method, verdict in fixed.items():
        if verdict.status != "ok":
            problems.append(f"fixed under {method}: {verdict.status} "
                            f"({verdict.exception or ''}: {verdict.message or ''})")
    original = broken.get("fork")
    if original is not None and original.status == "ok":
        for method, verdict in fixed.items():
            diff = difference(original.stdout, verdict.stdout, original.exit_code,
                              verdict.exit_code)
            if diff and verdict.status == "ok":
                problems.append(f"fixed under {method} differs from the original under fork:\n"
                                f"{diff}")
    return PairResult(pair, "fail" if problems else "pass", problems, verdicts)


def _matches(verdict: Verdict, want: str) -> str | None:
    status, _, text = want.partition(":")
    status, text = status.strip(), text.strip()
    if verdict.status != status:
        detail = f" ({verdict.exception}: {verdict.message})" if verdict.exception else ""
        return f"expected {status}, got {verdict.status}{detail}"
    if text and text not in f"{verdict.message or ''}\n{verdict.stderr}":
        return f"expected the error to mention {text!r}, got {verdict.exception}: {verdict.message}"
    return None
