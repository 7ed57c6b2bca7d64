"""Loaded by every Python process of a verified run (this folder is put on PYTHONPATH).

It makes the requested start method the default without fixing it (a script that chooses its
own still can), lets faulthandler dump each process's stacks on SIGUSR1, and appends what the
process pickles, starts and loads to a per-process event file. Events are written as they
happen, so a worker that is terminated or killed still leaves its record.

Only the standard library is used here: this runs before the script and in every child.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from types import FrameType, ModuleType
from typing import IO, Any

_DIR = os.environ.get("MPLINT_VERIFY_DIR", "")

# Functions whose calls load a model, by the top-level package that defines them.
_LOADERS: dict[str, tuple[str, ...]] = {
    "torch": ("load", "jit.load", "hub.load"),
    "keras": ("models.load_model", "saving.load_model"),
    "tensorflow": ("saved_model.load",),
    "joblib": ("load",),
}
# Classes whose construction builds a model object, counted per concrete class (layers too).
_MODEL_CLASSES: dict[str, tuple[str, ...]] = {"torch": ("nn.Module",), "keras": ("Model",)}


def _record(kind: str, **fields: Any) -> None:
    fields.update(kind=kind, pid=os.getpid(), ppid=os.getppid())
    try:
        with open(os.path.join(_DIR, f"events-{os.getpid()}.jsonl"), "a") as out:
            out.write(json.dumps(fields) + "\n")
    except OSError:
        pass


def _set_default_start_method(method: str) -> None:
    import multiprocessing.context as context

    concrete = getattr(context, "_concrete_contexts", {})
    if method in concrete:
        context._default_context._default_context = concrete[method]  # type: ignore[attr-defined]


_stack_file: list[IO[str]] = []  # faulthandler writes to it on SIGUSR1: keep it open


def _register_stack_dumps() -> None:
    import faulthandler
    import signal

    _stack_file[:] = [open(os.path.join(_DIR, f"stacks-{os.getpid()}.txt"), "w")]  # noqa: SIM115
    faulthandler.register(signal.SIGUSR1, file=_stack_file[0], all_threads=True)


def _watch_pickling() -> None:
    from multiprocessing import process, reduction

    dumps = reduction.ForkingPickler.dumps.__func__  # type: ignore[attr-defined]

    def counted_dumps(cls: type, obj: object, protocol: int | None = None) -> Any:
        data = dumps(cls, obj, protocol)
        _record("pickle", bytes=len(data))
        return data

    reduction.ForkingPickler.dumps = classmethod(counted_dumps)  # type: ignore[method-assign,assignment]
    dump = reduction.dump

    def counted_dump(obj: object, file: Any, protocol: int | None = None) -> None:
        try:
            start = file.tell()
        except (AttributeError, OSError, ValueError):  # not seekable: nothing to measure
            start = None
        dump(obj, file, protocol)
        if start is not None:
            _record("pickle", bytes=file.tell() - start)

    reduction.dump = counted_dump
    start = process.BaseProcess.start

    def recorded_start(self: Any) -> None:
        import multiprocessing

        method = getattr(self, "_start_method", None) or multiprocessing.get_start_method()
        _record("start", method=method)
        start(self)

    process.BaseProcess.start = recorded_start  # type: ignore[method-assign]


def _resolve(module: ModuleType, dotted: str) -> tuple[Any, str] | None:
    """(owner, attribute name) of ``module.a.b.name``, if it exists."""
    *parents, name = dotted.split(".")
    owner: Any = module
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, name) if hasattr(owner, name) else None


def _inside_another_build(obj: Any, base: type) -> bool:
    """Whether ``obj`` is being built by a method of another model object: the layers a model
    makes in its ``__init__``, the graph Keras builds for a Sequential model, are part of it."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        try:
            other = frame.f_locals.get("self")
            if other is not None and other is not obj and isinstance(other, base):
                return True
        except Exception:  # an odd ``self`` must not break the script being verified
            pass
        frame = frame.f_back
    return False


def _count_calls(owner: Any, name: str, kind: str, label: Callable[..., str]) -> None:
    """Wrap ``owner.name`` so that each call records one event. For builds (``owner`` is a
    model base class, ``name`` its ``__init__``) only models built from outside any other
    model count."""
    original = getattr(owner, name)
    if getattr(original, "_mplint_counted", False):
        return

    def counted(*args: Any, **kwargs: Any) -> Any:
        if kind != "build" or not _inside_another_build(args[0], owner):
            _record(kind, name=label(*args))
        return original(*args, **kwargs)

    counted._mplint_counted = True  # type: ignore[attr-defined]
    counted.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, counted)


def _instrument(module: ModuleType) -> None:
    for dotted in _LOADERS.get(module.__name__, ()):
        found = _resolve(module, dotted)
        if found:
            text = f"{module.__name__}.{dotted}"
            _count_calls(*found, "load", lambda *args, text=text: text)
    for dotted in _MODEL_CLASSES.get(module.__name__, ()):
        found = _resolve(module, dotted)
        if found:
            cls = getattr(*found)
            _count_calls(cls, "__init__", "build",
                         lambda self, *args: f"{type(self).__module__}.{type(self).__qualname__}")


class _AfterImport(importlib.abc.MetaPathFinder):
    """Instruments a framework right after its top-level package has been imported."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _LOADERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Instrumenting(spec.loader)
                return spec
        return None


class _Instrumenting(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _instrument(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def _chain_next_sitecustomize() -> None:
    """Run the sitecustomize this one shadows, if the environment has one."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", paths)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _install() -> None:
    method = os.environ.get("MPLINT_VERIFY_METHOD")
    if method:
        _set_default_start_method(method)
    _register_stack_dumps()
    os.register_at_fork(after_in_child=_register_stack_dumps)
    _watch_pickling()
    sys.meta_path.insert(0, _AfterImport())
    _record("process", argv=sys.argv[:3])


if _DIR:
    try:
        _install()
    except Exception as error:  # the run must go on, uninstrumented if need be
        sys.stderr.write(f"mplint verify: instrumentation failed: {error!r}\n")
_chain_next_sitecustomize()
