"""Decisions made from a file's bytes, before any parse: can it start processes, and which
modules of the linted tree can its analysis read.

A file is analysed when it imports a process module and spells a starting API's name
("direct"; a DataLoader counts only with ``num_workers=`` a positive literal), or when it names
something that a module it imports exports as able to start processes when called: a class
whose bases spell a process class (a ``Process`` subclass), a module-level function or class
whose code spells a start (calling the function, building an instance or calling one of its
methods may start processes: the analysis follows such calls into the other module), or a
name that mentions one of these in turn (assigned from it, imported and passed on, a function
or class whose code calls it). Importing a module that starts processes somewhere is not
enough: the file must name what can start them. Each module's exports are found from its bytes
too (its top-level definitions; the names, assignments, functions and classes that mention an
exported name), once per run, and only for modules that import something that exports.
Everything else cannot produce a finding and is never parsed. The import graph found here also
tells the cache which files a result depends on.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mplint import knowledge
from mplint.modules import Tree, absolute, module_name


def _words(words: Iterable[str]) -> re.Pattern[bytes]:
    return re.compile(rb"\b(?:" + b"|".join(re.escape(w.encode()) for w in words) + rb")\b")


@dataclass(frozen=True)
class _Group:
    """A process module's word and its start words (``plain``: those that need no other
    spelling in the file; ``needs``: the patterns the others need)."""

    word: bytes
    module: re.Pattern[bytes]  # the word in an import statement
    starts: tuple[bytes, ...]
    plain: tuple[bytes, ...]
    needs: frozenset[str]


_GROUPS = tuple(
    _Group(module.encode(), _words([module]), tuple(w.encode() for w in starts),
           tuple(w.encode() for w in starts if w not in knowledge.PREFILTER_REQUIRES),
           frozenset(knowledge.PREFILTER_REQUIRES[w] for w in starts
                     if w in knowledge.PREFILTER_REQUIRES))
    for module, starts in knowledge.PREFILTER_WORDS.items())
# each required pattern, with a word it spells: the pattern runs only where the word is found
def _anchor(source: str) -> bytes:
    """The first word of four letters or more a regular expression spells literally; none
    (the pattern always runs) for a pattern of alternatives."""
    if "|" in source:
        return b""
    literal = re.search(r"\w{4,}", re.sub(r"\\.", " ", source))
    return literal.group().encode() if literal else b""


_REQUIRED = {source: (_anchor(source), re.compile(source.encode()))
             for source in knowledge.PREFILTER_REQUIRES.values()}
_ANYWHERE = tuple(word.encode() for word in knowledge.PREFILTER_ANYWHERE)
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_FROM_MODULE = re.compile(rb"from(?:[ \t]+|(?=\.))(\.*)[ \t]*([\w.]*)\Z")
_NAME = re.compile(rb"[A-Za-z_]\w*(?:[ \t]*\.[ \t]*\w+)*")


@dataclass(frozen=True)
class Scan:
    """What the prefilter reads from one file."""

    direct: bool  # imports a process module and spells a starting API
    imports: tuple[tuple[int, str], ...]  # (relative level, dotted name) of possible tree modules
    exports: tuple[str, ...] = ()  # classes whose bases spell a start (functions: the graph)


def scan(data: bytes) -> Scan:
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM
    named: dict[int, tuple[bytes, ...]] = {}  # groups an import statement names -> start words
    imports: dict[tuple[int, str], None] = {}
    met: dict[str, bool] = {}
    for statement, level, source, names in _import_statements(data):
        for index, group in enumerate(_GROUPS):
            if index not in named and group.word in statement and group.module.search(statement):
                for need in group.needs:
                    if need not in met:
                        anchor, pattern = _REQUIRED[need]
                        met[need] = anchor in data and pattern.search(data) is not None
                chosen = group.starts if all(met[need] for need in group.needs) else group.plain
                if chosen:
                    named[index] = chosen
        for found in _imported_modules(level, source, names):
            imports[found] = None
    words = tuple(dict.fromkeys(word for chosen in (*named.values(), _ANYWHERE)
                                for word in chosen))
    direct = _spells(data, words) or _unimported_start(data)
    exports: tuple[str, ...] = ()
    if direct:
        exports = tuple(sorted(_process_classes(data, _words(w.decode() for w in words))))
    return Scan(direct, tuple(imports), exports)


# one pattern per name, each beginning with the name itself so that the search skips ahead to
# it (a pattern of alternatives would be tried at every byte)
_UNIMPORTED = tuple(
    (name.encode(), re.compile(re.escape(name.encode()) + (
        rb"[ \t]*\.[ \t]*[A-Za-z_]"  # any attribute: ``mp.get_context("spawn").Pool(2)``
        if "." not in qualname else rb"[ \t]*\(")))
    for name, qualname in sorted(knowledge.UNIMPORTED_NAMES.items()))


def _unimported_start(data: bytes) -> bool:
    """Code shown without its imports: a start spelled through a conventional name of the
    multiprocessing API (``mp.Pool(...)``, ``Process(...)``) that the file does not bind."""
    for name, pattern in _UNIMPORTED:
        for found in pattern.finditer(data):
            before = data[found.start() - 1] if found.start() else 0
            if before in _WORD_BYTES or before == ord("."):
                continue  # part of a longer name, or an attribute
            if b"#" in data[data.rfind(b"\n", 0, found.start()) + 1:found.start()]:
                continue  # in a comment
            word = re.escape(name)
            binds = re.compile(rb"\b(?:import|as|def|class)[ \t]+" + word + rb"\b|^[ \t]*"
                               + word + rb"[ \t]*[=,:]|\bimport\b[^\n]*\b" + word + rb"\b",
                               re.MULTILINE)
            if binds.search(data) is None:
                return True
            break  # the name is bound: its other uses are too
    return False


def start_words(data: bytes) -> tuple[bytes, ...]:
    """The start words of the process modules ``data`` imports (those ``scan`` looks for)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    found: dict[bytes, None] = {}
    for statement, _, _, _ in _import_statements(data):
        for group in _GROUPS:
            if group.word in statement and group.module.search(statement):
                met = all(_REQUIRED[need][1].search(data) is not None for need in group.needs)
                found.update(dict.fromkeys(group.starts if met else group.plain))
    return tuple(found)


def _spells(data: bytes, words: tuple[bytes, ...], start: int = 0, end: int | None = None) -> bool:
    """Whether ``data[start:end]`` has one of ``words`` as a whole word (``\\b`` on both
    sides); a byte search per word, much faster than one regular expression of them all."""
    stop = len(data) if end is None else end
    for word in words:
        found = data.find(word, start, stop)
        while found != -1:
            after = found + len(word)
            if (found == 0 or data[found - 1] not in _WORD_BYTES) and (
                    after >= len(data) or data[after] not in _WORD_BYTES):
                return True
            found = data.find(word, found + 1, stop)
    return False


_CLASS = re.compile(rb"^[ \t]*class[ \t]+(\w+)[ \t]*\(", re.MULTILINE)


def _process_classes(data: bytes, pattern: re.Pattern[bytes]) -> set[str]:
    """The classes whose bases spell a start word: every ``class`` statement, at any depth,
    whose parenthesised bases (up to the matching parenthesis, or the end of the file when
    there is none) match ``pattern``."""
    found: set[str] = set()
    for header in _CLASS.finditer(data):
        depth, position = 1, header.end()
        while depth and position < len(data):
            following = min((i for i in (data.find(b"(", position), data.find(b")", position))
                             if i != -1), default=-1)
            if following == -1:
                position = len(data)
                break
            depth += 1 if data[following] == ord("(") else -1
            position = following + 1
        if pattern.search(data, header.end(), position):
            found.add(header.group(1).decode())
    return found


# start words whose calls the analysis does not count as a start made by calling the function
# they are in: choosing a start method, a DataLoader (its workers start when it is iterated),
# dask and ray (their own workers)
NOT_STARTING = frozenset({"set_start_method", "DataLoader", "Client", "delayed", "remote"})


def starting_definitions(data: bytes) -> set[str]:
    """The module-level functions and classes whose code surely calls a starting API of a
    process module the module imports when it runs (a class: in one of its methods): calling
    one may start processes. A module that does not parse gives every definition, so that
    nothing is missed. (Found only for the modules a file to triage imports: parsing every
    module that starts processes would cost more than it saves.)"""
    words = start_words(data)
    wanted = {w.decode().rpartition(".")[2] for w in words} - NOT_STARTING
    if not wanted or not _spells(data, words):
        return set()
    parsed = _parse(data)
    if parsed.module is None:
        return {m.group(1).decode() for m in _DEFINITION.finditer(data)}
    pattern = _words(sorted(wanted))
    found: set[str] = set()
    for node in parsed.module.body:
        if not isinstance(node, _DEFINITIONS) or node.end_lineno is None:
            continue
        start = parsed.offsets[node.lineno - 1]
        end = parsed.offsets[min(node.end_lineno, len(parsed.offsets) - 1)]
        if pattern.search(data, start, end) and any(
                callee(call) in wanted or any(k.arg in wanted for k in call.keywords)
                for call in sure_calls(node)):  # a keyword that asks for workers counts too
            found.add(node.name)
    return found


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BRANCHES = (ast.If, ast.IfExp, ast.Match, *_DEFINITIONS, ast.Lambda)


def sure_calls(node: ast.AST) -> Iterator[ast.Call]:
    """The calls a function makes whenever it runs (a class: those of its methods): not under
    an ``if``, a ``match`` or a conditional expression, nor after a statement that may return
    or raise; loops count as running. (As the analysis counts a start made by a call.)"""
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from sure_calls(item)
        return
    for statement in getattr(node, "body", ()):
        stack: list[ast.AST] = [statement]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Call):
                yield current
            if not isinstance(current, _BRANCHES):
                stack.extend(ast.iter_child_nodes(current))
        if isinstance(statement, (*_COMPOUND, ast.Match)) and any(
                isinstance(inner, (ast.Return, ast.Raise)) for inner in ast.walk(statement)):
            return


def callee(call: ast.Call) -> str:
    """The name a call spells last: ``f`` in ``f()``, ``Pool`` in ``mp.Pool()``."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr \
        if isinstance(func, ast.Attribute) else ""


_DEFINITION = re.compile(rb"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+(\w+)", re.MULTILINE)
_ASSIGNED = re.compile(rb"^[ \t]*(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE)
_COMPOUND = (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class _Parsed:
    """A module read with Python's own parser (much cheaper than libcst), for its exports."""

    data: bytes
    module: ast.Module | None  # None: it does not parse
    offsets: tuple[int, ...]  # where each line starts


def _parse(data: bytes) -> _Parsed:
    try:
        module: ast.Module | None = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        module = None
    offsets = [0]
    for line in data.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return _Parsed(data, module, tuple(offsets))


def _exporting(parsed: _Parsed, patterns: list[re.Pattern[bytes]],
               names: frozenset[str] = frozenset()) -> set[str]:
    """The module-level names whose code matches one of ``patterns``: classes whose header
    (decorators, bases) matches, names assigned from matching code, also inside a
    module-level ``if``, ``try``, ``with`` or loop; and the functions and classes whose code
    surely calls one of ``names`` when it runs. A module that does not parse exports every
    name it may define, so that nothing is missed."""
    data = parsed.data
    if parsed.module is None:
        return {m.group(1).decode() for m in _DEFINITION.finditer(data)} | {
            m.group(1).decode() for m in _ASSIGNED.finditer(data)}
    offsets = parsed.offsets

    def matches(node: ast.stmt, whole: bool = False) -> bool:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        last = node.end_lineno or node.lineno
        if isinstance(node, ast.ClassDef) and node.body and not whole:
            last = max(node.lineno, node.body[0].lineno - 1)  # the header: bases, keywords
        start, end = offsets[first - 1], offsets[min(last, len(offsets) - 1)]
        return any(p.search(data, start, end) for p in patterns)

    found: set[str] = set()
    pending: list[ast.stmt] = list(parsed.module.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, _DEFINITIONS):
            if (isinstance(statement, ast.ClassDef) and matches(statement)) or (
                    matches(statement, whole=True)
                    and any(callee(call) in names for call in sure_calls(statement))):
                found.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if matches(statement):
                targets = statement.targets if isinstance(statement, ast.Assign) \
                    else [statement.target]
                found |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(statement, _COMPOUND):
            pending.extend(statement.body)
            pending.extend(getattr(statement, "orelse", ()))
            if isinstance(statement, ast.Try):
                pending.extend(statement.finalbody)
                for handler in statement.handlers:
                    pending.extend(handler.body)
    return found


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


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class ImportGraph:
    """The modules of the linted tree and the imports between them, read on demand.

    ``load`` gives a file's :class:`Scan` (from the cache or by reading it), or None when the
    file cannot be read.
    """

    def __init__(self, load: Callable[[Path], Scan | None], tree: Tree,
                 read: Callable[[Path], bytes | None] = _read) -> None:
        self._load = load
        self._read = read
        self.tree = tree
        self._scans: dict[Path, Scan | None] = {}
        self._edges: dict[Path, tuple[Path, ...]] = {}
        self._exports: dict[Path, frozenset[str]] = {}
        self._parsed: dict[Path, _Parsed | None] = {}
        self._digests: dict[Path, str] = {}

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
        edges: dict[Path, None] = {}
        if found is not None and found.imports:
            roots = self.tree.roots(path)
            current = module_name(path)[1]
            for level, name in found.imports:
                dotted = absolute(name, level, current) if level else name
                if knowledge.is_known_library(dotted):
                    continue  # the analysis never looks inside these, so neither does the graph
                target = self.tree.find(dotted, roots)
                if target is not None and target != path:
                    edges[target] = None
        self._edges[path] = tuple(edges)
        return self._edges[path]

    def closure_digest(self, path: Path, stamp: Callable[[Path], object]) -> str:
        """A digest of ``path`` and every file of the tree it imports, directly or through
        others, each with its ``stamp`` (a signature): it changes when any of them changes or
        an import comes to name another file. One pass over the import graph serves every file
        (a digest per group of modules that import each other, built from the digests of the
        groups they import, as in a Merkle tree)."""
        if path in self._digests:
            return self._digests[path]
        import hashlib

        index: dict[Path, int] = {}
        low: dict[Path, int] = {}
        stack: list[Path] = []
        on_stack: set[Path] = set()
        work: list[tuple[Path, int]] = [(path, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = self.imports(node)
            if child < len(edges):
                work.append((node, child + 1))
                target = edges[child]
                if target in self._digests:
                    continue
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if work and work[-1][1] > 0:  # back in the importer: pass the low link up
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] != index[node]:
                continue
            members: list[Path] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            inside = set(members)
            parts = sorted(f"{m}\0{stamp(m)}" for m in members)
            parts += sorted({self._digests[t] for m in members for t in self.imports(m)
                             if t not in inside})
            digest = hashlib.blake2b("\n".join(parts).encode("utf-8", "surrogateescape"),
                                     digest_size=16).hexdigest()
            for member in members:
                self._digests[member] = digest
        return self._digests[path]

    def needs_analysis(self, path: Path | None, found: Scan, data: bytes | None = None) -> bool:
        """Whether a rule can fire on this file: the prefilter's verdict. ``data`` is the
        file's content when the caller has it (else it is read when it must be searched)."""
        if found.direct:
            return True
        if path is None or not found.imports:
            return False
        self.add(path, found)
        names = self._imported_exports(path)
        if not names:
            return False
        if data is None:
            data = self._read(path)
        return data is None or _names(names).search(data) is not None

    def _imported_exports(self, path: Path) -> frozenset[str]:
        return frozenset().union(*(self.exports(dep) for dep in self.imports(path)))

    def exports(self, start: Path) -> frozenset[str]:
        """The names ``start`` offers its importers that can lead to starting processes."""
        if start in self._exports:
            return self._exports[start]
        # every module reachable from ``start`` whose exports are not known yet, imports first
        order: list[Path] = []
        seen: set[Path] = set()
        work: list[tuple[Path, bool]] = [(start, False)]
        while work:
            node, done = work.pop()
            if done:
                order.append(node)
                continue
            if node in seen or node in self._exports:
                continue
            seen.add(node)
            work.append((node, True))
            work.extend((dep, False) for dep in self.imports(node))
        current: dict[Path, set[str]] = {}
        for node in order:
            scanned = self._scan(node)
            current[node] = set(scanned.exports) if scanned is not None else set()
            if scanned is not None and scanned.direct:
                data = self._read(node)
                current[node] |= starting_definitions(data) if data is not None else set()
        changed = True
        while changed:  # modules that import each other: until nothing new is found
            changed = False
            for node in order:
                incoming: set[str] = set()
                for dep in self.imports(node):
                    incoming |= current[dep] if dep in current else self._exports.get(dep, set())
                if not incoming and not current[node]:
                    continue
                # its own exports count too: ``run = Worker`` exports ``run``
                grown = current[node] | self._naming(node, incoming | current[node])
                if grown != current[node]:
                    current[node] = grown
                    changed = True
        for node, names in current.items():
            self._exports[node] = frozenset(names)
        return self._exports[start]

    def _naming(self, path: Path, names: set[str]) -> set[str]:
        """What ``path`` exports because its code names some of ``names``: the names it
        passes on (imports them, or assigns from them), the classes derived from them, and
        the functions and classes whose code calls them (the analysis follows a call into
        another module's function, constructor or method to find a start)."""
        data = self._read(path)
        if data is None:
            return set()
        pattern = _names(frozenset(names))
        if pattern.search(data) is None:
            return set()
        mentioned = {m.group().decode() for m in pattern.finditer(data)}
        if path not in self._parsed:
            self._parsed[path] = _parse(data)
        parsed = self._parsed[path]
        assert parsed is not None
        return mentioned | _exporting(parsed, [pattern], frozenset(names))


_NAME_PATTERNS: dict[frozenset[str], re.Pattern[bytes]] = {}


def _names(names: frozenset[str]) -> re.Pattern[bytes]:
    """One pattern for the whole words in ``names``."""
    if names not in _NAME_PATTERNS:
        if len(_NAME_PATTERNS) > 256:
            _NAME_PATTERNS.clear()
        _NAME_PATTERNS[names] = _words(sorted(names))
    return _NAME_PATTERNS[names]
