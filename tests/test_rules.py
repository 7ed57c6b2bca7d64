"""Every rule's VALID and INVALID examples, run as tests: exact codes, positions and messages."""

from __future__ import annotations

import ast
import re

import pytest
from conftest import ROOT

from mplint import Config, Finding, fix_source, lint_source
from mplint.rules import all_rules, markdown_table
from mplint.rules.base import Invalid, Rule, Valid

RULES = all_rules()


def _as_notebook(code: str) -> str:
    """``code`` as the one code cell of a notebook, in the JSON layout Jupyter writes."""
    import json

    cell = {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
            "outputs": [], "source": code.splitlines(keepends=True)}
    notebook = {"cells": [cell], "metadata": {"language_info": {"name": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1, sort_keys=True) + "\n"


def _lint(rule: type[Rule], code: str) -> list[Finding]:
    """The example's findings; a notebook rule's examples are linted as a notebook's cell."""
    if rule.notebook:
        return lint_source(_as_notebook(code), "example.ipynb")
    return lint_source(code)


def _fix(rule: type[Rule], code: str, config: Config | None = None) -> str:
    if rule.notebook:
        notebook = _as_notebook(code)
        fixed = fix_source(notebook, "example.ipynb", config=config, unsafe=True)
        return code if fixed == notebook else fixed
    return fix_source(code, config=config, unsafe=True)


def _cases(kind: str) -> list[tuple[type[Rule], Valid | Invalid]]:
    return [(rule, example) for rule in RULES for example in getattr(rule, kind)]


def _id(case: tuple[type[Rule], Valid | Invalid]) -> str:
    rule, example = case
    index = getattr(rule, "VALID" if isinstance(example, Valid) else "INVALID").index(example)
    return f"{rule.code}-{index}"


@pytest.mark.parametrize("case", _cases("VALID"), ids=_id)
def test_valid_example_is_left_alone(case: tuple[type[Rule], Valid]) -> None:
    rule, example = case
    findings = [f for f in _lint(rule, example.code) if f.code == rule.code]
    assert findings == [], example.why


@pytest.mark.parametrize("case", _cases("INVALID"), ids=_id)
def test_invalid_example_is_reported_exactly(case: tuple[type[Rule], Invalid]) -> None:
    rule, example = case
    found = [(f.line, f.column, f.message) for f in _lint(rule, example.code)
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
def test_invalid_example_fixes_exactly_and_stays_fixed(case: tuple[type[Rule], Invalid]) -> None:
    """The rule's own fix (unsafe ones included) gives exactly ``fixed``; the result parses,
    has no finding of the rule, and fixing it again changes nothing."""
    rule, example = case
    only = Config(select=(rule.code,))
    fixed = _fix(rule, example.code, only)
    if example.fixed is None:
        assert fixed == example.code, "no fix is offered for this example"
        return
    assert fixed == example.fixed
    ast.parse(fixed)
    assert [f for f in lint_source(fixed) if f.code == rule.code] == []
    assert fix_source(fixed, config=only, unsafe=True) == fixed
    assert fix_source(fixed, unsafe=True) == fix_source(fix_source(fixed, unsafe=True),
                                                        unsafe=True)


@pytest.mark.parametrize("case", _cases("VALID"), ids=_id)
def test_valid_example_is_not_changed_by_fixes(case: tuple[type[Rule], Valid]) -> None:
    rule, example = case
    assert _fix(rule, example.code, Config(select=(rule.code,))) == example.code
