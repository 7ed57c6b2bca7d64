"""mplint: finds the multiprocessing pitfalls that break and slow down Python ML code.

Linting never imports or runs the code it reads.
"""

from __future__ import annotations

from mplint._version import __version__

TYPE_CHECKING = False  # not typing's: importing the package must import nothing else
if TYPE_CHECKING:
    from mplint.config import Config
    from mplint.findings import Finding, Fix

__all__ = ["Config", "Finding", "Fix", "__version__", "fix_source", "lint_source"]


def __getattr__(name: str) -> object:
    """``Config``, ``Finding`` and ``Fix`` load on first use: importing the package imports
    nothing else, so ``python -m mplint`` can take the working directory off ``sys.path``
    before any module is looked up there."""
    if name == "Config":
        from mplint.config import Config

        return Config
    if name in ("Finding", "Fix"):
        from mplint import findings

        return getattr(findings, name)
    raise AttributeError(f"module 'mplint' has no attribute {name!r}")


def lint_source(source: str | bytes, path: str = "<string>",
                config: Config | None = None) -> list[Finding]:
    """Lint one module's source and return its findings, sorted by position. A ``path``
    ending in ``.ipynb`` reads ``source`` as a notebook's JSON."""
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
    """The source with the offered fixes applied (safe ones; unsafe ones too when asked). A
    ``path`` ending in ``.ipynb`` reads ``source`` as a notebook's JSON and returns the JSON
    with the changed cells rewritten."""
    from mplint.engine import Engine
    from mplint.sources import Source, SourceError, is_notebook

    if not is_notebook(path):
        return Engine(config).fix(Source(source, path), unsafe, prefilter=False).text
    try:
        notebook = Source.from_bytes(source.encode("utf-8"), path)
    except SourceError:
        return source
    fixed = Engine(config).fix(notebook, unsafe, prefilter=False).text
    return notebook.stored(fixed)
