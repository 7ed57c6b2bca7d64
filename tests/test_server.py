"""``mplint server`` end to end: a real LSP client talks to the real server over stdio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import pytest_lsp
from conftest import write
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.asyncio

SCRIPT = """\
import multiprocessing as mp


def square(x):
    return x * x


with mp.Pool(2) as pool:  # 🚀 four squares
    print(pool.map(square, range(4)))
"""
GUARDED = """\
import multiprocessing as mp


def square(x):
    return x * x


if __name__ == "__main__":
    with mp.Pool(2) as pool:  # 🚀 four squares
        print(pool.map(square, range(4)))
"""


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "mplint", "server", "--stdio"]))
async def client(lsp_client: LanguageClient) -> object:
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


def apply(text: str, edit: types.WorkspaceEdit) -> str:
    """A workspace edit's text edits applied as an editor does (UTF-16 positions)."""
    assert edit.document_changes is not None
    [change] = edit.document_changes
    assert isinstance(change, types.TextDocumentEdit)
    lines = text.splitlines(keepends=True)

    def offset(position: types.Position) -> int:
        line = lines[position.line] if position.line < len(lines) else ""
        units = line.encode("utf-16-le")[:2 * position.character].decode("utf-16-le")
        return sum(len(each) for each in lines[:position.line]) + len(units)

    for text_edit in sorted(change.edits, key=lambda e: (e.range.start.line,
                                                         e.range.start.character),
                            reverse=True):
        assert isinstance(text_edit, types.TextEdit)
        start, end = offset(text_edit.range.start), offset(text_edit.range.end)
        text = text[:start] + text_edit.new_text + text[end:]
    return text


async def open_file(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=path.read_text(encoding="utf-8"))))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client.diagnostics[uri]


async def change(client: LanguageClient, path: Path, text: str,
                 version: int) -> list[types.Diagnostic]:
    uri = path.as_uri()
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client.diagnostics[uri]


async def actions(client: LanguageClient, path: Path, diagnostics: Sequence[types.Diagnostic],
                  only: list[str] | None = None) -> list[types.CodeAction]:
    found = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
        range=diagnostics[0].range if diagnostics else types.Range(types.Position(0, 0),
                                                                   types.Position(0, 0)),
        context=types.CodeActionContext(diagnostics=list(diagnostics), only=only)))
    assert found is not None
    return [a for a in found if isinstance(a, types.CodeAction)]


async def test_open_fix_and_the_diagnostic_clears(client: LanguageClient,
                                                  tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", SCRIPT)
    [diagnostic] = await open_file(client, path)
    assert diagnostic.code == "MPL101" and diagnostic.source == "mplint"
    assert diagnostic.severity == types.DiagnosticSeverity.Warning
    assert diagnostic.range == types.Range(types.Position(7, 5), types.Position(7, 15))
    assert diagnostic.message.startswith("multiprocessing.Pool starts processes when the module")
    fix, noqa = await actions(client, path, [diagnostic], only=[types.CodeActionKind.QuickFix])
    assert fix.title == 'mplint: move the script part under `if __name__ == "__main__":`'
    assert fix.kind == types.CodeActionKind.QuickFix and fix.is_preferred
    assert list(fix.diagnostics or ()) == [diagnostic]
    assert fix.edit is not None
    fixed = apply(SCRIPT, fix.edit)
    assert fixed == GUARDED
    assert await change(client, path, fixed, 2) == ()
    assert noqa.title == "mplint: disable MPL101 for this line"


async def test_disable_for_this_line_adds_noqa_after_wide_characters(client: LanguageClient,
                                                                     tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", SCRIPT)
    diagnostics = await open_file(client, path)
    _, noqa = await actions(client, path, diagnostics, only=[types.CodeActionKind.QuickFix])
    assert noqa.edit is not None and not noqa.is_preferred
    silenced = apply(SCRIPT, noqa.edit)
    assert silenced.splitlines()[7] == (
        "with mp.Pool(2) as pool:  # 🚀 four squares  # noqa: MPL101")
    assert await change(client, path, silenced, 2) == ()


async def test_a_file_that_does_not_parse_mid_edit_keeps_its_diagnostics(
        client: LanguageClient, tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", SCRIPT)
    before = await open_file(client, path)
    typing = SCRIPT.replace("print(pool.map(square, range(4)))", "print(pool.map(square, ")
    during = await change(client, path, typing, 2)
    assert [d.code for d in during] == ["MPL101"] and during == before
    assert await change(client, path, GUARDED, 3) == ()


async def test_unsafe_fixes_are_labelled_and_not_preferred(client: LanguageClient,
                                                           tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", """\
import multiprocessing as mp

import torch


def score(x):
    model = torch.nn.Linear(4, 1)
    return model(torch.ones(4) * x).item()


if __name__ == "__main__":
    mp.set_start_method("spawn")
    with mp.Pool(2) as pool:
        print(pool.map(score, range(4)))
""")
    diagnostics = await open_file(client, path)
    assert [d.code for d in diagnostics] == ["MPL301"]
    fix, _ = await actions(client, path, diagnostics, only=[types.CodeActionKind.QuickFix])
    assert fix.title == (
        "mplint: build it once per worker in `_init_worker_model` (Pool initializer=); unsafe: "
        "a load that fails now fails in every worker's start-up, not in each task")
    assert not fix.is_preferred


async def test_fix_all_makes_every_safe_fix(client: LanguageClient, tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", SCRIPT)
    await open_file(client, path)
    [fix_all] = await actions(client, path, [], only=[types.CodeActionKind.SourceFixAll])
    assert fix_all.kind == "source.fixAll.mplint" and fix_all.edit is not None
    assert apply(SCRIPT, fix_all.edit) == GUARDED


async def test_hover_on_a_finding_shows_the_rule(client: LanguageClient, tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", SCRIPT)
    [diagnostic] = await open_file(client, path)
    shown = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
        position=diagnostic.range.start))
    assert shown is not None and isinstance(shown.contents, types.MarkupContent)
    assert shown.contents.value.startswith("# MPL101 unguarded-start\n")
    nowhere = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
        position=types.Position(0, 0)))
    assert nowhere is None


async def test_each_folder_uses_its_own_configuration(client: LanguageClient,
                                                      tmp_path: Path) -> None:
    write(tmp_path / "quiet", "pyproject.toml", '[tool.mplint]\nignore = ["MPL101"]\n')
    quiet = write(tmp_path / "quiet", "job.py", SCRIPT)
    loud = write(tmp_path / "loud", "job.py", SCRIPT)
    assert await open_file(client, quiet) == ()
    assert [d.code for d in await open_file(client, loud)] == ["MPL101"]


async def test_save_relints_with_the_other_modules_read_again_and_close_clears(
        client: LanguageClient, tmp_path: Path) -> None:
    """A helper module changed on disk counts after a save; closing the file clears it."""
    write(tmp_path, "helpers.py", "def build():\n    return 1\n")
    path = write(tmp_path, "job.py", """\
import multiprocessing as mp

from helpers import build


def score(x):
    return build() + x


if __name__ == "__main__":
    mp.set_start_method("spawn")
    with mp.Pool(2) as pool:
        print(pool.map(score, range(4)))
""")
    assert await open_file(client, path) == ()
    write(tmp_path, "helpers.py", "import torch\n\n\ndef build():\n"
                                  "    return torch.nn.Linear(4, 1)\n")
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert [d.code for d in client.diagnostics[path.as_uri()]] == ["MPL301"]
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert client.diagnostics[path.as_uri()] == ()


async def test_a_file_level_noqa_silences_the_file(client: LanguageClient,
                                                   tmp_path: Path) -> None:
    path = write(tmp_path, "job.py", "# mplint: noqa: MPL101\n" + SCRIPT)
    assert await open_file(client, path) == ()
    assert [d.code for d in await change(client, path, SCRIPT, 2)] == ["MPL101"]


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _messages(stdout: bytes) -> list[dict[str, object]]:
    """The JSON-RPC messages a server wrote, in order."""
    found = []
    while stdout:
        header, _, rest = stdout.partition(b"\r\n\r\n")
        length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        found.append(json.loads(rest[:length]))
        stdout = rest[length:]
    return found


async def test_bad_messages_are_logged_and_answered_and_the_server_goes_on(
        tmp_path: Path) -> None:
    """Not JSON, a change to a document never opened and a code action on an unknown
    document: each is answered or logged (window/logMessage, never a pop-up), and the server
    still answers what follows and exits cleanly."""
    unknown = (tmp_path / "never-opened.py").as_uri()
    anywhere = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    requests = [
        {"id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"method": "initialized", "params": {}},
        b"{this is not json",
        {"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": unknown, "version": 2}, "contentChanges": [{"text": "x"}]}},
        {"id": 2, "method": "textDocument/codeAction", "params": {
            "textDocument": {"uri": unknown}, "range": anywhere,
            "context": {"diagnostics": []}}},
        {"id": 3, "method": "shutdown"},
        {"method": "exit"},
    ]
    stdin = b"".join(_frame(r if isinstance(r, bytes)
                            else json.dumps({"jsonrpc": "2.0", **r}).encode())
                     for r in requests)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mplint", "server", "--stdio"], input=stdin,
        capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    messages = _messages(done.stdout)
    assert not [m for m in messages if m.get("method") == "window/showMessage"]
    answers = {m["id"]: m for m in messages if "id" in m}
    assert answers[None]["error"]["code"] == -32700  # type: ignore[index]
    assert answers[2]["result"] == [] and answers[3]["result"] is None
    logged = [m["params"]["message"] for m in messages  # type: ignore[index]
              if m.get("method") == "window/logMessage"]
    assert len(logged) == 2 and all(text.startswith("mplint: cannot handle a message (")
                                    for text in logged)
    assert "Traceback" not in "".join(logged)
