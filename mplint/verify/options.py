"""``mplint verify``'s options, kept apart so that ``mplint --help`` does not import the
verifier."""

from __future__ import annotations

import argparse
from pathlib import Path

START_METHODS = ("spawn", "forkserver", "fork")
DESCRIPTION = ("Run scripts in fresh child processes under each start method, with a time limit, "
               "and report ok / crash / hang, the rule that predicts a failure, and what crossed "
               "the process boundary. Notebooks run cell by cell in a fresh IPython kernel "
               "(pip install 'mplint[notebook]'). This executes the scripts. Linux only: it "
               "follows each script's processes through /proc.")


def _methods(value: str) -> list[str]:
    methods = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in methods if m not in START_METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"start methods are {', '.join(START_METHODS)}")
    return methods


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path,
                        help="scripts and notebooks (run in a Jupyter kernel), or folders whose "
                             "main-guarded modules and notebooks are run")
    parser.add_argument("--start-method", type=_methods, default=["spawn", "forkserver"],
                        help="comma-separated: spawn, forkserver, fork (default: spawn,forkserver)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds before a run counts as a hang (default 60)")
    parser.add_argument("--compare", type=Path, metavar="ORIGINAL",
                        help="run ORIGINAL under fork and require the same output from each path")
    parser.add_argument("--manifest", type=Path, help="check a suite of broken/fixed pairs")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="scripts run at once (default: the number of cores)")
