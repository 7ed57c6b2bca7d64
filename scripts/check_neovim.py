"""Run the README's Neovim set-up in a real, headless Neovim and check that mplint's
diagnostics arrive.

    python scripts/check_neovim.py                       # Neovim 0.11 or later
    python scripts/check_neovim.py --lspconfig PATH      # older Neovim, with nvim-lspconfig

The configuration is the README's Lua block, as written: the `vim.lsp.config` one for Neovim
0.11 and later, the nvim-lspconfig one (the plugin checked out at PATH, e.g. `git clone --depth
1 --branch v0.1.6 https://github.com/neovim/nvim-lspconfig`) for older versions. `mplint` is
found on PATH with this interpreter's scripts folder first. Exit status 0 when Neovim shows
the MPL101 diagnostic of a script that starts a pool without a main guard, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """\
import multiprocessing as mp


def square(x):
    return x * x


with mp.Pool(2) as pool:
    print(pool.map(square, range(4)))
"""
# Appended to the README's configuration: write the diagnostics Neovim shows for the buffer
# (line:column:code:source), or "timeout", to a file and quit.
REPORT = """
local out = os.getenv("MPLINT_CHECK_OUT")
local function finish(lines)
  vim.fn.writefile(lines, out)
  vim.cmd("qall!")
end
vim.api.nvim_create_autocmd("DiagnosticChanged", {
  callback = function(event)
    local shown = {}
    for _, d in ipairs(vim.diagnostic.get(event.buf)) do
      local lsp = d.user_data and d.user_data.lsp or {}
      table.insert(shown, string.format("%d:%d:%s:%s", d.lnum + 1, d.col + 1,
                                        tostring(d.code or lsp.code), tostring(d.source)))
    end
    if #shown > 0 then finish(shown) end
  end,
})
vim.defer_fn(function() finish({ "timeout" }) end, TIMEOUT_MS)
"""


def readme_block(heading: str) -> str:
    """The first ```lua block after ``heading`` in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index(heading):]
    match = re.search(r"```lua\n(.*?)```", after, re.S)
    assert match is not None, f"no Lua block after {heading!r}"
    return match.group(1)


def neovim_version(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[0]
    found = re.search(r"v(\d+)\.(\d+)", first)
    assert found is not None, first
    return int(found.group(1)), int(found.group(2))


def check(nvim: str, lspconfig: Path | None, timeout_s: float) -> list[str]:
    """The diagnostics Neovim showed for the script, as line:column:code:source."""
    modern = lspconfig is None
    config = readme_block("**Neovim** 0.11" if modern else "Older Neovim")
    with tempfile.TemporaryDirectory(prefix="mplint-neovim-") as name:
        folder = Path(name)
        (folder / "pyproject.toml").write_text("[project]\nname = 'job'\n", encoding="utf-8")
        (folder / "job.py").write_text(SCRIPT, encoding="utf-8")
        prelude = "" if modern else f"vim.opt.runtimepath:prepend({str(lspconfig)!r})\n"
        init = folder / "init.lua"
        report = REPORT.replace("TIMEOUT_MS", str(int(timeout_s * 1000)))
        init.write_text(prelude + config + report, encoding="utf-8")
        out = folder / "diagnostics.txt"
        env = {**os.environ, "MPLINT_CHECK_OUT": str(out),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "XDG_CONFIG_HOME": str(folder / "config"), "XDG_DATA_HOME": str(folder / "data"),
               "XDG_STATE_HOME": str(folder / "state")}
        try:
            done = subprocess.run([nvim, "--headless", "-u", str(init), "job.py"], cwd=folder,
                                  env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s + 15)
        except subprocess.TimeoutExpired as stuck:  # an error in the configuration waits
            said = stuck.stderr.decode(errors="replace") if stuck.stderr else ""  # for Enter
            return [f"Neovim did not finish: {said.strip() or 'no message'}"]
        if out.exists():
            return out.read_text(encoding="utf-8").splitlines()
        return [f"Neovim exited with {done.returncode}: {done.stderr.strip()}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvim", default="nvim", help="the Neovim to run (default: nvim)")
    parser.add_argument("--lspconfig", type=Path,
                        help="an nvim-lspconfig checkout: use the README's older-Neovim set-up")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    options = parser.parse_args()
    version = neovim_version(options.nvim)
    if options.lspconfig is None and version < (0, 11):
        print(f"Neovim {version[0]}.{version[1]} has no vim.lsp.config: give --lspconfig PATH "
              "(nvim-lspconfig v0.1.6 for Neovim 0.7)", file=sys.stderr)
        return 2
    shown = check(options.nvim, options.lspconfig, options.timeout)
    print("\n".join(shown))
    return 0 if any(":MPL101:" in line for line in shown) else 1


if __name__ == "__main__":
    raise SystemExit(main())
