"""flake8 adapter: the same engine, codes, lines, columns and messages as ``mplint``.

flake8 applies its own ``--select``, ``--ignore`` and ``# noqa``; ``[tool.mplint]`` still supplies
model loaders and base classes. Files that cannot start processes cost a few byte searches
(the same prefilter as ``mplint``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mplint._version import __version__
from mplint.config import Config, find_pyproject, load
from mplint.engine import Engine
from mplint.sources import Source

_engines: dict[Path | None, Engine] = {}


def _engine_for(filename: str) -> Engine:
    config_path = find_pyproject(Path(filename)) if filename not in ("-", "stdin") else None
    if config_path not in _engines:
        settings = load(config_path)
        # flake8 owns code selection and noqa; only the analysis settings carry over.
        _engines[config_path] = Engine(Config(model_loaders=settings.model_loaders,
                                              model_base_classes=settings.model_base_classes,
                                              target_python=settings.target_python,
                                              target_platforms=settings.target_platforms,
                                              root=settings.root))
    return _engines[config_path]


class Flake8Checker:
    name = "mplint"
    version = __version__

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        self.filename = filename
        self.lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        path = Path(self.filename) if self.filename not in ("-", "stdin") else None
        source = Source("".join(self.lines), self.filename, path)
        for finding in _engine_for(self.filename).lint(source):
            if finding.is_error and finding.message.startswith("syntax error"):
                continue  # flake8 reports unparsable files itself (E999)
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)
