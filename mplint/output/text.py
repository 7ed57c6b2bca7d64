"""``path:line:col: CODE message``, optionally with the source line and a caret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mplint.findings import SAFE, Finding
from mplint.sources import physical_lines


def render(findings: Sequence[Finding], unsafe_fixes: bool = False) -> str:
    """One line per finding; ``[*]`` marks those ``--fix`` would fix (with ``--unsafe-fixes``
    also the unsafe ones)."""
    return "".join(_line(f, unsafe_fixes) for f in findings)


def _line(finding: Finding, unsafe_fixes: bool) -> str:
    fixable = finding.fix is not None and (unsafe_fixes or finding.fix.safety == SAFE)
    marker = "[*] " if fixable else ""
    return (f"{finding.path}:{finding.line}:{finding.column}: {finding.code} {marker}"
            f"{finding.message}\n")


def render_with_source(findings: Sequence[Finding], unsafe_fixes: bool = False) -> str:
    """Each finding followed by its source line and a caret under the column."""
    sources: dict[str, list[str]] = {}
    out: list[str] = []
    for finding in findings:
        out.append(_line(finding, unsafe_fixes))
        lines = sources.get(finding.path) or _read_lines(finding.path)
        sources[finding.path] = lines
        if 0 < finding.line <= len(lines):
            source_line = lines[finding.line - 1].rstrip("\r\n")
            out.append(f"    {source_line}\n    {' ' * (finding.column - 1)}^\n")
    return "".join(out)


def statistics(findings: Sequence[Finding]) -> str:
    """One line per code: count, code, name; most frequent first."""
    counts = Counter((f.code, f.name) for f in findings)
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "".join(f"{count:<6} {code} {name}\n" for (code, name), count in rows)


def _read_lines(path: str) -> list[str]:
    try:
        return physical_lines(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []
