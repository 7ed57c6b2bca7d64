"""``.mplint_cache/``: re-runs reuse results only while the file and what it imports are
unchanged; a damaged cache is ignored; concurrent runs are safe."""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import FIXTURES, cli, report, tool, write

POOL = """\
import multiprocessing
import torch

{model_line}

def infer(model, x):
    return model(x)

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    with multiprocessing.Pool(2) as pool:
        pool.starmap(infer, [(model, x) for x in range(4)])
"""


def _project(tmp_path: Path) -> Path:
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nselect = ['MPL101', 'MPL201']\n")
    write(tmp_path, "nets.py", "import torch\n\nclass Net(torch.nn.Module):\n    pass\n")
    write(tmp_path, "train.py", POOL.format(model_line="from nets import Net\nmodel = Net()"))
    write(tmp_path, "unguarded.py", "import multiprocessing\npool = multiprocessing.Pool(2)\n")
    return tmp_path


def _codes(tmp_path: Path, *args: str) -> list[str]:
    result = cli(*args, ".", cwd=tmp_path)
    assert result.stderr == ""
    return [line.split(" ")[0] + " " + line.split(" ")[1] for line in report(result.stdout)]


def _cache_files(tmp_path: Path) -> list[Path]:
    """The per-file caches (one per configuration), not the records of whole runs."""
    return sorted(p for p in (tmp_path / ".mplint_cache").glob("*.json") if ".run-" not in p.name)


def _run_records(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / ".mplint_cache").glob("*.run-*.json"))


def _forget_runs(tmp_path: Path) -> None:
    """Remove the records of whole runs, so that the next run reads the per-file cache."""
    for record in _run_records(tmp_path):
        record.unlink()


EXPECTED = ["train.py:13:9: MPL201", "unguarded.py:2:8: MPL101"]


def test_warm_run_gives_the_same_findings_from_the_cache(tmp_path: Path) -> None:
    _project(tmp_path)
    assert _codes(tmp_path) == EXPECTED
    folder = tmp_path / ".mplint_cache"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172")
    assert (folder / ".gitignore").read_text().endswith("*\n")
    [cache_file] = _cache_files(tmp_path)
    entries = json.loads(cache_file.read_bytes())["files"]
    assert str(tmp_path / "train.py") in entries
    assert _codes(tmp_path) == EXPECTED


def test_an_edit_that_keeps_size_and_modification_time_is_seen(tmp_path: Path) -> None:
    """Same size, modification time put back: the inode's change time still moves, so the
    file is read again and its new content linted."""
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    target = project / "unguarded.py"
    stat = target.stat()
    target.write_text("import multiprocessing\nPOOL = multiprocessing.Pool   \n")  # same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size,
                                                                   stat.st_mtime_ns)
    assert _codes(project) == ["train.py:13:9: MPL201"]


def test_an_entry_whose_findings_were_emptied_is_not_trusted(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    _forget_runs(project)
    data = json.loads(cache_file.read_bytes())
    for entry in data["files"].values():
        if entry.get("findings"):
            entry["findings"] = []
    cache_file.write_text(json.dumps(data))
    assert _codes(project) == EXPECTED


def test_a_cache_file_nested_too_deeply_is_ignored(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    _forget_runs(project)
    cache_file.write_text("[" * 100_000 + "]" * 100_000)
    assert _codes(project) == EXPECTED
    assert _codes(project) == EXPECTED  # and the next run has a good cache again


def test_an_edited_file_is_linted_again(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    write(project, "unguarded.py", "import multiprocessing\n\nif __name__ == '__main__':\n"
                                   "    pool = multiprocessing.get_context('spawn').Pool(2)\n")
    assert _codes(project) == ["train.py:13:9: MPL201"]


def test_editing_an_imported_module_invalidates_its_importers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    # Net stops being a model: train.py itself is unchanged, its finding must go
    write(project, "nets.py", "class Net:\n    pass\n")
    assert _codes(project) == ["unguarded.py:2:8: MPL101"]
    write(project, "nets.py", "import torch\n\nclass Net(torch.nn.Module):\n    pass\n")
    assert _codes(project) == EXPECTED


def test_a_module_imported_through_another_invalidates_and_a_skipped_file_is_rechecked(
        tmp_path: Path) -> None:
    """The cache vouches for a result only while every module reachable through imports is
    unchanged: a start that appears two imports away re-checks a file the prefilter skipped."""
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nselect = ['MPL101']\n")
    write(tmp_path, "jobs.py", "def run():\n    return 1\n")
    write(tmp_path, "tools.py", "from jobs import run\n")
    write(tmp_path, "main.py", "from tools import run\n\nworker = run()\nworker.start()\n")
    assert _codes(tmp_path) == []
    [cache_file] = _cache_files(tmp_path)
    entry = json.loads(cache_file.read_bytes())["files"][str(tmp_path / "main.py")]
    assert entry["findings"] == [] and isinstance(entry["deps"], str)  # skipped, with a digest
    write(tmp_path, "jobs.py", "import multiprocessing\n\n\n"
                               "class Worker(multiprocessing.Process):\n    pass\n\n\n"
                               "run = Worker\n")
    assert _codes(tmp_path) == ["main.py:3:10: MPL101"]
    assert _codes(tmp_path) == ["main.py:3:10: MPL101"]  # and from the cache


def test_touching_without_changing_content_reuses_the_result(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    before = json.loads(cache_file.read_bytes())["files"][str(project / "train.py")]
    os.utime(project / "train.py", ns=(1, 1))
    assert _codes(project) == EXPECTED
    after = json.loads(cache_file.read_bytes())["files"][str(project / "train.py")]
    assert after["sha"] == before["sha"] and after["sig"] != before["sig"]
    assert after["findings"] == before["findings"]


def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    _forget_runs(project)
    cache_file.write_bytes(b"\x00{not json")
    assert _codes(project) == EXPECTED
    json.loads(cache_file.read_bytes())  # valid again


def _rewrite(cache_file: Path, entries: dict[str, object]) -> None:
    """Write entries as a cache file with a matching checksum, as another writer could."""
    body = json.dumps(entries, separators=(",", ":")).encode()
    head = json.loads(cache_file.read_bytes())["version"]
    cache_file.write_bytes(b'{"version":"' + head.encode() + b'","check":'
                           + str(zlib.crc32(body)).encode() + b',"files":' + body + b"}")


def test_a_malformed_entry_is_ignored(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    _forget_runs(project)
    data = json.loads(cache_file.read_bytes())
    data["files"][str(project / "unguarded.py")]["findings"] = [["not", "a", "finding"]]
    data["files"][str(project / "train.py")] = {"sig": "garbage"}
    _rewrite(cache_file, data["files"])
    assert _codes(project) == EXPECTED


def test_a_cache_whose_checksum_does_not_match_is_ignored(tmp_path: Path) -> None:
    """Well-formed entries edited by hand (findings emptied) are not trusted: the file's
    checksum no longer matches its entries."""
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [cache_file] = _cache_files(project)
    _forget_runs(project)
    text = cache_file.read_bytes()
    assert b'"findings":[[' in text
    cache_file.write_bytes(text.replace(b'"findings":[[', b'"findings":[],"x":[[', 1))
    json.loads(cache_file.read_bytes())  # still valid JSON
    assert _codes(project) == EXPECTED


def test_settings_and_no_cache(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    assert _codes(project, "--select", "MPL101") == ["unguarded.py:2:8: MPL101"]
    assert _codes(project) == EXPECTED
    write(project, "pyproject.toml", "[tool.mplint]\nselect = ['MPL2']\nignore = ['MPL205']\n")
    assert _codes(project) == ["train.py:13:9: MPL201"]
    assert len(_cache_files(project)) == 3  # one per effective configuration
    other = tmp_path / "other"
    write(other, "unguarded.py", "import multiprocessing\npool = multiprocessing.Pool(2)\n")
    assert _codes(other, "--no-cache") == ["unguarded.py:2:8: MPL101"]
    assert not (other / ".mplint_cache").exists()


@pytest.mark.slow
def test_concurrent_runs_share_the_cache_safely(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for number in range(30):
        write(project, f"pkg/job_{number}.py",
              "import multiprocessing\npool = multiprocessing.Pool(2)\n")
    runs = [subprocess.Popen([tool("mplint"), "."], cwd=project, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(4)]
    outputs = [proc.communicate(timeout=300) for proc in runs]
    assert all(err == b"" for _, err in outputs)
    assert len({out for out, _ in outputs}) == 1
    assert len(report(outputs[0][0].decode())) == 32
    [cache_file] = _cache_files(project)
    assert len(json.loads(cache_file.read_bytes())["files"]) >= 33
    assert not list((project / ".mplint_cache").glob(".tmp-*"))


def test_fixtures_warm_and_cold_agree(tmp_path: Path) -> None:
    cold = cli("--no-cache", "--format", "json", str(FIXTURES), cwd=tmp_path)
    first = cli("--format", "json", str(FIXTURES), cwd=tmp_path)
    warm = cli("--format", "json", str(FIXTURES), cwd=tmp_path)
    assert cold.stdout == first.stdout == warm.stdout
    assert len(json.loads(warm.stdout)) > 20


def test_fix_reads_only_what_the_cache_cannot_vouch_for(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``--fix`` takes the linting path: a file whose cached result offers nothing to fix is
    not read again, and ``--no-cache`` reads it."""
    import mplint.batch
    import mplint.sources

    project = _project(tmp_path)
    write(project, "clean.py", "import multiprocessing\nPOOL = None  # filled in main\n")
    assert _codes(project) == EXPECTED
    reads: list[str] = []
    real = mplint.sources.read

    def spy(path: Path) -> bytes:
        reads.append(path.name)
        return real(path)

    for module in (mplint.batch, mplint.sources):
        monkeypatch.setattr(module, "read", spy)
    cli("--fix", "-j", "1", ".", cwd=project)
    assert "clean.py" not in reads and "unguarded.py" in reads
    reads.clear()
    cli("--fix", "-j", "1", "--no-cache", ".", cwd=project)
    assert "clean.py" in reads


def _main_only(tmp_path: Path) -> list[str]:
    result = cli("main.py", cwd=tmp_path)
    assert result.stderr == ""
    return [line.split(" ")[0] + " " + line.split(" ")[1] for line in report(result.stdout)]


def test_a_re_run_over_the_same_paths_reads_its_record_until_something_changes(
        tmp_path: Path) -> None:
    """A run over an unchanged tree takes the last run's findings after stat calls only; a
    module file that appears in a folder (where an import now finds it) or disappears, an
    edit, or another set of paths, is a new run."""
    write(tmp_path, "pyproject.toml", "[tool.mplint]\nselect = ['MPL101']\n")
    write(tmp_path, "main.py", "from helpers import Worker\n\nworker = Worker()\nworker.start()\n")
    assert _codes(tmp_path) == []
    [record] = _run_records(tmp_path)
    written = record.stat().st_mtime_ns
    assert _codes(tmp_path) == []
    assert _run_records(tmp_path) == [record] and record.stat().st_mtime_ns == written
    # only main.py is linted from now on; helpers.py appears where ``import helpers`` looks
    write(tmp_path, "helpers.py", "import multiprocessing\n\n\n"
                                  "class Worker(multiprocessing.Process):\n    pass\n")
    assert _main_only(tmp_path) == ["main.py:3:10: MPL101"]
    assert _main_only(tmp_path) == ["main.py:3:10: MPL101"]
    (tmp_path / "helpers.py").rename(tmp_path / "renamed.py")
    assert _main_only(tmp_path) == []
    write(tmp_path, "helpers.py", "class Worker:\n    pass\n")
    assert _main_only(tmp_path) == []
    assert len(_run_records(tmp_path)) == 1  # "." was main.py alone: the same paths
    assert _codes(tmp_path) == []
    assert len(_run_records(tmp_path)) == 2  # one record per set of paths


def test_a_damaged_run_record_is_ignored(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _codes(project) == EXPECTED
    [record] = _run_records(project)
    text = record.read_bytes()
    assert b"MPL201" in text
    record.write_bytes(text.replace(b"MPL201", b"MPL999"))
    assert _codes(project) == EXPECTED
    record.write_bytes(b"\x00 not a record")
    assert _codes(project) == EXPECTED
