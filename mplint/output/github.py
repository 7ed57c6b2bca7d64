"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""

from __future__ import annotations

from collections.abc import Sequence

from mplint.findings import Finding


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def render(findings: Sequence[Finding]) -> str:
    return "".join(
        f"::error title={_escape(f'{f.code} {f.name}', prop=True)},"
        f"file={_escape(f.path, prop=True)},line={f.line},col={f.column},"
        f"endLine={f.end_line},endColumn={f.end_column}::{_escape(f'{f.code} {f.message}')}\n"
        for f in findings
    )
