"""Score mplint on a wide corpus of real code: many libraries, issue threads, Q&A threads and
repositories, a third of the files clean look-alikes, labelled before mplint ran on them.

    python benchmarks/wide_corpus.py CASES_DIR [--labels JSON] [--mirrors DIR] [--verbose]

The cases are other people's code, so the project keeps only where each one comes from and
its labels (``wide_corpus.json``: file, source, kind, library, origin, labels, lines). The
case files live outside the project, in ``CASES_DIR`` (one file per entry, named as in the
labels, each beginning with a header that gives its source). With ``--mirrors DIR``, every
repository case is cut again from a bare git mirror of its repository
(``DIR/<owner>+<name>/...`` as fetched, or ``DIR/<owner>__<name>.git``) at the pinned commit
before scoring, and a case whose text no longer matches is reported. A finding matches an
expected one when the codes agree and its line is one of the expected lines, give or take
two; several lines under one label are alternatives. Prints recall and precision per rule
and per kind of source.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from real_cases import _score, _slug_codes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", type=Path, help="the folder holding the case files")
    parser.add_argument("--mirrors", type=Path, help="bare git mirrors to re-cut repository "
                                                     "cases from")
    parser.add_argument("--verbose", action="store_true", help="list every miss and false finding")
    parser.add_argument("--labels", type=Path, default=HERE / "wide_corpus.json",
                        help="the sources and labels (default: wide_corpus.json; "
                             "held_out.json is the held-out set)")
    args = parser.parse_args(argv)
    manifest: list[dict[str, Any]] = json.loads(
        args.labels.read_text(encoding="utf-8"))["cases"]
    if args.mirrors is not None:
        for problem in _check_against_mirrors(manifest, args.cases, args.mirrors):
            print(problem, file=sys.stderr)
    codes = _slug_codes()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "cases"
        folder.mkdir()
        for case in manifest:
            (folder / case["file"]).write_bytes((args.cases / case["file"]).read_bytes())
        result = subprocess.run([sys.executable, "-m", "mplint", "--format", "json",
                                 "--exit-zero", "--no-cache", str(folder)],
                                capture_output=True, text=True, check=False)
    found = [(Path(f["path"]).name, f["code"], f["line"]) for f in json.loads(result.stdout)
             if f["code"] != "MPL000"]
    expected = [{"file": c["file"], "expect": {slug: c["lines"].get(slug, [])
                                               for slug in c["labels"] if slug in codes}}
                for c in manifest]
    print(_score(expected, found, codes, args.verbose))
    print(_by_kind(manifest, expected, found, codes))
    return 0


def _by_kind(manifest: list[dict[str, Any]], expected: list[dict[str, Any]],
             found: list[tuple[str, str, int]], codes: dict[str, str]) -> str:
    """Recall per kind of source (issue, qa, repo) and the false findings on clean files."""
    hits: Counter[str] = Counter()
    wanted: Counter[str] = Counter()
    clean_false = 0
    for case, want in zip(manifest, expected, strict=True):
        mine = [(code, line) for name, code, line in found if name == case["file"]]
        if case["labels"] == ["clean"]:
            clean_false += len(mine)
        for slug, lines in want["expect"].items():
            wanted[case["kind"]] += 1
            code = codes[slug]
            if any(c == code and (not lines or any(abs(line - w) <= 2 for w in lines))
                   for c, line in mine):
                hits[case["kind"]] += 1
    parts = [f"{kind}: {hits[kind]}/{wanted[kind]}" for kind in sorted(wanted)]
    clean = sum(1 for case in manifest if case["labels"] == ["clean"])
    return (f"recall by kind of source: {', '.join(parts)}; findings on the {clean} clean "
            f"files: {clean_false}\n{_by_finding(manifest, expected, found, codes)}")


def _by_finding(manifest: list[dict[str, Any]], expected: list[dict[str, Any]],
                found: list[tuple[str, str, int]], codes: dict[str, str]) -> str:
    """Precision counted per (file, code) as the labels count findings: a code reported in a
    file is right when the file is labelled with it and one of its lines is an expected one.
    The per-line figure above also counts every further line of a right finding (a second
    unguarded start, a third module-level load the labels did not list) as false."""
    right = wrong = 0
    for case, want in zip(manifest, expected, strict=True):
        reported: dict[str, list[int]] = {}
        for name, code, line in found:
            if name == case["file"]:
                reported.setdefault(code, []).append(line)
        lines = {codes[slug]: wanted for slug, wanted in want["expect"].items()}
        for code, mine in reported.items():
            if code in lines and any(not lines[code] or any(abs(line - w) <= 2
                                                            for w in lines[code])
                                     for line in mine):
                right += 1
            else:
                wrong += 1
    total = right + wrong
    return (f"precision per finding (file and code): {right / total if total else 1:.2f} "
            f"({right}/{total})")


def _check_against_mirrors(manifest: list[dict[str, Any]], cases: Path,
                           mirrors: Path) -> list[str]:
    """Repository cases whose code no longer matches the pinned commit's lines."""
    problems = []
    for case in manifest:
        origin = case.get("origin")
        if not origin:
            continue
        mirror = _mirror(mirrors, origin["repo"])
        if mirror is None:
            problems.append(f"{case['file']}: no mirror of {origin['repo']}")
            continue
        shown = subprocess.run(["git", "--git-dir", str(mirror), "show",
                                f"{origin['commit']}:{origin['path']}"],
                               capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            problems.append(f"{case['file']}: {origin['repo']}@{origin['commit']} has no "
                            f"{origin['path']}")
            continue
        first, last = origin.get("lines") or (1, len(shown.stdout.splitlines()))
        taken = shown.stdout.splitlines()[first - 1:last]
        text = (cases / case["file"]).read_text(encoding="utf-8").splitlines()
        if not _contains(text, taken):
            problems.append(f"{case['file']}: differs from {origin['repo']}:{origin['path']}")
    return problems


def _mirror(root: Path, repo: str) -> Path | None:
    owner, name = repo.split("/", 1)
    for candidate in (root / f"{owner}+{name}", root / f"{owner}__{name}.git"):
        if candidate.exists():
            inner = [p.parent for p in candidate.rglob("HEAD") if (p.parent / "objects").is_dir()]
            return inner[0] if inner else candidate
    return None


def _contains(text: list[str], taken: list[str]) -> bool:
    """The case holds the taken lines, in order (its header and dedent aside)."""
    stripped = [line.strip() for line in text]
    wanted = [line.strip() for line in taken if line.strip()]
    position = 0
    for line in stripped:
        if position < len(wanted) and line == wanted[position]:
            position += 1
    return position == len(wanted)


if __name__ == "__main__":
    sys.exit(main())
