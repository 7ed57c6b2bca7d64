"""What a rule is: its identity, docs, examples and a check over the module's facts."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mplint.analysis import ModuleFacts, WorkSite
from mplint.fixers.base import Fixer, no_fix
from mplint.knowledge import ApiKind


@dataclass(frozen=True)
class Report:
    """A rule's finding before the engine turns the node into a position."""

    node: cst.CSTNode
    message: str
    fix: Fixer | None = None
    # the end of ``message`` that describes the finding's surroundings (what else the program
    # does), which other edits may change while the finding stays the same
    detail: str = ""


def offer(node: cst.CSTNode, message: str, fix: Fixer | str, detail: str = "") -> Report:
    """A report with its fix, or with the reason there is none added to the message."""
    if isinstance(fix, str):
        return Report(node, no_fix(message + detail, fix), detail=detail)
    return Report(node, message + detail, fix, detail)


def task_node(work: WorkSite) -> cst.CSTNode:
    """Where a finding about what a task sends or returns points: the call that sends it, or
    for joblib (``Parallel(...)(delayed(f)(x) for x in xs)``, often over several lines) the
    callable that ``delayed`` wraps."""
    if work.kind is ApiKind.JOBLIB and work.func is not None:
        return work.func
    return work.site.node


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class Invalid:
    """Code the rule must flag, with every finding it must report (1-based line and column),
    and the code ``mplint --fix --unsafe-fixes`` turns it into (``None``: no fix is offered)."""

    code: str
    expected: tuple[Expected, ...]
    fixed: str | None
    modules: tuple[tuple[str, str], ...]  # other files of the tree beside it: (path, code)

    def __init__(self, code: str, *expected: tuple[int, int, str],
                 fixed: str | None = None, modules: dict[str, str] | None = None) -> None:
        object.__setattr__(self, "code", textwrap.dedent(code).lstrip("\n"))
        object.__setattr__(self, "expected", tuple(Expected(*e) for e in expected))
        object.__setattr__(self, "fixed",
                           None if fixed is None else textwrap.dedent(fixed).lstrip("\n"))
        object.__setattr__(self, "modules", _modules(modules))


@dataclass(frozen=True)
class Valid:
    """Code the rule must leave alone; ``why`` says what makes it correct."""

    code: str
    why: str
    modules: tuple[tuple[str, str], ...]  # other files of the tree beside it: (path, code)

    def __init__(self, code: str, why: str, modules: dict[str, str] | None = None) -> None:
        object.__setattr__(self, "code", textwrap.dedent(code).lstrip("\n"))
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "modules", _modules(modules))


def _modules(modules: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((path, textwrap.dedent(code).lstrip("\n"))
                 for path, code in (modules or {}).items())


class Rule:
    """Base class: a rule module defines one subclass, and that class is the rule's spec.

    ``VALID[0]`` and ``INVALID[0]`` are the "Use instead" and "Example" of its docs.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, for ``mplint rules`` and SARIF
    what: ClassVar[str]
    why: ClassVar[str]
    fix_safety: ClassVar[str]
    references: ClassVar[tuple[str, ...]] = ()
    # Texts of the errors a program makes when this rule's finding is real: ``mplint verify``
    # names the rule when it sees one of them in a failed run.
    runtime_errors: ClassVar[tuple[str, ...]] = ()
    # True for a rule about Jupyter notebooks: its examples are a notebook's code, one cell
    notebook: ClassVar[bool] = False
    VALID: ClassVar[tuple[Valid, ...]]
    INVALID: ClassVar[tuple[Invalid, ...]]

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        raise NotImplementedError

    @classmethod
    def docs(cls) -> str:
        """The rule's reference page, in Markdown."""
        where = " (a notebook cell)" if cls.notebook else ""
        parts = [
            f"# {cls.code} {cls.name}",
            f"## What it does\n{cls.what}",
            f"## Why is this bad?\n{cls.why}",
            f"## Example{where}\n```python\n{cls.INVALID[0].code}```",
            f"## Use instead{where}\n```python\n{cls.VALID[0].code}```",
            f"## Fix safety\n{cls.fix_safety}",
        ]
        if cls.references:
            parts.append("## References\n" + "\n".join(f"- {ref}" for ref in cls.references))
        return "\n\n".join(parts) + "\n"
