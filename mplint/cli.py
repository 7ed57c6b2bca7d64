"""The ``mplint`` command: argument parsing and output. No analysis happens here."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO

from mplint._version import __version__
from mplint.batch import Options, default_jobs, lint_paths
from mplint.cache import CACHE_DIR
from mplint.config import KNOWN_CODES, Config, ConfigError, check_codes, find_pyproject, load
from mplint.findings import Finding, error
from mplint.modules import Tree
from mplint.sources import Candidate, Source, SourceError, discover
from mplint.verify.options import DESCRIPTION as VERIFY_DESCRIPTION
from mplint.verify.options import add_arguments as verify_arguments

if TYPE_CHECKING:
    from mplint.batch import FixRun

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SERVER_REQUIREMENT = "pygls>=2,<3"  # the ``server`` extra of pyproject.toml (a test checks)
NO_FILES = "warning: No Python files found under the given path(s)"
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
    """An argument parser that writes to the run's streams, returns instead of exiting, and
    reports a usage error in one line."""

    def __init__(self, streams: Streams, **kw: Any) -> None:
        super().__init__(**kw)
        self.streams = streams

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            stream = self.streams.stderr if file is sys.stderr else self.streams.stdout
            stream.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.streams.stderr.write(message)
        raise _Exit(status)

    def error(self, message: str) -> NoReturn:
        hint = "" if "(see `" in message else f" (see `{self.prog} --help`)"
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}{hint}\n")


def _codes(value: str) -> list[str]:
    try:
        return list(check_codes(c for c in value.split(",") if c.strip()))
    except ConfigError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


COMMANDS = ("check", "rules", "rule", "verify", "server")


def _parser(streams: Streams) -> _Parser:
    parser = _Parser(
        streams,
        prog="mplint",
        description="Find multiprocessing pitfalls in Python ML code.",
        epilog="`mplint PATHS` is short for `mplint check PATHS`; `mplint check --help` lists "
               "the options. A folder named like a command is linted with `mplint check rules` "
               "or `mplint ./rules`.",
    )
    parser.add_argument("--version", action="version", version=f"mplint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check", streams=streams, help="lint files and folders (the default command)",
        description="Lint Python files for multiprocessing pitfalls.")
    _check_arguments(check)
    commands.add_parser("rules", streams=streams, help="list the rules",
                        description="List every rule: code, name, summary.")
    rule = commands.add_parser("rule", streams=streams, help="show a rule's page",
                               description="Show one rule's page: what it flags, why, the fix.")
    rule.add_argument("code", help="a rule code, e.g. MPL201")
    verify = commands.add_parser(
        "verify", streams=streams, help="run scripts under each start method (executes them)",
        description=VERIFY_DESCRIPTION)
    verify_arguments(verify)
    server = commands.add_parser("server", streams=streams,
                                 help="run the language server on stdio",
                                 description="A Language Server Protocol server over "
                                             "stdin/stdout, for editors (see the README).")
    server.add_argument("--stdio", action="store_true",
                        help="talk over stdin/stdout (the only way it talks; accepted because "
                             "editor configurations pass it)")
    return parser


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, default=None,
                        help="files or directories to lint (default: .); - reads stdin")
    parser.add_argument("--select", type=_codes,
                        help="codes or prefixes to report (MPL2 = MPL2xx, ALL = every rule)")
    parser.add_argument("--extend-select", type=_codes, default=[],
                        help="add to the selected codes")
    parser.add_argument("--ignore", type=_codes, help="codes or prefixes not to report")
    parser.add_argument("--extend-ignore", type=_codes, default=[], help="add to the ignore list")
    parser.add_argument("--format", "--output-format", dest="format", choices=_FORMATS,
                        default="text", help="how to write the findings (default: text)")
    parser.add_argument("--output-file", "-o", type=Path, metavar="FILE",
                        help="write the report to FILE instead of stdout")
    parser.add_argument("--exit-zero", action="store_true",
                        help="exit 0 even with findings, and files that cannot be linted")
    parser.add_argument("--show-source", action="store_true", help="show each finding's line")
    parser.add_argument("--statistics", action="store_true",
                        help="print how many findings each code has instead of the findings")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print the findings and nothing else (no summary line)")
    parser.add_argument("-s", "--silent", action="store_true",
                        help="print nothing; the exit status still says whether there are "
                             "findings")
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
    parser.add_argument("--add-noqa", action="store_true",
                        help="add `# noqa: CODE` to the line of every finding (write the files)")
    parser.add_argument("--show-settings", action="store_true",
                        help="print the settings that apply to the first path, and exit")
    parser.add_argument("--no-cache", action="store_true",
                        help=f"neither read nor write {CACHE_DIR}/")
    parser.add_argument("--no-prefilter", action="store_true",
                        help="analyse every file, even those that cannot start processes "
                             "(slow; for checking the prefilter)")
    parser.add_argument("--no-respect-gitignore", action="store_true",
                        help="also lint what .gitignore and .ignore files ignore")
    parser.add_argument("--no-notebooks", action="store_true",
                        help="do not lint Jupyter notebooks (.ipynb) found in folders "
                             "(`notebooks = false` in [tool.mplint])")
    parser.add_argument("--force-exclude", action="store_true",
                        help="apply `exclude` to paths named on the command line too "
                             "(pre-commit names every changed file)")
    parser.add_argument("--target-python", metavar="VERSION",
                        help="Python version the code runs on, e.g. 3.12 (default: any); "
                             "decides which start method is the default")
    parser.add_argument("--target-platforms", metavar="LIST",
                        help="comma-separated: linux, macos, windows (default: any)")
    parser.add_argument("--config", type=Path, help="pyproject.toml to read [tool.mplint] from")
    parser.add_argument("--stdin-filename", default=None, metavar="NAME",
                        help="read the module from stdin and report it as NAME (for editors)")


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
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "check")  # ``mplint PATHS`` is ``mplint check PATHS``
    try:
        options = _parser(streams).parse_args(args)
        if options.command == "rules":
            return _list_rules(streams)
        if options.command == "rule":
            return _show_rule(options.code, streams)
        if options.command == "server":
            return _serve(streams)
        if options.command == "verify":
            from mplint.verify.cli import run as verify

            return verify(options)
        return _check(options, streams)
    except _Exit as stop:
        return stop.status
    except ConfigError as problem:
        streams.stderr.write(f"mplint: {problem}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


def _serve(streams: Streams) -> int:
    try:
        from mplint.server import main as serve
    except ImportError as missing:
        # The command names this interpreter, so it works from a clone, a wheel or a venv alike.
        streams.stderr.write(f"mplint: error: the language server needs pygls ({missing}); "
                             f"install it with: {sys.executable} -m pip install "
                             f"'{SERVER_REQUIREMENT}'\n")
        return EXIT_ERROR
    return serve()


def _check(options: argparse.Namespace, streams: Streams) -> int:
    if options.output_file is not None:
        try:
            options.output_file.parent.mkdir(parents=True, exist_ok=True)
            output = options.output_file.open("w", encoding="utf-8", newline="")
        except OSError as problem:
            streams.stderr.write(f"mplint: error: cannot write {options.output_file}: "
                                 f"{problem.strerror or problem}\n")
            return EXIT_ERROR
        with output:
            return _lint(options, Streams(streams.stdin, output, streams.stderr))
    if options.silent:
        return _lint(options, Streams(streams.stdin, io.StringIO(), io.StringIO()))
    return _lint(options, streams)


def _lint(options: argparse.Namespace, streams: Streams) -> int:
    from mplint import modules

    modules.forget()  # what an earlier run in this interpreter saw may have changed
    paths: list[Path] = options.paths or ([Path("-")] if options.stdin_filename else [Path(".")])
    config_path = options.config or find_pyproject(_config_start(paths[0], options))
    config = load(config_path).with_overrides(options.select, options.ignore, options.extend_ignore,
                                              options.target_python, options.target_platforms,
                                              options.extend_select)
    if options.no_respect_gitignore:
        config = replace(config, respect_gitignore=False)
    if options.force_exclude:
        config = replace(config, force_exclude=True)
    if options.no_notebooks:
        config = replace(config, notebooks=False)
    if options.show_settings:
        streams.stdout.write(_settings(config, config_path, paths[0]))
        return EXIT_CLEAN
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
    candidates = list(discover(files, config.exclude, config.respect_gitignore,
                               config.force_exclude, config.notebooks))
    if not candidates and stdin is None:
        streams.stderr.write(f"{NO_FILES}\n")
    if options.fix or options.diff:
        if isinstance(stdin, Finding):  # nothing to fix in what cannot be decoded
            streams.stderr.write(f"mplint: {stdin.path}: {stdin.message}\n")
            return EXIT_ERROR
        return _fix(options, config, tree, candidates, stdin, run, streams)
    findings: list[Finding] = []
    if isinstance(stdin, Finding):
        findings.append(stdin)
    elif stdin is not None:
        from mplint.engine import Engine

        findings += Engine(config, Tree(config.search_roots()), edits,
                           creates=False).lint(stdin)
    findings += lint_paths(candidates, config, run, tree)
    findings = _selected(findings, config)
    if options.add_noqa:
        return _add_noqa(findings, streams)
    _print(findings, options, streams.stdout, streams.stderr)
    return _exit_code(findings, options)


def _config_start(first: Path, options: argparse.Namespace) -> Path:
    """Where the configuration is looked for: the first path; for stdin, the folder of the
    file it stands for (``--stdin-filename``), as in ruff and the flake8 plugin."""
    if first != Path("-"):
        return first
    return Path(options.stdin_filename) if options.stdin_filename else Path(".")


def _stdin_source(options: argparse.Namespace, streams: Streams) -> Source | Finding:
    """The module given on stdin, or the error finding saying why it cannot be decoded."""
    shown = options.stdin_filename or "-"
    try:
        return Source.from_bytes(streams.stdin.read(), shown,
                                 Path(shown) if options.stdin_filename else None)
    except SourceError as problem:
        return error(shown, str(problem), problem.line, problem.column)


def _selected(findings: list[Finding], config: Config) -> list[Finding]:
    """The findings ``select``, ``ignore`` and ``per-file-ignores`` let through: the rules'
    are chosen before they run; MPL000, found before any rule runs, is chosen here."""
    return [f for f in findings if not f.is_error or config.enabled(f.code, f.path)]


def _exit_code(findings: list[Finding], options: argparse.Namespace) -> int:
    return EXIT_CLEAN if not findings or options.exit_zero else EXIT_FINDINGS


def _fix(options: argparse.Namespace, config: Config, tree: Tree,
         candidates: Iterable[Candidate], stdin: Source | None, run_options: Options,
         streams: Streams) -> int:
    from mplint.batch import FixRun, fix_paths, fix_source

    run = FixRun()
    fixed_stdin = None
    if stdin is not None:
        from mplint.engine import Engine

        engine = Engine(config, Tree(config.search_roots()), run_options.edits, creates=False)
        run, fixed_stdin = fix_source(engine, stdin, options.unsafe_fixes)
    run.add(fix_paths(candidates, config, run_options,
                      options.unsafe_fixes, write=options.fix and not options.diff, tree=tree))
    run.remaining = _selected(sorted(run.remaining), config)
    report = streams.stderr if fixed_stdin is not None and not options.diff else streams.stdout
    if options.diff:
        streams.stdout.write("".join(run.diff))
    elif fixed_stdin is not None:
        streams.stdout.write(fixed_stdin)
    if options.show_fixes:
        _show_fixes(run, report)
    if not options.diff:
        _print(run.remaining, options, report, streams.stderr, fixed=len(run.fixed),
               resolved=len(run.resolved))
        return _exit_code(run.remaining, options)
    return EXIT_FINDINGS if run.diff else EXIT_CLEAN


def _show_fixes(run: FixRun, stream: TextIO) -> None:
    for finding in run.fixed:
        title = finding.fix.title if finding.fix else ""
        stream.write(f"fixed {finding.place}: {finding.code} "
                     f"{title}\n")
    for finding, by in run.resolved:
        stream.write(f"resolved {finding.place}: {finding.code} "
                     f"by the fix for {by.code} at line {by.line}\n")
    for finding, reason in run.refused:
        stream.write(f"not fixed {finding.place}: "
                     f"{finding.code}: {reason}\n")


def _print(findings: list[Finding], options: argparse.Namespace, stream: TextIO,
           stderr: TextIO, fixed: int = 0, resolved: int = 0) -> None:
    from mplint.output import FORMATTERS, text

    if options.statistics:  # the counts instead of the findings, as in ruff
        if options.format == "json":
            stream.write(text.statistics_json(findings))
        else:
            stream.write(text.statistics(findings))
    elif options.format == "text":
        colour = _colour(stream)
        if options.show_source:
            stream.write(text.render_with_source(findings, options.unsafe_fixes, colour))
        else:
            stream.write(text.render(findings, options.unsafe_fixes, colour))
    else:
        stream.write(FORMATTERS[options.format](findings))
    if options.format == "text" and not options.quiet:
        stream.write(text.summary(findings, options.unsafe_fixes, fixed, resolved))
    elif fixed and not options.quiet:
        stderr.write(text.summary(findings, options.unsafe_fixes, fixed, resolved))


def _colour(stream: TextIO) -> bool:
    """Colour on a terminal; ``NO_COLOR`` turns it off, ``FORCE_COLOR`` on (no-color.org)."""
    import os

    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _add_noqa(findings: list[Finding], streams: Streams) -> int:
    """Add ``# noqa: CODE`` to each finding's line, file by file, keeping encoding, BOM and
    line endings; the files are written in one step each."""
    from mplint.sources import write_atomically
    from mplint.suppress import add_noqa

    wanted: dict[str, dict[tuple[int | None, int], set[str]]] = {}
    for finding in findings:
        if finding.is_error:
            streams.stderr.write(f"{finding.place}: "
                                 f"{finding.code} {finding.message}\n")
        elif finding.path != "-":
            wanted.setdefault(finding.path, {}).setdefault((finding.cell, finding.line),
                                                           set()).add(finding.code)
    added = 0
    for shown, lines in sorted(wanted.items()):
        path = Path(shown)
        try:
            source = Source.load(path)
        except SourceError as problem:
            streams.stderr.write(f"mplint: {shown}: {problem}\n")
            continue
        by_line = {_module_line(source, cell, line): codes for (cell, line), codes in lines.items()}
        result = add_noqa(source.text, by_line)
        for line, reason in result.refused:
            streams.stderr.write(f"mplint: {shown}:{line}: no noqa comment added: {reason}\n")
        if result.added:
            try:
                write_atomically(path, source.stored(result.text), source.encoding,
                                 read_as=source.original)
            except SourceError as problem:
                streams.stderr.write(f"mplint: {shown}: {problem}\n")
                continue
            added += result.added
    streams.stderr.write(f"Added {added} noqa directive{'' if added == 1 else 's'}.\n")
    return EXIT_FINDINGS if any(f.is_error for f in findings) else EXIT_CLEAN


def _module_line(source: Source, cell: int | None, line: int) -> int:
    """The line of ``source``'s module that a finding's (cell, line) points at."""
    if source.notebook is None or cell is None:
        return line
    return source.notebook.module_line(cell, line)


def _settings(config: Config, config_path: Path | None, first: Path) -> str:
    """What ``--show-settings`` prints: the effective settings for ``first``."""
    def listed(values: Iterable[str]) -> str:
        return ", ".join(values) or "(none)"

    enabled = [code for code in KNOWN_CODES if config.enabled(code, str(first))]
    target = ".".join(map(str, config.target_python)) if config.target_python else "any"
    rows = [
        ("path", str(first)),
        ("configuration", str(config_path) if config_path else "(none found: defaults)"),
        ("select", listed(config.select)),
        ("ignore", listed(config.ignore)),
        ("enabled rules", listed(enabled)),
        ("exclude", listed(config.exclude)),
        ("per-file-ignores", listed(f"{pattern} = {', '.join(codes)}"
                                    for pattern, codes in config.per_file_ignores)),
        ("model-loaders", listed(config.model_loaders)),
        ("model-base-classes", listed(config.model_base_classes)),
        ("target-python", target),
        ("target-platforms", listed(config.target_platforms)),
        ("default start methods", listed(sorted(config.default_methods()))),
        ("respect-gitignore", str(config.respect_gitignore).lower()),
        ("force-exclude", str(config.force_exclude).lower()),
        ("notebooks", str(config.notebooks).lower()),
    ]
    return "".join(f"{name:<22} {value}\n" for name, value in rows)


def _list_rules(streams: Streams) -> int:
    from mplint.findings import ERROR_CODE, ERROR_NAME, ERROR_SUMMARY
    from mplint.rules import all_rules

    streams.stdout.write(f"{ERROR_CODE}  {ERROR_NAME:<24} {ERROR_SUMMARY}\n")
    for rule in all_rules():
        streams.stdout.write(f"{rule.code}  {rule.name:<24} {rule.summary}\n")
    return EXIT_CLEAN


def _show_rule(code: str, streams: Streams) -> int:
    from mplint.findings import ERROR_CODE, ERROR_PAGE
    from mplint.rules import rule_by_code

    if code.upper() == ERROR_CODE:
        streams.stdout.write(ERROR_PAGE)
        return EXIT_CLEAN
    rules = rule_by_code()
    if code.upper() not in rules:
        streams.stderr.write(f"mplint: error: unknown rule code {code!r} "
                             "(see `mplint rules`)\n")
        return EXIT_ERROR
    streams.stdout.write(rules[code.upper()].docs())
    return EXIT_CLEAN
