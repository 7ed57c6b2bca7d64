"""``mplint --fix`` and ``--diff``: fix files in place, or show what would change."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mplint.engine import Engine, FixResult
from mplint.findings import Finding, error
from mplint.sources import (
    Candidate,
    SourceError,
    decode_with_encoding,
    read,
    write_atomically,
)


@dataclass
class FixRun:
    """What a fixing run did: findings left, fixes applied and refused, and the diff."""

    remaining: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    refused: list[tuple[Finding, str]] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    files_changed: int = 0


def fix_paths(candidates: Iterable[Candidate], engine: Engine, unsafe: bool,
              write: bool) -> FixRun:
    """Fix every candidate; ``write`` False only collects the diff."""
    run = FixRun()
    for candidate in candidates:
        shown = str(candidate.path)
        if candidate.error is not None:
            run.remaining.append(error(shown, candidate.error))
            continue
        try:
            data = read(candidate.path)
            text, encoding = decode_with_encoding(data, shown)
        except SourceError as problem:
            run.remaining.append(error(shown, str(problem), problem.line, problem.column))
            continue
        if not engine.needs_analysis(data, candidate.path):
            continue
        result = engine.fix_text(text, shown, candidate.path, unsafe)
        record(run, result, shown, text)
        if result.text != text and write:
            try:
                write_atomically(candidate.path, result.text, encoding)
            except SourceError as problem:
                run.remaining.append(error(shown, str(problem)))
                continue
        run.remaining.extend(engine.analyse(result.text, shown, candidate.path))
    run.remaining.sort()
    return run


def fix_source(engine: Engine, text: str, shown: str, path: Path | None,
               unsafe: bool) -> tuple[FixRun, str]:
    """Fix one source given as text (stdin); returns the run and the fixed text."""
    run = FixRun()
    result = engine.fix_text(text, shown, path, unsafe)
    record(run, result, shown, text)
    run.remaining = engine.analyse(result.text, shown, path)
    return run, result.text


def record(run: FixRun, result: FixResult, shown: str, before: str) -> None:
    run.fixed.extend(result.fixed)
    run.refused.extend(result.refused)
    if result.text != before:
        run.files_changed += 1
        run.diff.extend(difflib.unified_diff(before.splitlines(keepends=True),
                                             result.text.splitlines(keepends=True),
                                             f"a/{shown}", f"b/{shown}"))
