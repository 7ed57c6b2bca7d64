"""The fixtures after ``mplint --fix --unsafe-fixes`` run under spawn, in real child processes
with torch and TensorFlow, and print what the originals print.

The original's output under fork is the reference; where the original cannot run under fork
(TensorFlow is not fork-safe, or its own module-level ``set_start_method`` breaks it), its
output under spawn is, and where it runs under neither, the fixed script must simply finish.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, cli, requires, run

from mplint.verify.compare import difference

pytestmark = [pytest.mark.slow, requires("torch", "tensorflow")]

# Broken in ways no fix of this release addresses, so they are not expected to run.
NOT_EXPECTED_TO_RUN = {
    "cuda_before_fork_broken.py": "needs a CUDA device",
}


def _verify(*args: str) -> dict[str, dict[str, object]]:
    result = run("verify", "--format", "json", "--timeout", "120", "-j", "2", *args)
    runs = json.loads(result.stdout)["runs"]
    return {f"{Path(str(r['script'])).name}:{r['method']}": r for r in runs}


def test_fixed_fixtures_run_under_spawn_with_the_originals_output(tmp_path: Path) -> None:
    original, fixed = tmp_path / "original", tmp_path / "fixed"
    for folder in (original, fixed):
        shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("*.toml"))
    cli("--fix", "--unsafe-fixes", ".", cwd=fixed)
    # a fixed notebook's new ``_tasks.py`` module is no script (the notebook pairs of the
    # verified suite run the fixed notebooks)
    changed = sorted(p.relative_to(fixed) for p in fixed.rglob("*.py")
                     if (original / p.relative_to(fixed)).exists()
                     and p.read_bytes() != (original / p.relative_to(fixed)).read_bytes()
                     and p.name not in NOT_EXPECTED_TO_RUN)
    remaining = cli(*map(str, changed), cwd=fixed).stdout
    runnable = [p for p in changed if f"{p}:" not in remaining]  # every finding fixed
    assert len(runnable) >= 10, runnable

    before = _verify("--start-method", "fork", *(str(original / p) for p in runnable))
    not_under_fork = [p for p in runnable if before[f"{p.name}:fork"]["status"] != "ok"]
    if not_under_fork:
        before.update(_verify("--start-method", "spawn",
                              *(str(original / p) for p in not_under_fork)))
    after = _verify("--start-method", "spawn", *(str(fixed / p) for p in runnable))
    compared = 0
    for path in runnable:
        got = after[f"{path.name}:spawn"]
        assert got["status"] == "ok", (path, got["message"], got["stderr"])
        reference = next((before[key] for key in (f"{path.name}:fork", f"{path.name}:spawn")
                          if key in before and before[key]["status"] == "ok"), None)
        if reference is None:
            continue
        compared += 1
        assert difference(str(reference["stdout"]), str(got["stdout"]),
                          reference["exit_code"], got["exit_code"]) is None, path  # type: ignore[arg-type]
    assert compared >= 8
