"""One module: prefilter -> parse once -> facts -> every rule -> findings, and the fix loop.

The CLI, the flake8 plugin and the library API are thin adapters over :class:`Engine`'s two
entry points, :meth:`Engine.lint` and :meth:`Engine.fix`; :mod:`mplint.batch` runs them over
whole trees with the cache and worker processes.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mplint.config import Config, Noqa
from mplint.findings import NO_FIX, SAFE, Finding, Fix, NewFile, edits_between, error
from mplint.modules import Tree
from mplint.parsing import parse_module
from mplint.prefilter import ImportGraph, Scan, scan
from mplint.sources import MAX_BYTES, MAX_READ, TOO_LARGE, Source, physical_lines

if TYPE_CHECKING:
    import libcst as cst

    from mplint.analysis.project import ProjectIndex
    from mplint.fixers.base import Fixer
    from mplint.notebook import Notebook
    from mplint.rules.base import Rule


def _read_scan(path: Path) -> Scan | None:
    """The prefilter's view of a module of the tree that is not itself being linted."""
    try:
        if path.stat().st_size > MAX_READ:
            return None
        return scan(path.read_bytes())
    except OSError:
        return None


class Engine:
    """Lints sources with every enabled rule; one instance serves many files."""

    def __init__(self, config: Config | None = None, tree: Tree | None = None,
                 edits: bool = False, creates: bool = True) -> None:
        self.config = config or Config()
        self.tree = tree or Tree(self.config.search_roots())
        self.edits = edits  # compute each fix's text edit (JSON and SARIF output)
        # offer fixes that write a new file beside the linted one (not for stdin: the fixed
        # text goes to stdout and nothing is written)
        self.creates = creates

    # libcst and the rules are imported only once a file needs them: most files never do.
    @cached_property
    def rules(self) -> list[Rule]:
        from mplint.rules import all_rules

        return [rule() for rule in all_rules() if self.config.enabled(rule.code)]

    def load(self) -> None:
        """Import what analysing a file needs (libcst, the rules) now rather than with the
        first file: a worker process does it while the main one still reads the tree."""
        if not self.rules:
            import libcst  # noqa: F401 - no rule enabled: the parser is still needed

    @cached_property
    def project(self) -> ProjectIndex:
        from mplint.analysis.project import ProjectIndex

        return ProjectIndex(self.config.extra_models(), self.config.extra_bases(), self.tree)

    @cached_property
    def graph(self) -> ImportGraph:
        return ImportGraph(_read_scan, self.tree)

    def lint(self, source: Source, prefilter: bool = True) -> list[Finding]:
        """Every finding in ``source``, sorted; with ``prefilter``, a file that cannot start
        processes or reach one that does is not parsed. A file that cannot be parsed or
        analysed gives one error finding."""
        if prefilter and not self._needs_analysis(source):
            return []
        if len(source.text) > MAX_BYTES:  # the CLI says so when it decodes; flake8 gets here
            return [_too_large(source)]
        try:
            with _deep_stack():
                found = self._lint_text(source.text, source.shown, source.path,
                                        source.notebook)
        except Exception as bug:  # one file's analysis failing must not end the run
            return [_failure(source.shown, bug, source.text)]
        return sorted(_in_cells(found, source.notebook))

    def _needs_analysis(self, source: Source) -> bool:
        """The prefilter: False means no rule can fire on this file."""
        path = source.path
        if path is not None:
            self.tree.include(path)
        data = source.text.encode("utf-8", "surrogatepass")
        return self.graph.needs_analysis(path.absolute() if path else None, scan(data))

    def _lint_text(self, text: str, shown: str, path: Path | None,
                   notebook: Notebook | None = None) -> list[Finding]:
        analysis = self._analysis(text, shown, path, notebook=notebook)
        if isinstance(analysis, Finding):
            return [analysis]
        if not self.edits:
            return sorted(item.finding for item in analysis.items)
        return sorted(_with_edit(item, text, shown, notebook) for item in analysis.items)

    def _analysis(self, text: str, shown: str, path: Path | None, trial: bool = True,
                  notebook: Notebook | None = None) -> _Analysis | Finding:
        """Every finding with the fixer its rule offers; an error finding if it cannot parse.
        With ``trial``, each fix is made on a copy first and kept only if the result passes
        every check ``--fix`` makes, so a finding shows a fix exactly when it will be made.
        ``notebook``: ``text`` is that notebook's module."""
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        from mplint.analysis.facts import ModuleFacts
        from mplint.modules import module_name

        exact = True  # the tree is of ``text`` itself, so fixes can rewrite it
        try:
            module = parse_module(text)
        except cst.ParserSyntaxError as problem:
            expanded = _expanded_indentation(text, shown)
            if expanded is None:
                return _syntax_error(text, shown, problem)
            module, exact = expanded, False
        name = ""
        if path is not None:
            self.tree.include(path)
            name = module_name(path.absolute())[1]
        facts = ModuleFacts(self.project.evaluator(module, name, path),
                            self.config.default_methods(),
                            notebook=Path(shown).name if notebook is not None else "")
        reports = [(rule, report) for rule in self.rules if self.config.enabled(rule.code, shown)
                   for report in rule.check(facts)]
        if not reports:
            return _Analysis(module, text, [], notebook)
        # Positions cost a second pass over the tree: only files with findings pay for it.
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        noqa = Noqa.scan(text)
        items: list[_Item] = []
        for rule, report in reports:
            where = positions[report.node]
            if noqa.suppresses(where.start.line, rule.code):
                continue
            fix = Fix(report.fix.safety, report.fix.title) if report.fix else None
            items.append(_Item(Finding(
                shown, where.start.line, where.start.column + 1, where.end.line,
                where.end.column + 1, rule.code, rule.name, report.message, fix), report.fix,
                (rule.code, report.message.partition(NO_FIX)[0].removesuffix(report.detail))))
        if not exact:
            for item in items:
                if item.fixer is not None:
                    _refuse(item, "the file mixes tabs and spaces in its indentation in a way "
                                  "the rewriter cannot reproduce")
        analysis = _Analysis(module, text, items, notebook)
        if trial:
            for item in items:
                if item.fixer is not None:
                    self._trial(analysis, item, shown, path)
        return analysis

    def fix(self, source: Source, unsafe: bool = False, prefilter: bool = True) -> FixResult:
        """Apply the offered fixes one at a time (safe ones, and unsafe ones when asked),
        re-parsing and re-linting after each; a fix whose result does not parse, loses a
        comment, reads a name before it is bound, keeps its finding or adds another is refused
        and the text stays as it was. Every fix is tried again after each change, so a second
        run has nothing left to do. ``remaining`` are the findings of the fixed text."""
        if prefilter and not self._needs_analysis(source):
            return FixResult(source.text, [], [], [])
        if len(source.text) > MAX_BYTES:
            return FixResult(source.text, [], [], [_too_large(source)])
        try:
            with _deep_stack():
                return self._fix(source, unsafe)
        except Exception as bug:  # the file stays as it was; the run goes on
            return FixResult(source.text, [], [], [_failure(source.shown, bug, source.text)])

    def _fix(self, source: Source, unsafe: bool) -> FixResult:
        text, shown, path, notebook = source.text, source.shown, source.path, source.notebook
        fixed: list[Finding] = []
        resolved: list[tuple[Finding, Finding]] = []
        refused: list[tuple[Finding, str]] = []
        created: list[tuple[Path, str]] = []
        for _ in range(_MAX_FIX_ROUNDS):
            analysis = self._analysis(text, shown, path, notebook=notebook)
            if isinstance(analysis, Finding):
                break
            wanted = [item for item in sorted(analysis.items, key=lambda i: i.finding)
                      if (item.safety == SAFE or unsafe)]
            refused = [(_in_cell(item.finding, notebook), item.refusal) for item in wanted
                       if item.refusal is not None]
            chosen = next((item for item in wanted if item.fixed_text is not None), None)
            if chosen is None or chosen.fixed_text is None:
                break
            by = _in_cell(chosen.finding, notebook)
            fixed.append(by)
            created.extend(chosen.created)
            for finding in _removed(analysis.items, chosen.removed, chosen):
                if _same_fix(finding, chosen.finding):  # one fix offered for several findings
                    fixed.append(_in_cell(finding, notebook))
                else:
                    resolved.append((_in_cell(finding, notebook), by))
            text = chosen.fixed_text
            if notebook is not None:
                notebook = _rewritten(notebook, text)
                text = notebook.text
        remaining = self.lint(Source(text, shown, path, source.encoding, notebook),
                              prefilter=False)
        return FixResult(text, fixed, refused, remaining, resolved, tuple(created))

    def _trial(self, analysis: _Analysis, item: _Item, shown: str, path: Path | None) -> None:
        """Make ``item``'s fix on a copy and keep the result if it passes every check; else
        take the fix off the finding and say why in its message."""
        fixer = item.fixer
        assert fixer is not None
        if fixer.creates and (path is None or not self.creates):  # nowhere to write it
            item.fixer, item.finding = None, replace(item.finding, fix=None)
            return
        applied = _applied(analysis.module, analysis.text, fixer, shown)
        if isinstance(applied, str) and analysis.notebook is not None:
            split = analysis.notebook.cell_sources(applied)
            if isinstance(split, str):
                applied = _Refusal(f"{split}, which a notebook cannot hold")
        refusal = applied if isinstance(applied, _Refusal) else None
        if isinstance(applied, str):
            after = self._analysis(applied, shown, path, trial=False,
                                   notebook=analysis.notebook)
            if isinstance(after, Finding):
                refusal = _Refusal("libcst cannot parse the fixed code")
            else:
                compared = _compare(analysis, after, item)
                created = _created(fixer, path)
                if isinstance(compared, _Refusal):
                    refusal = compared
                elif isinstance(created, _Refusal):
                    refusal = created
                else:
                    item.fixed_text, item.removed, item.created = applied, compared, created
                    return
        assert refusal is not None
        _refuse(item, refusal.reason)


def _refuse(item: _Item, reason: str) -> None:
    """Take the fix off ``item``'s finding, saying why in its message."""
    from mplint.fixers.base import no_fix

    item.refusal = reason
    item.finding = replace(item.finding, message=no_fix(item.finding.message, reason), fix=None)
    item.fixer = None


def _expanded_indentation(text: str, shown: str) -> cst.Module | None:
    """The tree of ``text`` with tabs in its indentation expanded, when Python accepts the file
    as it is and libcst's tokenizer, which counts tab stops differently, does not."""
    import libcst as cst

    try:
        compile(text, shown, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = physical_lines(text, keepends=True)
    expanded = "".join(_expand(line) for line in lines)
    if expanded == text:
        return None
    try:
        return parse_module(expanded)
    except cst.ParserSyntaxError:
        return None


def _expand(line: str) -> str:
    body = line.lstrip(" \t")
    return line[:len(line) - len(body)].expandtabs(8) + body


def _compare(before: _Analysis, after: _Analysis,
             item: _Item) -> Counter[tuple[str, str]] | _Refusal:
    """The other findings (by code and message) the fix resolves as a side effect, or why it
    is refused: its own finding is still there, another kind of finding appears, or a finding
    that was not there before shows at the lines it wrote."""
    before_keys = Counter(i.key for i in before.items)
    after_keys = Counter(i.key for i in after.items)
    if after_keys[item.key] >= before_keys[item.key]:
        return _Refusal("the finding is still there after the fix")
    before_codes = Counter(key[0] for key in before_keys.elements())
    after_codes = Counter(key[0] for key in after_keys.elements())
    added = sorted(code for code in after_codes if after_codes[code] > before_codes[code])
    if added:
        return _Refusal(f"the fix would add {', '.join(added)}")
    new_keys = after_keys - before_keys
    touched = _touched_lines(before.text, after.text)
    for other in sorted(after.items, key=lambda i: i.finding):
        if new_keys[other.key] > 0 and other.finding.line in touched:
            return _Refusal(f"the fixed code would get {other.key[0]} at line "
                            f"{other.finding.line}: {_clipped(other.key[1])}")
    # a side effect counts only where the code's count drops: a finding whose message merely
    # changed is the same finding, not one resolved
    drops = before_codes - after_codes
    drops[item.key[0]] -= 1
    resolved: Counter[tuple[str, str]] = Counter()
    side = before_keys - after_keys
    side[item.key] -= 1
    for key, count in sorted(side.items()):
        taken = min(count, drops[key[0]])
        if taken > 0:
            resolved[key] = taken
            drops[key[0]] -= taken
    return resolved


def _same_fix(finding: Finding, chosen: Finding) -> bool:
    return (finding.code == chosen.code and finding.fix is not None and chosen.fix is not None
            and finding.fix.title == chosen.fix.title)


def _touched_lines(before: str, after: str) -> set[int]:
    """The lines of ``after`` (1-based) that a change from ``before`` wrote."""
    import difflib

    old, new = physical_lines(before), physical_lines(after)
    touched: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, _, _, first, last in matcher.get_opcodes():
        if tag != "equal":
            touched.update(range(first + 1, last + 1))
    return touched


def _clipped(message: str, limit: int = 120) -> str:
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _removed(items: list[_Item], removed: Counter[tuple[str, str]],
             exclude: _Item) -> list[Finding]:
    """The findings other than ``exclude``'s that a fix made go away."""
    left = Counter(removed)
    found: list[Finding] = []
    for item in sorted(items, key=lambda i: i.finding):
        if item is not exclude and left[item.key] > 0:
            left[item.key] -= 1
            found.append(item.finding)
    return found


_MAX_FIX_ROUNDS = 32
# libcst walks trees recursively: a long ``elif`` chain is ~6 frames per branch. Python 3.11
# frames cost little C stack, so this depth is safe on the main thread's 8 MiB; deeper code is
# reported as too deeply nested.
_RECURSION_LIMIT = 8000


def _nesting(text: str) -> int:
    """How deeply ``text``'s syntax tree nests (a large number when Python cannot say)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return 0
    except (RecursionError, MemoryError):
        return 1 << 30
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


@contextmanager
def _deep_stack() -> Iterator[None]:
    import sys
    import threading

    before = sys.getrecursionlimit()
    if threading.current_thread() is not threading.main_thread():
        yield  # other threads may have small stacks: keep the interpreter's limit
        return
    sys.setrecursionlimit(max(before, _RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _too_large(source: Source) -> Finding:
    return error(source.shown, f"{TOO_LARGE} ({len(source.text) / 2**20:.1f} MiB, limit "
                               f"{MAX_BYTES // 2**20} MiB; exclude generated files in "
                               "[tool.mplint])")


def _failure(shown: str, bug: BaseException, text: str) -> Finding:
    """One error finding for a file whose analysis failed; never fails itself."""
    seen: BaseException | None = bug
    for _ in range(16):
        if seen is None:
            break
        if isinstance(seen, RecursionError):
            return error(shown, "too deeply nested to analyse")
        seen = seen.__cause__ or seen.__context__
    if _nesting(text) > _RECURSION_LIMIT // 8:  # libcst can turn running out of stack into
        return error(shown, "too deeply nested to analyse")  # another error
    try:
        described = f"{type(bug).__name__}: {bug}"
    except BaseException:  # str() of the error can fail as well
        described = type(bug).__name__
    return error(shown, f"internal error while analysing ({described[:300]}); please report "
                        "it with this file")


@dataclass
class _Item:
    """A finding, the fixer its rule offers, and what trying that fix gave."""

    finding: Finding
    fixer: Fixer | None
    key: tuple[str, str]  # code and the rule's message: the same finding after other edits
    fixed_text: str | None = None  # the file after the fix, when it passed every check
    created: tuple[tuple[Path, str], ...] = ()  # new files the fix writes
    removed: Counter[tuple[str, str]] = field(default_factory=Counter)  # others it resolves
    refusal: str | None = None  # why the fix is not offered, when it failed a check
    safety: str = ""  # the refused fix's safety

    def __post_init__(self) -> None:
        if self.fixer is not None:
            self.safety = self.fixer.safety


@dataclass
class _Analysis:
    module: cst.Module
    text: str
    items: list[_Item]
    notebook: Notebook | None = None


def _rewritten(notebook: Notebook, text: str) -> Notebook:
    """The notebook whose cells the module ``text`` (a fix of ``notebook``'s) gives."""
    rewritten = notebook.rewritten(text)
    assert rewritten is not None  # the trial refused every fix that cannot be split into cells
    return rewritten


def _in_cell(finding: Finding, notebook: Notebook | None) -> Finding:
    """The finding positioned in its notebook cell (module lines to cell lines); its fix's
    edits are positioned in cells already."""
    if notebook is None or finding.cell is not None:
        return finding
    cell, line = notebook.locate(finding.line)
    end_cell, end_line = notebook.locate(finding.end_line)
    end_column = finding.end_column
    if end_cell != cell:
        end_line, end_column = line, finding.column
    return replace(finding, line=line, end_line=end_line, end_column=end_column, cell=cell)


def _in_cells(findings: list[Finding], notebook: Notebook | None) -> list[Finding]:
    return [_in_cell(f, notebook) for f in findings]


def _applied(module: cst.Module, text: str, fixer: Fixer, shown: str) -> str | _Refusal:
    """The text ``fixer`` turns ``module`` into, or why it is refused: it does not parse, or
    it loses a comment or reads a name before it is bound where the original did not."""
    from mplint.fixers.safety import problem

    try:
        fixed = fixer.apply(module)
        new_text = fixed.code
        compile(new_text, shown, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        return _Refusal(f"the fixed code does not parse ({error})")
    except RecursionError:
        return _Refusal("the file is too deeply nested to rewrite")
    except Exception as bug:  # a fixer failing must leave the file alone, not end the run
        return _Refusal(f"the fix failed ({type(bug).__name__}: {bug})")
    # comments that move into a file the fix creates are kept
    moved = "".join(content for _, content in fixer.creates)
    reason = problem(module, text, fixed, new_text + moved)
    return _Refusal(reason) if reason is not None else new_text


def _created(fixer: Fixer, path: Path | None) -> tuple[tuple[Path, str], ...] | _Refusal:
    """The files ``fixer`` writes beside ``path``, or why it cannot: one exists already, or
    its code does not parse."""
    created: list[tuple[Path, str]] = []
    for name, content in fixer.creates:
        assert path is not None
        target = path.parent / name
        if target.exists():
            return _Refusal(f"`{name}` already exists")
        try:
            compile(content, name, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError) as problem:
            return _Refusal(f"the new module `{name}` would not parse ({problem})")
        created.append((target, content))
    return tuple(created)


@dataclass(frozen=True)
class _Refusal:
    reason: str


@dataclass(frozen=True)
class FixResult:
    """The fixed text, the findings fixed (each by its own fix), the fixes refused with the
    reason, the findings the fixed text still has, and the findings another fix resolved as a
    side effect, each with the finding whose fix did it."""

    text: str
    fixed: list[Finding]
    refused: list[tuple[Finding, str]]
    remaining: list[Finding]
    resolved: list[tuple[Finding, Finding]] = field(default_factory=list)  # by the fix of
    created: tuple[tuple[Path, str], ...] = ()  # new files to write with the fixed text


def _with_edit(item: _Item, text: str, shown: str, notebook: Notebook | None) -> Finding:
    """The finding with its fix as text edits, for machine-readable output and editors; in a
    notebook, each edit is positioned in the cell it changes. The files the fix creates are
    named as ``shown`` names the linted file."""
    finding = item.finding
    if item.fixed_text is None or finding.fix is None:
        return finding
    if notebook is None:
        edits = edits_between(text, item.fixed_text)
    else:
        edits = tuple(replace(edit, cell=number)
                      for number, before, after in notebook.changed_cells(item.fixed_text)
                      for edit in edits_between(before, after))
    creates = tuple(NewFile(os.path.join(os.path.dirname(shown), target.name), content)
                    for target, content in item.created)
    return replace(finding, fix=replace(finding.fix, edits=edits, creates=creates))


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
