"""The public result types."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ERROR_CODE = "MPL000"  # a file that could not be linted
ERROR_NAME = "unlintable-file"


@dataclass(frozen=True)
class Fix:
    """A fix a rule offers; ``safety`` is "safe" or "unsafe"."""

    safety: str
    title: str = ""


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


def error(path: str, reason: str, line: int = 1, column: int = 1) -> Finding:
    """The finding for a file that could not be read, decoded or parsed."""
    return Finding(path, line, column, line, column, ERROR_CODE, ERROR_NAME, reason)
