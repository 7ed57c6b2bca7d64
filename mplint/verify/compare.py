"""Differential check: does the fixed script print what the original printed?

Output is compared after a documented normalisation, so that values that differ on every run
anyway do not count as differences:
- memory addresses (``0x7f3a...``) become ``0x?``;
- durations (a number followed by ``s``, ``ms``, ``us``, ``sec``, ``seconds``) become ``<time>``;
- process ids after ``pid`` (``pid 4242``, ``pid=4242``) become ``pid <n>``;
- trailing white space on each line and trailing blank lines are dropped.
"""

from __future__ import annotations

import difflib
import re

_RULES = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:seconds|sec|ms|us|s)\b"), "<time>"),
    (re.compile(r"\bpid([ =:]+)\d+", re.IGNORECASE), r"pid\1<n>"),
)


def normalise(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")


def difference(original: str, fixed: str, original_code: int | None,
               fixed_code: int | None) -> str | None:
    """None when the runs agree; otherwise a short unified diff and the exit codes."""
    problems = []
    if original_code != fixed_code:
        problems.append(f"exit code {original_code} (original) != {fixed_code} (fixed)")
    a, b = normalise(original), normalise(fixed)
    if a != b:
        diff = difflib.unified_diff(a.splitlines(), b.splitlines(), "original", "fixed",
                                    lineterm="", n=1)
        problems.append("\n".join(list(diff)[:40]))
    return "\n".join(problems) or None
