"""``mplint verify`` runs notebooks in a real IPython kernel, like scripts in a Python child."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import uuid
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, cli, notebook, requires, run, write

from mplint.verify.classify import crash_site
from mplint.verify.cli import NOTEBOOK_REQUIREMENTS

PAIRS = FIXTURES / "pairs"
BROKEN = PAIRS / "notebook_executor_broken.ipynb"
FIXED = PAIRS / "notebook_executor_fixed.ipynb"
kernel = requires("ipykernel", "jupyter_client")


def _with_marker(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker``: everything a verify run started
    with it in its environment (the driver, the kernel, the kernel's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"MPLINT_TEST_MARKER={marker}".encode() in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
    return found


def _verify(*args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], str]:
    """``mplint verify`` with a marker in its environment that every process it starts
    inherits, so that the test can look for leftovers."""
    marker = uuid.uuid4().hex
    env = dict(os.environ, MPLINT_TEST_MARKER=marker)
    return run("verify", *args, cwd=cwd, env=env), marker


@pytest.mark.slow
@kernel
def test_a_task_defined_in_a_cell_crashes_under_spawn_as_mpl207_predicts() -> None:
    result, marker = _verify("--start-method", "spawn", "--format", "json", str(BROKEN))
    assert result.returncode == 1, result.stderr
    [verdict] = json.loads(result.stdout)["runs"]
    assert (verdict["status"], verdict["exception"], verdict["rules"], verdict["where"]) == (
        "crash", "BrokenProcessPool", ["MPL207"], f"{BROKEN}:cell 4:2")
    assert verdict["message"] == ("A process in the process pool was terminated abruptly while "
                                  "the future was running or pending.")
    # the workers' own error, forwarded by the kernel, is what MPL207 names
    assert "Can't get attribute 'measure' on <module '__main__' (built-in)>" in verdict["stderr"]
    assert verdict["profile"]["methods_used"] == ["spawn"]
    assert _with_marker(marker) == []


@pytest.mark.slow
@kernel
def test_the_fixed_notebook_runs_everywhere_and_prints_what_the_original_does_under_fork(
        ) -> None:
    result, marker = _verify("--start-method", "spawn,forkserver,fork", "--compare",
                             str(BROKEN), str(FIXED))
    assert result.returncode == 0, result.stdout
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split(" in ")[0] for line in heads[:4]] == [
        f"{FIXED} [spawn] OK", f"{FIXED} [forkserver] OK", f"{FIXED} [fork] OK",
        f"{BROKEN} [fork] OK"]
    assert heads[-1] == f"outputs match: 3 runs printed what {BROKEN} prints under fork"
    original = json.loads(_verify("--start-method", "fork", "--format", "json",
                                  str(BROKEN))[0].stdout)["runs"][0]
    assert original["stdout"] == ("{'spawn': 5, 'forkserver': 10, 'fork': 4, 'kernel': 6, "
                                  "'cell': 4}\nlongest: forkserver\n")
    assert _with_marker(marker) == []


POOL_IN_CELLS = (
    "import multiprocessing as mp",
    "def square(x):\n    return x * x",
    "print('before the pool')\nwith mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))",
)


@pytest.mark.slow
@kernel
def test_a_pool_that_hangs_in_a_kernel_is_cut_at_the_limit_and_leaves_no_process(
        tmp_path: Path) -> None:
    write(tmp_path, "pool.ipynb", notebook(*POOL_IN_CELLS))
    result, marker = _verify("--start-method", "forkserver", "--timeout", "8", "--format",
                             "json", "pool.ipynb", cwd=tmp_path)
    assert result.returncode == 1
    [verdict] = json.loads(result.stdout)["runs"]
    assert (verdict["status"], verdict["rules"]) == ("hang", ["MPL207"])
    assert 8 <= verdict["wall"] <= 8 + 5
    assert verdict["message"] == "Can't get attribute 'square' on <module '__main__' (built-in)>"
    assert verdict["stdout"] == "before the pool\n"
    # the kernel is the main process: its stack shows where the cell waits
    assert "ipykernel" in "\n".join(verdict["stacks"].values())
    assert _with_marker(marker) == []


def test_without_the_kernel_packages_a_notebook_gets_one_line_naming_the_extra(
        tmp_path: Path) -> None:
    """An interpreter where ``ipykernel`` cannot be imported (``sys.modules`` entry None).
    Folders give their notebooks, not Jupyter's checkpoint copies."""
    write(tmp_path, "work/pool.ipynb", notebook(*POOL_IN_CELLS))
    write(tmp_path, "work/.ipynb_checkpoints/pool-checkpoint.ipynb", notebook(*POOL_IN_CELLS))
    write(tmp_path, "work/helpers.py", "def square(x):\n    return x * x\n")
    blocked = ("import sys; sys.modules['ipykernel'] = None; from mplint.cli import main; "
               "sys.exit(main(['verify', 'work']))")
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert (result.returncode, result.stdout) == (1, (
        "work/pool.ipynb [-] ERROR: ipykernel not installed: notebooks run in a Jupyter kernel "
        f"(the notebook extra); install it with: {sys.executable} -m pip install "
        "'ipykernel>=6' 'nbclient>=0.9'\n"))
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["optional-dependencies"]["notebook"] == list(NOTEBOOK_REQUIREMENTS)


def test_a_notebook_that_is_not_one_is_reported_not_run(tmp_path: Path) -> None:
    write(tmp_path, "notes.ipynb", '{"cells": []}\n')
    result = run("verify", "notes.ipynb", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, (
        "notes.ipynb [-] ERROR: notebook format None is not supported (nbformat 4 only; "
        "`jupyter nbconvert --to notebook` converts it)\n"))


def _notebook_pairs() -> list[dict[str, str]]:
    pairs = tomllib.loads((PAIRS / "manifest.toml").read_text())["pair"]
    return [p for p in pairs if p["broken"].endswith(".ipynb")]


@pytest.mark.parametrize("pair", _notebook_pairs(), ids=lambda pair: pair["name"])
def test_the_fixed_notebook_is_exactly_what_mplint_fix_makes_of_the_broken_one(
        pair: dict[str, str], tmp_path: Path) -> None:
    fixed = PAIRS / pair["fixed"]
    module = fixed.with_name(f"{fixed.stem}_tasks.py")
    copy = shutil.copy(PAIRS / pair["broken"], tmp_path / fixed.name)
    result = cli("--fix", "--unsafe-fixes", "--no-cache", str(copy), cwd=tmp_path)
    assert result.stdout.splitlines()[-1] == "Found 1 problem (1 fixed, 0 remaining)."
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fixed.name, module.name])
    assert (tmp_path / fixed.name).read_bytes() == fixed.read_bytes()
    assert (tmp_path / module.name).read_bytes() == module.read_bytes()
    assert cli("--no-cache", str(fixed)).stdout == "All checks passed.\n"


def test_a_cell_frame_names_the_notebook_cell_and_line() -> None:
    """The notebook driver writes a cell's frame as ``File "nb.ipynb", cell 4, line 2``."""
    library = Path(sysconfig.get_paths()["stdlib"], "concurrent", "futures", "_base.py")
    stderr = ('Traceback (most recent call last):\n'
              '  File "/home/me/nb.ipynb", cell 4, line 2, in <module>\n'
              f'  File "{library}", line 401, in result\n'
              'BrokenProcessPool: terminated abruptly\n')
    assert crash_site(stderr, Path("/home/me/nb.ipynb")) == "/home/me/nb.ipynb:cell 4:2"
    assert crash_site(stderr, Path("/elsewhere.ipynb")) == "/home/me/nb.ipynb:cell 4:2"
