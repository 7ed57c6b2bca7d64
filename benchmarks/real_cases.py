"""Score mplint on real code from public issue threads, labelled before mplint ran on it.

    git clone https://github.com/Zenasj/HBTGen-artifact /tmp/hbtgen
    git -C /tmp/hbtgen checkout <commit in real_cases.json>
    python benchmarks/real_cases.py /tmp/hbtgen [--out DIR] [--verbose]

The cases are other people's code, so the project keeps only where each one comes from and its
labels (``real_cases.json``). This script cuts every case out of a checkout of the repository
named there into ``DIR/cases`` (a temporary folder unless ``--out`` is given), runs
``mplint --format json`` on them, and prints recall and precision per rule. A finding matches an
expected one when the codes agree and its line is one of the expected lines, give or take two.
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
SLACK = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path,
                        help="a checkout of the repository the cases come from")
    parser.add_argument("--out", type=Path,
                        help="where to write the cases (default: a temporary folder)")
    parser.add_argument("--verbose", action="store_true", help="list every miss and false finding")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "real_cases.json").read_text(encoding="utf-8"))
    codes = _slug_codes()
    with tempfile.TemporaryDirectory() as scratch:
        folder = (args.out or Path(scratch)) / "cases"
        folder.mkdir(parents=True, exist_ok=True)
        for case in manifest["cases"]:
            lines = (args.checkout / case["origin"]).read_text(encoding="utf-8").splitlines()
            first, last = case["lines"]
            (folder / case["file"]).write_text("\n".join(lines[first - 1:last]) + "\n",
                                              encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "mplint", "--format", "json", "--exit-zero",
                                 "--no-cache", str(folder)],
                                capture_output=True, text=True, check=True)
    found = [(Path(f["path"]).name, f["code"], f["line"]) for f in json.loads(result.stdout)]
    print(_score(manifest["cases"], found, codes, args.verbose))
    return 0


def _slug_codes() -> dict[str, str]:
    from mplint.rules import all_rules

    return {rule.name: rule.code for rule in all_rules()}


def _score(cases: list[dict[str, Any]], found: list[tuple[str, str, int]], codes: dict[str, str],
           verbose: bool) -> str:
    expected = Counter[str]()
    hit = Counter[str]()
    reported = Counter[str]()
    false = Counter[str]()
    notes: list[str] = []
    for case in cases:
        mine = [(code, line) for name, code, line in found if name == case["file"]]
        wanted = {codes[slug]: lines for slug, lines in case["expect"].items()}
        for code, lines in wanted.items():
            expected[code] += 1
            if any(c == code and _near(line, lines) for c, line in mine):
                hit[code] += 1
            else:
                notes.append(f"missed: {case['file']} {code} lines={lines}")
        for code, line in mine:
            reported[code] += 1
            if code not in wanted or not _near(line, wanted[code]):
                false[code] += 1
                notes.append(f"false+: {case['file']}:{line} {code}")
    rows = [f"{'code':<8}{'expected':>9}{'found':>7}{'reported':>9}{'false+':>7}"
            f"{'recall':>8}{'precision':>10}"]
    for code in sorted(set(expected) | set(reported)):
        recall = hit[code] / expected[code] if expected[code] else float("nan")
        precision = ((reported[code] - false[code]) / reported[code] if reported[code]
                     else float("nan"))
        rows.append(f"{code:<8}{expected[code]:>9}{hit[code]:>7}{reported[code]:>9}"
                    f"{false[code]:>7}{recall:>8.2f}{precision:>10.2f}")
    total, hits = sum(expected.values()), sum(hit.values())
    shown, wrong = sum(reported.values()), sum(false.values())
    rows.append(f"overall: {len(cases)} files, recall {hits / total:.2f} ({hits}/{total}), "
                f"precision {(shown - wrong) / shown:.2f} ({shown - wrong}/{shown})")
    return "\n".join([*rows, *(notes if verbose else [])])


def _near(line: int, lines: list[int]) -> bool:
    return any(abs(line - wanted) <= SLACK for wanted in lines)


if __name__ == "__main__":
    sys.exit(main())
