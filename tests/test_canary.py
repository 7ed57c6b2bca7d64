"""Linting reads code; it never imports or executes it."""

from __future__ import annotations

from pathlib import Path

from conftest import run, write

SIDE_EFFECT = """\
import pathlib
pathlib.Path({marker!r}).write_text("executed")
raise SystemExit("linting must not run this")
"""


def test_linting_never_imports_or_executes_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    effect = SIDE_EFFECT.format(marker=str(marker))
    write(tmp_path, "nets.py", effect + "import torch\nclass Net(torch.nn.Module):\n    pass\n")
    write(tmp_path, "job.py", effect + """
import multiprocessing as mp
from nets import Net

def run(net, x):
    return x

if __name__ == "__main__":
    net = Net()
    with mp.Pool() as pool:
        pool.starmap(run, [(net, x) for x in range(3)])
""")
    result = run("job.py", "nets.py", cwd=tmp_path)
    assert not marker.exists()
    # the model class was found by reading nets.py, not by importing it
    assert "MPL201 model `net` (Net, a torch.nn.Module subclass)" in result.stdout


# Standard-library names a project may well have modules of its own called, and that mplint
# imports: ``python -m`` puts the working directory first on sys.path.
SHADOWED = ("dataclasses", "typing", "enum", "re", "json", "argparse", "pathlib", "collections",
            "tokenize", "difflib", "fnmatch", "zlib", "hashlib", "tempfile", "contextlib",
            "codecs", "ast", "functools", "io", "textwrap", "string", "copy", "inspect")


def test_python_m_mplint_inside_a_tree_never_imports_the_tree(tmp_path: Path) -> None:
    import subprocess
    import sys

    marker = tmp_path / "EXECUTED"
    for name in SHADOWED:
        write(tmp_path, f"{name}.py", SIDE_EFFECT.format(marker=str(marker)))
    write(tmp_path, "job.py", "import multiprocessing as mp\n\nwith mp.Pool() as pool:\n"
                              "    pool.map(abs, [1])\n")
    result = subprocess.run([sys.executable, "-m", "mplint", "--no-cache", "job.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert not marker.exists(), result.stderr
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("job.py:3:6: MPL101 [*] ")
