"""Worker processes (-j) give exactly the serial result, in a stable order."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, cli, report, write


def test_parallel_and_serial_runs_agree_on_the_fixtures(tmp_path: Path) -> None:
    serial = cli("--no-cache", "-j", "1", "--format", "json", str(FIXTURES), cwd=tmp_path)
    parallel = cli("--no-cache", "-j", "2", "--format", "json", str(FIXTURES), cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 1
    assert serial.stdout == parallel.stdout


def test_parallel_output_is_sorted_by_path_and_line(tmp_path: Path) -> None:
    for number in reversed(range(12)):
        write(tmp_path, f"pkg/job_{number:02}.py",
              "import multiprocessing\n\nwith multiprocessing.Pool(2) as pool:\n"
              "    pool.map(lambda x: x, [1])\n")
    lines = report(cli("--no-cache", "-j", "3", ".", cwd=tmp_path).stdout)
    assert len(lines) == 24  # MPL101 and MPL203 in each file
    assert lines == sorted(lines, key=lambda line: (line.split(":")[0],
                                                    int(line.split(":")[1])))
    assert lines == report(cli("--no-cache", "-j", "1", ".", cwd=tmp_path).stdout)


def test_parallel_and_serial_fixes_agree(tmp_path: Path) -> None:
    script = ("import multiprocessing\n\n"
              "with multiprocessing.Pool(2) as pool:\n    pool.map(abs, [1])\n")
    for folder in ("serial", "parallel"):
        for number in range(6):
            write(tmp_path / folder, f"job_{number}.py", script)
    serial = cli("--no-cache", "-j", "1", "--fix", ".", cwd=tmp_path / "serial")
    parallel = cli("--no-cache", "-j", "2", "--fix", ".", cwd=tmp_path / "parallel")
    assert serial.returncode == parallel.returncode == 0
    assert serial.stdout == parallel.stdout == "Found 6 problems (6 fixed, 0 remaining).\n"
    for number in range(6):
        fixed = (tmp_path / "parallel" / f"job_{number}.py").read_text()
        assert fixed == (tmp_path / "serial" / f"job_{number}.py").read_text()
        assert 'if __name__ == "__main__":' in fixed
