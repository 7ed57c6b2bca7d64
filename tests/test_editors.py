"""The README's editor sections: each one's command line starts a server that completes an
LSP session, and the Neovim set-up, as written, shows diagnostics in a real Neovim where one
is installed (`scripts/check_neovim.py`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import BIN, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
EDITORS = README[README.index("## Editors: the language server"):README.index("## flake8")]


def _block(after: str, language: str) -> str:
    """The first fenced block in ``language`` after the text ``after`` in the editor section."""
    rest = EDITORS[EDITORS.index(after):]
    match = re.search(rf"```{language}\n(.*?)```", rest, re.S)
    assert match is not None, (after, language)
    return match.group(1)


def _lua_command(block: str) -> list[str]:
    match = re.search(r"cmd = \{([^}]*)\}", block)
    assert match is not None, block
    return re.findall(r'"([^"]*)"', match.group(1))


def _vscode() -> list[str]:
    settings = json.loads(_block("**VS Code**", "json"))
    return [settings["glspc.server.command"], *settings["glspc.server.commandArguments"]]


def _helix() -> list[str]:
    server = tomllib.loads(_block("**Helix**", "toml"))["language-server"]["mplint"]
    assert "mplint" in tomllib.loads(_block("**Helix**", "toml"))["language"][0][
        "language-servers"]
    return [server["command"], *server["args"]]


def _emacs() -> list[str]:
    match = re.search(r'\. \(("[^)]*)\)\)\)\)', _block("**Emacs**", "elisp"))
    assert match is not None
    return re.findall(r'"([^"]*)"', match.group(1))


COMMANDS = {
    "vscode": _vscode,
    "neovim": lambda: _lua_command(_block("**Neovim** 0.11", "lua")),
    "neovim-lspconfig": lambda: _lua_command(_block("Older Neovim", "lua")),
    "helix": _helix,
    "emacs": _emacs,
}


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("editor", sorted(COMMANDS))
def test_each_editor_command_starts_a_working_server(editor: str, tmp_path: Path) -> None:
    """The editor's command line, run as the editor runs it (mplint from PATH), answers an
    LSP session: a document opened gets mplint's diagnostics, and shutdown ends it."""
    command = COMMANDS[editor]()
    assert command[0] == "mplint" and "server" in command, command
    job = tmp_path / "job.py"
    job.write_text("import multiprocessing as mp\n\nwith mp.Pool(2) as pool:\n"
                   "    pool.map(abs, [1])\n", encoding="utf-8")
    session = b"".join([
        _frame({"id": 1, "method": "initialize", "params": {"capabilities": {}}}),
        _frame({"method": "initialized", "params": {}}),
        _frame({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": job.as_uri(), "languageId": "python", "version": 1,
            "text": job.read_text(encoding="utf-8")}}}),
        _frame({"id": 2, "method": "shutdown"}),
        _frame({"method": "exit"}),
    ])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    served = subprocess.run(command, input=session, capture_output=True, timeout=120,
                            env=env, cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert b'"codeActionProvider"' in served.stdout
    assert b'"code": "MPL101"' in served.stdout and b'"id": 2' in served.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed (CI has none)")
def test_the_readme_neovim_setup_shows_diagnostics_in_neovim() -> None:
    """The README's Lua for this Neovim: `vim.lsp.config` from 0.11 on; before that the
    nvim-lspconfig set-up, with the checkout named by MPLINT_LSPCONFIG (v0.1.6 for 0.7)."""
    arguments = [sys.executable, str(ROOT / "scripts" / "check_neovim.py")]
    version = subprocess.run(["nvim", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v(\d+)\.(\d+)", version)
    assert found is not None
    if (int(found.group(1)), int(found.group(2))) < (0, 11):
        lspconfig = os.environ.get("MPLINT_LSPCONFIG")
        if not lspconfig:
            pytest.skip("Neovim before 0.11 needs MPLINT_LSPCONFIG=PATH of nvim-lspconfig")
        arguments += ["--lspconfig", lspconfig]
    checked = subprocess.run(arguments, capture_output=True, text=True, timeout=180)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.fullmatch(r"\d+:\d+:MPL101:mplint\n", checked.stdout), checked.stdout
