"""Mutation fuzzer: programs made from the fixtures and the rules' examples, changed the ways
real code differs from them, and checked for what mplint promises on any input.

    python benchmarks/fuzz.py [--count N] [--seed S] [--execute N] [--tree N] [--save DIR]

Each program is a seed (a fixture or a rule's VALID/INVALID example) with one to three
mutations: a name renamed everywhere, the module's alias for multiprocessing changed, script
statements wrapped in ``if True:``, ``try:`` or ``with``, the script part moved into a
``main()``, the main guard moved above the statements before it, pools taken from a spawn
context, comments added between statements, CRLF line endings, tab indentation, a UTF-8 BOM, a
coding cookie, no final newline, twenty levels of nesting. A mutation that gives code Python
rejects is dropped. For every program it checks that linting gives no internal error and the
same findings with and without the prefilter, and that ``--fix`` (safe fixes, then unsafe ones
too) gives code that compiles, is unchanged by a second fix, keeps every comment, its BOM and
its line endings, and has no undefined name (pyflakes) that the original did not have. With
``--execute N``, up to N programs whose safe fix changes them (and that import neither
TensorFlow nor JAX, ray or dask) run before and after the fix, and must print the same. With
``--tree N``, N programs written as one tree must give the same findings with one worker and
two, cold and cached, with and without the prefilter, from the CLI and from flake8, and
``--diff`` applied with ``patch`` must equal ``--fix``.
Prints the figures and every failure; ``--save`` writes the failing programs to a folder.
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOM = "\ufeff"


def seeds() -> list[str]:
    """The fixtures and every rule example, as source text."""
    from mplint.rules import all_rules

    found = [path.read_text(encoding="utf-8")
             for path in sorted((ROOT / "fixtures").rglob("*.py"))]
    for rule in all_rules():
        for example in (*rule.VALID, *rule.INVALID):
            found.append(example.code)
    return found


# -- mutations -----------------------------------------------------------------------------------
_NAME = re.compile(r"\b[a-z_][a-z0-9_]{2,}\b")
_KEYWORDS = frozenset({"import", "from", "def", "class", "return", "with", "for", "while",
                       "if", "else", "elif", "try", "except", "finally", "lambda", "yield",
                       "pass", "raise", "global", "nonlocal", "assert", "async", "await",
                       "not", "and", "del", "break", "continue", "self", "none", "true", "false"})


def _defined_names(text: str) -> list[str]:
    """Names the module itself binds (functions, classes, assigned names), not imports."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return sorted(n for n in names if n not in _KEYWORDS and not n.startswith("__"))


def rename(text: str, rng: random.Random) -> str:
    names = _defined_names(text)
    if not names:
        return text
    old = rng.choice(names)
    return re.sub(rf"\b{re.escape(old)}\b", f"{old}_x{rng.randrange(100)}", text)


def alias(text: str, rng: random.Random) -> str:
    if "import multiprocessing as mp\n" not in text:
        return text.replace("import multiprocessing\n", "import multiprocessing as mproc\n"
                            ).replace("multiprocessing.", "mproc.").replace(
            "import mproc as", "import multiprocessing as")
    return re.sub(r"\bmp\b", "mpx", text)


def _top_level(text: str) -> list[tuple[int, int]]:
    """(first line, last line), 0-based, of each top-level statement."""
    tree = ast.parse(text)
    spans = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((first - 1, (node.end_lineno or node.lineno) - 1))
    return spans


def _wrap(text: str, rng: random.Random, header: str, footer: str = "") -> str:
    lines = text.splitlines(keepends=True)
    spans = [s for s in _top_level(text) if not lines[s[0]].startswith(("import", "from", "def",
                                                                         "class", "@"))]
    if not spans:
        return text
    first, last = rng.choice(spans)
    body = "".join(lines[first:last + 1])
    wrapped = header + textwrap.indent(body, "    ") + footer
    return "".join(lines[:first]) + wrapped + "".join(lines[last + 1:])


def wrap_if(text: str, rng: random.Random) -> str:
    return _wrap(text, rng, "if True:\n")


def wrap_try(text: str, rng: random.Random) -> str:
    return _wrap(text, rng, "try:\n", "except ImportError:\n    raise\n")


def wrap_with(text: str, rng: random.Random) -> str:
    return "import contextlib\n" + _wrap(text, rng, "with contextlib.nullcontext():\n")


def wrap_main(text: str, rng: random.Random) -> str:
    """The statements from the first non-definition on move into ``main()``."""
    lines = text.splitlines(keepends=True)
    spans = _top_level(text)
    start = next((s[0] for s in spans if not lines[s[0]].startswith(
        ("import", "from", "def", "class", "@"))), None)
    if start is None:
        return text
    body = "".join(lines[start:])
    if "global " in body or "__name__" in body:
        return text
    return ("".join(lines[:start]) + "def main():\n" + textwrap.indent(body, "    ")
            + "\n\nmain()\n")


def move_guard_up(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    spans = _top_level(text)
    for index, (first, last) in enumerate(spans):
        if lines[first].startswith("if __name__") and index > 0:
            before = spans[index - 1]
            guard = lines[first:last + 1]
            previous = lines[before[0]:before[1] + 1]
            return "".join(lines[:before[0]] + guard + previous + lines[last + 1:])
    return text


def spawn_context(text: str, rng: random.Random) -> str:
    return re.sub(r"\bmp\.Pool\(", 'mp.get_context("spawn").Pool(', text, count=1)


def comments(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    spans = _top_level(text)
    if not spans:
        return text
    first, _ = rng.choice(spans)
    lines.insert(first, f"# note {rng.randrange(1000)}\n")
    return "".join(lines)


def crlf(text: str, rng: random.Random) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def tabs(text: str, rng: random.Random) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 4
        out.append("\t" * depth + " " * ((len(line) - len(stripped)) % 4) + stripped)
    return "".join(out)


def bom(text: str, rng: random.Random) -> str:
    return text if text.startswith(BOM) else BOM + text


def cookie(text: str, rng: random.Random) -> str:
    return text if text.startswith(BOM) else "# -*- coding: utf-8 -*-\n" + text


def no_final_newline(text: str, rng: random.Random) -> str:
    return text.rstrip("\r\n")


def nest_deep(text: str, rng: random.Random) -> str:
    out = text
    for _ in range(20):
        out = _wrap(out, rng, "if True:\n")
    return out


MUTATIONS: tuple[Callable[[str, random.Random], str], ...] = (
    rename, alias, wrap_if, wrap_try, wrap_with, wrap_main, move_guard_up, spawn_context,
    comments, crlf, tabs, bom, cookie, no_final_newline, nest_deep)


def program(seed_text: str, rng: random.Random) -> tuple[str, list[str]]:
    """A mutant of ``seed_text`` that Python accepts, and the mutations it went through."""
    text, applied = seed_text, []
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS)
        try:
            candidate = mutation(text, rng)
            compile(candidate.removeprefix(BOM), "<fuzz>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError):
            continue
        text = candidate
        applied.append(mutation.__name__)
    return text, applied


# -- checks --------------------------------------------------------------------------------------
def _undefined(text: str) -> Counter[str]:
    from pyflakes import checker, messages

    tree = ast.parse(text)
    found: Counter[str] = Counter()
    for message in checker.Checker(tree).messages:
        if isinstance(message, messages.UndefinedName):
            found[str(message.message_args[0])] += 1
    return found


def _endings(text: str) -> set[str]:
    return {m.group() for m in re.finditer(r"\r\n|\r|\n", text)}


def check(text: str) -> list[str]:
    """What is wrong with mplint's handling of ``text``."""
    from mplint.engine import Engine
    from mplint.fixers.safety import comments
    from mplint.sources import Source

    problems: list[str] = []
    data = text.encode("utf-8")
    source = Source.from_bytes(data, "fuzz.py")
    engine = Engine()
    found = engine.lint(source, prefilter=False)
    if any("internal error" in f.message for f in found):
        problems.append("internal error: " + next(f.message for f in found
                                                  if "internal error" in f.message))
    if any(f.is_error for f in found):
        return problems  # not analysable (too deep): nothing more to check
    if sorted(engine.lint(source)) != sorted(found) and found:
        problems.append("the prefilter changes the findings")
    original = source.text
    for unsafe in (False, True):
        fixed = engine.fix(source, unsafe, prefilter=False).text
        label = "unsafe fix" if unsafe else "safe fix"
        if fixed == original:
            continue
        try:
            compile(fixed, "fuzz.py", "exec", dont_inherit=True)
        except SyntaxError as error:
            problems.append(f"{label} does not compile: {error}")
            continue
        if engine.fix(Source(fixed, "fuzz.py", None, source.encoding), unsafe,
                      prefilter=False).text != fixed:
            problems.append(f"{label} is not idempotent")
        lost = comments(original) - comments(fixed)
        if lost:
            problems.append(f"{label} drops comments: {sorted(lost)}")
        added = _undefined(fixed) - _undefined(original)
        if added:
            problems.append(f"{label} adds undefined names: {sorted(added)}")
        if not _endings(fixed) <= _endings(original) | ({"\n"} if not _endings(original)
                                                        else set()):
            problems.append(f"{label} changes line endings")
        if fixed.encode(source.encoding).startswith(BOM.encode()) != data.startswith(
                BOM.encode()):
            problems.append(f"{label} changes the BOM")
    return problems


# Not run: slow to import, and TensorFlow is not fork-safe (its scripts fail under fork anyway).
_HEAVY = re.compile(r"^\s*(?:import|from)\s+(?:tensorflow|keras|jax|ray|dask)\b", re.MULTILINE)
# results in completion order: what such a program prints varies from run to run
_UNORDERED = re.compile(r"\b(?:imap_unordered|as_completed|uimap|p_umap|p_uimap)\b")


def same_output(text: str, timeout: float = 30) -> str | None:
    """Run ``text`` and its safe fix under the platform's default (fork on Linux up to 3.13)
    and compare what they print; the difference, "" when they agree, or None when the fix
    changes nothing, the original does not run cleanly itself, or two runs of the original
    print different things (``imap_unordered``, ``as_completed``: no output to keep)."""
    import subprocess
    import tempfile

    from mplint.engine import Engine
    from mplint.sources import Source

    source = Source.from_bytes(text.encode("utf-8"), "fuzz.py")
    fixed = Engine().fix(source, unsafe=False, prefilter=False).text
    if fixed == source.text:
        return None
    outputs = []
    with tempfile.TemporaryDirectory() as folder:
        for name, content in (("original.py", source.text), ("original.py", source.text),
                              ("fixed.py", fixed)):
            path = Path(folder) / name
            path.write_bytes(content.encode(source.encoding))
            try:
                done = subprocess.run([sys.executable, str(path)], cwd=folder, timeout=timeout,
                                      capture_output=True, text=True)
            except subprocess.TimeoutExpired:
                return None if name == "original.py" else "the fixed script timed out"
            # a child's traceback (an unguarded spawn start) is no clean run either, though
            # the parent exits 0: the fix that makes the child work changes what it prints
            if name == "original.py" and (done.returncode != 0 or "Traceback" in done.stderr):
                return None
            outputs.append((done.returncode, done.stdout))
    if outputs[0] != outputs[1]:
        return None  # the original's own output varies from run to run
    return "" if outputs[0] == outputs[2] else f"output {outputs[0]} became {outputs[2]}"


Failure = tuple[str, list[str], list[str]]  # program, mutations, problems


def run(count: int, seed: int, execute: int = 0) -> tuple[int, int, list[Failure]]:
    """Check ``count`` programs, and run up to ``execute`` of those whose safe fix changes them
    before and after the fix; the number checked, the number run and compared, and the
    failures."""
    rng = random.Random(seed)
    pool = seeds()
    failures: list[Failure] = []
    compared = 0
    for _ in range(count):
        text, applied = program(rng.choice(pool), rng)
        problems = check(text)
        if not problems and compared < execute and not _HEAVY.search(text) \
                and not _UNORDERED.search(text):
            difference = same_output(text)
            if difference is not None:
                compared += 1
            if difference:
                problems.append(f"the safe fix changes what the script does: {difference}")
        if problems:
            failures.append((text, applied, problems))
    return count, compared, failures


def tree_problems(programs: list[str], folder: Path) -> list[str]:
    """Whole-tree runs over ``programs`` written to ``folder``: the same findings with one
    worker and two, cold and from the cache, from the CLI and from flake8; and ``--diff``
    applied with ``patch`` gives the files ``--fix`` writes."""
    import json
    import shutil
    import subprocess

    bin_dir = Path(sys.executable).parent

    def command(name: str) -> str:
        return str(bin_dir / name) if (bin_dir / name).exists() else name

    def tree(name: str) -> Path:
        target = folder / name
        target.mkdir(parents=True)
        for index, text in enumerate(programs):
            (target / f"p{index:05d}.py").write_bytes(text.encode("utf-8"))
        return target

    def lint(where: Path, *options: str) -> list[tuple[str, int, int, str, str]]:
        done = subprocess.run([command("mplint"), "--format", "json", "--exit-zero", *options,
                               "."], cwd=where, capture_output=True, text=True, timeout=3600)
        return sorted((f["path"], f["line"], f["column"], f["code"], f["message"])
                      for f in json.loads(done.stdout))

    problems: list[str] = []
    lint_tree = tree("lint")
    cold = lint(lint_tree, "--no-cache", "-j", "1")
    for label, options in (("two workers", ("--no-cache", "-j", "2")),
                           ("a cold cache", ()), ("a warm cache", ()),
                           ("no prefilter", ("--no-cache", "--no-prefilter"))):
        if lint(lint_tree, *options) != cold:
            problems.append(f"{label} changes the findings")
    flake8 = subprocess.run([command("flake8"), "--isolated", "--select", "MPL", "."],
                            cwd=lint_tree, capture_output=True, text=True, timeout=3600)
    shown = sorted(line.removeprefix("./") for line in flake8.stdout.splitlines())
    expected = sorted(f"{p}:{line}:{column}: {code} {message}"
                      for p, line, column, code, message in cold)
    if shown != expected:
        problems.append("flake8 and the CLI disagree")
    patched, fixed = tree("patched"), tree("fixed")
    diff = subprocess.run([command("mplint"), "--diff", "--no-cache", "."], cwd=patched,
                          capture_output=True, timeout=3600).stdout
    if diff and shutil.which("patch"):
        subprocess.run(["patch", "-s", "-p1"], input=diff, cwd=patched, check=True,
                       timeout=600)
    subprocess.run([command("mplint"), "--fix", "--no-cache", "."], cwd=fixed,
                   capture_output=True, timeout=3600)
    for index in range(len(programs)):
        name = f"p{index:05d}.py"
        if (patched / name).read_bytes() != (fixed / name).read_bytes():
            problems.append(f"--diff applied with patch differs from --fix on {name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="write failing programs to this folder")
    parser.add_argument("--execute", type=int, default=0, metavar="N",
                        help="also run up to N programs before and after their safe fix")
    parser.add_argument("--tree", type=int, default=0, metavar="N",
                        help="also lint and fix N programs as one tree, every way (tree_problems)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    checked, compared, failures = run(args.count, args.seed, args.execute)
    if args.tree:
        import tempfile

        rng = random.Random(args.seed)
        texts = seeds()
        programs = [program(rng.choice(texts), rng)[0] for _ in range(args.tree)]
        with tempfile.TemporaryDirectory() as folder:
            for problem in tree_problems(programs, Path(folder)):
                failures.append(("", ["tree"], [problem]))
        print(f"{args.tree} programs linted and fixed as one tree, every way")
    elapsed = time.perf_counter() - started
    for index, (text, applied, problems) in enumerate(failures):
        print(f"failure {index}: mutations {applied}: {'; '.join(problems)}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"failure_{index}.py").write_bytes(text.encode("utf-8"))
    print(f"{checked} programs, {compared} run before and after their safe fix, "
          f"{len(failures)} failing, {elapsed:.0f} s ({checked / elapsed:.1f} programs/s), "
          f"seed {args.seed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
