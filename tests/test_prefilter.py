"""The prefilter decides from bytes which files can have findings; it must never lose one."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, cli, package_folder, report, requires, write

WORKER = """\
import multiprocessing


class Worker(multiprocessing.Process):
    def run(self):
        print("working")
"""

SCRIPT_WITHOUT_PROCESS_WORDS = """\
from jobs import Worker

worker = Worker()
worker.start()
worker.join()
"""


def _findings(*args: str, cwd: Path | None = None) -> list[dict[str, object]]:
    result = cli("--no-cache", "--format", "json", "--exit-zero", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr  # 1: some file could not be linted
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def _rule_findings(findings: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(f["path"], f["line"], f["column"], f["code"], f["message"]) for f in findings
            if f["code"] != "MPL000"]


def test_same_findings_with_and_without_the_prefilter_on_the_fixtures() -> None:
    with_prefilter = _findings(str(FIXTURES))
    assert len(with_prefilter) > 20
    assert with_prefilter == _findings("--no-prefilter", str(FIXTURES))


def _large_trees() -> list[Path]:
    trees = [Path(sysconfig.get_paths()["stdlib"])]
    base = package_folder("torch")
    trees += [base / "multiprocessing", base / "utils", base / "distributed"]
    return trees


@pytest.mark.slow
@requires("torch")
def test_same_findings_with_and_without_the_prefilter_on_large_trees() -> None:
    """CPython's Lib and torch's process code: every file parsed and analysed without the
    prefilter. Only files the prefilter skips may differ, and only by syntax errors the rules
    never needed (MPL000: lib2to3's Python 2 test data, for one)."""
    trees = [str(tree) for tree in _large_trees()]
    with_prefilter = _findings(*trees)
    without = _findings("--no-prefilter", *trees)
    assert _rule_findings(with_prefilter)  # the trees are linted, not skipped
    assert _rule_findings(with_prefilter) == _rule_findings(without)
    errors = [f for f in with_prefilter if f["code"] == "MPL000"]
    assert all(f in without for f in errors)


@pytest.mark.slow
def test_same_findings_with_and_without_the_prefilter_on_ml_repositories() -> None:
    """tinygrad, torch_geometric and fairseq (downloaded from PyPI as the benchmark does):
    their rule findings are the same when every file is parsed and analysed, and the files the
    prefilter skips are most of each tree."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import DOWNLOADS, downloaded_trees

    trees = downloaded_trees(ROOT / "benchmarks" / ".trees")
    if len(trees) != len(DOWNLOADS):
        pytest.skip("the ML repositories could not be downloaded from PyPI")
    for tree in trees:
        with_prefilter = _findings("--no-respect-gitignore", str(tree))
        without = _findings("--no-respect-gitignore", "--no-prefilter", str(tree))
        assert _rule_findings(with_prefilter) == _rule_findings(without), tree
        errors = [f for f in with_prefilter if f["code"] == "MPL000"]
        assert all(f in without for f in errors)
    found = [_rule_findings(_findings("--no-respect-gitignore", str(tree))) for tree in trees]
    assert any(found)  # the trees are linted, not skipped


def test_a_file_without_process_words_starting_a_process_subclass_of_its_tree(
        tmp_path: Path) -> None:
    write(tmp_path, "jobs.py", WORKER)
    write(tmp_path, "run.py", SCRIPT_WITHOUT_PROCESS_WORDS)
    expected = ['run.py:3:10: MPL101 [*] Worker (multiprocessing.Process subclass) starts '
                'processes when the module is imported, outside `if __name__ == "__main__":`; '
                'under spawn or forkserver every child re-imports the module and fails in its '
                'bootstrapping phase']
    for args in ([], ["--no-prefilter"]):
        assert report(cli("--no-cache", *args, ".", cwd=tmp_path).stdout) == expected


def test_imports_are_followed_through_re_exports_and_packages(tmp_path: Path) -> None:
    write(tmp_path, "app/__init__.py", "")
    write(tmp_path, "app/workers/__init__.py", "from .impl import Worker\n")
    write(tmp_path, "app/workers/impl.py", WORKER)
    write(tmp_path, "app/main.py", SCRIPT_WITHOUT_PROCESS_WORDS.replace(
        "from jobs import Worker", "from app.workers import Worker"))
    # only the script is named: its imports still lead the prefilter to the Process subclass
    lines = report(cli("--no-cache", "app/main.py", cwd=tmp_path).stdout)
    assert [line.split(" ")[:2] for line in lines] == [["app/main.py:3:10:", "MPL101"]]


def test_files_that_cannot_start_processes_are_never_parsed(tmp_path: Path) -> None:
    """A syntax error shows whether a file was parsed: only the file that names a class of
    its tree that can start processes is."""
    write(tmp_path, "jobs.py", WORKER)
    write(tmp_path, "helpers.py", "import os\n\ndef cpus():\n    return os.cpu_count()\n")
    write(tmp_path, "uses_jobs.py", "from jobs import Worker\nif True\n    pass\n")
    write(tmp_path, "uses_helpers.py", "from helpers import cpus\nif True\n    pass\n")
    write(tmp_path, "mentions.py", "# multiprocessing.Pool is not used here\nif True\n")
    lines = report(cli("--no-cache", ".", cwd=tmp_path).stdout)
    assert lines == ["uses_jobs.py:2:8: MPL000 syntax error: expected ':'"]
    everything = report(cli("--no-cache", "--no-prefilter", ".", cwd=tmp_path).stdout)
    assert [line.split(":")[0] for line in everything] == [
        "mentions.py", "uses_helpers.py", "uses_jobs.py"]


@pytest.mark.parametrize("statement", ["import multiprocessing as mp",
                                       "from multiprocessing import Pool as P"])
def test_an_import_after_a_comment_ending_in_a_backslash_is_seen(tmp_path: Path,
                                                                 statement: str) -> None:
    """A backslash at the end of a comment continues nothing; the next line's import counts."""
    pool = "mp.Pool" if statement.startswith("import") else "P"
    write(tmp_path, "job.py", f"x = 1  # see \\\n{statement}\nwith {pool}(2) as pool:\n"
                              "    pool.map(abs, [1])\n")
    found = _rule_findings(_findings("job.py", cwd=tmp_path))
    assert [(f[1], f[3]) for f in found] == [(3, "MPL101")]
    assert found == _rule_findings(_findings("--no-prefilter", "job.py", cwd=tmp_path))


def test_an_excerpt_without_its_imports_is_parsed_unless_it_binds_the_name(
        tmp_path: Path) -> None:
    """A syntax error shows whether a file was parsed: an excerpt that starts a pool through
    `mp` or `Pool` and binds neither is; one that binds the name to something else is not."""
    write(tmp_path, "excerpt.py", "pool = mp.Pool(4)\nif True\n")
    write(tmp_path, "context.py", 'pool = mp.get_context("spawn").Pool(4)\nif True\n')
    write(tmp_path, "bare.py", "with Pool(2) as p:\n    p.map(abs, [1])\nif True\n")
    write(tmp_path, "bound.py", "import mympi as mp\npool = mp.Pool(4)\nif True\n")
    write(tmp_path, "defined.py", "class Pool:\n    pass\n\npool = Pool()\nif True\n")
    write(tmp_path, "method.py", "pool = resources.Pool(4)\nif True\n")
    lines = report(cli("--no-cache", ".", cwd=tmp_path).stdout)
    assert [line.split(" ")[:2] for line in lines] == [
        ["bare.py:3:8:", "MPL000"], ["context.py:2:8:", "MPL000"],
        ["excerpt.py:2:8:", "MPL000"]]


def test_importing_a_module_that_starts_processes_is_not_enough(tmp_path: Path) -> None:
    """A file that names nothing the module exports that can start processes (a class whose
    bases spell a process class, a subclass of one, a name passed on) is not parsed; a file
    that names such a thing, through a chain of modules, is."""
    write(tmp_path, "jobs.py", WORKER + "\n\ndef cpus():\n    return 4\n")
    write(tmp_path, "middle.py", "from jobs import Worker, cpus\n\n\nclass Slow(Worker):\n"
                                 "    pass\n\n\ndef count():\n    return cpus()\n")
    write(tmp_path, "only_cpus.py", "from jobs import cpus\nprint(cpus())\nif True\n")
    write(tmp_path, "only_count.py", "from middle import count\nprint(count())\nif True\n")
    write(tmp_path, "run.py", "from middle import Slow\n\nworker = Slow()\nworker.start()\n")
    lines = report(cli("--no-cache", ".", cwd=tmp_path).stdout)
    assert [line.split(" ")[:2] for line in lines] == [["run.py:3:10:", "MPL101"]]
    everything = report(cli("--no-cache", "--no-prefilter", ".", cwd=tmp_path).stdout)
    assert [line.split(" ")[:2] for line in everything] == [
        ["only_count.py:3:8:", "MPL000"], ["only_cpus.py:3:8:", "MPL000"],
        ["run.py:3:10:", "MPL101"]]


def test_what_a_module_exports_is_read_from_its_bytes() -> None:
    from mplint.prefilter import scan, starting_definitions

    source = (b"import multiprocessing as mp\n\n"
              b"def start(n):\n    return mp.Pool(n)\n\n"
              b"def plain():\n    return 1\n\n"
              b"def maybe(n):\n    if n > 1:\n        return mp.Pool(n)\n\n"
              b"@decorated\nclass Job(mp.Process):\n    pass\n\n"
              b"class Spread(make_base(1), (\n        mp.Process)):\n    pass\n\n"
              b"class Named(Base):\n    Process = None\n\n"
              b"POOL = mp.get_context('spawn').Pool\nLIMIT = 3\n"
              b"if True:\n    def nested():\n        mp.Process().start()\n")
    # the scan: classes whose bases spell a process class; then, for the modules a file to
    # triage imports, module-level functions and classes whose code surely calls a start (an
    # importer's analysis follows calls into them, tested below; ``Named`` only names the word,
    # ``maybe`` starts under a condition); calling an alias of a library API such as POOL is
    # not followed, nor is a function defined under an ``if``
    assert scan(source).exports == ("Job", "Spread")
    assert starting_definitions(source) == {"start"}
    assert scan(b"import os\nos.getpid()\n").exports == ()


def test_a_process_class_renamed_in_its_own_module_and_re_exported(tmp_path: Path) -> None:
    """``run = Worker`` in the module that defines the Process subclass exports ``run`` too;
    an importer two modules away that only says ``run`` is analysed."""
    write(tmp_path, "jobs.py", "import multiprocessing\n\n\nclass Worker(multiprocessing.Process):"
                               "\n    pass\n\n\nrun = Worker\n")
    write(tmp_path, "tools.py", "from jobs import run\n")
    write(tmp_path, "main.py", "from tools import run\n\nworker = run()\nworker.start()\n")
    expected = [line for line in report(cli("--no-cache", "--no-prefilter", ".",
                                            cwd=tmp_path).stdout) if " MPL101 " in line]
    assert [line.split(" ")[0] for line in expected] == ["main.py:3:10:"]
    assert report(cli("--no-cache", ".", cwd=tmp_path).stdout) == report(
        cli("--no-cache", "--no-prefilter", ".", cwd=tmp_path).stdout)


def test_a_function_of_another_module_that_starts_processes_is_followed(
        tmp_path: Path) -> None:
    """A caller of another module's function that makes a pool is analysed although it spells
    no process API (the syntax error shows it is parsed), and the call is a start on import;
    the other module also chooses a start method the caller cannot see, so fork is not sure."""
    write(tmp_path, "jobs.py", "import multiprocessing as mp\n\n\ndef start(n):\n"
                               "    return mp.Pool(n)\n\n\ndef setup():\n"
                               "    mp.set_start_method('fork')\n\n\ndef cpus():\n"
                               "    return 4\n")
    caller = ("import torch\nfrom jobs import start, setup\n\nmodel = torch.nn.Linear(2, 2)\n"
              "setup()\npool = start(2)\npool.map(abs, [model])\n")
    write(tmp_path, "main.py", caller)
    write(tmp_path, "broken.py", caller + "if True\n")  # shows whether it is parsed
    write(tmp_path, "plain.py", "from jobs import cpus\nif True\n")  # names no start
    without = _findings("--no-prefilter", ".", cwd=tmp_path)
    assert [(f["path"], f["line"], f["code"]) for f in without] == [
        ("broken.py", 8, "MPL000"), ("main.py", 6, "MPL101"), ("plain.py", 2, "MPL000")]
    with_prefilter = _findings(".", cwd=tmp_path)
    assert with_prefilter == without[:2]


@pytest.mark.parametrize(("call", "direct"), [
    ("DataLoader(ds, num_workers=2)", True),
    ("DataLoader(ds, num_workers = (4))", True),
    ("DataLoader(ds, num_workers=0x2)", True),
    ("DataLoader(ds, num_workers=workers)", True),
    ("DataLoader(ds, num_workers=args.workers)", True),
    ("DataLoader(ds, **kw)\nkw = {'num_workers': 4}", True),
    ("DataLoader(ds, num_workers=0)", False),
    ("DataLoader(ds, num_workers = 0, batch_size=2)", False),
    ("DataLoader(ds, batch_size=8)", False),
])
def test_a_dataloader_counts_when_its_worker_count_is_spelled_other_than_zero(
        call: str, direct: bool) -> None:
    """The analysis sees worker processes in a DataLoader unless ``num_workers`` is provably
    0 (absent, or the literal 0); the prefilter asks the file to spell ``num_workers`` other
    than as ``num_workers=0``."""
    from mplint.prefilter import scan

    for imported in ("from torch.utils.data import DataLoader", "import torch"):
        spelled = call if imported.startswith("from") else f"torch.utils.data.{call}"
        assert scan(f"{imported}\n{spelled}\n".encode()).direct is direct
