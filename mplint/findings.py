"""The public result types."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mplint.sources import physical_lines

ERROR_CODE = "MPL000"  # a file that could not be linted
ERROR_NAME = "unlintable-file"
ERROR_SUMMARY = "file that could not be read, decoded, parsed or analysed"
ERROR_PAGE = f"""\
# {ERROR_CODE} {ERROR_NAME}

## What it does
Reports a file mplint could not lint, with the reason: a syntax error (at Python's position),
bytes that do not decode, a binary file, a path that does not exist or cannot be read, code
nested too deeply to analyse, or a file too large (over 1 MiB and able to start processes).
The run goes on with the other files.

## Why is this bad?
No rule has looked at the file, so none of its problems is reported.

## Example
```python
with mp.Pool(2) as pool
    pool.map(work, items)
```

## Use instead
Fix the syntax error, or exclude generated and vendored files in `[tool.mplint]`. `--select`,
`--ignore` and `per-file-ignores` treat MPL000 like any other code: `--ignore MPL000` hides
these lines, and `--select MPL2` reports MPL2xx findings alone. With `--exit-zero` a run
exits 0 also when a file cannot be linted.

## Fix safety
Never fixed automatically.
"""
SAFE, UNSAFE = "safe", "unsafe"  # how sure a fix is to keep the program's meaning


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) up to (end_line, end_column), 1-based and
    exclusive, with ``content``. In a notebook, ``cell`` is the number of the cell the edit
    changes (as a finding's) and the positions count within that cell's source."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str
    cell: int | None = None


@dataclass(frozen=True)
class NewFile:
    """A file a fix creates beside the linted one: its path, as mplint shows the linted file's
    (the same folder), and its whole content."""

    path: str
    content: str


@dataclass(frozen=True)
class Fix:
    """A fix a rule offers; ``safety`` is "safe" or "unsafe". ``edits`` are filled in for
    machine-readable output (``--format json``/``sarif``) and editors: the fewest
    non-overlapping replacements, in order, all positioned in the original text; ``creates``,
    the new files the fix writes along with them (MPL207's module beside a notebook)."""

    safety: str
    title: str = ""
    edits: tuple[Edit, ...] = ()
    creates: tuple[NewFile, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One problem at one place. Lines and columns are 1-based; end positions are exclusive.
    In a notebook, ``cell`` is the cell's number among all its cells (from 1) and the lines
    count within that cell; elsewhere it is None."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    message: str
    fix: Fix | None = None
    cell: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _key(self) -> tuple[str, int, int, int, int, int, str, str, str]:
        return (self.path, self.cell or 0, self.line, self.column, self.end_line,
                self.end_column, self.code, self.name, self.message)

    # Findings sort by file, cell, then position.
    def __lt__(self, other: Finding) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Finding) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Finding) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Finding) -> bool:
        return self._key() >= other._key()

    @property
    def place(self) -> str:
        """``path:line:column``, or in a notebook ``path:cell N:line:column``."""
        cell = f"cell {self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{cell}{self.line}:{self.column}"

    @property
    def is_error(self) -> bool:
        return self.code == ERROR_CODE


def edits_between(before: str, after: str) -> tuple[Edit, ...]:
    """The replacements that turn ``before`` into ``after``, positioned in ``before``: changed
    runs of lines, lines that only moved in or out matched up so that re-indenting a line is
    an edit of its indentation, each narrowed to the characters that differ, and edits that
    touch merged."""
    import difflib

    old, new = physical_lines(before, keepends=True), physical_lines(after, keepends=True)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    spans: list[tuple[int, int, str]] = []  # offsets in ``before`` and the new text

    def replace_lines(i1: int, i2: int, j1: int, j2: int) -> None:
        removed, added = "".join(old[i1:i2]), "".join(new[j1:j2])
        head = _common_prefix(removed, added)
        tail = _common_suffix(removed[head:], added[head:])
        if head < len(removed) - tail or head < len(added) - tail:
            spans.append((starts[i1] + head, starts[i2] - tail, added[head:len(added) - tail]))

    lines = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            continue
        stripped = difflib.SequenceMatcher(None, [line.strip() for line in old[i1:i2]],
                                           [line.strip() for line in new[j1:j2]], autojunk=False)
        for tag2, a1, a2, b1, b2 in stripped.get_opcodes():
            if tag2 == "equal":
                for k in range(a2 - a1):
                    replace_lines(i1 + a1 + k, i1 + a1 + k + 1, j1 + b1 + k, j1 + b1 + k + 1)
            else:
                replace_lines(i1 + a1, i1 + a2, j1 + b1, j1 + b2)
    merged: list[tuple[int, int, str]] = []
    for start, end, content in spans:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, merged[-1][2] + content)
        else:
            merged.append((start, end, content))
    return tuple(Edit(*_position(before, start), *_position(before, end), content)
                 for start, end, content in merged)


def _common_prefix(a: str, b: str) -> int:
    size = 0
    limit = min(len(a), len(b))
    while size < limit and a[size] == b[size]:
        size += 1
    if 0 < size < len(a) and a[size - 1] == "\r" and a[size] == "\n":
        size -= 1  # never split a \r\n line end
    return size


def _common_suffix(a: str, b: str) -> int:
    size = 0
    limit = min(len(a), len(b))
    while size < limit and a[len(a) - 1 - size] == b[len(b) - 1 - size]:
        size += 1
    if 0 < size < len(a) and a[len(a) - size] == "\n" and a[len(a) - size - 1] == "\r":
        size -= 1
    return size


def _position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``, lines as Python counts them."""
    line_start = 0
    line = 1
    for piece in physical_lines(text[:offset], keepends=True):
        if piece.endswith(("\n", "\r")):
            line += 1
            line_start += len(piece)
    return line, offset - line_start + 1


# What a finding's message says when no fix is offered, followed by the reason and ")".
NO_FIX = " (no automatic fix: "


def error(path: str, reason: str, line: int = 1, column: int = 1) -> Finding:
    """The finding for a file that could not be read, decoded or parsed."""
    return Finding(path, line, column, line, column, ERROR_CODE, ERROR_NAME, reason)
