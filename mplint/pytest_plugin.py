"""The pytest plugin: ``pytest --mp-start-method forkserver`` runs a test suite with
multiprocessing's default start method set to the one asked for, so that a Linux machine sees
what breaks under spawn (macOS, Windows) and forkserver (Linux from Python 3.14). A failure
whose text the verifier knows gets a hint naming the rule that predicts it.

Off unless asked: without the option or the ``mp_start_method`` ini value the plugin registers
them and does nothing else; it imports neither multiprocessing nor the rest of mplint.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

METHODS = ("fork", "forkserver", "spawn")
_INI = "mp_start_method"
_SECTION = "mplint"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mplint", "multiprocessing start method (mplint)")
    group.addoption(
        "--mp-start-method", dest=_INI, choices=METHODS, default=None, metavar="METHOD",
        help="make METHOD (fork, forkserver or spawn) multiprocessing's default start method "
             "for the whole run, and name the mplint rule behind a failure it recognises. "
             f"Overrides the '{_INI}' ini value.")
    parser.addini(_INI, "multiprocessing's default start method for the run (fork, "
                        "forkserver or spawn), as --mp-start-method; empty: leave it alone",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    method = config.getoption(_INI) or str(config.getini(_INI)).strip()
    if not method:
        return
    if method not in METHODS:
        raise pytest.UsageError(f"{_INI} = {method!r}: expected one of {', '.join(METHODS)}")
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        raise pytest.UsageError(f"the {method} start method is not available on this platform")
    chosen = _make_default(method)
    if chosen != method:
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"the {method} start method was asked for, but the start method was already set to "
            f"{chosen} (by a conftest.py or a plugin); it stays {chosen}"),
            stacklevel=2)
    config.pluginmanager.register(StartMethodHints(chosen), "mplint-start-method")


def _make_default(method: str) -> str:
    """Make ``method`` what multiprocessing's default context resolves to, as on a platform
    whose default it is: code that chooses its own method (``set_start_method()`` before the
    default is fixed, ``get_context("...")``) still gets its choice. The method in effect."""
    import multiprocessing
    from multiprocessing import context

    default = context._default_context
    chosen = default.get_start_method(allow_none=True)
    if chosen is not None:
        return chosen
    if isinstance(getattr(default, "_default_context", None), context.BaseContext):
        default._default_context = multiprocessing.get_context(method)
    else:  # a layout this was not written for: fix the default instead
        multiprocessing.set_start_method(method)
    return method


class StartMethodHints:
    """Registered only when a start method is asked for: says which, and adds the hints."""

    def __init__(self, method: str) -> None:
        self.method = method

    def pytest_report_header(self) -> str:
        return f"mplint: multiprocessing's default start method is {self.method}"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.failed:
            hint = _hint(_evidence(report), self.method)
            if hint:
                _attach(report, hint)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        reports = [*terminalreporter.stats.get("failed", ()),
                   *terminalreporter.stats.get("error", ())]
        lines = [f"{report.nodeid}: {codes}" for report in reports
                 if (codes := _codes_attached(report))]
        if lines:
            terminalreporter.section(f"mplint hints (start method {self.method})")
            for line in lines:
                terminalreporter.line(line)


def _evidence(report: pytest.TestReport) -> str:
    """The failure's traceback and what the test printed, its processes' stderr included."""
    return "\n".join([report.longreprtext, *(content for _, content in report.sections)])


def _hint(evidence: str, method: str) -> str:
    """One line per rule whose known failure text is in ``evidence``; empty when none is."""
    from mplint.verify.classify import rules_in

    codes = rules_in(evidence)
    if not codes:
        return ""
    from mplint.rules import rule_by_code

    rules = rule_by_code()
    lines = [f"mplint: this looks like {code} {rules[code].name}: {rules[code].summary}"
             for code in codes]
    lines.append(f"(the tests ran under the {method} start method; `mplint rule {codes[0]}` "
                 "explains it, `mplint PATH` finds it in the code)")
    return "\n".join(lines)


def _attach(report: pytest.TestReport, hint: str) -> None:
    """Under the failure's traceback; as an extra output section where there is none."""
    add = getattr(report.longrepr, "addsection", None)
    if add is not None:
        add(_SECTION, hint)
    else:
        report.sections.append((_SECTION, hint))


def _codes_attached(report: Any) -> str:
    """The ``CODE name`` pairs of the hint attached to ``report`` (also after pytest-xdist sent
    it from a worker), joined by commas; empty when it has none."""
    sections = [*getattr(report.longrepr, "sections", ()), *report.sections]
    hints = [section[1] for section in sections if section[0] == _SECTION]
    prefix = "mplint: this looks like "
    return ", ".join(line[len(prefix):].split(":", 1)[0] for hint in hints
                     for line in hint.splitlines() if line.startswith(prefix))
