"""``mplint verify``'s command line, without running scripts: progress, platform support."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from conftest import write

from mplint.cli import main as cli_main
from mplint.verify.cli import Progress
from mplint.verify.runner import Run


def test_progress_names_the_running_scripts_and_their_time() -> None:
    stream = io.StringIO()
    progress = Progress(stream, width=80)
    progress.total = 4
    first, second = Run(Path("a/train.py"), "spawn", 60), Run(Path("b/eval.py"), "fork", 60)
    progress.started(first)
    progress.started(second)
    progress.running[id(first)] = ("train.py [spawn]", 100.0)
    progress.running[id(second)] = ("eval.py [fork]", 103.0)
    assert progress.line(112.4) == "[0/4 done] running: train.py [spawn] 12s, eval.py [fork] 9s"
    progress.finished(first)
    assert progress.line(112.4) == "[1/4 done] running: eval.py [fork] 9s"
    assert stream.getvalue().startswith("\r[1/4 done] running: eval.py [fork]")
    narrow = Progress(io.StringIO(), width=20)
    narrow.started(first)
    assert len(narrow.line(1e9)) == 20 and narrow.line(1e9).endswith("…")


def test_verify_says_it_runs_on_linux_only(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    script = write(tmp_path, "job.py", "print(1)\n")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cli_main(["verify", str(script)]) == 2
    assert capsys.readouterr().err == (
        "mplint verify: runs on Linux only (it follows each script's processes through /proc); "
        "this is darwin. Linting and fixing work everywhere.\n")


@pytest.mark.slow
def test_on_a_terminal_verify_shows_what_is_running(tmp_path: Path) -> None:
    """stderr on a pseudo-terminal gets the status line; piped, it gets nothing."""
    import os
    import pty
    import subprocess

    from conftest import tool

    script = write(tmp_path, "slow.py", "import time\ntime.sleep(1.5)\nprint('done')\n")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([tool("mplint"), "verify", "--start-method", "spawn", str(script)],
                              stdout=subprocess.PIPE, stderr=follower, timeout=120, cwd=tmp_path)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once everything is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    assert b"[0/1 done] running: slow.py [spawn] 1s" in shown
    piped = subprocess.run([tool("mplint"), "verify", "--start-method", "spawn", str(script)],
                           capture_output=True, timeout=120, cwd=tmp_path)
    assert piped.returncode == 0 and piped.stderr == b""


@pytest.mark.slow
def test_a_crash_names_its_line_and_only_the_rules_the_linter_reports(tmp_path: Path) -> None:
    """A failure's text alone does not name a rule: the script must have that finding. The
    report says where in the script the exception was raised."""
    from conftest import run

    write(tmp_path, "fake.py", 'def start():\n    raise RuntimeError("context has already '
                               'been set")\n\n\nstart()\n')
    write(tmp_path, "lam.py", """\
import multiprocessing


def main():
    offset = 0.5
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(pool.map(lambda v: v + offset, [1.0]))


if __name__ == "__main__":
    main()
""")
    result = run("verify", "--start-method", "spawn", "fake.py", "lam.py", cwd=tmp_path)
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert result.returncode == 1 and len(heads) == 2, result.stdout
    assert heads[0].startswith("fake.py [spawn] CRASH in ")
    assert heads[0].endswith(" at fake.py:2: RuntimeError: context has already been set")
    assert heads[1].startswith("lam.py [spawn] CRASH in ")
    assert " at lam.py:7: " in heads[1] and heads[1].endswith("(predicted by MPL203)")
