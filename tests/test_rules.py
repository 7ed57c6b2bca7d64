"""Every rule's VALID and INVALID examples, run as tests: exact codes, positions and messages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT, write

from mplint import Config, Finding, fix_source, lint_source
from mplint.engine import Engine
from mplint.rules import all_rules, markdown_table
from mplint.rules.base import Invalid, Rule, Valid
from mplint.sources import Source

RULES = all_rules()


def _cases(kind: str) -> list[tuple[type[Rule], Valid | Invalid]]:
    return [(rule, example) for rule in RULES for example in getattr(rule, kind)]


def _id(case: tuple[type[Rule], Valid | Invalid]) -> str:
    rule, example = case
    index = getattr(rule, "VALID" if isinstance(example, Valid) else "INVALID").index(example)
    return f"{rule.code}-{index}"


def _path(example: Valid | Invalid, folder: Path) -> Path | None:
    """Where the example is linted: beside the other modules of its tree, if it has any."""
    if not example.modules:
        return None
    for name, code in example.modules:
        write(folder, name, code)
    return folder / "script.py"


def _as_notebook(code: str) -> str:
    """``code`` as the one code cell of a notebook, in the JSON layout Jupyter writes."""
    import json

    cell = {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
            "outputs": [], "source": code.splitlines(keepends=True)}
    notebook = {"cells": [cell], "metadata": {"language_info": {"name": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1, sort_keys=True) + "\n"


def lint_at(code: str, path: Path | None, config: Config | None = None,
            notebook: bool = False) -> list[Finding]:
    """The example's findings; a notebook rule's examples are linted as a notebook's cell."""
    if notebook:
        return lint_source(_as_notebook(code), "example.ipynb", config=config)
    if path is None:
        return lint_source(code, config=config)
    return Engine(config).lint(Source(code, "script.py", path))


def fix_at(code: str, path: Path | None, config: Config | None = None,
           unsafe: bool = True, notebook: bool = False) -> str:
    if notebook:
        book = _as_notebook(code)
        fixed = fix_source(book, "example.ipynb", config=config, unsafe=unsafe)
        return code if fixed == book else fixed
    if path is None:
        return fix_source(code, config=config, unsafe=unsafe)
    return Engine(config).fix(Source(code, "script.py", path), unsafe, prefilter=False).text


@pytest.mark.parametrize("case", _cases("VALID"), ids=_id)
def test_valid_example_is_left_alone(case: tuple[type[Rule], Valid], tmp_path: Path) -> None:
    rule, example = case
    findings = [f for f in lint_at(example.code, _path(example, tmp_path),
                                   notebook=rule.notebook) if f.code == rule.code]
    assert findings == [], example.why


@pytest.mark.parametrize("case", _cases("INVALID"), ids=_id)
def test_invalid_example_is_reported_exactly(case: tuple[type[Rule], Invalid],
                                             tmp_path: Path) -> None:
    rule, example = case
    found = [(f.line, f.column, f.message)
             for f in lint_at(example.code, _path(example, tmp_path), notebook=rule.notebook)
             if f.code == rule.code]
    expected = [(e.line, e.column, e.message) for e in example.expected]
    assert found == expected


def test_codes_and_names_are_unique_and_well_formed() -> None:
    codes = [rule.code for rule in RULES]
    names = [rule.name for rule in RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert re.fullmatch(r"MPL[1-3]\d\d", rule.code)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
        assert not rule.name.startswith("no-")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_rule_has_complete_docs_and_examples(rule: type[Rule]) -> None:
    for section in (rule.summary, rule.what, rule.why, rule.fix_safety):
        assert section.strip()
    assert len(rule.VALID) >= 2 and len(rule.INVALID) >= 1
    assert all(example.expected for example in rule.INVALID)
    docs = rule.docs()
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead",
                    "## Fix safety"):
        assert heading in docs
    assert rule.INVALID[0].code in docs and rule.VALID[0].code in docs


def test_the_readme_table_is_the_rules_own() -> None:
    """The README lists every rule with its code, name and summary (regenerate it with
    ``python scripts/write_rule_table.py``)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme
    assert len(RULES) >= 14


@pytest.mark.parametrize("case", _cases("INVALID"), ids=_id)
def test_invalid_example_fixes_exactly_and_stays_fixed(case: tuple[type[Rule], Invalid],
                                                       tmp_path: Path) -> None:
    """The rule's own fix (unsafe ones included) gives exactly ``fixed``; the result parses,
    has no finding of the rule, and fixing it again changes nothing."""
    rule, example = case
    only = Config(select=(rule.code,))
    path = _path(example, tmp_path)
    fixed = fix_at(example.code, path, config=only, notebook=rule.notebook)
    if example.fixed is None:
        assert fixed == example.code, "no fix is offered for this example"
        return
    assert fixed == example.fixed
    ast.parse(fixed)
    assert [f for f in lint_at(fixed, path) if f.code == rule.code] == []
    assert fix_at(fixed, path, config=only) == fixed
    assert fix_at(fixed, path) == fix_at(fix_at(fixed, path), path)


@pytest.mark.parametrize("case", _cases("VALID"), ids=_id)
def test_valid_example_is_not_changed_by_fixes(case: tuple[type[Rule], Valid],
                                               tmp_path: Path) -> None:
    rule, example = case
    assert fix_at(example.code, _path(example, tmp_path), config=Config(select=(rule.code,)),
                  notebook=rule.notebook) == example.code
