"""Files mplint cannot lint get one clear line each; the rest of the run goes on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import cli, report, run, write

BAD = """\
import multiprocessing as mp

with mp.Pool() as pool:
    pool.map(abs, [1, -2])
"""


def _lines(tmp_path: Path, *paths: str) -> tuple[int, list[str], str]:
    result = cli(*paths, cwd=tmp_path)
    return result.returncode, report(result.stdout), result.stderr


def test_syntax_error_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    write(tmp_path, "a_broken.py", "import multiprocessing\ndef f(:\n    multiprocessing.Pool()\n")
    write(tmp_path, "b_bad.py", BAD)
    code, lines, err = _lines(tmp_path, ".")
    assert code == 1 and err == ""
    assert lines[0] == "a_broken.py:2:7: MPL000 syntax error: invalid syntax"
    assert lines[1].startswith("b_bad.py:3:6: MPL101 ")


def test_non_utf8_without_cookie(tmp_path: Path) -> None:
    write(tmp_path, "latin.py", "import multiprocessing\nname = 'caf\xe9'\n".encode("latin-1"))
    code, lines, err = _lines(tmp_path, "latin.py")
    assert code == 1 and err == ""
    assert lines == ["latin.py:2:12: MPL000 cannot decode byte 0xe9 as utf-8 (no coding cookie, "
                     "so UTF-8 was assumed)"]


def test_non_utf8_with_a_coding_cookie_is_linted(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + BAD
    write(tmp_path, "latin.py", source.encode("latin-1"))
    code, lines, _ = _lines(tmp_path, "latin.py")
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("latin.py:5:6: MPL101 ")


def test_cookie_that_lies_about_the_encoding(tmp_path: Path) -> None:
    write(tmp_path, "lies.py", b"# coding: ascii\nimport multiprocessing\nx = '\xc3\xa9'\n")
    _, lines, _ = _lines(tmp_path, "lies.py")
    assert lines == ["lies.py:3:6: MPL000 cannot decode byte 0xc3 as ascii"]


def test_unknown_cookie(tmp_path: Path) -> None:
    write(tmp_path, "odd.py", b"# coding: klingon\nimport multiprocessing\n")
    _, lines, _ = _lines(tmp_path, "odd.py")
    assert lines == ["odd.py:1:1: MPL000 bad coding cookie: unknown encoding: klingon"]


def test_binary_file(tmp_path: Path) -> None:
    write(tmp_path, "blob.py", b"\x7fELF\x02\x01\x01\x00\x00multiprocessing")
    _, lines, _ = _lines(tmp_path, "blob.py")
    assert lines == ["blob.py:1:1: MPL000 binary file (contains NUL bytes), not Python source"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, "bom.py", b"\xef\xbb\xbf" + BAD.encode())
    _, lines, _ = _lines(tmp_path, "bom.py")
    assert len(lines) == 1 and lines[0].startswith("bom.py:3:6: MPL101 ")


def test_empty_file_is_clean(tmp_path: Path) -> None:
    write(tmp_path, "empty.py", b"")
    assert _lines(tmp_path, "empty.py") == (0, [], "")


def test_huge_file(tmp_path: Path) -> None:
    write(tmp_path, "huge.py", b"import multiprocessing\nmultiprocessing.Pool\n"
          + b"x = 1\n" * 200_000)
    write(tmp_path, "huge_data.py", b"TABLE = [\n" + b"    1,\n" * 200_000 + b"]\n")
    _, lines, _ = _lines(tmp_path, ".")
    assert lines == ["huge.py:1:1: MPL000 file too large to analyse (1.1 MiB, limit 1 MiB; "
                     "exclude generated files in [tool.mplint])"]


def test_a_file_too_large_to_read_is_not_read(tmp_path: Path) -> None:
    """A sparse 65 MiB file: reading it would cost 65 MiB; its size alone decides."""
    with (tmp_path / "giant.py").open("wb") as stream:
        stream.truncate(65 * 2**20)
    _, lines, _ = _lines(tmp_path, "giant.py")
    assert lines == ["giant.py:1:1: MPL000 file too large (65.0 MiB; files over 64 MiB are not "
                     "read)"]


def test_missing_path(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    code, lines, _ = _lines(tmp_path, "nope.py", "bad.py")
    assert code == 1
    assert lines[0].startswith("bad.py:3:6: MPL101")
    assert lines[1] == "nope.py:1:1: MPL000 no such file or directory"


def test_symlink_loop(tmp_path: Path) -> None:
    os.symlink("loop.py", tmp_path / "loop.py")
    write(tmp_path, "bad.py", BAD)
    code, lines, err = _lines(tmp_path, ".")
    assert code == 1 and err == ""
    assert lines[1] == "loop.py:1:1: MPL000 cannot read: Too many levels of symbolic links"


def test_unreadable_file(tmp_path: Path) -> None:
    locked = write(tmp_path, "locked.py", BAD)
    write(tmp_path, "open.py", BAD)
    locked.chmod(0o000)
    try:
        result = run(".", cwd=tmp_path, **_without_root_override())
    finally:
        locked.chmod(0o644)
    lines = report(result.stdout)
    assert result.returncode == 1 and result.stderr == ""
    assert lines[0] == "locked.py:1:1: MPL000 cannot read: Permission denied"
    assert lines[1].startswith("open.py:3:6: MPL101")


def _without_root_override() -> dict[str, object]:
    """Root reads mode-000 files; drop the capabilities that let it, as setpriv does."""
    if os.geteuid() != 0:
        return {}
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    drop = "-dac_override,-dac_read_search"
    return {"wrapper": [setpriv, "--bounding-set", drop]}


def _elif_chain(branches: int) -> str:
    arms = "".join(f"elif x == {i}:\n    y = {i}\n" for i in range(1, branches))
    return f"import multiprocessing as mp\nx = 3\nif x == 0:\n    y = 0\n{arms}{BAD[29:]}"


def test_a_long_elif_chain_is_analysed(tmp_path: Path) -> None:
    """487 branches nest past Python's default recursion limit in libcst's tree walks."""
    write(tmp_path, "a_deep.py", _elif_chain(487))
    write(tmp_path, "b_bad.py", BAD)
    code, lines, err = _lines(tmp_path, ".")
    assert code == 1 and err == ""
    assert [line.split()[1] for line in lines] == ["MPL101", "MPL101"]
    assert lines[0].startswith("a_deep.py:978:6: MPL101 [*] ")


@pytest.mark.parametrize("fix", [False, True])
def test_code_nested_too_deeply_is_one_line_and_the_run_goes_on(tmp_path: Path,
                                                                 fix: bool) -> None:
    source = _elif_chain(5000)
    path = write(tmp_path, "a_deep.py", source)
    write(tmp_path, "b_bad.py", BAD)
    result = cli(*(["--fix"] if fix else []), ".", cwd=tmp_path)
    lines = report(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[0] == "a_deep.py:1:1: MPL000 too deeply nested to analyse"
    assert len(lines) == (1 if fix else 2)  # b_bad.py is fixed, or reported
    assert path.read_text() == source


def test_a_symlink_loop_named_on_the_command_line(tmp_path: Path) -> None:
    os.symlink("b.py", tmp_path / "a.py")
    os.symlink("a.py", tmp_path / "b.py")
    write(tmp_path, "bad.py", BAD)
    code, lines, err = _lines(tmp_path, "a.py", "bad.py")
    assert code == 1 and err == ""
    assert lines[0] == "a.py:1:1: MPL000 cannot read: Too many levels of symbolic links"
    assert lines[1].startswith("bad.py:3:6: MPL101")


def test_an_undecodable_file_name_on_a_strict_utf8_stdout(tmp_path: Path) -> None:
    """The name's bytes come out as they are on disk, whatever the output encoding allows."""
    import subprocess

    from conftest import tool

    os.makedirs(tmp_path / "src")
    (tmp_path / "src" / os.fsdecode(b"bad\xff.py")).write_text(BAD)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([tool("mplint"), "src"], cwd=tmp_path, capture_output=True,
                            env=env, timeout=120)
    assert result.returncode == 1 and result.stderr == b""
    assert result.stdout.startswith(b"src/bad\xff.py:3:6: MPL101 [*] ")


# CPython accepts this indentation (it compares with tab stops of 8 and of 1); libcst's
# tokenizer does not.
MIXED_INDENT = ("import multiprocessing as mp\nif True:\n\tif mp:\n        \ty = 2\n\tz = 3\n"
                "with mp.Pool(2) as pool:\n    pool.map(abs, [1])\n")


def test_indentation_python_accepts_is_linted_and_left_alone(tmp_path: Path) -> None:
    compile(MIXED_INDENT, "mixed.py", "exec")
    path = write(tmp_path, "mixed.py", MIXED_INDENT)
    code, lines, err = _lines(tmp_path, "mixed.py")
    assert code == 1 and err == ""
    assert lines == ['mixed.py:6:6: MPL101 multiprocessing.Pool starts processes when the module '
                     'is imported, outside `if __name__ == "__main__":`; under spawn or forkserver '
                     "every child re-imports the module and fails in its bootstrapping phase (no "
                     "automatic fix: the file mixes tabs and spaces in its indentation in a way "
                     "the rewriter cannot reproduce)"]
    assert cli("--fix", "mixed.py", cwd=tmp_path).returncode == 1
    assert path.read_text() == MIXED_INDENT
