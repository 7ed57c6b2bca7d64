"""Real flake8, with mplint installed as its plugin, reports what the CLI reports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import ROOT, cli, tool, write


def _flake8(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("flake8"), "--isolated", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_flake8_reports_exactly_the_cli_findings_on_the_fixtures() -> None:
    reported = json.loads(cli("--format", "json", "fixtures", cwd=ROOT).stdout)
    expected = sorted(f"{f['path']}:{f['line']}:{f['column']}: {f['code']} {f['message']}"
                      for f in reported if f.get("cell") is None)  # flake8 reads no notebooks
    result = _flake8("--select", "MPL", "fixtures", cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert sorted(result.stdout.splitlines()) == expected
    assert len(expected) >= 10


def test_flake8_applies_its_own_noqa_and_select(tmp_path: Path) -> None:
    write(tmp_path, "job.py", """\
import multiprocessing as mp
import torch

with mp.Pool() as pool:  # noqa: MPL103
    pool.map(abs, [1])
""")
    lines = _flake8("--select", "MPL", "job.py", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["MPL101"]
    assert _flake8("--select", "MPL2", "job.py", cwd=tmp_path).stdout == ""


def test_flake8_on_a_file_without_process_starts_is_silent(tmp_path: Path) -> None:
    write(tmp_path, "plain.py", "import torch\n\nmodel = torch.nn.Linear(2, 2)\n")
    result = _flake8("--select", "MPL", "plain.py", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_plugin_is_registered_with_flake8() -> None:
    version = subprocess.run([tool("flake8"), "--version"], capture_output=True, text=True)
    assert "mplint:" in version.stdout


def test_flake8_follows_imports_to_a_process_subclass_of_the_tree(tmp_path: Path) -> None:
    """The plugin's prefilter is mplint's: a file that spells no process API is still
    analysed when it imports a module of the tree that can start processes."""
    write(tmp_path, "jobs.py", "import multiprocessing\n\n\nclass Worker(multiprocessing.Process):"
                               "\n    pass\n")
    write(tmp_path, "run.py", "from jobs import Worker\n\nWorker().start()\n")
    write(tmp_path, "calm.py", "from os import path\n\nprint(path.sep)\n")
    result = _flake8("--select", "MPL", "run.py", "calm.py", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        'run.py:3:1: MPL101 Worker (multiprocessing.Process subclass) starts processes when the '
        'module is imported, outside `if __name__ == "__main__":`; under spawn or forkserver '
        'every child re-imports the module and fails in its bootstrapping phase']


def test_flake8_reports_a_file_too_large_to_analyse_as_the_cli_does(tmp_path: Path) -> None:
    # one long line: flake8's own checks stay quick
    write(tmp_path, "huge.py",
          "import multiprocessing\nmultiprocessing.Pool\nDATA = '" + "a" * 1_150_000 + "'\n")
    result = _flake8("--select", "MPL", "huge.py", cwd=tmp_path)
    assert result.stdout == cli("-q", "huge.py", cwd=tmp_path).stdout
    assert result.stdout == ("huge.py:1:1: MPL000 file too large to analyse (1.1 MiB, limit 1 "
                             "MiB; exclude generated files in [tool.mplint])\n")


def test_flake8_honours_a_file_level_mplint_noqa(tmp_path: Path) -> None:
    job = "import multiprocessing as mp\nimport torch\n{}\nwith mp.Pool() as pool:\n" \
          "    pool.map(abs, [1])\n"
    write(tmp_path, "quiet.py", job.format("# mplint: noqa"))
    write(tmp_path, "partly.py", job.format("# mplint: noqa: MPL103"))
    lines = _flake8("--select", "MPL", "quiet.py", "partly.py", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["partly.py:4:6:", "MPL101"]]


def test_flake8_is_unaffected_by_notebooks(tmp_path: Path) -> None:
    """flake8 reads Python files only: the plugin reports a script as before, and a
    notebook in the folder (which ``mplint`` reports) adds nothing, named or not."""
    from conftest import notebook

    code = "import multiprocessing as mp\n\ndef square(x):\n    return x * x\n\n" \
           "with mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))\n"
    write(tmp_path, "job.py", code)
    write(tmp_path, "nb.ipynb", notebook(code))
    assert [line.split(": ")[1].split()[0] for line in cli(
        "--select", "MPL101,MPL207", ".", cwd=tmp_path).stdout.splitlines()[:-1]] == [
        "MPL101", "MPL207"]
    lines = _flake8("--select", "MPL", ".", cwd=tmp_path).stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["./job.py:6:6"]
    assert _flake8("--select", "MPL", "nb.ipynb", cwd=tmp_path).stdout == ""
