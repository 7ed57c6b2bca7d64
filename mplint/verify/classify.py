"""From what a child did to a verdict: ok, crash or hang, and the rule that predicts it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mplint.verify.profile import Profile, summarise
from mplint.verify.runner import Outcome

_HEADER = "Traceback (most recent call last):"
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
# faulthandler frames of a parent stuck in Process.join() or in Queue.get()
_IN_JOIN = re.compile(r'multiprocessing/process\.py", line \d+ in join$', re.M)
_IN_GET = re.compile(r'multiprocessing/queues\.py", line \d+ in get$', re.M)
HINT_JOIN = ("the parent is blocked in Process.join() while the child waits to flush its queue: "
             "take everything off the queue before joining")
HINT_JOIN_NO_QUEUE = ("the parent is blocked in Process.join() on a child that is still "
                      "working or waiting: nothing it put on a queue is holding it")
_QUEUE_FRAMES = re.compile(r'multiprocessing/queues\.py", line \d+ in ', re.M)
HINT_GET = ("the parent waits on Queue.get() but no child put a result: a child exited first, "
            "or its put() failed silently in the queue's feeder thread (an unpicklable object, "
            "such as a tensor that requires grad)")


@dataclass
class Verdict:
    """The classified result of one run."""

    script: str
    method: str  # requested default
    status: str  # ok, crash, hang
    exit_code: int | None
    wall: float
    methods_used: list[str]
    exception: str | None = None
    message: str | None = None
    where: str | None = None  # file:line of the innermost frame of the script's own code
    rules: list[str] = field(default_factory=list)
    hint: str | None = None
    warnings: list[str] = field(default_factory=list)
    leftovers: int = 0
    stdout: str = ""
    stderr: str = ""
    stacks: dict[int, str] = field(default_factory=dict)
    profile: Profile | None = None


@cache
def signatures() -> tuple[tuple[str, str], ...]:
    """Failure text -> the rule whose finding predicts it, from each rule's ``runtime_errors``.
    Searched in stderr and in the stacks. Only the verifying parent reads the rules; the
    scripts it runs never import mplint."""
    from mplint.rules import all_rules

    return tuple((text, rule.code) for rule in all_rules() for text in rule.runtime_errors)


def rules_in(evidence: str) -> list[str]:
    """The codes of the rules whose known failure texts appear in ``evidence``, sorted: what
    the failure's text alone suggests, before any linting confirms it."""
    return sorted({rule for text, rule in signatures() if text in evidence})


def classify(outcome: Outcome) -> Verdict:
    profile = summarise(outcome.events, outcome.main_pid)
    status = "hang" if outcome.timed_out else ("ok" if outcome.exit_code == 0 else "crash")
    exception, message = last_exception(outcome.stderr)
    if status == "crash" and exception is None:
        exception, message = _exit_reason(outcome.exit_code)
    evidence = outcome.stderr + "\n".join(outcome.stacks.values())
    rules = rules_in(evidence)
    main_stack = outcome.stacks.get(outcome.main_pid, "")
    hint = None
    children = "\n".join(stack for pid, stack in outcome.stacks.items()
                         if pid != outcome.main_pid)
    if status == "hang" and _IN_JOIN.search(main_stack) and _QUEUE_FRAMES.search(children):
        rules, hint = sorted({*rules, "MPL303"}), HINT_JOIN
    elif status == "hang" and _IN_JOIN.search(main_stack):
        hint = HINT_JOIN_NO_QUEUE
    elif status == "hang" and _IN_GET.search(main_stack):
        hint = HINT_GET
    return Verdict(
        script=str(outcome.run.script), method=outcome.run.method, status=status,
        exit_code=outcome.exit_code, wall=round(outcome.wall, 2),
        methods_used=profile.methods_used, exception=exception if status != "ok" else None,
        message=message if status != "ok" else None, rules=rules if status != "ok" else [],
        where=crash_site(outcome.stderr, outcome.run.script) if status == "crash" else None,
        hint=hint,
        warnings=deprecation_warnings(outcome.stderr), leftovers=outcome.leftovers,
        stdout=outcome.stdout, stderr=outcome.stderr, stacks=outcome.stacks, profile=profile)


def last_exception(stderr: str) -> tuple[str | None, str | None]:
    """Type and message of the last traceback in ``stderr``."""
    start = stderr.rfind(_HEADER)
    if start < 0:
        return None, None
    lines = stderr[start + len(_HEADER):].splitlines()
    for index, line in enumerate(lines):
        if not line or line[0].isspace() or line.startswith("^"):
            continue
        match = _EXCEPTION.match(line)
        if match:
            message = (match.group("message") or "").strip() or _indented_after(lines, index)
            return match.group("type"), message
    return None, None


# a notebook's driver writes a cell's frame as ``File "nb.ipynb", cell 3, line 2``
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", (?:cell (?P<cell>\d+), )?line (?P<line>\d+)',
                    re.M)


def crash_site(stderr: str, script: Path) -> str | None:
    """``file:line`` of the innermost frame of the last traceback in ``stderr`` that is the
    user's code: not Python's library, an installed package or the verifier's hook. The
    script itself is named as it was given; a notebook's frame names its cell
    (``nb.ipynb:cell 3:2``)."""
    start = stderr.rfind(_HEADER)
    if start < 0:
        return None
    ours = script.resolve()
    for frame in reversed(list(_FRAME.finditer(stderr, start))):
        file = frame.group("file")
        if _library(file):
            continue
        shown = str(script) if Path(file) == ours else file
        cell = f"cell {frame.group('cell')}:" if frame.group("cell") else ""
        return f"{shown}:{cell}{frame.group('line')}"
    return None


def _library(file: str) -> bool:
    """Whether a traceback's file is Python's own, an installed package's or the hook's."""
    if file.startswith("<"):  # <frozen runpy>, <string>
        return True
    from mplint.verify.runner import HOOK_DIR

    resolved = Path(file).resolve()
    return any(resolved.is_relative_to(folder) for folder in (*_library_folders(), HOOK_DIR))


@cache
def _library_folders() -> tuple[Path, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple({Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib",
                                                         "platlib") if key in paths})


def _indented_after(lines: list[str], index: int) -> str:
    """A message that starts on the lines after ``Type:`` (multiprocessing's bootstrap error):
    its first paragraph, and the next ones until a sentence ends, so it is never cut mid-way."""
    paragraphs: list[list[str]] = [[]]
    for line in lines[index + 1:]:
        if line and not line[0].isspace():
            break
        if not line.strip():
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        paragraphs[-1].extend(line.split())
    words: list[str] = []
    for paragraph in paragraphs:
        words.extend(paragraph)
        if words and words[-1].endswith((".", "!", "?", ":")):
            break
    return " ".join(words).rstrip(":")


def _exit_reason(exit_code: int | None) -> tuple[str | None, str | None]:
    if exit_code is not None and exit_code < 0:
        import signal

        return None, f"killed by {signal.Signals(-exit_code).name}"
    return None, f"exit code {exit_code}"


def deprecation_warnings(stderr: str) -> list[str]:
    # (those raised inside the interpreter's frozen import machinery, as a Jupyter kernel's
    # start-up does, are about no one's code)
    return sorted({line.strip() for line in stderr.splitlines()
                   if "DeprecationWarning" in line and not line.lstrip().startswith("<frozen ")})
