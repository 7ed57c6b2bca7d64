"""files -> prefilter -> parse once -> facts -> every rule -> findings.

The CLI, the flake8 plugin and the library API are thin adapters over :class:`Engine`;
:func:`lint_paths` adds the cache and the worker processes for whole trees.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mplint.config import Config, Noqa
from mplint.findings import SAFE, Finding, Fix, edit_between, error
from mplint.modules import Tree
from mplint.prefilter import ImportGraph, Scan, scan
from mplint.sources import MAX_BYTES, Candidate, SourceError, decode, read

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    import libcst as cst

    from mplint.analysis.project import ProjectIndex
    from mplint.cache import Cache
    from mplint.fixers.base import Fixer
    from mplint.rules.base import Rule

# Below this many files to analyse a worker pool costs more to start than it saves.
_PARALLEL_THRESHOLD = 4


def _read_scan(path: Path) -> Scan | None:
    """The prefilter's view of a module of the tree that is not itself being linted."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return scan(path.read_bytes())
    except OSError:
        return None


class Engine:
    """Lints sources with every enabled rule; one instance serves many files."""

    def __init__(self, config: Config | None = None, tree: Tree | None = None,
                 edits: bool = False) -> None:
        self.config = config or Config()
        self.tree = tree or Tree(self.config.search_roots())
        self.edits = edits  # compute each fix's text edit (JSON and SARIF output)

    # libcst and the rules are imported only once a file needs them: most files never do.
    @cached_property
    def rules(self) -> list[Rule]:
        from mplint.rules import all_rules

        return [rule() for rule in all_rules() if self.config.enabled(rule.code)]

    @cached_property
    def project(self) -> ProjectIndex:
        from mplint.analysis.project import ProjectIndex

        return ProjectIndex(self.config.extra_models(), self.config.extra_bases(), self.tree)

    @cached_property
    def graph(self) -> ImportGraph:
        return ImportGraph(_read_scan, self.tree)

    def needs_analysis(self, data: bytes, path: Path | None) -> bool:
        """The prefilter: False means no rule can fire on this file."""
        if path is not None:
            self.tree.include(path)
        return self.graph.needs_analysis(path.absolute() if path else None, scan(data))

    def lint_file(self, path: Path, analysed: bool = False) -> list[Finding]:
        """Lint one file; ``analysed`` skips the prefilter (the caller already applied it)."""
        shown = str(path)
        try:
            data = read(path)
        except SourceError as problem:
            return [error(shown, str(problem))]
        return self.lint_bytes(data, shown, path, analysed)

    def lint_bytes(self, data: bytes, shown: str, path: Path | None = None,
                   analysed: bool = False) -> list[Finding]:
        """Lint one file's bytes; ``shown`` is the path findings carry."""
        try:
            text = decode(data, shown)
        except SourceError as problem:
            return [error(shown, str(problem), problem.line, problem.column)]
        if not analysed and not self.needs_analysis(data, path):
            return []
        return self.analyse(text, shown, path)

    def analyse(self, text: str, shown: str, path: Path | None = None) -> list[Finding]:
        """Parse and run every rule, with no prefilter."""
        try:
            return self._lint_text(text, shown, path)
        except RecursionError:
            return [error(shown, "too deeply nested to analyse")]
        except Exception as bug:  # one file's analysis failing must not end the run
            return [error(shown, f"internal error while analysing ({type(bug).__name__}: {bug});"
                                 " please report it with this file")]

    def _lint_text(self, text: str, shown: str, path: Path | None) -> list[Finding]:
        analysis = self._analysis(text, shown, path)
        if isinstance(analysis, Finding):
            return [analysis]
        if not self.edits:
            return sorted(finding for finding, _ in analysis.items)
        return sorted(_with_edit(finding, fixer, analysis.module, text)
                      for finding, fixer in analysis.items)

    def _analysis(self, text: str, shown: str, path: Path | None) -> _Analysis | Finding:
        """Every finding with the fixer its rule offers; an error finding if it cannot parse."""
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        from mplint.analysis.facts import ModuleFacts
        from mplint.modules import module_name

        try:
            module = cst.parse_module(text)
        except cst.ParserSyntaxError as problem:
            return _syntax_error(text, shown, problem)
        name = ""
        if path is not None:
            self.tree.include(path)
            name = module_name(path.absolute())[1]
        facts = ModuleFacts(self.project.evaluator(module, name, path),
                            self.config.default_methods())
        reports = [(rule, report) for rule in self.rules if self.config.enabled(rule.code, shown)
                   for report in rule.check(facts)]
        if not reports:
            return _Analysis(module, [])
        # Positions cost a second pass over the tree: only files with findings pay for it.
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        noqa = Noqa.scan(text)
        items: list[tuple[Finding, Fixer | None]] = []
        for rule, report in reports:
            where = positions[report.node]
            if noqa.suppresses(where.start.line, rule.code):
                continue
            fix = Fix(report.fix.safety, report.fix.title) if report.fix else None
            items.append((Finding(shown, where.start.line, where.start.column + 1,
                                  where.end.line, where.end.column + 1, rule.code, rule.name,
                                  report.message, fix), report.fix))
        return _Analysis(module, items)

    def fix_text(self, text: str, shown: str, path: Path | None = None,
                 unsafe: bool = False) -> FixResult:
        """Apply the offered fixes one at a time (safe ones, and unsafe ones when asked),
        re-parsing and re-linting after each; a fix whose result does not parse, keeps its
        finding or adds another is refused and the text stays as it was."""
        fixed: list[Finding] = []
        refused: list[tuple[Finding, str]] = []
        for _ in range(_MAX_FIX_ROUNDS):
            analysis = self._analysis(text, shown, path)
            if isinstance(analysis, Finding):
                break
            tried = {f for f, _ in refused}
            chosen = next(((f, fixer) for f, fixer in sorted(analysis.items, key=lambda i: i[0])
                           if fixer is not None and (unsafe or fixer.safety == SAFE)
                           and f not in tried), None)
            if chosen is None:
                break
            finding, fixer = chosen
            outcome = self._attempt(analysis, finding, fixer, shown, path)
            if isinstance(outcome, _Refusal):
                refused.append((finding, outcome.reason))
            else:
                text = outcome
                fixed.append(finding)
        return FixResult(text, fixed, refused)

    def _attempt(self, analysis: _Analysis, finding: Finding, fixer: Fixer, shown: str,
                 path: Path | None) -> str | _Refusal:
        try:
            new_text = fixer.apply(analysis.module).code
            compile(new_text, shown, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError) as problem:
            return _Refusal(f"the fixed code does not parse ({problem})")
        except Exception as bug:  # a fixer failing must leave the file alone, not end the run
            return _Refusal(f"the fix failed ({type(bug).__name__}: {bug})")
        after = self._analysis(new_text, shown, path)
        if isinstance(after, Finding):
            return _Refusal("libcst cannot parse the fixed code")
        before_codes = Counter(f.code for f, _ in analysis.items)
        after_codes = Counter(f.code for f, _ in after.items)
        if after_codes[finding.code] >= before_codes[finding.code]:
            return _Refusal("the finding is still there after the fix")
        added = sorted(code for code in after_codes if after_codes[code] > before_codes[code])
        if added:
            return _Refusal(f"the fix would add {', '.join(added)}")
        return new_text


_MAX_FIX_ROUNDS = 32


@dataclass
class _Analysis:
    module: cst.Module
    items: list[tuple[Finding, Fixer | None]]


@dataclass(frozen=True)
class _Refusal:
    reason: str


@dataclass(frozen=True)
class FixResult:
    """The fixed text, the findings fixed, and the fixes refused with the reason."""

    text: str
    fixed: list[Finding]
    refused: list[tuple[Finding, str]]


def _with_edit(finding: Finding, fixer: Fixer | None, module: cst.Module, text: str) -> Finding:
    """The finding with its fix as a text edit, for machine-readable output."""
    if fixer is None or finding.fix is None:
        return finding
    try:
        after = fixer.apply(module).code
    except Exception:  # the edit is a convenience: a failing fixer only loses it
        return finding
    return replace(finding, fix=replace(finding.fix, edit=edit_between(text, after)))


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


def lint_paths(candidates: Iterable[Candidate], config: Config, jobs: int = 1,
               cache: Cache | None = None, prefilter: bool = True,
               tree: Tree | None = None, edits: bool = False) -> list[Finding]:
    """Lint every candidate, from the cache where nothing changed, in parallel where it pays
    off; findings come sorted. ``tree`` bounds cross-module lookups (default: the config's).

    Files to analyse go to the worker processes as soon as the prefilter has found enough of
    them, so reading the rest of the tree overlaps with parsing."""
    tree = tree or Tree(config.search_roots())
    run = _Run(config, cache, prefilter, tree, edits)
    findings: list[Finding] = []
    pool: ProcessPoolExecutor | None = None
    pending: list[tuple[Path, Future[list[Finding]]]] = []
    try:
        for candidate in candidates:
            findings.extend(run.triage(candidate))
            if pool is None and jobs > 1 and len(run.todo) >= _PARALLEL_THRESHOLD:
                pool = _pool(config, tree, jobs, edits)
            if pool is not None:
                pending.extend((path, pool.submit(_analyse_one, path)) for path in run.todo)
                run.todo.clear()
        results = [(path, future.result()) for path, future in pending]
        results += [(path, run.engine.lint_file(path, analysed=True)) for path in run.todo]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    for path, found in results:
        run.store(path, found)
        findings.extend(found)
    if cache is not None:
        cache.save()
    return sorted(findings)


class _Run:
    """One run over a tree: stats, cache entries, the import graph, and what to analyse."""

    def __init__(self, config: Config, cache: Cache | None, prefilter: bool, tree: Tree,
                 edits: bool) -> None:
        self.engine = Engine(config, tree, edits)
        self.cache = cache
        self.prefilter = prefilter
        self.todo: list[Path] = []
        self._entries: dict[Path, dict[str, Any]] = {}  # this run's view, by absolute path
        self._signatures: dict[Path, tuple[int, int] | None] = {}
        self.graph = ImportGraph(self._scan_of, tree)

    def triage(self, candidate: Candidate) -> list[Finding]:
        """The findings known without analysis; files that need it go to ``todo``."""
        from mplint.cache import finding_from_json

        shown = str(candidate.path)
        if candidate.error is not None:
            return [error(shown, candidate.error)]
        path = candidate.path.absolute()
        try:
            entry = self._entry(path, need_text=True)
        except SourceError as problem:
            return [error(shown, str(problem))]
        if entry.get("error"):
            line, column, reason = entry["error"]
            return [error(shown, reason, line, column)]
        if self.prefilter and not self.graph.needs_analysis(path, self._scan_of(path) or _EMPTY):
            return []
        if entry.get("shown") == shown and entry["findings"] is not None \
                and self._dependencies_unchanged(path, entry):
            try:
                return [finding_from_json(shown, row) for row in entry["findings"]]
            except (TypeError, ValueError, IndexError):
                pass  # a damaged entry: analyse again
        self.todo.append(candidate.path)
        return []

    def store(self, path: Path, findings: list[Finding]) -> None:
        from mplint.cache import finding_to_json

        if self.cache is None:
            return
        absolute = path.absolute()
        entry = dict(self._entries[absolute])
        entry["shown"] = str(path)
        entry["findings"] = [finding_to_json(f) for f in findings]
        entry["deps"] = [[str(dep), *(self._signature(dep) or (0, 0))]
                         for dep in self.graph.dependencies(absolute)]
        self.cache.put(str(absolute), entry)

    # -- entries -------------------------------------------------------------------------------
    def _signature(self, path: Path) -> tuple[int, int] | None:
        from mplint.cache import signature

        if path not in self._signatures:
            try:
                self._signatures[path] = signature(path.stat())
            except OSError:
                self._signatures[path] = None
        return self._signatures[path]

    def _entry(self, path: Path, need_text: bool) -> dict[str, Any]:
        """The cache entry for ``path``, refreshed from the file when it changed.

        Raises SourceError when the file cannot be read."""
        from mplint.cache import content_hash

        known = self._entries.get(path)
        if known is not None and (known["checked"] or not need_text):
            return known
        sig = self._signature(path)
        cached = known or (self.cache.get(str(path)) if self.cache is not None else None)
        if cached is not None and not _valid(cached):
            cached = None
        if sig is not None and cached is not None and tuple(cached["sig"]) == sig \
                and (cached["checked"] or not need_text):
            self._entries[path] = cached
            return cached
        data = read(path)
        digest = content_hash(data) if self.cache is not None else ""
        if cached is not None and cached["sha"] == digest and (cached["checked"] or not need_text):
            entry = {**cached, "sig": list(sig or (0, len(data)))}
        else:
            found = scan(data)
            entry = {"sig": list(sig or (0, len(data))), "sha": digest, "checked": need_text,
                     "scan": [found.direct, [list(i) for i in found.imports]],
                     "error": None, "findings": None}
            if need_text:
                try:
                    decode(data, path)
                except SourceError as problem:
                    entry["error"] = [problem.line, problem.column, str(problem)]
        self._entries[path] = entry
        if self.cache is not None:
            self.cache.put(str(path), entry)
        return entry

    def _scan_of(self, path: Path) -> Scan | None:
        try:
            entry = self._entry(path, need_text=False)
        except SourceError:
            return None
        direct, imports = entry["scan"]
        return Scan(bool(direct), tuple((int(level), str(name)) for level, name in imports))

    def _dependencies_unchanged(self, path: Path, entry: dict[str, Any]) -> bool:
        recorded = entry.get("deps")
        if not isinstance(recorded, list):
            return False
        current = self.graph.dependencies(path)
        if [Path(row[0]) for row in recorded] != current:
            return False
        return all(self._signature(Path(dep)) == (mtime, size) for dep, mtime, size in recorded)


_EMPTY = Scan(False, ())


def _valid(entry: dict[str, Any]) -> bool:
    """Whether a cache entry has the shape this version writes (anything else is ignored)."""
    try:
        direct, imports = entry["scan"]
        mtime, size = entry["sig"]
        return (isinstance(direct, bool) and isinstance(mtime, int) and isinstance(size, int)
                and isinstance(entry["sha"], str) and isinstance(entry["checked"], bool)
                and all(isinstance(level, int) and isinstance(name, str)
                        for level, name in imports)
                and (entry["error"] is None or len(entry["error"]) == 3)
                and (entry["findings"] is None or isinstance(entry["findings"], list)))
    except (KeyError, TypeError, ValueError):
        return False


def _pool(config: Config, tree: Tree, jobs: int, edits: bool) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork is cheapest where it is safe: the linter runs no threads and no accelerator.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(config, tree, edits))


_worker_engine: Engine | None = None


def _init_worker(config: Config, tree: Tree, edits: bool) -> None:
    global _worker_engine
    _worker_engine = Engine(config, tree, edits)


def _analyse_one(path: Path) -> list[Finding]:
    assert _worker_engine is not None
    return _worker_engine.lint_file(path, analysed=True)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
