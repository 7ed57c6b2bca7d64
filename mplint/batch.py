"""Whole runs over many files: triage (read, decode, prefilter, cache), the worker pool, and the
bookkeeping that lets a re-run over an unchanged tree only stat its files.

Linting and fixing take the same path: a file whose cached result is still valid is not read
again, the rest go to worker processes as soon as enough of them are found (so reading the rest
of the tree overlaps with parsing), and each result is stored with the files it depended on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from mplint.config import Config
from mplint.findings import SAFE, Finding, error
from mplint.modules import Tree, module_name
from mplint.prefilter import ImportGraph, Scan, scan
from mplint.sources import (
    TOO_LARGE,
    Candidate,
    Source,
    SourceError,
    decode_file,
    is_notebook,
    read,
    unified_diff,
)

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from mplint.cache import Cache, Entry
    from mplint.engine import Engine, FixResult

# Below this many files to analyse a worker pool costs more to start than it saves; in a run
# over this many files or more, the pool starts with the first file to analyse, so that its
# workers load the parser while the rest of the tree is still being read.
_PARALLEL_THRESHOLD = 4
_LARGE_RUN = 50
_Result = TypeVar("_Result")


@dataclass
class FixRun:
    """What a fixing run did: findings left, fixes applied and refused, and the diff."""

    remaining: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    refused: list[tuple[Finding, str]] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    files_changed: int = 0
    # findings a fix made go away as a side effect, each with the finding whose fix did it
    resolved: list[tuple[Finding, Finding]] = field(default_factory=list)

    def add(self, other: FixRun) -> None:
        self.remaining.extend(other.remaining)
        self.fixed.extend(other.fixed)
        self.resolved.extend(other.resolved)
        self.refused.extend(other.refused)
        self.diff.extend(other.diff)
        self.files_changed += other.files_changed


@dataclass(frozen=True)
class Options:
    """How a run treats the tree: the cache to use, the prefilter, the worker count."""

    jobs: int = 1
    cache: Cache | None = None
    prefilter: bool = True
    edits: bool = False  # compute each fix's text edit (JSON and SARIF output)


def lint_paths(candidates: Iterable[Candidate], config: Config, options: Options,
               tree: Tree | None = None) -> list[Finding]:
    """Lint every candidate, from the cache where nothing changed; findings come sorted."""
    run = _Run(config, options, tree or Tree(config.search_roots()))
    listed = list(candidates)
    recalled = run.recall(listed)
    if recalled is not None:
        return recalled
    found: list[Finding] = []
    for path, findings in run.each(listed, found.extend, _lint_one):
        run.store(path, findings)
        found.extend(findings)
    run.save()
    found.sort()
    run.remember(listed, found)
    return found


def fix_paths(candidates: Iterable[Candidate], config: Config, options: Options, unsafe: bool,
              write: bool, tree: Tree | None = None) -> FixRun:
    """Fix every candidate (``write`` False only collects the diff). A file whose cached
    findings offer no fix to apply is not read again."""
    run = _Run(config, options, tree or Tree(config.search_roots()), unsafe)
    total = FixRun()
    task = _fix_and_write if write else _fix_only
    for path, result in run.each(candidates, total.remaining.extend, task, (unsafe,)):
        if not result.files_changed:
            run.store(path, result.remaining)  # a changed file is read again next time
        total.add(result)
    run.save()
    total.remaining.sort()
    return total


def fix_source(engine: Engine, source: Source, unsafe: bool) -> tuple[FixRun, str]:
    """Fix one source given as text (stdin); returns the run and the fixed text (for a
    notebook, its JSON)."""
    result = engine.fix(source, unsafe, prefilter=False)
    return _record(source, result.text, result), source.stored(result.text)


def _record(source: Source, text: str, result: FixResult) -> FixRun:
    run = FixRun(list(result.remaining), list(result.fixed), list(result.refused),
                 resolved=list(result.resolved))
    if text != source.text:
        run.files_changed = 1 + len(result.created)
        run.diff.extend(_diff(source, text))
        for path, content in result.created:
            shown = str(Path(source.shown).parent / path.name)
            run.diff.extend(unified_diff("", content, shown))
    return run


def _diff(source: Source, text: str) -> list[str]:
    """The unified diff of a fix; for a notebook, one per changed cell, of its source."""
    if source.notebook is None:
        return unified_diff(source.text, text, source.shown)
    diff: list[str] = []
    for cell, before, after in source.notebook.changed_cells(text):
        diff.extend(unified_diff(before, after, f"{source.shown}:cell {cell}"))
    return diff


class _Run:
    """One run over a tree: cache entries, the import graph, and what to analyse."""

    def __init__(self, config: Config, options: Options, tree: Tree,
                 unsafe: bool | None = None) -> None:
        self.config, self.options, self.tree = config, options, tree
        self.unsafe = unsafe  # None: linting; else the fixes a fixing run applies
        self._entries: dict[Path, Entry] = {}  # this run's view, by absolute path
        self._signatures: dict[Path, tuple[int, int, int] | None] = {}
        self._key: str | bool | None = False  # the run's key in the cache; False: not yet
        self.graph = ImportGraph(self._scan_of, tree)

    @cached_property
    def engine(self) -> Engine:
        """The engine for files analysed in this process; a run whose files are all skipped
        or cached never imports it."""
        from mplint.engine import Engine

        return Engine(self.config, self.tree, self.options.edits)

    def each(self, candidates: Iterable[Candidate], known: Callable[[list[Finding]], object],
             task: Callable[..., _Result],
             extra: tuple[object, ...] = ()) -> list[tuple[Path, _Result]]:
        """``task(engine, path, *extra)`` for every candidate that needs analysis, in worker
        processes where it pays off; findings known without analysis go to ``known``."""
        pool: ProcessPoolExecutor | None = None
        todo: list[Path] = []
        pending: list[tuple[Path, Future[_Result]]] = []
        large = isinstance(candidates, list) and len(candidates) >= _LARGE_RUN
        threshold = 1 if large else _PARALLEL_THRESHOLD
        try:
            for candidate in candidates:
                found = self.triage(candidate)
                if found is None:
                    todo.append(candidate.path)
                else:
                    known(found)
                if pool is None and self.options.jobs > 1 and len(todo) >= threshold:
                    pool = _pool(self.config, self.tree, self.options)
                if pool is not None:
                    pending.extend((path, pool.submit(_in_worker, task, path, *extra))
                                   for path in todo)
                    todo.clear()
            results = [(path, future.result()) for path, future in pending]
            results += [(path, task(self.engine, path, *extra)) for path in todo]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return results

    def triage(self, candidate: Candidate) -> list[Finding] | None:
        """The findings known without analysis, or None when the file needs it."""
        shown = str(candidate.path)
        if candidate.error is not None:
            return [error(shown, candidate.error)]
        path = candidate.path.absolute()
        try:
            entry = self._entry(path, need_text=True)
        except SourceError as problem:
            return [error(shown, str(problem))]
        # a file that neither spells a process API nor imports anything: no need to ask more
        plain = self.options.prefilter and not entry.scan.direct and not entry.scan.imports
        if (not plain and (entry.error is None or entry.findings == ())
                and entry.shown == shown and entry.findings is not None
                and self._dependencies_unchanged(path, entry)
                and not self._fixable(entry.findings)):
            return list(entry.findings)  # analysed, or skipped by the prefilter, before
        skip = plain or (self.options.prefilter and not self.graph.needs_analysis(
            path, self._scan_of(path) or _EMPTY))
        if entry.error is not None:
            line, column, reason = entry.error
            if not (skip and reason.startswith(TOO_LARGE)):
                return [error(shown, reason, line, column)]
            # size matters only for a file that would be analysed
        if skip and not plain:
            self.store(candidate.path, [])  # the verdict holds while nothing it read changes
        return [] if skip else None

    def _fixable(self, findings: Iterable[Finding]) -> bool:
        """Whether a fixing run has something to try in these findings."""
        if self.unsafe is None:
            return False
        return any(f.fix is not None and (self.unsafe or f.fix.safety == SAFE) for f in findings)

    def store(self, path: Path, findings: list[Finding]) -> None:
        if self.options.cache is None:
            return
        absolute = path.absolute()
        entry = self._entries[absolute].with_findings(str(path), findings,
                                                      self._closure(absolute))
        self.options.cache.put(str(absolute), entry)

    def save(self) -> None:
        if self.options.cache is not None:
            self.options.cache.save()

    # -- whole runs: a re-run over an unchanged tree only stats -------------------------------
    def _run_key(self, listed: list[Candidate]) -> str | None:
        """One key per set of paths and tree (taken before the run: the run adds to the
        tree's boundary as it finds packages)."""
        if self._key is False:
            self._key = self._compute_key(listed)
        return self._key if isinstance(self._key, str) else None

    def _compute_key(self, listed: list[Candidate]) -> str | None:
        if self.options.cache is None or any(c.error is not None for c in listed):
            return None
        import hashlib

        named = sorted(str(c.path) for c in listed)  # as given, relative to:
        text = "\n".join([os.getcwd(), *named, *self.tree.boundary,
                          *map(str, self.tree.extra_roots)])
        return hashlib.blake2b(text.encode("utf-8", "surrogateescape"),
                               digest_size=8).hexdigest()

    def recall(self, listed: list[Candidate]) -> list[Finding] | None:
        """The findings of the last run over the same paths, when none of the files it read
        changed and no folder they lie in gained or lost a file (which could change what an
        import finds); None otherwise."""
        from mplint.cache import finding_from_json

        key = self._run_key(listed)
        record = self.options.cache.recall(key) if self.options.cache and key else None
        if record is None:
            return None
        try:
            files, folders = list(map(str, record["files"])), list(map(str, record["folders"]))
            if record["stamp"] != _stamp(files, folders) or record["key"] != key:
                return None
            return [finding_from_json(str(row[0]), row[1:]) for row in record["findings"]]
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def remember(self, listed: list[Candidate], findings: list[Finding]) -> None:
        from mplint.cache import finding_to_json

        key = self._run_key(listed)
        if key is None or self.options.cache is None:
            return
        here = os.getcwd()
        files = sorted({str(path) for path in self._entries}
                       | {os.path.join(here, c.path) for c in listed})
        # the folders where a created or removed file could change what an import finds: those
        # of the tree's boundary, and each file's packages up to the folder it is imported
        # from (an ``__init__.py`` created there makes it a package)
        folders: set[str] = set()
        inside = self.tree.boundary
        for name in files:
            root = str(module_name(Path(name))[0])
            folder = os.path.dirname(name)
            while folder not in folders and (folder.startswith(root) or any(
                    os.path.join(folder, "").startswith(entry) for entry in inside)):
                folders.add(folder)
                parent = os.path.dirname(folder)
                if parent == folder:
                    break
                folder = parent
        ordered = sorted(folders)
        self.options.cache.remember(key, {
            "key": key, "files": files, "folders": ordered,
            "stamp": _stamp(files, ordered, self._signatures),
            "findings": [[f.path, *finding_to_json(f)] for f in findings]})

    # -- entries -------------------------------------------------------------------------------
    def _signature(self, path: Path) -> tuple[int, int, int] | None:
        from mplint.cache import signature

        if path not in self._signatures:
            try:
                self._signatures[path] = signature(path.stat())
            except OSError:
                self._signatures[path] = None
        return self._signatures[path]

    def _entry(self, path: Path, need_text: bool) -> Entry:
        """The cache entry for ``path``, refreshed from the file when it changed.

        Raises SourceError when the file cannot be read."""
        from mplint.cache import Entry, content_hash

        cache = self.options.cache
        known = self._entries.get(path)
        if known is not None and (known.checked or not need_text):
            return known
        sig = self._signature(path)
        cached = known or (cache.get(str(path)) if cache is not None else None)
        if sig is not None and cached is not None and cached.signature == sig \
                and (cached.checked or not need_text):
            self._entries[path] = cached
            return cached
        data = read(path)
        digest = content_hash(data) if cache is not None else ""
        size_only = sig or (0, len(data), 0)
        if cached is not None and cached.digest == digest and (cached.checked or not need_text):
            from dataclasses import replace

            entry = replace(cached, signature=size_only)
        else:
            problem = None
            scanned = data
            if need_text or is_notebook(path):
                try:
                    text = decode_file(path, data)
                    if is_notebook(path):  # the prefilter reads its code, not its JSON
                        scanned = text.encode("utf-8", "surrogatepass")
                except SourceError as failure:
                    problem = (failure.line, failure.column, str(failure))
            entry = Entry(size_only, digest, need_text or is_notebook(path), scan(scanned),
                          problem)
        self._entries[path] = entry
        if cache is not None:
            cache.put(str(path), entry)
        return entry

    def _scan_of(self, path: Path) -> Scan | None:
        try:
            return self._entry(path, need_text=False).scan
        except SourceError:
            return None

    def _closure(self, path: Path) -> str:
        return self.graph.closure_digest(path, self._content)

    def _content(self, path: Path) -> str:
        """What a file's content is, as the closure digest counts it: its content hash (a
        file touched but not changed keeps it)."""
        try:
            return self._entry(path, need_text=False).digest
        except SourceError:
            return "unreadable"

    def _dependencies_unchanged(self, path: Path, entry: Entry) -> bool:
        return entry.deps is not None and entry.deps == self._closure(path)


_EMPTY = Scan(False, ())


def _stamp(files: list[str], folders: list[str],
           known: dict[Path, tuple[int, int, int] | None] | None = None) -> str:
    """A digest of the files' signatures (``known``: as they were when the run read them)
    and the folders' modification times."""
    import hashlib

    parts: list[str] = []
    for name in files:
        signature = known.get(Path(name), ()) if known is not None else ()
        if signature == ():
            try:
                stat = os.stat(name)
                signature = (stat.st_mtime_ns, stat.st_size, stat.st_ctime_ns)
            except OSError:
                signature = None
        parts.append("-" if not signature else " ".join(map(str, signature)))
    for name in folders:
        try:
            parts.append(str(os.stat(name).st_mtime_ns))
        except OSError:
            parts.append("-")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


# -- the work one file gets, in this process or a worker ----------------------------------------
def _lint_one(engine: Engine, path: Path) -> list[Finding]:
    try:
        source = Source.load(path)
    except SourceError as problem:
        return [error(str(path), str(problem), problem.line, problem.column)]
    return engine.lint(source, prefilter=False)


def _fix_only(engine: Engine, path: Path, unsafe: bool) -> FixRun:
    return _fix_one(engine, path, unsafe, write=False)


def _fix_and_write(engine: Engine, path: Path, unsafe: bool) -> FixRun:
    return _fix_one(engine, path, unsafe, write=True)


def _fix_one(engine: Engine, path: Path, unsafe: bool, write: bool) -> FixRun:
    from mplint.sources import create_atomically, write_atomically

    try:
        source = Source.load(path)
    except SourceError as problem:
        return FixRun([error(str(path), str(problem), problem.line, problem.column)])
    result = engine.fix(source, unsafe, prefilter=False)
    run = _record(source, result.text, result)
    if run.files_changed and write:
        try:
            stored = source.stored(result.text)
            for created, content in result.created:  # before the code that imports it
                create_atomically(created, content)
            write_atomically(path, stored, source.encoding, read_as=source.original)
        except SourceError as problem:  # the file keeps every finding it had
            return FixRun([*engine.lint(source, prefilter=False),
                           error(source.shown, str(problem))], refused=run.refused)
    return run


def _pool(config: Config, tree: Tree, options: Options) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork is cheapest where it is safe: the linter runs no threads and no accelerator.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(options.jobs, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(config, tree, options.edits))


_worker_engine: Engine | None = None


def _init_worker(config: Config, tree: Tree, edits: bool) -> None:
    from mplint.engine import Engine

    global _worker_engine
    _worker_engine = Engine(config, tree, edits)
    _worker_engine.load()  # the parser and the rules load before any file arrives


def _in_worker(task: Callable[..., _Result], path: Path, *extra: object) -> _Result:
    assert _worker_engine is not None
    return task(_worker_engine, path, *extra)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
