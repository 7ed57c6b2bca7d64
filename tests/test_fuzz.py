"""A bounded run of the mutation fuzzer (``benchmarks/fuzz.py``; long runs go there)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "benchmarks" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_three_hundred_mutated_programs_break_no_promise() -> None:
    """No internal error; the prefilter loses nothing; fixes compile, are idempotent, keep
    comments, BOM and line endings, and add no undefined name; safe fixes of scripts that run
    keep what they print."""
    checked, compared, failures = _fuzz().run(300, seed=2026, execute=6)
    assert checked == 300
    assert [(applied, problems) for _, applied, problems in failures] == []
    assert compared >= 3  # safe fixes that ran before and after, printing the same


def test_the_mutations_give_programs_python_accepts() -> None:
    import random

    fuzz = _fuzz()
    rng = random.Random(5)
    texts = fuzz.seeds()
    changed = 0
    for mutation in fuzz.MUTATIONS:
        for seed_text in texts[:40]:
            mutated = mutation(seed_text, rng)
            if mutated != seed_text:
                changed += 1
                compile(mutated.removeprefix(fuzz.BOM), "<fuzz>", "exec", dont_inherit=True)
    assert changed > 200


def test_whole_tree_runs_agree_on_mutated_programs(tmp_path: Path) -> None:
    """One worker and two, cold and cached, with and without the prefilter, the CLI and
    flake8, ``--diff`` applied with patch and ``--fix``: the same result on 120 programs."""
    import random

    fuzz = _fuzz()
    rng = random.Random(77)
    texts = fuzz.seeds()
    programs = [fuzz.program(rng.choice(texts), rng)[0] for _ in range(120)]
    assert fuzz.tree_problems(programs, tmp_path) == []


START = "\nimport multiprocessing as _mp\nwith _mp.Pool(2) as _pool:\n    _pool.map(abs, [1])\n"


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
def test_generated_programs_with_a_process_start_break_no_promise() -> None:
    """Programs hypothesmith generates from Python's grammar, each followed by an unguarded
    pool, so that rules fire and fixes rewrite code nobody would write by hand."""
    import hypothesmith
    from hypothesis import HealthCheck, given, settings

    fuzz = _fuzz()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hypothesmith.from_grammar())
    def check(program: str) -> None:
        text = program + START if program.endswith("\n") else program + "\n" + START
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # ``b"" ()`` is valid, and odd
            try:
                compile(text, "<generated>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return  # the grammar allows what the compiler rejects (a misplaced return)
            assert fuzz.check(text) == []

    check()
