"""Real pre-commit runs the hook from .pre-commit-hooks.yaml in a throwaway git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, notebook, tool, write

pytestmark = pytest.mark.slow

GOOD = """\
import multiprocessing as mp

def square(x):
    return x * x

if __name__ == "__main__":
    with mp.Pool() as pool:
        print(pool.map(square, range(3)))
"""
BAD = GOOD.replace('if __name__ == "__main__":\n    ', "").replace("\n        ", "\n    ")


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user-repo")
    _git("init", "-q", cwd=path)
    _git("config", "user.email", "dev@example.com", cwd=path)
    _git("config", "user.name", "Dev", cwd=path)
    return path


def _try_repo(repo: Path, *files: str, hook: str = "mplint") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home")}
    return subprocess.run(
        [tool("pre-commit"), "try-repo", str(ROOT), hook, "--files", *files],
        cwd=repo, capture_output=True, text=True, timeout=600, env=env)


def test_hook_fails_on_a_bad_file(repo: Path) -> None:
    write(repo, "bad.py", BAD)
    _git("add", "bad.py", cwd=repo)
    result = _try_repo(repo, "bad.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "mplint" in result.stdout and "Failed" in result.stdout
    assert "bad.py:6:6: MPL101 [*] multiprocessing.Pool starts processes" in result.stdout


def test_hook_runs_on_notebooks(repo: Path) -> None:
    """``types_or: [python, jupyter]``: pre-commit hands the hook notebooks too."""
    write(repo, "explore.ipynb", notebook(BAD))
    _git("add", "explore.ipynb", cwd=repo)
    result = _try_repo(repo, "explore.ipynb")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "explore.ipynb:cell 2:7:11: MPL207 function `square` is defined in the notebook" \
        in result.stdout


def test_hook_passes_on_a_good_file(repo: Path) -> None:
    write(repo, "good.py", GOOD)
    _git("add", "good.py", cwd=repo)
    result = _try_repo(repo, "good.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_fix_hook_fixes_the_file_and_stops_the_commit(repo: Path) -> None:
    write(repo, "fixme.py", BAD)
    _git("add", "fixme.py", cwd=repo)
    result = _try_repo(repo, "fixme.py", hook="mplint-fix")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "files were modified by this hook" in result.stdout
    assert (repo / "fixme.py").read_text() == GOOD
    _git("add", "fixme.py", cwd=repo)
    again = _try_repo(repo, "fixme.py", hook="mplint-fix")
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_readme_snippet_works_as_written(tmp_path: Path) -> None:
    """The README's `.pre-commit-config.yaml`, with only `repo:` pointed at a clone of this
    repository (no tags, as users get it), and the README's `pre-commit autoupdate`, which
    pins `rev` to the newest commit's hash; then the hooks run."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## pre-commit\n"):]
    snippet = section[section.index("```yaml\n") + 8:section.index("```\n", 8)]
    assert "pre-commit autoupdate" in section
    mirror = tmp_path / "mplint-repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(mirror)], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=mirror, capture_output=True,
                          text=True, check=True).stdout.strip()
    user = tmp_path / "user"
    user.mkdir()
    _git("init", "-q", cwd=user)
    config = "\n".join(
        f"  - repo: {mirror}" if line.strip().startswith("- repo:") else line
        for line in snippet.splitlines())
    write(user, ".pre-commit-config.yaml", config + "\n")
    write(user, "job.py", BAD)
    _git("add", ".", cwd=user)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    pinned = subprocess.run([tool("pre-commit"), "autoupdate"], cwd=user, capture_output=True,
                            text=True, timeout=300, env=env)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert f"rev: {head}" in (user / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    result = subprocess.run([tool("pre-commit"), "run", "--all-files"], cwd=user,
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "files were modified by this hook" in result.stdout
    assert (user / "job.py").read_text() == GOOD
    assert "mutable reference" not in result.stdout + result.stderr
