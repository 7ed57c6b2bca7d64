"""The pytest plugin, run as a user runs it: real pytest in a new process on a small project whose
tests pass under fork and fail under forkserver and spawn, with the plugin found through its
``pytest11`` entry point."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# Passes under fork only: a nested function as a Process target is pickled under forkserver and
# spawn (MPL203), and a global the test sets is not set in a worker that imports the module
# afresh (MPL302, which no error text names). A context chosen by the code itself stays its own.
PROJECT_TESTS = """\
import multiprocessing as mp

SCALE = None


def scaled(x):
    return x * SCALE


def _run_nested(context):
    results = context.Queue()

    def work():
        results.put(6 * 7)

    worker = context.Process(target=work)
    worker.start()
    assert results.get(timeout=30) == 42
    worker.join()


def test_nested_function_as_process_target():
    _run_nested(mp)


def test_global_set_at_run_time():
    global SCALE
    SCALE = 3
    with mp.Pool(1) as pool:
        assert pool.map(scaled, [1, 2]) == [3, 6]


def test_a_context_chosen_in_the_code_is_kept():
    _run_nested(mp.get_context("fork"))
"""
# Says at session start which of these modules are loaded, before any test module is imported.
CONFTEST = """\
import sys


def pytest_report_header():
    roots = ("mplint", "libcst", "multiprocessing")
    return "loaded: " + " ".join(sorted(m for m in sys.modules if m.split(".")[0] in roots))
"""
HINT = [
    "mplint: this looks like MPL203 unpicklable-callable: lambda, nested function or local "
    "class sent to a process",
    "(the tests ran under the {method} start method; `mplint rule MPL203` explains it, "
    "`mplint PATH` finds it in the code)",
]


def project(root: Path, ini: str = "") -> Path:
    root.mkdir(exist_ok=True)
    (root / "pytest.ini").write_text(f"[pytest]\n{ini}", encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "test_work.py").write_text(PROJECT_TESTS, encoding="utf-8")
    return root


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def section(stdout: str, title: str) -> list[str]:
    """The lines of the report section whose ``-----`` or ``=====`` rule names ``title``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if f" {title} " in line
                 and line.startswith(("-", "=")))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))),
               len(lines))
    return lines[start + 1:end]


def test_the_entry_point_registers_the_plugin() -> None:
    [plugin] = [e for e in entry_points(group="pytest11") if e.name == "mplint"]
    assert plugin.value == "mplint.pytest_plugin"


def test_help_in_a_fresh_project_lists_the_option_and_the_ini_value(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    result = pytest_run(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "  --mp-start-method=METHOD" in result.stdout
    assert "  mp_start_method (string):" in result.stdout


def test_without_the_option_nothing_changes_and_nothing_is_imported(tmp_path: Path) -> None:
    # the platform's default comes first (fork on Linux up to Python 3.13)
    fork_default = multiprocessing.get_all_start_methods()[0] == "fork"
    result = pytest_run(project(tmp_path))
    assert result.returncode == (0 if fork_default else 1), result.stdout + result.stderr
    assert "loaded: mplint mplint._version mplint.pytest_plugin\n" in result.stdout
    assert ("3 passed" if fork_default else "2 failed, 1 passed") in result.stdout
    assert "start method" not in result.stdout
    assert "mplint: this looks like" not in result.stdout


def test_an_unknown_ini_value_is_a_usage_error(tmp_path: Path) -> None:
    result = pytest_run(project(tmp_path, "mp_start_method = sideways\n"))
    assert result.returncode == 4
    assert ("ERROR: mp_start_method = 'sideways': expected one of fork, forkserver, spawn\n"
            in result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_the_start_method_breaks_what_fork_hides_and_the_hint_names_the_rule(
        tmp_path: Path, method: str) -> None:
    result = pytest_run(project(tmp_path), "--mp-start-method", method)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"mplint: multiprocessing's default start method is {method}\n" in out
    assert "2 failed, 1 passed" in out
    assert "Can't pickle local object '_run_nested.<locals>.work'" in out
    assert section(out, "mplint") == [line.format(method=method) for line in HINT]
    assert out.count("mplint: this looks like") == 1  # the unset global's TypeError names none
    assert section(out, f"mplint hints (start method {method})") == [
        "test_work.py::test_nested_function_as_process_target: MPL203 unpicklable-callable"]


@pytest.mark.slow
def test_fork_asked_for_passes(tmp_path: Path) -> None:
    result = pytest_run(project(tmp_path), "--mp-start-method", "fork")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mplint: multiprocessing's default start method is fork\n" in result.stdout
    assert "3 passed" in result.stdout


@pytest.mark.slow
def test_the_ini_value_sets_the_method_and_the_option_overrides_it(tmp_path: Path) -> None:
    root = project(tmp_path, "mp_start_method = forkserver\n")
    from_ini = pytest_run(root)
    assert from_ini.returncode == 1, from_ini.stdout + from_ini.stderr
    assert section(from_ini.stdout, "mplint") == [line.format(method="forkserver")
                                                   for line in HINT]
    overridden = pytest_run(root, "--mp-start-method", "fork")
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    assert "mplint: multiprocessing's default start method is fork\n" in overridden.stdout


@pytest.mark.slow
def test_a_method_a_conftest_already_set_stays_and_pytest_warns(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "conftest.py").write_text(
        'import multiprocessing\nmultiprocessing.set_start_method("fork")\n', encoding="utf-8")
    result = pytest_run(root, "--mp-start-method", "spawn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mplint: multiprocessing's default start method is fork\n" in result.stdout
    assert "3 passed, 1 warning" in result.stdout
    assert ("PytestConfigWarning: the spawn start method was asked for, but the start method "
            "was already set to fork (by a conftest.py or a plugin); it stays fork\n"
            in result.stdout)
