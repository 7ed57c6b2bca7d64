"""``mplint server`` with notebook documents (LSP 3.17 ``notebookDocument/*``): a real client
opens a notebook, changes its cells, and applies the quick fixes it is offered."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.asyncio

IMPORTS = "import multiprocessing as mp\n%matplotlib inline"
SQUARE = "# squares\ndef square(x):\n    return x * x"
POOL = "with mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))"
MESSAGE = (
    "function `square` is defined in the notebook, so a child started by Pool.map under spawn "
    "or forkserver cannot find it (\"Can't get attribute 'square' on <module '__main__'>\"; a "
    "pool then hangs); move it into a module beside the notebook and import it")


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "mplint", "server", "--stdio"]))
async def client(lsp_client: LanguageClient) -> object:
    sync = types.NotebookDocumentSyncClientCapabilities(dynamic_registration=False)
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            notebook_document=types.NotebookDocumentClientCapabilities(synchronization=sync))))
    # the server asks for Jupyter notebooks' Python cells, and for saves
    sync_options = result.capabilities.notebook_document_sync
    assert isinstance(sync_options, types.NotebookDocumentSyncOptions) and sync_options.save
    [selector] = sync_options.notebook_selector
    assert selector.notebook == "jupyter-notebook"
    assert list(selector.cells or ()) == [types.NotebookCellLanguage("python")]
    yield
    await lsp_client.shutdown_session()


class Book:
    """A notebook as an editor holds it: its URI, and each cell's kind, URI and text."""

    def __init__(self, path: Path, *cells: str) -> None:
        self.path = path
        self.uri = path.as_uri()
        self.version = 1
        self.cells: list[tuple[types.NotebookCellKind, str, str]] = [
            (types.NotebookCellKind.Markup, self.cell_uri(0), "# Notes")]
        for source in cells:
            self.cells.append((types.NotebookCellKind.Code, self.cell_uri(len(self.cells)),
                               source))

    def cell_uri(self, index: int) -> str:
        # as VS Code names cells: the notebook's path and an opaque fragment
        return f"vscode-notebook-cell:{self.path.as_posix()}#W{index}sZmlsZQ%3D%3D"

    def item(self, index: int) -> types.TextDocumentItem:
        kind, uri, text = self.cells[index]
        language = "python" if kind == types.NotebookCellKind.Code else "markdown"
        return types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)

    def open_params(self) -> types.DidOpenNotebookDocumentParams:
        return types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=self.uri, notebook_type="jupyter-notebook", version=self.version,
                cells=[types.NotebookCell(kind=kind, document=uri)
                       for kind, uri, _ in self.cells]),
            cell_text_documents=[self.item(i) for i in range(len(self.cells))])

    def changed(self, cells: types.NotebookDocumentCellChanges
                ) -> types.DidChangeNotebookDocumentParams:
        self.version += 1
        return types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(
                version=self.version, uri=self.uri),
            change=types.NotebookDocumentChangeEvent(cells=cells))


async def published(client: LanguageClient, uris: Sequence[str],
                    send: Callable[[], None]) -> dict[str, Sequence[types.Diagnostic]]:
    """The diagnostics the server publishes for each of ``uris`` after ``send``."""
    client.diagnostics.clear()
    send()
    async with asyncio.timeout(60):
        while not all(uri in client.diagnostics for uri in uris):
            await asyncio.sleep(0.02)
    return {uri: client.diagnostics[uri] for uri in uris}


async def open_book(client: LanguageClient, book: Book) -> list[Sequence[types.Diagnostic]]:
    found = await published(client, [uri for _, uri, _ in book.cells],
                            lambda: client.notebook_document_did_open(book.open_params()))
    return [found[uri] for _, uri, _ in book.cells]


async def quick_fixes(client: LanguageClient, uri: str,
                      diagnostic: types.Diagnostic) -> list[types.CodeAction]:
    found = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic],
                                        only=[types.CodeActionKind.QuickFix])))
    assert found is not None
    return [a for a in found if isinstance(a, types.CodeAction)]


def apply(text: str, edits: Sequence[types.TextEdit | types.AnnotatedTextEdit]) -> str:
    """Text edits applied as an editor does (positions of ASCII text)."""
    lines = text.splitlines(keepends=True)

    def offset(position: types.Position) -> int:
        return sum(len(each) for each in lines[:position.line]) + position.character

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                       reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


def edit_cell(book: Book, index: int, text: str) -> types.DidChangeNotebookDocumentParams:
    kind, uri, _ = book.cells[index]
    book.cells[index] = (kind, uri, text)
    return book.changed(types.NotebookDocumentCellChanges(text_content=[
        types.NotebookDocumentCellContentChanges(
            document=types.VersionedTextDocumentIdentifier(uri=uri, version=book.version + 1),
            changes=[types.TextDocumentContentChangeWholeDocument(text=text)])]))


async def test_cells_get_diagnostics_and_the_move_to_a_module_applies(
        client: LanguageClient, tmp_path: Path) -> None:
    book = Book(tmp_path / "explore.ipynb", IMPORTS, SQUARE, POOL)
    markdown, imports, square, pool = await open_book(client, book)
    assert markdown == imports == square == ()  # no MPL101: a kernel's __main__ is no file
    [diagnostic] = pool
    assert (diagnostic.code, diagnostic.message) == ("MPL207", MESSAGE)
    assert diagnostic.range == types.Range(types.Position(1, 10), types.Position(1, 36))
    move, noqa = await quick_fixes(client, book.cells[3][1], diagnostic)
    assert move.title == ("mplint: move `square` into explore_tasks.py beside the notebook and "
                          "import it (unsafe)")
    assert not move.is_preferred and move.edit is not None
    create, fill, cell = move.edit.document_changes or []
    module = (tmp_path / "explore_tasks.py").as_uri()
    assert isinstance(create, types.CreateFile) and create.uri == module
    assert isinstance(fill, types.TextDocumentEdit) and fill.text_document.uri == module
    assert apply("", fill.edits) == (
        "# Moved out of explore.ipynb so that worker processes can import them.\n\n\n"
        "def square(x):\n    return x * x\n")
    assert isinstance(cell, types.TextDocumentEdit)
    assert (cell.text_document.uri, cell.text_document.version) == (book.cells[2][1], 1)
    moved = apply(SQUARE, cell.edits)
    assert moved == "# squares\nfrom explore_tasks import square"
    (tmp_path / "explore_tasks.py").write_text(apply("", fill.edits), encoding="utf-8")
    after = await published(client, [book.cells[3][1]],
                            lambda: client.notebook_document_did_change(
                                edit_cell(book, 2, moved)))
    assert after[book.cells[3][1]] == ()
    assert noqa.title == "mplint: disable MPL207 for this line"


async def test_disable_for_this_line_and_hover_work_on_a_cell(client: LanguageClient,
                                                              tmp_path: Path) -> None:
    book = Book(tmp_path / "nb.ipynb", IMPORTS, SQUARE, "!nvidia-smi\n" + POOL)
    *_, [diagnostic] = await open_book(client, book)
    assert diagnostic.range.start == types.Position(2, 10)
    uri = book.cells[3][1]
    shown = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=diagnostic.range.start))
    assert shown is not None and isinstance(shown.contents, types.MarkupContent)
    assert shown.contents.value.startswith("# MPL207 notebook-defined-task\n")
    _, noqa = await quick_fixes(client, uri, diagnostic)
    assert noqa.edit is not None
    [change] = noqa.edit.document_changes or []
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.uri == uri
    silenced = apply("!nvidia-smi\n" + POOL, change.edits)
    assert silenced == "!nvidia-smi\n" + POOL + "  # noqa: MPL207"
    after = await published(client, [uri], lambda: client.notebook_document_did_change(
        edit_cell(book, 3, silenced)))
    assert after[uri] == ()


async def test_a_safe_fix_on_a_cell_is_preferred_and_fix_all_edits_the_cells(
        client: LanguageClient, tmp_path: Path) -> None:
    book = Book(tmp_path / "nb.ipynb", "import multiprocessing as mp\nfrom tasks import work",
                "queue = mp.Queue()",
                'ctx = mp.get_context("spawn")\np = ctx.Process(target=work, args=(queue,))\n'
                "p.start()")
    _, _, [diagnostic], _ = await open_book(client, book)
    assert diagnostic.code == "MPL206"
    fix, _ = await quick_fixes(client, book.cells[2][1], diagnostic)
    assert fix.is_preferred and fix.edit is not None
    [change] = fix.edit.document_changes or []
    assert isinstance(change, types.TextDocumentEdit)
    assert apply("queue = mp.Queue()", change.edits) == 'queue = mp.get_context("spawn").Queue()'
    found = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=book.cells[1][1]),
        range=types.Range(types.Position(0, 0), types.Position(0, 0)),
        context=types.CodeActionContext(diagnostics=[],
                                        only=[types.CodeActionKind.SourceFixAll])))
    [fix_all] = [a for a in found or [] if isinstance(a, types.CodeAction)]
    assert fix_all.edit is not None
    [change] = fix_all.edit.document_changes or []
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.uri == book.cells[2][1]
    assert apply("queue = mp.Queue()", change.edits) == 'queue = mp.get_context("spawn").Queue()'


async def test_added_cells_get_diagnostics_and_removed_ones_are_cleared(
        client: LanguageClient, tmp_path: Path) -> None:
    book = Book(tmp_path / "nb.ipynb", IMPORTS)
    assert await open_book(client, book) == [(), ()]
    book.cells += [(types.NotebookCellKind.Code, book.cell_uri(2), SQUARE),
                   (types.NotebookCellKind.Code, book.cell_uri(3), POOL)]
    added = book.changed(types.NotebookDocumentCellChanges(
        structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=2, delete_count=0, cells=[
                types.NotebookCell(kind=types.NotebookCellKind.Code, document=book.cell_uri(i))
                for i in (2, 3)]),
            did_open=[book.item(2), book.item(3)])))
    found = await published(client, [book.cell_uri(3)],
                            lambda: client.notebook_document_did_change(added))
    assert [d.message for d in found[book.cell_uri(3)]] == [MESSAGE]
    removed = book.changed(types.NotebookDocumentCellChanges(
        structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=3, delete_count=1),
            did_close=[types.TextDocumentIdentifier(uri=book.cell_uri(3))])))
    found = await published(client, [book.cell_uri(3)],
                            lambda: client.notebook_document_did_change(removed))
    assert found[book.cell_uri(3)] == ()


async def test_moving_the_pool_above_the_definition_and_closing(client: LanguageClient,
                                                                 tmp_path: Path) -> None:
    """Cells are read in the notebook's order; closing the notebook clears every cell."""
    book = Book(tmp_path / "nb.ipynb", IMPORTS, SQUARE, POOL)
    *_, [diagnostic] = await open_book(client, book)
    assert diagnostic.range.start == types.Position(1, 10)
    pool = types.NotebookCell(kind=types.NotebookCellKind.Code, document=book.cells[3][1])
    square = types.NotebookCell(kind=types.NotebookCellKind.Code, document=book.cells[2][1])
    book.cells[2], book.cells[3] = book.cells[3], book.cells[2]
    moved = book.changed(types.NotebookDocumentCellChanges(
        structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=2, delete_count=2, cells=[pool, square]))))
    found = await published(client, [book.cells[2][1], book.cells[3][1]],
                            lambda: client.notebook_document_did_change(moved))
    # the pool now runs before `square` is defined, as the CLI reads that order: nothing
    assert found == {book.cells[2][1]: (), book.cells[3][1]: ()}
    book.cells[2], book.cells[3] = book.cells[3], book.cells[2]
    back = book.changed(types.NotebookDocumentCellChanges(
        structure=types.NotebookDocumentCellChangeStructure(
            array=types.NotebookCellArrayChange(start=2, delete_count=2, cells=[square, pool]))))
    found = await published(client, [book.cells[3][1]],
                            lambda: client.notebook_document_did_change(back))
    assert found[book.cells[3][1]] == (diagnostic,)
    uris = [uri for _, uri, _ in book.cells]
    closed = await published(client, uris, lambda: client.notebook_document_did_close(
        types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=book.uri),
            cell_text_documents=[types.TextDocumentIdentifier(uri=u) for u in uris])))
    assert all(diagnostics == () for diagnostics in closed.values())


async def test_saving_relints_with_the_modules_read_again(client: LanguageClient,
                                                          tmp_path: Path) -> None:
    """A module the notebook imports, changed on disk, counts once the notebook is saved."""
    helpers = tmp_path / "helpers.py"
    helpers.write_text("def build():\n    return 1\n", encoding="utf-8")
    book = Book(tmp_path / "nb.ipynb", "import multiprocessing as mp\nfrom helpers import build",
                "def score(x):\n    return build() + x",
                'with mp.get_context("fork").Pool(2) as pool:\n'
                "    print(pool.map(score, range(4)))")
    assert await open_book(client, book) == [(), (), (), ()]
    helpers.write_text("import torch\n\n\ndef build():\n    return torch.nn.Linear(4, 1)\n",
                       encoding="utf-8")
    found = await published(client, [book.cells[2][1]], lambda: client.notebook_document_did_save(
        types.DidSaveNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=book.uri))))
    [diagnostic] = found[book.cells[2][1]]
    assert diagnostic.code == "MPL301"
    assert diagnostic.range == types.Range(types.Position(1, 11), types.Position(1, 18))


async def test_cells_that_do_not_parse_mid_edit_keep_their_diagnostics(
        client: LanguageClient, tmp_path: Path) -> None:
    book = Book(tmp_path / "nb.ipynb", IMPORTS, SQUARE, POOL)
    *_, before = await open_book(client, book)
    typing = SQUARE.replace("return x * x", "return (x *")
    during = await published(client, [book.cells[3][1]],
                             lambda: client.notebook_document_did_change(
                                 edit_cell(book, 2, typing)))
    assert during[book.cells[3][1]] == before and [d.code for d in before] == ["MPL207"]
    assert await quick_fixes(client, book.cells[3][1], before[0]) == []
    after = await published(client, [book.cells[3][1]],
                            lambda: client.notebook_document_did_change(
                                edit_cell(book, 2, SQUARE)))
    assert after[book.cells[3][1]] == before
    assert len(await quick_fixes(client, book.cells[3][1], before[0])) == 2
