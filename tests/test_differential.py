"""A bounded differential run (``benchmarks/differential.py``; long runs go there): generated
programs run before and after their safe fix must do the same."""

from __future__ import annotations

import random
from types import ModuleType

import pytest
from conftest import benchmark, requires

pytestmark = pytest.mark.slow


def _differential() -> ModuleType:
    return benchmark("differential")


@requires("torch")
def test_forty_generated_programs_keep_their_behaviour_under_the_safe_fixes() -> None:
    figures = _differential().run(40, seed=23, jobs=2, torch_share=0.05)
    changes = "\n\n".join(_differential().report(v) for v in figures.different)
    assert figures.different == [], f"{figures.summary()}\n\n{changes}"
    # the sample must exercise the fixes, or the test could pass on a linter that fixes nothing
    assert figures.fixed >= 15, figures.summary()


def test_generated_programs_compile_and_vary() -> None:
    differential = _differential()
    rng = random.Random(4)
    features: set[str] = set()
    for _ in range(300):
        program = differential.generate(rng, torch_share=0.1)
        for name, text in program.files.items():
            compile(text, name, "exec", dont_inherit=True)
        features.update(program.features)
    assert {"layout_flat", "layout_guard", "layout_main_guard", "layout_split", "tokenizer",
            "dict_in_place", "lambda_process", "join_timeout", "dataloader_then_pool",
            "helper_sets_method_fork", "atexit", "print_at_import"} <= features


def test_the_last_exception_line_is_read_from_the_last_traceback() -> None:
    stderr = ("Process Process-1:\nTraceback (most recent call last):\n  File \"x\", line 1\n"
              "ValueError: worker failed\nTraceback (most recent call last):\n"
              "  File \"job.py\", line 3, in <module>\n    raise RuntimeError(obj)\n"
              "RuntimeError: <object at 0x7f12ab>\nwarning: leaked\n")
    assert _differential().last_exception(stderr) == "RuntimeError: <object at 0x?>"
