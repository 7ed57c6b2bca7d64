"""``mplint server``: a language server over stdio, for editors.

Diagnostics on open, change and save carry the CLI's codes, ranges and messages, with the
``[tool.mplint]`` of the pyproject.toml nearest each file. Code actions apply a finding's fix
(safe fixes are the preferred quick fix, unsafe ones say so in their title), add
``# noqa: CODE`` to the line, or make every safe fix at once (``source.fixAll.mplint``); hovering
a finding shows its rule's page. While a file does not parse, its last diagnostics stay.

Jupyter notebooks come as notebook documents (LSP 3.17): their Python code cells are linted in
order as one module, as the CLI lints a notebook, and each cell gets its own diagnostics, code
actions and hovers, positioned within the cell.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from mplint._version import __version__
from mplint.config import Config, ConfigError, find_pyproject, load
from mplint.engine import Engine
from mplint.findings import SAFE, Edit, Finding, NewFile, edits_between
from mplint.modules import Tree
from mplint.sources import Source, excluded, physical_lines

FIX_ALL = "source.fixAll.mplint"
# Notebooks whose Python cells the editor sends as notebook documents (LSP 3.17).
NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(notebook_selector=[
    types.NotebookDocumentFilterWithCells(notebook="jupyter-notebook",
                                          cells=[types.NotebookCellLanguage("python")])],
    save=True)
_PARSE_ERROR = -32700  # JSON-RPC's code for a message that is not JSON
logger = logging.getLogger("mplint.server")
_DEBOUNCE_S = 0.15  # keystrokes closer than this are linted once
_SYNTAX_ERROR = "syntax error"


@dataclass
class _Linted:
    """A document's findings and the text they are of; for a notebook cell, the URI of its
    notebook."""

    text: str
    version: int | None
    findings: list[Finding]
    notebook: str | None = None


@dataclass
class _Cells:
    """What was last linted of a notebook: the module its code cells make, each cell's URI by
    number (among all its cells, from 1), and the cells that were last sent diagnostics."""

    module: str = ""
    uris: dict[int, str] = field(default_factory=dict)
    source: Source | None = None  # what was last linted whole, for fixes over its cells
    stale: bool = False  # the cells do not parse now: their last findings are kept
    published: set[str] = field(default_factory=set)


class MplintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("mplint", __version__, notebook_document_sync=NOTEBOOK_SYNC)
        self.linted: dict[str, _Linted] = {}
        self.notebooks: dict[str, _Cells] = {}
        self._engines: dict[Path | None, tuple[Config, Engine]] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}

    def report_server_error(self, error: Exception, source: type[Exception]) -> None:
        """A message that cannot be handled (not JSON, a change to a document never opened)
        is logged, and a message that is not JSON is answered with JSON-RPC's parse error;
        the server goes on. pygls would show the exception in a pop-up and stop."""
        described = f"{type(error).__name__}: {error}"
        logger.warning("cannot handle a message: %s", described)
        self.window_log_message(types.LogMessageParams(
            types.MessageType.Warning, f"mplint: cannot handle a message ({described})"))
        if isinstance(error, json.JSONDecodeError):
            # JSON-RPC answers it with a null id, which lsprotocol's classes would leave out;
            # no public call sends a plain message.
            self.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": {
                "code": _PARSE_ERROR, "message": f"Parse error: {error}"}})

    def known(self, uri: str) -> bool:
        """Whether the editor has opened ``uri`` (requests about others get empty answers)."""
        return unquote(uri) in self.workspace.text_documents

    # -- analysis ----------------------------------------------------------------------------

    def engine_for(self, path: Path | None) -> tuple[Config, Engine]:
        """The configuration and engine of the pyproject.toml nearest ``path``."""
        config_path = find_pyproject(path) if path is not None else None
        if config_path not in self._engines:
            try:
                config = load(config_path)
            except ConfigError as problem:
                self.window_show_message(types.ShowMessageParams(
                    types.MessageType.Error, f"mplint: {problem} (using the defaults)"))
                config = Config()
            self._engines[config_path] = (config, Engine(config, Tree(config.search_roots()),
                                                         edits=True))
        return self._engines[config_path]

    def forget_modules(self) -> None:
        """A file or a configuration was saved: read the project afresh on the next lint."""
        from mplint import modules

        self._engines.clear()
        modules.forget()  # a module may have been created or removed

    def lint(self, uri: str) -> _Linted:
        """Lint the document as the editor holds it; a text that does not parse keeps the
        last findings. A notebook cell is linted with its notebook."""
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        if notebook is not None:
            self.lint_notebook(notebook.uri)
            linted = self.linted[uri]
            if self.notebooks[notebook.uri].stale:  # no actions on a text mid-edit
                cell = self.workspace.get_text_document(uri)
                return _Linted(cell.source, cell.version, [], notebook=notebook.uri)
            return linted
        document = self.workspace.get_text_document(uri)
        text = document.source
        previous = self.linted.get(uri)
        if previous is not None and previous.text == text:
            return previous
        path = _path(uri)
        config, engine = self.engine_for(path)
        if path is not None and excluded(path, config.exclude):
            findings: list[Finding] = []
        else:
            shown = str(path) if path is not None else uri
            findings = engine.lint(Source(text, shown, path))
        if any(f.is_error and f.message.startswith(_SYNTAX_ERROR) for f in findings):
            kept = previous.findings if previous is not None else []
            self.linted[uri] = _Linted(previous.text if previous else text, document.version,
                                       kept)
            return _Linted(text, document.version, [])  # no actions on a text mid-edit
        findings = [f for f in findings if not f.is_error or config.enabled(f.code, f.path)]
        self.linted[uri] = _Linted(text, document.version, findings)
        return self.linted[uri]

    def lint_notebook(self, uri: str) -> None:
        """Lint the notebook's Python code cells in order as one module, as the CLI does, and
        keep each cell's findings under the cell's URI; while the module does not parse, each
        cell keeps its last findings and offers no actions."""
        from mplint.notebook import Notebook

        document = self.workspace.get_notebook_document(notebook_uri=uri)
        if document is None:
            return
        uris = {number: cell.document for number, cell in enumerate(document.cells, start=1)}
        texts = {number: self.workspace.get_text_document(u) for number, u in uris.items()}
        notebook = Notebook.of_cells([
            (number, texts[number].source) for number, cell in enumerate(document.cells, 1)
            if cell.kind == types.NotebookCellKind.Code
            and texts[number].language_id == "python"])
        state = self.notebooks.setdefault(uri, _Cells())
        if state.module == notebook.text and state.uris == uris and all(
                u in self.linted and self.linted[u].version == texts[n].version
                for n, u in uris.items()):
            return
        path = _path(uri)
        source = Source(notebook.text, str(path) if path is not None else uri, path, "utf-8",
                        notebook)
        findings = self.notebook_findings(source)
        state.stale = findings is None
        for number, cell_uri in uris.items():
            if findings is None and cell_uri in self.linted:
                continue  # mid-edit: the last findings stay, with the text they are of
            mine = [f for f in findings or [] if f.cell == number]
            self.linted[cell_uri] = _Linted(texts[number].source, texts[number].version, mine,
                                            notebook=uri)
        state.module, state.uris = ("" if findings is None else notebook.text), uris
        if findings is not None:
            state.source = source

    def notebook_findings(self, source: Source) -> list[Finding] | None:
        """The findings of a notebook's module, positioned in its cells; None while it does
        not parse."""
        config, engine = self.engine_for(source.path)
        assert source.notebook is not None
        if not source.notebook.cells or (source.path is not None
                                         and excluded(source.path, config.exclude)):
            return []
        findings = engine.lint(source)
        if any(f.is_error and f.message.startswith(_SYNTAX_ERROR) for f in findings):
            return None
        return [f for f in findings if not f.is_error or config.enabled(f.code, f.path)]

    def publish_notebook(self, uri: str) -> None:
        """Diagnostics for every cell of the notebook; cells no longer in it are cleared."""
        self.lint_notebook(uri)
        state = self.notebooks.get(uri)
        if state is None:
            return
        current = set(state.uris.values())
        for gone in sorted(state.published - current):
            self.clear(gone)
        for cell_uri in state.uris.values():
            stored = self.linted[cell_uri]
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=cell_uri, version=stored.version,
                diagnostics=[self.diagnostic(stored.text, f) for f in stored.findings]))
        state.published = current

    def close_notebook(self, uri: str) -> None:
        """Forget the notebook and clear the diagnostics of all its cells."""
        self.cancel(uri)
        state = self.notebooks.pop(uri, None)
        if state is not None:
            for cell_uri in sorted(state.published | set(state.uris.values())):
                self.clear(cell_uri)

    def clear(self, uri: str) -> None:
        self.linted.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri,
                                                                              diagnostics=[]))

    def publish(self, uri: str) -> None:
        linted = self.lint(uri)
        stored = self.linted[uri]
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=linted.version,
            diagnostics=[self.diagnostic(stored.text, f) for f in stored.findings]))

    def cancel(self, uri: str) -> None:
        """Forget a lint scheduled for ``uri``."""
        waiting = self._pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()

    def schedule(self, uri: str) -> None:
        """Lint ``uri`` (a document or a notebook) once the edits stop for a moment."""
        self.cancel(uri)

        async def later() -> None:
            await asyncio.sleep(_DEBOUNCE_S)
            self._pending.pop(uri, None)
            if self.known(uri):  # not closed meanwhile
                self.publish(uri)
            elif self.workspace.get_notebook_document(notebook_uri=uri) is not None:
                self.publish_notebook(uri)

        self._pending[uri] = asyncio.get_running_loop().create_task(later())

    # -- positions ---------------------------------------------------------------------------

    def client_range(self, text: str, line: int, column: int, end_line: int,
                     end_column: int) -> types.Range:
        """A 1-based code-point range of ``text`` in the units the client counts."""
        lines = physical_lines(text)
        codec = self.workspace.position_codec
        return codec.range_to_client_units(lines, types.Range(
            types.Position(line - 1, column - 1), types.Position(end_line - 1, end_column - 1)))

    def server_range(self, text: str, client: types.Range) -> types.Range:
        """A client's range in code points (0-based)."""
        lines = physical_lines(text)
        found = self.workspace.position_codec.range_from_client_units(lines, client)
        return types.Range(types.Position(found.start.line, found.start.character),
                           types.Position(found.end.line, found.end.character))

    def diagnostic(self, text: str, finding: Finding) -> types.Diagnostic:
        return types.Diagnostic(
            range=self.client_range(text, finding.line, finding.column, finding.end_line,
                                    finding.end_column),
            message=finding.message,
            severity=(types.DiagnosticSeverity.Error if finding.is_error
                      else types.DiagnosticSeverity.Warning),
            code=finding.code,
            source="mplint",
        )

    def text_edits(self, text: str, edits: Sequence[Edit]) -> list[types.TextEdit]:
        return [types.TextEdit(range=self.client_range(text, e.line, e.column, e.end_line,
                                                       e.end_column), new_text=e.content)
                for e in edits]

    def workspace_edit(self, uri: str, linted: _Linted, edits: Sequence[Edit],
                       creates: Sequence[NewFile] = ()) -> types.WorkspaceEdit:
        """The edits of ``uri``'s text; in a notebook, of the cells each edit names. A file
        the fix creates comes first: created, then filled."""
        changes: list[types.TextDocumentEdit | types.CreateFile] = []
        for new in creates:
            new_uri = Path(new.path).absolute().as_uri()
            changes += [types.CreateFile(uri=new_uri), types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=new_uri,
                                                                            version=None),
                edits=[types.TextEdit(range=types.Range(types.Position(0, 0),
                                                        types.Position(0, 0)),
                                      new_text=new.content)])]
        targets: dict[str, list[Edit]] = {}
        for edit in edits:
            target = uri if edit.cell is None else self.cell_uri(linted, edit.cell)
            targets.setdefault(target, []).append(edit)
        for target, own in targets.items():
            document = linted if target == uri else self.linted[target]
            changes.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=target, version=document.version),
                edits=list(self.text_edits(document.text, own))))
        return types.WorkspaceEdit(document_changes=changes)

    def cell_uri(self, linted: _Linted, cell: int) -> str:
        """The URI of the cell numbered ``cell`` in the notebook of the cell ``linted``."""
        assert linted.notebook is not None
        return self.notebooks[linted.notebook].uris[cell]


server = MplintServer()


def _path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    local = to_fs_path(uri)
    return Path(local) if local else None


def _overlaps(finding: Finding, wanted: types.Range) -> bool:
    """Whether a finding (1-based) touches a range (0-based, code points)."""
    start = (finding.line - 1, finding.column - 1)
    end = (finding.end_line - 1, finding.end_column - 1)
    return (start <= (wanted.end.line, wanted.end.character)
            and (wanted.start.line, wanted.start.character) <= end)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: MplintServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: MplintServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: MplintServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.forget_modules()
    ls.linted.pop(params.text_document.uri, None)
    if ls.known(params.text_document.uri):
        ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: MplintServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.linted.pop(uri, None)
    ls.cancel(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
def did_open_notebook(ls: MplintServer, params: types.DidOpenNotebookDocumentParams) -> None:
    ls.publish_notebook(params.notebook_document.uri)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def did_change_notebook(ls: MplintServer,
                        params: types.DidChangeNotebookDocumentParams) -> None:
    ls.schedule(params.notebook_document.uri)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
def did_save_notebook(ls: MplintServer, params: types.DidSaveNotebookDocumentParams) -> None:
    ls.forget_modules()
    uri = params.notebook_document.uri
    state = ls.notebooks.get(uri)
    if state is not None:
        state.module = ""  # lint it afresh: a module it imports may have changed
    if ls.workspace.get_notebook_document(notebook_uri=uri) is not None:
        ls.publish_notebook(uri)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def did_close_notebook(ls: MplintServer, params: types.DidCloseNotebookDocumentParams) -> None:
    ls.close_notebook(params.notebook_document.uri)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_files(ls: MplintServer, params: types.DidChangeWatchedFilesParams) -> None:
    ls.forget_modules()


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll,
                       FIX_ALL], resolve_provider=False))
def code_action(ls: MplintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    if not ls.known(uri):
        return []
    linted = ls.lint(uri)
    only = params.context.only
    actions: list[types.CodeAction] = []
    if _wanted(types.CodeActionKind.QuickFix, only):
        wanted = ls.server_range(linted.text, params.range)
        for finding in linted.findings:
            if not finding.is_error and _overlaps(finding, wanted):
                actions.extend(_quick_fixes(ls, uri, linted, finding))
    if _wanted(FIX_ALL, only):
        fix_all = _fix_all(ls, uri, linted)
        if fix_all is not None:
            actions.append(fix_all)
    return actions


def _wanted(kind: str, only: Sequence[str] | None) -> bool:
    return not only or any(kind == k or kind.startswith(f"{k}.") for k in only)


def _quick_fixes(ls: MplintServer, uri: str, linted: _Linted,
                 finding: Finding) -> list[types.CodeAction]:
    diagnostic = ls.diagnostic(linted.text, finding)
    actions = []
    fix = finding.fix
    if fix is not None and fix.edits:
        safe = fix.safety == SAFE
        label = "" if safe or "unsafe" in fix.title else " (unsafe)"
        actions.append(types.CodeAction(
            title=f"mplint: {fix.title}{label}", kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic], is_preferred=safe,
            edit=ls.workspace_edit(uri, linted, fix.edits, fix.creates)))
    noqa = _noqa_edits(ls, linted, finding)
    if noqa:
        actions.append(types.CodeAction(
            title=f"mplint: disable {finding.code} for this line",
            kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
            edit=ls.workspace_edit(uri, linted, noqa)))
    return actions


def _noqa_edits(ls: MplintServer, linted: _Linted, finding: Finding) -> tuple[Edit, ...]:
    """The edits that add ``# noqa: CODE`` to the finding's line; in a notebook cell, added
    as the CLI adds it, to the line of the module the cells make (IPython syntax masked)."""
    from dataclasses import replace

    from mplint.suppress import add_noqa

    source = ls.notebooks[linted.notebook].source if linted.notebook is not None else None
    if source is None or source.notebook is None or finding.cell is None:
        suppressed = add_noqa(linted.text, {finding.line: [finding.code]})
        return edits_between(linted.text, suppressed.text) if suppressed.added else ()
    notebook = source.notebook
    suppressed = add_noqa(notebook.text, {notebook.module_line(finding.cell, finding.line):
                                          [finding.code]})
    return tuple(replace(edit, cell=number)
                 for number, before, after in notebook.changed_cells(suppressed.text)
                 for edit in edits_between(before, after))


def _fix_all(ls: MplintServer, uri: str, linted: _Linted) -> types.CodeAction | None:
    """Every safe fix of the document; on a notebook cell, of all the notebook's cells."""
    cells = ([ls.linted[u] for u in ls.notebooks[linted.notebook].uris.values()]
             if linted.notebook is not None else [linted])
    if not any(f.fix is not None and f.fix.safety == SAFE for c in cells for f in c.findings):
        return None
    if linted.notebook is not None:
        edits = _fix_all_cells(ls, linted.notebook)
    else:
        path = _path(uri)
        _, engine = ls.engine_for(path)
        result = engine.fix(Source(linted.text, str(path) if path else uri, path))
        edits = edits_between(linted.text, result.text)
    if not edits:
        return None
    return types.CodeAction(title="mplint: fix all safe fixes", kind=FIX_ALL,
                            edit=ls.workspace_edit(uri, linted, edits))


def _fix_all_cells(ls: MplintServer, notebook_uri: str) -> tuple[Edit, ...]:
    """Every safe fix of the notebook, as edits of the cells they change."""
    from dataclasses import replace

    source = ls.notebooks[notebook_uri].source
    if source is None or source.notebook is None:
        return ()
    _, engine = ls.engine_for(source.path)
    result = engine.fix(source)
    return tuple(replace(edit, cell=number)
                 for number, before, after in source.notebook.changed_cells(result.text)
                 for edit in edits_between(before, after))


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: MplintServer, params: types.HoverParams) -> types.Hover | None:
    from mplint.rules import rule_by_code

    linted = ls.linted.get(params.text_document.uri)
    if linted is None:
        return None
    point = ls.server_range(linted.text, types.Range(params.position, params.position))
    rules = rule_by_code()
    pages = [rules[f.code].docs() for f in linted.findings
             if f.code in rules and _overlaps(f, point)]
    if not pages:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                    value="\n---\n\n".join(dict.fromkeys(pages))))


def main() -> int:
    # Editors keep a server's stderr in their log: one line per problem, never a pop-up.
    logging.basicConfig(level=logging.WARNING, format="mplint server: %(message)s")
    server.start_io()
    return 0
