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
