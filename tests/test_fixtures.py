"""The bundled fixtures report exactly what their ``# expect:`` comments say."""

from __future__ import annotations

import json
import re

from conftest import FIXTURES, ROOT, cli

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


def test_fixtures_report_exactly_their_annotations() -> None:
    result = cli("--format", "json", "fixtures", cwd=ROOT)
    assert result.returncode == 1, result.stderr
    reported = {(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)}
    assert reported == expected_findings()


def test_fixture_suite_covers_every_rule_and_has_clean_scripts() -> None:
    from mplint.rules import all_rules

    expected = expected_findings()
    assert {code for _, _, code in expected} == {rule.code for rule in all_rules()}
    annotated = {path for path, _, _ in expected}
    scripts = {p.relative_to(ROOT).as_posix() for p in FIXTURES.rglob("*.py")}
    assert len(scripts) >= 8
    assert {"fixtures/torch_initializer_clean.py", "fixtures/library_get_context.py"} <= (
        scripts - annotated)
