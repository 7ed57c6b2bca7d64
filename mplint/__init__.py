"""mplint: finds the multiprocessing pitfalls that break and slow down Python ML code.

Linting never imports or runs the code it reads.
"""

from __future__ import annotations

from mplint._version import __version__
from mplint.config import Config
from mplint.findings import Finding, Fix

__all__ = ["Config", "Finding", "Fix", "__version__", "fix_source", "lint_source"]


def lint_source(source: str | bytes, path: str = "<string>",
                config: Config | None = None) -> list[Finding]:
    """Lint one module's source and return its findings, sorted by position."""
    from mplint.engine import Engine
    from mplint.findings import error
    from mplint.sources import Source, SourceError

    data = source.encode("utf-8") if isinstance(source, str) else source
    try:
        decoded = Source.from_bytes(data, path)
    except SourceError as problem:
        return [error(path, str(problem), problem.line, problem.column)]
    return Engine(config).lint(decoded)


def fix_source(source: str, path: str = "<string>", config: Config | None = None,
               unsafe: bool = False) -> str:
    """The source with the offered fixes applied (safe ones; unsafe ones too when asked)."""
    from mplint.engine import Engine
    from mplint.sources import Source

    return Engine(config).fix(Source(source, path), unsafe, prefilter=False).text
