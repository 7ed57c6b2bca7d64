"""The command line behaves as users coming from ruff expect: code selection, file discovery,
output options, subcommands, usage errors, ``--add-noqa``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import cli, report, run, write

from mplint.config import KNOWN_CODES
from mplint.rules import all_rules

UNGUARDED = """\
import multiprocessing as mp

import torch


def square(x):
    return x * x


with mp.Pool(2) as pool:
    print(pool.map(square, range(4)))
"""
GUARD = ('bad.py:10:6: MPL101 [*] multiprocessing.Pool starts processes when the module is '
         'imported, outside `if __name__ == "__main__":`; under spawn or forkserver every child '
         're-imports the module and fails in its bootstrapping phase')


def codes(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split()[1] for line in report(result.stdout)]


# -- selecting codes -------------------------------------------------------------------------

def test_the_known_codes_are_the_rules_codes() -> None:
    assert ("MPL000", *sorted(rule.code for rule in all_rules())) == KNOWN_CODES


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select",
                                    "--extend-ignore"])
def test_an_unknown_code_on_the_command_line_is_a_usage_error(tmp_path: Path,
                                                              option: str) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    result = cli(option, "MPL1,MPL999", "bad.py", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"mplint check: error: argument {option}: unknown rule code or "
                             "prefix 'MPL999' (see `mplint rules`; ALL selects every rule)\n")


@pytest.mark.parametrize("setting", ['select = ["E501"]', 'ignore = ["MPL2", "MPL9"]',
                                     'extend-select = ["mpl3", "X"]',
                                     'per-file-ignores = { "tests/*" = ["MPL10", "MPL1O"] }'])
def test_an_unknown_code_in_the_configuration_is_an_error(tmp_path: Path, setting: str) -> None:
    write(tmp_path, "pyproject.toml", f"[tool.mplint]\n{setting}\n")
    write(tmp_path, "bad.py", UNGUARDED)
    result = cli("bad.py", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    key = setting.split(" = ")[0]
    if key == "per-file-ignores":
        key = "per-file-ignores.tests/*"
    bad = {"select": "E501", "ignore": "MPL9", "extend-select": "X",
           "per-file-ignores.tests/*": "MPL1O"}[key]
    assert result.stderr == (f"mplint: {tmp_path / 'pyproject.toml'}: [tool.mplint] {key}: "
                             f"unknown rule code or prefix {bad!r} (see `mplint rules`; ALL "
                             "selects every rule)\n")


def test_all_and_extend_select(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    assert codes(cli("--select", "ALL", "bad.py", cwd=tmp_path)) == ["MPL101", "MPL103"]
    assert codes(cli("--select", "MPL2", "bad.py", cwd=tmp_path)) == []
    assert codes(cli("--select", "MPL2", "--extend-select", "MPL103", "bad.py",
                     cwd=tmp_path)) == ["MPL103"]
    assert codes(cli("--ignore", "ALL", "bad.py", cwd=tmp_path)) == []
    write(tmp_path, "pyproject.toml", '[tool.mplint]\nselect = ["MPL2"]\n'
                                      'extend-select = ["MPL101"]\n')
    assert codes(cli("bad.py", cwd=tmp_path)) == ["MPL101"]


# -- finding files ---------------------------------------------------------------------------

def test_gitignored_files_are_skipped_when_walking(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, ".gitignore", "build/\n*_pb2.py\n!keep_pb2.py\n")
    write(tmp_path, "src/.ignore", "scratch.py\n")
    write(tmp_path, "src/sub/.gitignore", "/local.py\n")
    for name in ("bad.py", "build/bad.py", "src/gen_pb2.py", "src/keep_pb2.py",
                 "src/scratch.py", "src/sub/local.py", "src/local.py"):
        write(tmp_path, name, UNGUARDED)
    found = sorted({line.split(":")[0] for line in report(cli("--select", "MPL101", ".",
                                                              cwd=tmp_path).stdout)})
    assert found == ["bad.py", "src/keep_pb2.py", "src/local.py"]
    # from inside the repository, the ignore files above the folder still apply
    inside = report(cli("--select", "MPL101", ".", cwd=tmp_path / "src").stdout)
    assert sorted({line.split(":")[0] for line in inside}) == ["keep_pb2.py", "local.py"]
    everything = report(cli("--select", "MPL101", "--no-respect-gitignore", ".",
                            cwd=tmp_path).stdout)
    assert len(everything) == 7
    # a file or folder named on the command line is linted even when ignored
    assert codes(cli("--select", "MPL101", "build/bad.py", cwd=tmp_path)) == ["MPL101"]
    write(tmp_path, "build/.gitignore", "skip.py\n")
    write(tmp_path, "build/skip.py", UNGUARDED)
    assert [line.split(":")[0] for line in report(cli("--select", "MPL101", "build",
                                                       cwd=tmp_path).stdout)] == ["build/bad.py"]
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nrespect-gitignore = false\n")
    assert len(report(cli("--select", "MPL101", ".", cwd=tmp_path).stdout)) == 8


def test_force_exclude_applies_exclude_to_named_files(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.mplint]\nexclude = ["generated"]\n')
    write(tmp_path, "generated/bad.py", UNGUARDED)
    write(tmp_path, "bad.py", UNGUARDED)
    named = ["bad.py", "generated/bad.py"]
    assert len(report(cli("--select", "MPL101", *named, cwd=tmp_path).stdout)) == 2
    forced = report(cli("--select", "MPL101", "--force-exclude", *named, cwd=tmp_path).stdout)
    assert forced == [GUARD]
    write(tmp_path, "pyproject.toml",
          '[tool.mplint]\nexclude = ["generated"]\nforce-exclude = true\n')
    assert report(cli("--select", "MPL101", *named, cwd=tmp_path).stdout) == [GUARD]


def test_stdin_filename_alone_reads_stdin(tmp_path: Path) -> None:
    result = cli("--select", "MPL101", "--stdin-filename", "bad.py", cwd=tmp_path,
                 stdin=UNGUARDED.encode())
    assert (result.returncode, report(result.stdout)) == (1, [GUARD])


# -- output ----------------------------------------------------------------------------------

def test_summary_line_counts_problems_and_fixes(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    assert cli("bad.py", cwd=tmp_path).stdout.splitlines()[-1] == (
        "Found 2 problems (1 fixable with `--fix`).")
    write(tmp_path, "one.py", UNGUARDED.replace("as pool:", "as pool:  # noqa: MPL103"))
    assert cli("one.py", cwd=tmp_path).stdout.splitlines()[-1] == (
        "Found 1 problem (1 fixable with `--fix`).")
    fixed = cli("--fix", "bad.py", cwd=tmp_path)
    assert fixed.stdout == "Found 2 problems (2 fixed, 0 remaining).\n"


def test_quiet_silent_and_output_file(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    quiet = cli("-q", "--select", "MPL101", "bad.py", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout) == (1, GUARD + "\n")
    silent = cli("-s", "bad.py", cwd=tmp_path)
    assert (silent.returncode, silent.stdout, silent.stderr) == (1, "", "")
    written = cli("--select", "MPL101", "--format", "json", "--output-file", "out.json",
                  "bad.py", cwd=tmp_path)
    assert (written.returncode, written.stdout) == (1, "")
    [finding] = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert finding["code"] == "MPL101"
    nested = cli("-o", "new/folders/out.txt", "bad.py", cwd=tmp_path)  # created, as in ruff
    assert (nested.returncode, nested.stdout, nested.stderr) == (1, "", "")
    assert "MPL101" in (tmp_path / "new/folders/out.txt").read_text(encoding="utf-8")
    write(tmp_path, "taken", "a file, not a folder")
    blocked = cli("-o", "taken/out.txt", "bad.py", cwd=tmp_path)
    assert blocked.returncode == 2
    assert blocked.stderr.startswith("mplint: error: cannot write taken/out.txt: ")


def test_colour_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    piped = run("--select", "MPL101", "bad.py", cwd=tmp_path)
    assert "\x1b[" not in piped.stdout
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = cli("--select", "MPL101", "bad.py", cwd=tmp_path).stdout.splitlines()[0]
    assert coloured == ("\x1b[1mbad.py\x1b[0m\x1b[2m:10:6:\x1b[0m \x1b[1;31mMPL101\x1b[0m "
                        "\x1b[36m[*] \x1b[0m" + GUARD.split(" [*] ", 1)[1])
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in cli("--select", "MPL101", "bad.py", cwd=tmp_path).stdout


def test_show_settings(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.mplint]\nignore = ["MPL3"]\ntarget-python = "3.14"\n'
                                      'target-platforms = ["linux"]\n'
                                      'per-file-ignores = { "tests/*" = ["MPL101"] }\n')
    result = cli("--show-settings", "tests/test_x.py", cwd=tmp_path)
    assert result.returncode == 0
    rows = {line[:22].strip(): line[23:] for line in result.stdout.splitlines()}
    assert rows["configuration"] == str(tmp_path / "pyproject.toml")
    assert rows["enabled rules"] == ("MPL000, MPL102, MPL103, MPL104, MPL105, MPL201, MPL202, "
                                     "MPL203, MPL204, MPL205, MPL206, MPL207")
    assert rows["target-python"] == "3.14"
    assert rows["default start methods"] == "forkserver"
    assert rows["per-file-ignores"] == "tests/* = MPL101"


# -- subcommands and usage errors ------------------------------------------------------------

def test_a_folder_named_like_a_subcommand_can_be_linted(tmp_path: Path) -> None:
    write(tmp_path, "rules/bad.py", UNGUARDED)
    write(tmp_path, "verify/bad.py", UNGUARDED)
    for args in (["check", "rules"], ["./rules"], ["check", "verify"]):
        result = cli("--select", "MPL101", *args, cwd=tmp_path) if args[0] != "check" else cli(
            args[0], "--select", "MPL101", *args[1:], cwd=tmp_path)
        assert [line.split(":")[0] for line in report(result.stdout)] == [
            str(Path(args[-1]) / "bad.py")]
    listing = cli("rules", cwd=tmp_path)
    assert listing.stdout.splitlines()[1].startswith("MPL101  unguarded-start")


def test_subcommand_help(tmp_path: Path) -> None:
    result = run("rules", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: mplint rules [-h]\n")
    verify = run("verify", "--help", cwd=tmp_path)
    assert verify.returncode == 0 and "--start-method" in verify.stdout
    top = run("--help", cwd=tmp_path)
    assert "check" in top.stdout and "server" in top.stdout and "verify" in top.stdout


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    result = run("--frobnicate", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("mplint: error: unrecognized arguments: --frobnicate "
                             "(see `mplint --help`)\n")
    bad_format = run("--format", "xml", ".", cwd=tmp_path)
    assert bad_format.returncode == 2 and len(bad_format.stderr.splitlines()) == 1
    assert "argument --format/--output-format: invalid choice: 'xml'" in bad_format.stderr


# -- --add-noqa ------------------------------------------------------------------------------

def test_add_noqa_silences_every_finding_and_keeps_the_file_otherwise(tmp_path: Path) -> None:
    original = ("\ufeff" + UNGUARDED.replace("as pool:", "as pool:  # four squares")
                ).replace("\n", "\r\n")
    path = write(tmp_path, "bad.py", original.encode("utf-8"))
    result = cli("--add-noqa", "bad.py", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "", "Added 2 noqa directives.\n")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == original.count("\r\n")
    assert data.decode("utf-8-sig").splitlines()[9] == (
        "with mp.Pool(2) as pool:  # four squares  # noqa: MPL101, MPL103")
    assert report(cli("bad.py", cwd=tmp_path).stdout) == []
    again = cli("--add-noqa", "bad.py", cwd=tmp_path)
    assert again.stderr == "Added 0 noqa directives.\n" and path.read_bytes() == data


def test_add_noqa_extends_an_existing_comment_and_skips_lines_inside_strings(
        tmp_path: Path) -> None:
    write(tmp_path, "a.py", UNGUARDED.replace("as pool:", "as pool:  # noqa: E501"))
    cli("--add-noqa", "--select", "MPL101", "a.py", cwd=tmp_path)
    assert (tmp_path / "a.py").read_text().splitlines()[9] == (
        "with mp.Pool(2) as pool:  # noqa: E501, MPL101")
    inside = 'import multiprocessing as mp\nx = str(mp.Pool(2)) + """text\n"""\n'
    write(tmp_path, "b.py", inside)
    result = cli("--add-noqa", "--select", "MPL101", "b.py", cwd=tmp_path)
    assert (tmp_path / "b.py").read_text() == inside
    assert result.stderr == ("mplint: b.py:2: no noqa comment added: the line ends inside a "
                             "string or continues on the next line, so a comment there would "
                             "change the code\nAdded 0 noqa directives.\n")


def test_add_noqa_reports_a_file_it_cannot_lint_and_exits_one(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", UNGUARDED)
    write(tmp_path, "latin.py", b"import multiprocessing\nname = 'caf\xe9'\n")
    result = cli("--add-noqa", "--select", "MPL000,MPL101", ".", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("latin.py:2:12: MPL000 cannot decode byte 0xe9 as utf-8 (no coding "
                             "cookie, so UTF-8 was assumed)\nAdded 1 noqa directive.\n")
    assert "# noqa: MPL101" in (tmp_path / "bad.py").read_text()
