"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""

from __future__ import annotations

from collections.abc import Sequence

from mplint.findings import Finding


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def render(findings: Sequence[Finding]) -> str:
    return "".join(_annotation(f) for f in findings)


def _annotation(f: Finding) -> str:
    title = f"title={_escape(f'{f.code} {f.name}', prop=True)},file={_escape(f.path, prop=True)}"
    if f.cell is not None:  # lines of a notebook's JSON are not the cell's: name the cell
        where = f"cell {f.cell}:{f.line}:{f.column}"
        return f"::error {title}::{_escape(f'{where}: {f.code} {f.message}')}\n"
    return (f"::error {title},line={f.line},col={f.column},endLine={f.end_line},"
            f"endColumn={f.end_column}::{_escape(f'{f.code} {f.message}')}\n")
