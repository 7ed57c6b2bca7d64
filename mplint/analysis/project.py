"""Cross-module facts: classes and functions defined in other modules of the linted tree.

Modules are found on demand from the importing module's package root, parsed once and
analysed lazily, so a lookup costs nothing until a rule needs to know what a name is.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from mplint.analysis.collector import collect
from mplint.analysis.evaluator import Evaluator
from mplint.analysis.values import Func, Klass, Value
from mplint.knowledge import ModelPattern
from mplint.sources import SourceError, decode


def module_name(path: Path) -> tuple[Path, str]:
    """The directory a module is imported from and its dotted name there.

    ``pkg/__init__.py`` is named ``pkg.__init__`` so that relative imports in it resolve
    against ``pkg``.
    """
    parts = [path.stem]
    parent = path.parent
    while (parent / "__init__.py").is_file() and parent != parent.parent:
        parts.insert(0, parent.name)
        parent = parent.parent
    return parent, ".".join(parts)


class ProjectIndex:
    """The modules of the linted tree, loaded when a name from one of them is asked for."""

    def __init__(self, extra_models: tuple[ModelPattern, ...] = (),
                 extra_bases: dict[str, str] | None = None) -> None:
        self._roots: list[Path] = []
        self._modules: dict[str, Evaluator | None] = {}
        self._resolving: set[str] = set()  # names being resolved: re-export cycles end here
        self._extra_models = extra_models
        self._extra_bases = extra_bases or {}

    def add_root(self, root: Path) -> None:
        if root not in self._roots:
            self._roots.append(root)

    def evaluator(self, record_module: cst.Module, name: str) -> Evaluator:
        """An evaluator for a module being linted, sharing this index."""
        return Evaluator(collect(record_module, name), self, self._extra_models, self._extra_bases)

    def resolve(self, qualname: str, importer: str) -> Value | None:
        """The class or function ``qualname`` names in the linted tree, if it is one."""
        if qualname in self._resolving:
            return None
        self._resolving.add(qualname)
        try:
            return self._resolve(qualname, importer)
        finally:
            self._resolving.discard(qualname)

    def _resolve(self, qualname: str, importer: str) -> Value | None:
        parts = qualname.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module == importer:
                return None
            evaluator = self._load(module)
            if evaluator is None:
                continue
            if cut != len(parts) - 1:
                return None
            value = evaluator.name(parts[-1], evaluator.record.scope)
            return value if isinstance(value, Klass | Func) else None
        return None

    def _load(self, module: str) -> Evaluator | None:
        if module not in self._modules:
            self._modules[module] = None  # an import cycle ends here
            self._modules[module] = self._parse(module)
        return self._modules[module]

    def _parse(self, module: str) -> Evaluator | None:
        relative = Path(*module.split("."))
        for root in self._roots:
            for path, name in ((root / relative.with_suffix(".py"), module),
                               (root / relative / "__init__.py", f"{module}.__init__")):
                if not path.is_file():
                    continue
                try:
                    tree = cst.parse_module(decode(path.read_bytes(), path))
                except (OSError, SourceError, cst.ParserSyntaxError):
                    return None
                return self.evaluator(tree, name)
        return None
