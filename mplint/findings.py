"""The public result types."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ERROR_CODE = "MPL000"  # a file that could not be linted
ERROR_NAME = "unlintable-file"
SAFE, UNSAFE = "safe", "unsafe"  # how sure a fix is to keep the program's meaning


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) up to (end_line, end_column), 1-based and
    exclusive, with ``content``."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True)
class Fix:
    """A fix a rule offers; ``safety`` is "safe" or "unsafe". ``edit`` is filled in for
    machine-readable output (``--format json``/``sarif``)."""

    safety: str
    title: str = ""
    edit: Edit | None = None


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place. Lines and columns are 1-based; end positions are exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    message: str
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_error(self) -> bool:
        return self.code == ERROR_CODE


def edit_between(before: str, after: str) -> Edit:
    """The one replacement that turns ``before`` into ``after`` (common ends left out)."""
    start = 0
    limit = min(len(before), len(after))
    while start < limit and before[start] == after[start]:
        start += 1
    end_before, end_after = len(before), len(after)
    while end_before > start and end_after > start and before[end_before - 1] == after[
            end_after - 1]:
        end_before -= 1
        end_after -= 1
    line, column = _position(before, start)
    end_line, end_column = _position(before, end_before)
    return Edit(line, column, end_line, end_column, after[start:end_after])


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# What a finding's message says when no fix is offered, followed by the reason and ")".
NO_FIX = " (no automatic fix: "


def error(path: str, reason: str, line: int = 1, column: int = 1) -> Finding:
    """The finding for a file that could not be read, decoded or parsed."""
    return Finding(path, line, column, line, column, ERROR_CODE, ERROR_NAME, reason)
