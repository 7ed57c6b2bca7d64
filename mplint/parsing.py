"""libcst's parse, without validating the nodes its parser builds.

Every libcst node checks its own fields when it is made (``CSTNode.__post_init__``), which is
for nodes built by hand: the parser only builds valid ones, and the checks are about 40% of a
parse. They are skipped while the parser runs, and stay on for the nodes fixes build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libcst as cst


def parse_module(text: str) -> cst.Module:
    """``libcst.parse_module(text)``, faster."""
    import libcst as cst

    try:
        from libcst._nodes.base import CSTNode
    except ImportError:  # another libcst layout: parse as it is
        return cst.parse_module(text)
    checks = CSTNode.__dict__.get("__post_init__")
    if checks is None:
        return cst.parse_module(text)
    CSTNode.__post_init__ = _unchecked  # type: ignore[method-assign]
    try:
        return cst.parse_module(text)
    finally:
        CSTNode.__post_init__ = checks  # type: ignore[method-assign]


def _unchecked(self: object) -> None:
    return None
