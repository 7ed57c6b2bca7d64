"""How long the language server takes to show diagnostics: on open (cold: the file and the tree
modules it imports are read) and after each keystroke (warm: only the edited file is parsed
again). Drives ``mplint server`` over stdio with a real LSP client.

    python benchmarks/server_latency.py FILE [FILE ...] [--edits 10]

Keystroke figures are the time from ``didChange`` to ``publishDiagnostics`` less the server's
0.15 s debounce (the wait for the edits to stop), median and worst of ``--edits`` edits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

DEBOUNCE_S = 0.15


async def measure(path: Path, edits: int) -> tuple[float, list[float], int]:
    client = LanguageClient("latency", "1")
    published: asyncio.Queue[types.PublishDiagnosticsParams] = asyncio.Queue()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: types.PublishDiagnosticsParams) -> None:
        published.put_nowait(params)

    await client.start_io(sys.executable, "-m", "mplint", "server")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=path.resolve().parent.as_uri()))
    client.initialized(types.InitializedParams())
    uri = path.resolve().as_uri()
    text = path.read_text(encoding="utf-8")
    started = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    first = await asyncio.wait_for(published.get(), 600)
    cold = time.perf_counter() - started
    warm = []
    for version in range(2, edits + 2):
        text += f"# edit {version}\n"
        started = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        await asyncio.wait_for(published.get(), 600)
        warm.append(time.perf_counter() - started - DEBOUNCE_S)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return cold, warm, len(first.diagnostics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--edits", type=int, default=10)
    options = parser.parse_args()
    print(f"{'file':<60} {'findings':>8} {'open':>8} {'keystroke median':>17} {'worst':>7}")
    for path in options.files:
        cold, warm, found = asyncio.run(measure(path, options.edits))
        print(f"{str(path)[-60:]:<60} {found:>8} {cold:>7.2f}s {statistics.median(warm):>16.3f}s"
              f" {max(warm):>6.3f}s")


if __name__ == "__main__":
    main()
