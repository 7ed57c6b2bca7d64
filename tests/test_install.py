"""Installing mplint as the README says: from a clone, or from a wheel built from it. mplint is
on no package index, so no command may ask one for it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT, cli, tool

README = (ROOT / "README.md").read_text(encoding="utf-8")
# A `pip install` in a shell block of the README, up to the end of the command.
_PIP_INSTALL = re.compile(r"pip install ([^\n&`#]+)")


def _install_commands() -> list[list[str]]:
    return [shlex.split(match.group(1)) for match in _PIP_INSTALL.finditer(README)]


def test_no_install_command_asks_an_index_for_mplint() -> None:
    """Each command installs mplint from the clone (`.`, `-e .`) or from a built wheel; the
    others name packages that are on the index (pygls, flake8, build, torch)."""
    commands = _install_commands()
    assert len(commands) >= 4, commands
    for arguments in commands:
        for argument in arguments:
            name = re.split(r"[\[<>=@ ]", argument, maxsplit=1)[0]
            assert name.lower() != "mplint", arguments


def test_the_server_names_an_install_command_that_works_without_the_index() -> None:
    """Without pygls, `mplint server` says how to install it into the interpreter mplint runs
    in; the requirement is the `server` extra's."""
    import tomllib

    from mplint.cli import SERVER_REQUIREMENT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert extras["project"]["optional-dependencies"]["server"] == [SERVER_REQUIREMENT]
    blocked = {name: None for name in ("pygls", "pygls.lsp", "pygls.lsp.server",
                                       "mplint.server")}
    saved = {name: sys.modules.get(name) for name in blocked}
    sys.modules.update(blocked)  # type: ignore[arg-type]  # None: "import fails"
    try:
        result = cli("server")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    assert result.returncode == 2
    assert result.stderr.startswith("mplint: error: the language server needs pygls")
    assert result.stderr.endswith(
        f"install it with: {sys.executable} -m pip install '{SERVER_REQUIREMENT}'\n")


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.slow
def test_the_wheel_builds_passes_twine_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    """`python -m build` makes the wheel and sdist, `twine check` accepts them, and the
    README's command installs the wheel into a new virtual environment, where `mplint
    --version`, linting and `mplint server` work. Nothing is downloaded: the build uses this
    environment's setuptools, and the new environment sees this one's packages (libcst,
    pathspec, pygls) through a .pth file, so pip finds the requirements installed."""
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                            str(dist), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    checked = subprocess.run([tool("twine"), "check", "--strict", str(wheel), str(sdist)],
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    [command] = [c for c in _install_commands() if any(".whl" in a for a in c)]
    [target] = [a for a in command if ".whl" in a]
    assert target == f"dist/{wheel.name}[server]"  # the README names this version's wheel

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (site / "_outer_packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
         *command], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    mplint = fresh / "bin" / "mplint"
    where = subprocess.run([str(python), "-c", "import mplint; print(mplint.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(site)  # the wheel's copy, not the clone's
    version = subprocess.run([str(mplint), "--version"], capture_output=True, text=True)
    from mplint._version import __version__

    assert (version.returncode, version.stdout) == (0, f"mplint {__version__}\n")
    linted = subprocess.run([str(mplint), "--no-cache", "-q",
                             str(ROOT / "fixtures" / "pairs" / "unguarded_pool_broken.py")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert linted.returncode == 1 and " MPL101 " in linted.stdout, linted.stderr

    session = b"".join([
        _frame({"id": 1, "method": "initialize", "params": {"capabilities": {}}}),
        _frame({"method": "initialized", "params": {}}),
        _frame({"id": 2, "method": "shutdown"}),
        _frame({"method": "exit"}),
    ])
    served = subprocess.run([str(mplint), "server"], input=session, capture_output=True,
                            timeout=120)
    assert served.returncode == 0, served.stderr
    assert b'"codeActionProvider"' in served.stdout and b'"id": 2' in served.stdout
