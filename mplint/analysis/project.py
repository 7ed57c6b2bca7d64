"""Cross-module facts: classes and functions defined in other modules of the linted tree.

Modules are found on demand from the importing module's root (then the configured roots). A
name is first looked up in the module's summary (``summaries``: Python's own parser, a tenth of
libcst's cost), which gives a class or function that is parsed with libcst only when a rule
reads its code; the summary answers the common questions (is it a model or a process class,
can it return a model) by itself. The same roots decide the import graph the prefilter and the
cache follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import collect
from mplint.analysis.evaluator import Evaluator
from mplint.analysis.summaries import NEEDS_PARSE, Definition, Summaries
from mplint.analysis.values import (
    UNKNOWN,
    Func,
    Instance,
    Klass,
    Model,
    ProcessObject,
    Qual,
    Resource,
    Summarised,
    Value,
)
from mplint.knowledge import ApiKind, ModelPattern
from mplint.modules import Tree, module_name
from mplint.parsing import parse_module
from mplint.sources import SourceError, decode


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _dotted_name(path: Path) -> str:
    return module_name(path.absolute())[1]


class ProjectIndex:
    """The modules of the linted tree, read when a name from one of them is asked for."""

    def __init__(self, extra_models: tuple[ModelPattern, ...] = (),
                 extra_bases: dict[str, str] | None = None,
                 tree: Tree | None = None, summaries: bool = True) -> None:
        self.tree = tree or Tree()
        self._use_summaries = summaries  # False: parse every module asked about (a check)
        self._modules: dict[Path, Evaluator | None] = {}
        self._resolving: set[str] = set()  # names being resolved: re-export cycles end here
        self._extra_models = extra_models
        self._extra_bases = extra_bases or {}
        self.summaries = Summaries(self.tree, _read, _dotted_name, extra_models, extra_bases)
        self._deferred: dict[tuple[Path, str], Klass | Func] = {}
        self.parsed: list[Path] = []  # the modules parsed with libcst, in order

    def evaluator(self, module: cst.Module, name: str, path: Path | None = None) -> Evaluator:
        """An evaluator for a module being linted (at ``path`` when known), sharing this index."""
        return Evaluator(collect(module, name), self, self._extra_models, self._extra_bases,
                         self.tree.roots(path))

    def resolve(self, qualname: str, importer: Evaluator) -> Value | None:
        """The class or function ``qualname`` names in the linted tree, if it is one."""
        if not self._use_summaries:
            return self._resolve_parsed(qualname, importer)
        try:
            found = self.summaries.resolve(qualname, importer.record.name, importer.roots)
        except RecursionError:  # re-exports too deep to follow here
            found = NEEDS_PARSE
        if isinstance(found, Definition):
            return self._summarised(found)
        if found is None:
            return None
        return self._resolve_parsed(qualname, importer)  # the summaries cannot tell

    def _summarised(self, found: Definition) -> Klass | Func:
        key = (found.summary.path, found.name)
        if key not in self._deferred:
            self._deferred[key] = (_DeferredKlass(self, found) if found.is_class
                                   else _DeferredFunc(self, found))
        return self._deferred[key]

    def _resolve_parsed(self, qualname: str, importer: Evaluator) -> Value | None:
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
                return self._resolve_parsed(value.name, evaluator)
            return value if isinstance(value, Klass | Func) else None
        return None

    def materialise(self, found: Definition) -> Klass | Func:
        """The parsed class or function a summary's definition stands for."""
        path = found.summary.path
        evaluator = self._load(path)
        if evaluator is not None:
            value = evaluator.name(found.name, evaluator.record.scope)
            if isinstance(value, Klass if found.is_class else Func):
                return value
        # libcst could not parse what Python could: an empty definition tells nothing
        stub = f"class {found.name}:\n    pass\n" if found.is_class \
            else f"def {found.name}():\n    pass\n"
        empty = self.evaluator(cst.parse_module(stub), _dotted_name(path), path)
        value = empty.name(found.name, empty.record.scope)
        assert isinstance(value, Klass | Func)
        return value

    def _load(self, path: Path) -> Evaluator | None:
        if path not in self._modules:
            self._modules[path] = None  # an import cycle ends here
            self._modules[path] = self._parse(path)
        return self._modules[path]

    def _parse(self, path: Path) -> Evaluator | None:
        self.parsed.append(path)
        try:
            tree = parse_module(decode(path.read_bytes()))
        except (OSError, SourceError, cst.ParserSyntaxError, RecursionError):
            return None
        return self.evaluator(tree, _dotted_name(path), path)


class _Deferred(Summarised):
    """The parsed definition is loaded on the first read of what only it has (its node, scope,
    evaluator)."""

    _FIELDS: tuple[str, ...] = ()
    _index: ProjectIndex
    _found: Definition

    def __init__(self, index: ProjectIndex, found: Definition) -> None:
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_found", found)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        real = self._index.materialise(self._found)
        for field in self._FIELDS:
            object.__setattr__(self, field, getattr(real, field))
        return getattr(real, attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._found.summary.name}.{self._found.name})"

    def decorated_by(self, names: frozenset[str]) -> bool | None:
        return self._index.summaries.decorated_by(self._found, names)

    @property
    def may_set_start_method(self) -> bool:
        return self._found.summary.sets_start_method

    def may_start(self) -> bool:
        return self._index.summaries.may_start(self._found)


class _DeferredFunc(_Deferred, Func):
    _FIELDS = ("node", "scope", "guarded", "evaluator")

    def known_result(self) -> Value | None:
        summaries = self._index.summaries
        if summaries.is_generator(self._found):
            return Resource("generator")
        return None if summaries.may_return_model(self._found) else UNKNOWN

    def known_bases(self) -> tuple[str, ...] | None:
        return ()


class _DeferredKlass(_Deferred, Klass):
    _FIELDS = ("node", "scope", "evaluator")

    def known_result(self) -> Value | None:
        """As ``Evaluator.call_result`` for a class, from the bases its summary gives."""
        bases = self.known_bases()
        if bases is None:
            return None
        name = self._found.name
        model_bases = self._index.summaries.model_bases
        for base in bases:
            if base in model_bases:
                return Model(f"{name}, a {model_bases[base]} subclass",
                             framework=knowledge.library_of(base), klass=self)
        for base in bases:
            if knowledge.PROCESS_APIS.get(base) is ApiKind.PROCESS:
                return ProcessObject(ApiKind.PROCESS, f"{name} ({base} subclass)", None)
        return Instance(self)

    def known_bases(self) -> tuple[str, ...] | None:
        return self._index.summaries.bases(self._found)
