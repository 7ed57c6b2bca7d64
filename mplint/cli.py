"""The ``mplint`` command: argument parsing and output. No analysis happens here."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO

from mplint._version import __version__
from mplint.batch import Options, default_jobs, lint_paths
from mplint.cache import CACHE_DIR
from mplint.config import Config, ConfigError, find_pyproject, load
from mplint.findings import Finding, error
from mplint.modules import Tree
from mplint.sources import Source, SourceError, discover

if TYPE_CHECKING:
    from mplint.batch import FixRun

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_FORMATS = ("text", "json", "github", "sarif")


@dataclass(frozen=True)
class Streams:
    """Where a run reads stdin from and writes its output: the process's own by default,
    others when the CLI is called in-process (tests, other tools)."""

    stdin: IO[bytes]
    stdout: TextIO
    stderr: TextIO


class _Exit(Exception):
    """argparse asked to stop (``--help``, ``--version``, a usage error) with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An argument parser that writes to the run's streams and returns instead of exiting."""

    def __init__(self, streams: Streams, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.streams = streams

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            stream = self.streams.stderr if file is sys.stderr else self.streams.stdout
            stream.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.streams.stderr.write(message)
        raise _Exit(status)


def _codes(value: str) -> list[str]:
    return [code.strip().upper() for code in value.split(",") if code.strip()]


def _parser(streams: Streams) -> argparse.ArgumentParser:
    parser = _Parser(
        streams,
        prog="mplint",
        description="Find multiprocessing pitfalls in Python ML code. "
                    "Subcommands: `mplint rules` lists the rules, `mplint rule CODE` shows one, "
                    "`mplint verify SCRIPTS` runs scripts under each start method.",
    )
    parser.add_argument("paths", nargs="*", type=Path, default=None,
                        help="files or directories to lint (default: .); - reads stdin")
    parser.add_argument("--select", type=_codes, help="codes or prefixes to report (MPL2 = MPL2xx)")
    parser.add_argument("--ignore", type=_codes, help="codes or prefixes not to report")
    parser.add_argument("--extend-ignore", type=_codes, default=[], help="add to the ignore list")
    parser.add_argument("--format", choices=_FORMATS, default="text")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    parser.add_argument("--show-source", action="store_true", help="show each finding's line")
    parser.add_argument("--statistics", action="store_true", help="count findings per code")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="parallel processes (default: number of cores)")
    parser.add_argument("--fix", action="store_true",
                        help="apply safe fixes in place (with - : print the fixed source)")
    parser.add_argument("--unsafe-fixes", action="store_true",
                        help="also apply (with --fix, --diff) or mark unsafe fixes")
    parser.add_argument("--diff", action="store_true",
                        help="print the fixes as a unified diff and write nothing "
                             "(exit 1 when there is a diff)")
    parser.add_argument("--show-fixes", action="store_true",
                        help="with --fix or --diff, list each fix applied and each refused")
    parser.add_argument("--no-cache", action="store_true",
                        help=f"neither read nor write {CACHE_DIR}/")
    parser.add_argument("--no-prefilter", action="store_true",
                        help="analyse every file, even those that cannot start processes "
                             "(slow; for checking the prefilter)")
    parser.add_argument("--target-python", metavar="VERSION",
                        help="Python version the code runs on, e.g. 3.12 (default: any); "
                             "decides which start method is the default")
    parser.add_argument("--target-platforms", metavar="LIST",
                        help="comma-separated: linux, macos, windows (default: any)")
    parser.add_argument("--config", type=Path, help="pyproject.toml to read [tool.mplint] from")
    parser.add_argument("--stdin-filename", default=None,
                        help="the path stdin's findings carry (for editors)")
    parser.add_argument("--version", action="version", version=f"mplint {__version__}")
    return parser


def _tolerant(stream: TextIO) -> None:
    """Let a process stream write any path: a file name's undecodable bytes (surrogates) go
    out as the bytes they were under UTF-8, other characters the encoding lacks as escapes."""
    if not isinstance(stream, io.TextIOWrapper) or stream.errors != "strict":
        return
    utf8 = codecs.lookup(stream.encoding).name == "utf-8"
    with contextlib.suppress(ValueError, OSError):
        stream.reconfigure(errors="surrogateescape" if utf8 else "backslashreplace")


def main(argv: Sequence[str] | None = None, *, stdin: IO[bytes] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``mplint`` with ``argv`` (default: the command line); the streams default to the
    process's own."""
    args = list(sys.argv[1:] if argv is None else argv)
    for own in (sys.stdout, sys.stderr):
        _tolerant(own)
    streams = Streams(stdin or sys.stdin.buffer, stdout or sys.stdout, stderr or sys.stderr)
    if args[:1] == ["rules"]:
        return _list_rules(streams)
    if args[:1] == ["rule"]:
        return _show_rule(args[1:], streams)
    if args[:1] == ["verify"]:
        from mplint.verify.cli import main as verify

        return verify(args[1:])
    try:
        return _lint(_parser(streams).parse_args(args), streams)
    except _Exit as stop:
        return stop.status
    except ConfigError as problem:
        streams.stderr.write(f"mplint: {problem}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


def _lint(options: argparse.Namespace, streams: Streams) -> int:
    paths: list[Path] = options.paths or [Path(".")]
    config_path = options.config or find_pyproject(paths[0] if paths[0] != Path("-") else Path("."))
    config = load(config_path).with_overrides(options.select, options.ignore, options.extend_ignore,
                                              options.target_python, options.target_platforms)
    tree = Tree(config.search_roots())
    files = [p for p in paths if p != Path("-")]
    for given in files:
        tree.include(given)
    edits = options.format in ("json", "sarif")
    cache = None
    if not options.no_cache and not options.no_prefilter:
        from mplint.cache import Cache

        cache = Cache((config.root or Path.cwd()) / CACHE_DIR, config, edits)
    jobs = options.jobs if options.jobs and options.jobs > 0 else default_jobs()
    run = Options(jobs, cache, not options.no_prefilter, edits)
    stdin = _stdin_source(options, streams) if Path("-") in paths else None
    if options.fix or options.diff:
        if isinstance(stdin, Finding):  # nothing to fix in what cannot be decoded
            streams.stderr.write(f"mplint: {stdin.path}: {stdin.message}\n")
            return EXIT_ERROR
        return _fix(options, config, tree, files, stdin, run, streams)
    findings: list[Finding] = []
    if isinstance(stdin, Finding):
        findings.append(stdin)
    elif stdin is not None:
        from mplint.engine import Engine

        findings += Engine(config, Tree(config.search_roots()), edits).lint(stdin)
    findings += lint_paths(discover(files, config.exclude), config, run, tree)
    _print(findings, options, streams.stdout, streams.stderr)
    return _exit_code(findings, options)


def _stdin_source(options: argparse.Namespace, streams: Streams) -> Source | Finding:
    """The module given on stdin, or the error finding saying why it cannot be decoded."""
    shown = options.stdin_filename or "-"
    try:
        return Source.from_bytes(streams.stdin.read(), shown,
                                 Path(shown) if options.stdin_filename else None)
    except SourceError as problem:
        return error(shown, str(problem), problem.line, problem.column)


def _exit_code(findings: list[Finding], options: argparse.Namespace) -> int:
    if not findings or (options.exit_zero and not any(f.is_error for f in findings)):
        return EXIT_CLEAN
    return EXIT_FINDINGS


def _fix(options: argparse.Namespace, config: Config, tree: Tree, files: list[Path],
         stdin: Source | None, run_options: Options, streams: Streams) -> int:
    from mplint.batch import FixRun, fix_paths, fix_source

    run = FixRun()
    fixed_stdin = None
    if stdin is not None:
        from mplint.engine import Engine

        engine = Engine(config, Tree(config.search_roots()), run_options.edits)
        run, fixed_stdin = fix_source(engine, stdin, options.unsafe_fixes)
    run.add(fix_paths(discover(files, config.exclude), config, run_options,
                      options.unsafe_fixes, write=options.fix and not options.diff, tree=tree))
    run.remaining.sort()
    report = streams.stderr if fixed_stdin is not None and not options.diff else streams.stdout
    if options.diff:
        streams.stdout.write("".join(run.diff))
    elif fixed_stdin is not None:
        streams.stdout.write(fixed_stdin)
    if options.show_fixes:
        _show_fixes(run, report)
    if not options.diff:
        _print(run.remaining, options, report, streams.stderr)
        if run.fixed:
            streams.stderr.write(f"mplint: fixed {len(run.fixed)} finding(s) in "
                                 f"{run.files_changed} file(s)\n")
        return _exit_code(run.remaining, options)
    return EXIT_FINDINGS if run.diff else EXIT_CLEAN


def _show_fixes(run: FixRun, stream: TextIO) -> None:
    for finding in run.fixed:
        title = finding.fix.title if finding.fix else ""
        stream.write(f"fixed {finding.path}:{finding.line}:{finding.column}: {finding.code} "
                     f"{title}\n")
    for finding, reason in run.refused:
        stream.write(f"not fixed {finding.path}:{finding.line}:{finding.column}: "
                     f"{finding.code}: {reason}\n")


def _print(findings: list[Finding], options: argparse.Namespace, stream: TextIO,
           stderr: TextIO) -> None:
    from mplint.output import FORMATTERS, text

    if options.format == "text" and options.show_source:
        stream.write(text.render_with_source(findings, options.unsafe_fixes))
    elif options.format == "text":
        stream.write(text.render(findings, options.unsafe_fixes))
    else:
        stream.write(FORMATTERS[options.format](findings))
    if options.statistics:
        (stream if options.format == "text" else stderr).write(text.statistics(findings))


def _list_rules(streams: Streams) -> int:
    from mplint.rules import all_rules

    for rule in all_rules():
        streams.stdout.write(f"{rule.code}  {rule.name:<24} {rule.summary}\n")
    return EXIT_CLEAN


def _show_rule(args: list[str], streams: Streams) -> int:
    from mplint.rules import rule_by_code

    rules = rule_by_code()
    if len(args) != 1 or args[0].upper() not in rules:
        known = ", ".join(rules)
        streams.stderr.write(f"mplint: usage: mplint rule CODE (one of {known})\n")
        return EXIT_ERROR
    streams.stdout.write(rules[args[0].upper()].docs())
    return EXIT_CLEAN
