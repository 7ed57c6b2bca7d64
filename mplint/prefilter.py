"""Decisions made from a file's bytes, before any parse: can it start processes, and which
modules of the linted tree can its analysis read.

A file is analysed when it imports a process module and spells a starting API's name, or when
it imports (directly or through other modules of the tree) a module that does: a
``multiprocessing.Process`` subclass defined there can be started from it. Everything else
cannot produce a finding and is never parsed. The import graph found here also tells the cache
which files a result depends on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mplint import knowledge
from mplint.modules import Tree, absolute, module_name


def _words(words: Iterable[str]) -> re.Pattern[bytes]:
    return re.compile(rb"\b(?:" + b"|".join(re.escape(w.encode()) for w in words) + rb")\b")


# (module word, its pattern in an import statement, the pattern of its start words)
_GROUPS = tuple((module.encode(), _words([module]), _words(starts))
                for module, starts in knowledge.PREFILTER_WORDS.items())
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_FROM_MODULE = re.compile(rb"from(?:[ \t]+|(?=\.))(\.*)[ \t]*([\w.]*)\Z")
_NAME = re.compile(rb"[A-Za-z_]\w*(?:[ \t]*\.[ \t]*\w+)*")


@dataclass(frozen=True)
class Scan:
    """What the prefilter reads from one file."""

    direct: bool  # imports a process module and spells a starting API
    imports: tuple[tuple[int, str], ...]  # (relative level, dotted name) of possible tree modules


def scan(data: bytes) -> Scan:
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM
    named: dict[int, re.Pattern[bytes]] = {}  # groups an import statement names -> start words
    imports: dict[tuple[int, str], None] = {}
    for statement, level, source, names in _import_statements(data):
        for index, (word, module, starts) in enumerate(_GROUPS):
            if index not in named and word in statement and module.search(statement):
                named[index] = starts
        for found in _imported_modules(level, source, names):
            imports[found] = None
    direct = any(starts.search(data) is not None for starts in named.values())
    return Scan(direct, tuple(imports))


def _import_statements(data: bytes) -> Iterable[tuple[bytes, int, bytes | None, bytes]]:
    """Every ``import`` statement: its text, and for ``from`` imports the relative level and
    module (None for a plain ``import``), and the imported names.

    Over-approximate on purpose: text in strings and comments that reads like an import is
    taken as one, which can only cost a parse, never lose a finding.
    """
    position = data.find(b"import")
    while position != -1:
        word_end = position + 6
        following = position
        position = data.find(b"import", word_end)
        if (following and data[following - 1] in _WORD_BYTES) or (data[word_end:word_end + 1] \
                and data[word_end] in _WORD_BYTES):
            continue  # part of a longer name: importlib, reimport
        own = start = data.rfind(b"\n", 0, following) + 1
        while start > 1 and data[start - 2:start - 1] == b"\\":  # a continued line
            start = data.rfind(b"\n", 0, start - 2) + 1
        end = _statement_end(data, word_end)
        names = data[word_end:end]
        # the backslash before this line may end a comment rather than continue a line:
        # read the line both as a continuation and on its own
        for first in dict.fromkeys((start, own)):
            head = data[first:following].replace(b"\\\n", b" ")
            # a statement begins a line, or follows ``;`` or a compound statement's ``:``
            head = head[max(head.rfind(b";"), head.rfind(b":")) + 1:].strip()
            if not head:
                yield data[first:end], 0, None, names
                break
            module = _FROM_MODULE.match(head)
            if module is not None:
                yield data[first:end], len(module.group(1)), module.group(2), names
                break


def _statement_end(data: bytes, position: int) -> int:
    """Where the names of an import ending at ``position`` end."""
    rest = data[position:position + 4096]
    stripped = rest.lstrip(b" \t\\\r\n")
    if stripped.startswith(b"("):
        close = data.find(b")", position)
        return close if close != -1 else len(data)
    end = position
    while True:
        newline = data.find(b"\n", end)
        if newline == -1:
            return len(data)
        if data[newline - 1:newline] != b"\\" and data[newline - 2:newline] != b"\\\r":
            break
        end = newline + 1
    semicolon = data.find(b";", position, newline)
    return semicolon if semicolon != -1 else newline


def _imported_modules(level: int, module: bytes | None,
                      names: bytes) -> Iterable[tuple[int, str]]:
    """Every module an import statement may load, other than the known libraries'."""
    items = names.replace(b"\\", b" ").strip(b" \t\r\n()").split(b",")
    imported = [_dotted(item) for item in items]
    if module is None:
        for name in imported:
            if name:
                yield from _with_parents(0, name)
        return
    base = module.decode()
    if level == 0 and (not base or knowledge.is_known_library(base)):
        return
    if base:
        yield from _with_parents(level, base)
    for name in imported:
        if name and "." not in name:
            yield level, f"{base}.{name}" if base else name


def _dotted(item: bytes) -> str:
    found = _NAME.match(item.strip())
    return b"".join(found.group().split()).decode() if found else ""


def _with_parents(level: int, dotted: str) -> Iterable[tuple[int, str]]:
    if level == 0 and knowledge.is_known_library(dotted):
        return
    parts = dotted.split(".")
    for cut in range(1, len(parts) + 1):
        yield level, ".".join(parts[:cut])


class ImportGraph:
    """The modules of the linted tree and the imports between them, read on demand.

    ``load`` gives a file's :class:`Scan` (from the cache or by reading it), or None when the
    file cannot be read.
    """

    def __init__(self, load: Callable[[Path], Scan | None], tree: Tree) -> None:
        self._load = load
        self.tree = tree
        self._scans: dict[Path, Scan | None] = {}
        self._edges: dict[Path, tuple[Path, ...]] = {}
        self._reaches: dict[Path, bool] = {}

    def add(self, path: Path, found: Scan) -> None:
        """Record a file's scan made by the caller (a file being linted, or stdin)."""
        self._scans[path] = found

    def _scan(self, path: Path) -> Scan | None:
        if path not in self._scans:
            self._scans[path] = self._load(path)
        return self._scans[path]

    def imports(self, path: Path) -> tuple[Path, ...]:
        """The files of the tree that ``path``'s imports name."""
        if path in self._edges:
            return self._edges[path]
        found = self._scan(path)
        edges: list[Path] = []
        if found is not None and found.imports:
            roots = self.tree.roots(path)
            current = module_name(path)[1]
            for level, name in found.imports:
                dotted = absolute(name, level, current) if level else name
                if knowledge.is_known_library(dotted):
                    continue  # the analysis never looks inside these, so neither does the graph
                target = self.tree.find(dotted, roots)
                if target is not None and target != path and target not in edges:
                    edges.append(target)
        self._edges[path] = tuple(edges)
        return self._edges[path]

    def dependencies(self, path: Path) -> list[Path]:
        """Every file of the tree ``path`` imports, directly or through others, in a stable
        order: what its analysis can read."""
        seen: dict[Path, None] = {}
        stack = list(reversed(self.imports(path)))
        while stack:
            current = stack.pop()
            if current in seen or current == path:
                continue
            seen[current] = None
            stack.extend(reversed(self.imports(current)))
        return list(seen)

    def needs_analysis(self, path: Path | None, found: Scan) -> bool:
        """Whether a rule can fire on this file: the prefilter's verdict."""
        if found.direct:
            return True
        if path is None or not found.imports:
            return False
        self.add(path, found)
        return any(self._reaches_direct(dep) for dep in self.imports(path))

    def _reaches_direct(self, start: Path) -> bool:
        """Whether ``start`` or a module it imports (transitively) can start processes.

        Tarjan's strongly connected components, iteratively: modules importing each other in a
        cycle share one answer, and every answer is computed once per run.
        """
        if start in self._reaches:
            return self._reaches[start]
        index: dict[Path, int] = {}
        low: dict[Path, int] = {}
        reach: dict[Path, bool] = {}
        stack: list[Path] = []
        on_stack: set[Path] = set()
        work: list[tuple[Path, int]] = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
                scanned = self._scan(node)
                reach[node] = scanned is not None and scanned.direct
            edges = self.imports(node)
            if child < len(edges):
                work.append((node, child + 1))
                target = edges[child]
                if target in self._reaches:
                    reach[node] = reach[node] or self._reaches[target]
                elif target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            # all edges done: fold the finished child into its parent, close a component
            if low[node] == index[node]:
                members: list[Path] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                answer = any(reach[m] for m in members)
                for member in members:
                    self._reaches[member] = answer
            if work:
                parent = work[-1][0]
                if node in self._reaches:
                    reach[parent] = reach[parent] or self._reaches[node]
                else:
                    low[parent] = min(low[parent], low[node])
                    reach[parent] = reach[parent] or reach[node]
        return self._reaches[start]
