"""The bundled fixtures report exactly what their ``# expect:`` comments say."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, cli, notebook, write

from mplint.rules import all_rules
from mplint.rules.base import Rule

_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>MPL\d{3}(?:\s*,\s*MPL\d{3})*)")


def expected_findings() -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(FIXTURES.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = _EXPECT.search(line)
            if match:
                for code in re.findall(r"MPL\d{3}", match.group("codes")):
                    found.add((path.relative_to(ROOT).as_posix(), number, code))
    return found


def expected_in_notebooks() -> set[tuple[str, str]]:
    """The fixture notebooks' findings: each broken notebook of the verified pairs reports its
    pair's rules (an ``# expect:`` comment would survive the fix into the fixed notebook)."""
    pairs = tomllib.loads((FIXTURES / "pairs" / "manifest.toml").read_text())["pair"]
    return {(f"fixtures/pairs/{pair['broken']}", code) for pair in pairs
            if pair["broken"].endswith(".ipynb") for code in pair["rules"]}


def test_fixtures_report_exactly_their_annotations() -> None:
    result = cli("--format", "json", "fixtures", cwd=ROOT)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    reported = {(f["path"], f["line"], f["code"]) for f in findings if f.get("cell") is None}
    assert reported == expected_findings()
    in_notebooks = {(f["path"], f["code"]) for f in findings if f.get("cell") is not None}
    assert in_notebooks == expected_in_notebooks() and len(in_notebooks) >= 2


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.code)
def test_every_rule_has_a_fixture(rule: type[Rule], tmp_path: Path) -> None:
    """A rule without an annotated fixture script has its first INVALID example as its
    fixture, linted from a file as a user would."""
    if any(code == rule.code for _, _, code in expected_findings()):
        return
    example = rule.INVALID[0]
    name = "example.ipynb" if rule.notebook else "example.py"
    write(tmp_path, name, notebook(example.code) if rule.notebook else example.code)
    result = cli("--select", rule.code, "--format", "json", name, cwd=tmp_path)
    found = [(f["line"], f["column"], f["message"]) for f in json.loads(result.stdout)]
    assert found == [(e.line, e.column, e.message) for e in example.expected]


def test_fixture_suite_has_clean_scripts() -> None:
    expected = expected_findings()
    assert {code for _, _, code in expected} <= {rule.code for rule in all_rules()}
    annotated = {path for path, _, _ in expected}
    scripts = {p.relative_to(ROOT).as_posix() for p in FIXTURES.rglob("*.py")}
    assert len(scripts) >= 8
    assert {"fixtures/torch_initializer_clean.py", "fixtures/library_get_context.py"} <= (
        scripts - annotated)
