"""``path:line:col: CODE message``, optionally with the source line and a caret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mplint.findings import SAFE, Finding
from mplint.sources import physical_lines

_BOLD, _RED, _CYAN, _DIM, _RESET = "\x1b[1m", "\x1b[1;31m", "\x1b[36m", "\x1b[2m", "\x1b[0m"


def render(findings: Sequence[Finding], unsafe_fixes: bool = False, colour: bool = False) -> str:
    """One line per finding; ``[*]`` marks those ``--fix`` would fix (with ``--unsafe-fixes``
    also the unsafe ones). ``colour`` adds terminal colours (the text stays the same)."""
    return "".join(_line(f, unsafe_fixes, colour) for f in findings)


def _fixable(finding: Finding, unsafe_fixes: bool) -> bool:
    return finding.fix is not None and (unsafe_fixes or finding.fix.safety == SAFE)


def _line(finding: Finding, unsafe_fixes: bool, colour: bool = False) -> str:
    marker = "[*] " if _fixable(finding, unsafe_fixes) else ""
    if not colour:
        return f"{finding.place}: {finding.code} {marker}{finding.message}\n"
    marker = f"{_CYAN}{marker}{_RESET}" if marker else ""
    cell = f"cell {finding.cell}:" if finding.cell is not None else ""
    return (f"{_BOLD}{finding.path}{_RESET}{_DIM}:{cell}{finding.line}:{finding.column}:{_RESET} "
            f"{_RED}{finding.code}{_RESET} {marker}{finding.message}\n")


def summary(findings: Sequence[Finding], unsafe_fixes: bool = False, fixed: int = 0,
            resolved: int = 0) -> str:
    """The closing line: how many problems, and how many ``--fix`` can fix (or fixed, and
    resolved as a side effect of those fixes)."""
    count = len(findings)
    if fixed:
        total = count + fixed + resolved
        also = f", {resolved} resolved by those fixes" if resolved else ""
        return (f"Found {total} problem{_s(total)} ({fixed} fixed{also}, {count} remaining).\n")
    if not count:
        return "All checks passed.\n"
    safe = sum(1 for f in findings if _fixable(f, False))
    unsafe = sum(1 for f in findings if f.fix is not None) - safe
    notes = []
    if safe or (unsafe and unsafe_fixes):
        fixable = safe + (unsafe if unsafe_fixes else 0)
        option = "`--fix --unsafe-fixes`" if unsafe_fixes and unsafe else "`--fix`"
        notes.append(f"{fixable} fixable with {option}")
    if unsafe and not unsafe_fixes:
        notes.append(f"{unsafe} more with `--unsafe-fixes`")
    detail = f" ({'; '.join(notes)})" if notes else ""
    return f"Found {count} problem{_s(count)}{detail}.\n"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def render_with_source(findings: Sequence[Finding], unsafe_fixes: bool = False,
                       colour: bool = False) -> str:
    """Each finding followed by its source line and a caret under the column."""
    sources: dict[tuple[str, int | None], list[str]] = {}
    out: list[str] = []
    for finding in findings:
        out.append(_line(finding, unsafe_fixes, colour))
        where = (finding.path, finding.cell)
        lines = sources.get(where) or _read_lines(*where)
        sources[where] = lines
        if 0 < finding.line <= len(lines):
            source_line = lines[finding.line - 1].rstrip("\r\n")
            out.append(f"    {source_line}\n    {' ' * (finding.column - 1)}^\n")
    return "".join(out)


def statistics(findings: Sequence[Finding]) -> str:
    """One line per code: count, code, name; most frequent first."""
    counts = Counter((f.code, f.name) for f in findings)
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "".join(f"{count:<6} {code} {name}\n" for (code, name), count in rows)


def statistics_json(findings: Sequence[Finding]) -> str:
    """The counts of :func:`statistics` as a JSON list of ``{"code", "name", "count"}``."""
    import json

    counts = Counter((f.code, f.name) for f in findings)
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return json.dumps([{"code": code, "name": name, "count": count}
                       for (code, name), count in rows], indent=2) + "\n"


def _read_lines(path: str, cell: int | None = None) -> list[str]:
    """The lines of the file at ``path``, or of its notebook cell ``cell``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if cell is None:
        return physical_lines(text)
    from mplint.notebook import Notebook, NotebookError

    try:
        notebook = Notebook.parse(text)
    except NotebookError:
        return []
    return next((physical_lines(c.source) for c in notebook.cells if c.number == cell), [])
