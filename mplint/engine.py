"""files -> prefilter -> parse once -> facts -> every rule -> findings.

The CLI, the flake8 plugin and the library API are thin adapters over :class:`Engine`.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mplint import knowledge
from mplint.config import Config, Noqa
from mplint.findings import Finding, error
from mplint.sources import Candidate, SourceError, decode, read

if TYPE_CHECKING:
    from mplint.analysis.project import ProjectIndex
    from mplint.rules.base import Rule

# Below this many files a worker pool costs more to start than it saves.
_PARALLEL_THRESHOLD = 16


def may_start_processes(source: bytes | str) -> bool:
    """Cheap substring test: False means no process API is reachable from this source."""
    if isinstance(source, str):
        return any(word in source for word in knowledge.PREFILTER_TEXT)
    return any(word in source for word in knowledge.PREFILTER_WORDS)


class Engine:
    """Lints sources with every enabled rule; one instance serves many files."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()

    # libcst and the rules are imported only once a file needs them: most files never do.
    @cached_property
    def rules(self) -> list[Rule]:
        from mplint.rules import all_rules

        return [rule() for rule in all_rules() if self.config.enabled(rule.code)]

    @cached_property
    def project(self) -> ProjectIndex:
        from mplint.analysis.project import ProjectIndex

        project = ProjectIndex(self.config.extra_models(), self.config.extra_bases())
        if self.config.root is not None:
            project.add_root(self.config.root)
            project.add_root(self.config.root / "src")
        return project

    def lint_file(self, path: Path) -> list[Finding]:
        shown = str(path)
        try:
            data = read(path)
        except SourceError as problem:
            return [error(shown, str(problem))]
        return self.lint_bytes(data, shown, path)

    def lint_bytes(self, data: bytes, shown: str, path: Path | None = None) -> list[Finding]:
        """Lint one file's bytes; ``shown`` is the path findings carry."""
        try:
            text = decode(data, shown)
        except SourceError as problem:
            return [error(shown, str(problem), problem.line, problem.column)]
        return self.lint_text(text, shown, path)

    def lint_text(self, text: str, shown: str, path: Path | None = None) -> list[Finding]:
        """Lint one file's decoded source; ``path`` locates it among its package's modules."""
        if not may_start_processes(text):
            return []
        try:
            return self._lint_text(text, shown, path)
        except RecursionError:
            return [error(shown, "too deeply nested to analyse")]

    def _lint_text(self, text: str, shown: str, path: Path | None) -> list[Finding]:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        from mplint.analysis.facts import ModuleFacts
        from mplint.analysis.project import module_name

        try:
            module = cst.parse_module(text)
        except cst.ParserSyntaxError as problem:
            return [_syntax_error(text, shown, problem)]
        name = ""
        if path is not None:
            root, name = module_name(path.absolute())
            self.project.add_root(root)
        facts = ModuleFacts(self.project.evaluator(module, name))
        reports = [(rule, report) for rule in self.rules if self.config.enabled(rule.code, shown)
                   for report in rule.check(facts)]
        if not reports:
            return []
        # Positions cost a second pass over the tree: only files with findings pay for it.
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        noqa = Noqa.scan(text)
        findings: list[Finding] = []
        for rule, report in reports:
            where = positions[report.node]
            if not noqa.suppresses(where.start.line, rule.code):
                findings.append(Finding(shown, where.start.line, where.start.column + 1,
                                        where.end.line, where.end.column + 1, rule.code,
                                        rule.name, report.message))
        return sorted(findings)


def _syntax_error(text: str, shown: str, problem: Exception) -> Finding:
    """Python's own message and position where it has one: clearer than the parser's."""
    try:
        ast.parse(text)
    except SyntaxError as python_error:
        return error(shown, f"syntax error: {python_error.msg}", python_error.lineno or 1,
                     python_error.offset or 1)
    except (ValueError, RecursionError, MemoryError):
        pass
    line = getattr(problem, "raw_line", 1)
    column = getattr(problem, "raw_column", 0) + 1
    message = str(getattr(problem, "message", problem)).splitlines()[0]
    return error(shown, f"syntax error: {message}", line, column)


def lint_paths(candidates: Iterable[Candidate], config: Config, jobs: int = 1) -> list[Finding]:
    """Lint every candidate, in parallel when it pays off; findings come sorted."""
    findings: list[Finding] = []
    paths: list[Path] = []
    for candidate in candidates:
        if candidate.error is not None:
            findings.append(error(str(candidate.path), candidate.error))
        else:
            paths.append(candidate.path)
    if jobs > 1 and len(paths) >= _PARALLEL_THRESHOLD:
        findings.extend(_lint_parallel(paths, config, jobs))
    else:
        engine = Engine(config)
        for path in paths:
            findings.extend(engine.lint_file(path))
    return sorted(findings)


def _lint_parallel(paths: Sequence[Path], config: Config, jobs: int) -> Iterator[Finding]:
    # fork is cheapest where it is safe: the linter runs no threads and no accelerator.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunks = [list(paths[i::jobs * 4]) for i in range(jobs * 4)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                             initializer=_init_worker, initargs=(config,)) as pool:
        for result in pool.map(_lint_chunk, chunks):
            yield from result


_worker_engine: Engine | None = None


def _init_worker(config: Config) -> None:
    global _worker_engine
    _worker_engine = Engine(config)


def _lint_chunk(paths: list[Path]) -> list[Finding]:
    assert _worker_engine is not None
    return [finding for path in paths for finding in _worker_engine.lint_file(path)]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
