"""Cross-module facts: classes and functions defined in other modules of the linted tree.

Modules are found on demand from the importing module's root (then the configured roots),
parsed once and analysed lazily, so a lookup costs nothing until a rule needs to know what a
name is. The same roots decide the import graph the prefilter and the cache follow.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from mplint.analysis.collector import collect
from mplint.analysis.evaluator import Evaluator
from mplint.analysis.values import Func, Klass, Qual, Value
from mplint.knowledge import ModelPattern
from mplint.modules import Tree
from mplint.sources import SourceError, decode


class ProjectIndex:
    """The modules of the linted tree, loaded when a name from one of them is asked for."""

    def __init__(self, extra_models: tuple[ModelPattern, ...] = (),
                 extra_bases: dict[str, str] | None = None,
                 tree: Tree | None = None) -> None:
        self.tree = tree or Tree()
        self._modules: dict[Path, Evaluator | None] = {}
        self._resolving: set[str] = set()  # names being resolved: re-export cycles end here
        self._extra_models = extra_models
        self._extra_bases = extra_bases or {}

    def evaluator(self, module: cst.Module, name: str, path: Path | None = None) -> Evaluator:
        """An evaluator for a module being linted (at ``path`` when known), sharing this index."""
        return Evaluator(collect(module, name), self, self._extra_models, self._extra_bases,
                         self.tree.roots(path))

    def resolve(self, qualname: str, importer: Evaluator) -> Value | None:
        """The class or function ``qualname`` names in the linted tree, if it is one."""
        if qualname in self._resolving:
            return None
        self._resolving.add(qualname)
        try:
            return self._resolve(qualname, importer)
        finally:
            self._resolving.discard(qualname)

    def _resolve(self, qualname: str, importer: Evaluator) -> Value | None:
        parts = qualname.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module == importer.record.name:
                return None
            path = self.tree.find(module, importer.roots)
            evaluator = self._load(path) if path is not None else None
            if evaluator is None:
                continue
            if cut != len(parts) - 1:
                return None
            value = evaluator.name(parts[-1], evaluator.record.scope)
            if isinstance(value, Qual):  # re-exported: ``from .impl import Worker``
                return self.resolve(value.name, evaluator)
            return value if isinstance(value, Klass | Func) else None
        return None

    def _load(self, path: Path) -> Evaluator | None:
        if path not in self._modules:
            self._modules[path] = None  # an import cycle ends here
            self._modules[path] = self._parse(path)
        return self._modules[path]

    def _parse(self, path: Path) -> Evaluator | None:
        from mplint.modules import module_name

        try:
            tree = cst.parse_module(decode(path.read_bytes()))
        except (OSError, SourceError, cst.ParserSyntaxError, RecursionError):
            return None
        return self.evaluator(tree, module_name(path.absolute())[1], path)
