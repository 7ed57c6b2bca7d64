"""Where the modules of the linted tree are: dotted names, roots and files. Only stats files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4096)
def _is_package(folder: Path) -> bool:
    return (folder / "__init__.py").is_file()


@lru_cache(maxsize=65536)
def module_name(path: Path) -> tuple[Path, str]:
    """The directory a module is imported from and its dotted name there.

    ``pkg/__init__.py`` is named ``pkg.__init__`` so that relative imports in it resolve
    against ``pkg``.
    """
    parts = [path.stem]
    parent = path.parent
    while parent != parent.parent and _is_package(parent):
        parts.insert(0, parent.name)
        parent = parent.parent
    return parent, ".".join(parts)


def forget() -> None:
    """Forget which files and packages exist: a long-lived process (the language server, a
    second run in one interpreter) looks again."""
    _is_package.cache_clear()
    module_name.cache_clear()
    _module_file.cache_clear()
    _import_root.cache_clear()


def absolute(module: str, level: int, current: str) -> str:
    """Resolve ``from ..pkg import x`` (``level`` dots) against the importer's dotted name."""
    if level == 0:
        return module
    base = current.split(".")[:-level] if current else []
    return ".".join([*base, module] if module else base)


@lru_cache(maxsize=65536)
def _module_file(root: str, module: str, boundary: tuple[str, ...]) -> Path | None:
    base = os.path.join(root, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if any(candidate.startswith(folder) for folder in boundary) and os.path.isfile(candidate):
            return Path(candidate)
    return None


class Tree:
    """The modules that count as the linted tree, and how imports find them.

    An import is looked up from the importing module's own root, then from ``extra_roots``
    (the configured project's root and its ``src``), and counts only when the file lies inside
    ``boundary``: the folders being linted and the project root. Installed packages next to a
    linted folder (site-packages) stay outside, as do the known libraries.
    """

    def __init__(self, extra_roots: Sequence[Path] = (), boundary: Sequence[Path] = ()) -> None:
        self.extra_roots = tuple(extra_roots)
        self.boundary = tuple(dict.fromkeys(
            os.path.join(os.path.abspath(folder), "") for folder in (*boundary, *extra_roots)))

    def include(self, path: Path) -> None:
        """Make ``path`` part of the tree: a folder as it is, a file by its package root
        (unless that is an installed-packages folder)."""
        if path.is_dir():
            folder = path
        else:
            folder = _import_root(os.path.dirname(os.path.abspath(path)))
            if _is_installed(folder):
                return
        entry = os.path.join(os.path.abspath(folder), "")
        if entry not in self.boundary:
            self.boundary = (*self.boundary, entry)

    def roots(self, path: Path | None) -> tuple[str, ...]:
        """Where imports in the module at ``path`` are looked up, first match wins."""
        found: list[str] = [str(module_name(path.absolute())[0])] if path is not None else []
        found.extend(str(root) for root in self.extra_roots if str(root) not in found)
        return tuple(found)

    def find(self, module: str, roots: Sequence[str]) -> Path | None:
        """The file of the tree that ``import module`` loads, if the tree has it."""
        if not module or module.startswith(".") or ".." in module or not self.boundary:
            return None
        for root in roots:
            found = _module_file(root, module, self.boundary)
            if found is not None:
                return found
        return None


@lru_cache(maxsize=4096)
def _import_root(folder: str) -> Path:
    """The folder a module in ``folder`` is imported from (``module_name``'s first part)."""
    parent = Path(folder)
    while parent != parent.parent and _is_package(parent):
        parent = parent.parent
    return parent


def _is_installed(folder: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in folder.absolute().parts)
