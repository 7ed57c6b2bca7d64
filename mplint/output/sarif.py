"""SARIF 2.1.0, for code-scanning dashboards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mplint.findings import ERROR_CODE, ERROR_NAME, ERROR_PAGE, ERROR_SUMMARY, Finding

_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rules() -> list[dict[str, Any]]:
    from mplint.rules import all_rules

    described = [{
        "id": ERROR_CODE, "name": ERROR_NAME,
        "shortDescription": {"text": ERROR_SUMMARY},
        "help": {"text": ERROR_SUMMARY, "markdown": ERROR_PAGE},
        "defaultConfiguration": {"level": "error"},
    }]
    for rule in all_rules():
        described.append({
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.what},
            "help": {"text": rule.why, "markdown": rule.docs()},
            "defaultConfiguration": {"level": "warning"},
        })
    return described


def _uri(path: str) -> str:
    """A URI reference for ``path``: relative paths stay relative (to the working directory,
    the run's ``originalUriBaseIds``), with every character a URI reserves percent-encoded,
    so that ``#`` or ``?`` in a file name is not read as a fragment or a query."""
    pure = Path(path)
    if pure.is_absolute():
        return pure.as_uri()  # percent-encodes what a file URI must
    from urllib.parse import quote

    # Undecodable bytes of a name (surrogates) go out as the bytes they were.
    return quote(pure.as_posix(), safe="/", errors="surrogateescape")


def _fixes(finding: Finding) -> dict[str, Any]:
    """SARIF's ``fixes``: the finding's edits as replacements, with its safety; in a notebook
    each replacement's region names its cell as a finding's does, and a file the fix creates
    is an artifact change of its own that inserts the whole content at its start."""
    fix = finding.fix
    if fix is None or not fix.edits:
        return {}
    changes = [{
        "artifactLocation": {"uri": _uri(finding.path)},
        "replacements": [{
            "deletedRegion": _cell_region(edit.line, edit.column, edit.end_line,
                                          edit.end_column, edit.cell),
            "insertedContent": {"text": edit.content},
        } for edit in fix.edits],
    }]
    changes += [{
        "artifactLocation": {"uri": _uri(new.path)},
        "replacements": [{"deletedRegion": _cell_region(1, 1, 1, 1, None),
                          "insertedContent": {"text": new.content}}],
        "properties": {"newFile": True},
    } for new in fix.creates]
    return {"fixes": [{"description": {"text": f"{fix.title} ({fix.safety})"},
                       "artifactChanges": changes}]}


def _cell_region(line: int, column: int, end_line: int, end_column: int,
                 cell: int | None) -> dict[str, Any]:
    """A region; in a notebook, lines count within the cell its ``cell`` property names (the
    cell's number among all the notebook's cells, from 1), as ruff does."""
    region: dict[str, Any] = {"startLine": line, "startColumn": column,
                              "endLine": end_line, "endColumn": end_column}
    if cell is not None:
        region["properties"] = {"cell": cell}
    return region


def _region(f: Finding) -> dict[str, Any]:
    return _cell_region(f.line, f.column, f.end_line, f.end_column, f.cell)


def render(findings: Sequence[Finding]) -> str:
    from mplint._version import __version__

    rules = _rules()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [{
        "ruleId": f.code,
        "ruleIndex": index.get(f.code, 0),
        "level": "error" if f.is_error else "warning",
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(f.path)},
            "region": _region(f),
        }}],
        **_fixes(f),
    } for f in findings]
    log = {
        "$schema": _SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mplint", "version": __version__, "rules": rules}},
            "results": results,
            # Columns count code points, as Python and mplint's other formats do.
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(log, indent=2) + "\n"
