"""Adding ``# noqa: CODE`` comments: ``mplint --add-noqa`` and the editor's "disable for this
line" action. A comment is added only where it changes nothing but the suppression: never on
a line that ends inside a string (the comment would become part of the string) or after a
line continuation (a syntax error)."""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mplint.config import Noqa
from mplint.sources import physical_lines

_NOQA_CODES = re.compile(r"#\s*noqa:\s?[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*", re.I)
_BARE_NOQA = re.compile(r"#\s*noqa(?!:)", re.I)


@dataclass(frozen=True)
class Suppressed:
    """The text with the comments added, how many codes were added, and the lines that could
    not take a comment (with the reason)."""

    text: str
    added: int
    refused: tuple[tuple[int, str], ...]


def add_noqa(text: str, wanted: Mapping[int, Iterable[str]]) -> Suppressed:
    """Add ``# noqa: CODES`` to each line of ``wanted`` (1-based line -> codes), extending a
    comment the line already has."""
    lines = physical_lines(text, keepends=True)
    inside = _lines_ending_inside_a_token(text)
    noqa = Noqa.scan(text)
    added = 0
    refused: list[tuple[int, str]] = []
    for number in sorted(wanted):
        if not 1 <= number <= len(lines):
            continue
        codes = sorted({c for c in wanted[number] if not noqa.suppresses(number, c)})
        if not codes:
            continue
        raw = lines[number - 1]
        body = raw.rstrip("\r\n")
        if number in inside or body.rstrip().endswith("\\"):
            refused.append((number, "the line ends inside a string or continues on the next "
                                    "line, so a comment there would change the code"))
            continue
        lines[number - 1] = _with_codes(body, codes) + raw[len(body):]
        added += len(codes)
    result = "".join(lines)
    if added and not _compiles(result):  # cannot happen by construction; never risk it
        return Suppressed(text, 0, tuple((n, "the comment would not parse") for n in wanted))
    return Suppressed(result, added, tuple(refused))


def _with_codes(body: str, codes: list[str]) -> str:
    existing = _NOQA_CODES.search(body)
    if existing is not None:
        return body[:existing.end()] + "".join(f", {c}" for c in codes) + body[existing.end():]
    if _BARE_NOQA.search(body):  # already silences every code
        return body
    gap = "" if body.endswith((" ", "\t")) else "  "
    return f"{body}{gap}# noqa: {', '.join(codes)}"


def _lines_ending_inside_a_token(text: str) -> set[int]:
    """Lines whose end falls inside a (multi-line) string; every line when the text cannot
    be tokenized."""
    spanned: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            start, end = token.start[0], token.end[0]
            if end > start and token.type not in (tokenize.NL, tokenize.NEWLINE):
                spanned.update(range(start, end))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return set(range(1, len(physical_lines(text)) + 1))
    return spanned


def _compiles(text: str) -> bool:
    import ast

    try:
        compile(text, "<noqa>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
