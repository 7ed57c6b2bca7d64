"""Finding the files to lint and turning their bytes into text, with one-line reasons on failure."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tokenize
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mplint.notebook import Notebook

# Larger files that can start processes are not analysed: parsing one takes 15 s or more (a
# 1.3 MiB torch module: 16 s), and files this size are generated, not code anyone reviews.
MAX_BYTES = 1024 * 1024
TOO_LARGE = "file too large to analyse"
# Larger files are not even read: the prefilter's byte scan of a file stops here.
MAX_READ = 64 * 1024 * 1024
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


class SourceError(Exception):
    """A file that cannot be linted; ``str()`` is the reason, ``line`` where it was found."""

    def __init__(self, reason: str, line: int = 1, column: int = 1) -> None:
        super().__init__(reason)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Candidate:
    """A path to lint, or the reason it cannot be listed."""

    path: Path
    error: str | None = None


@dataclass(frozen=True)
class Source:
    """One module's decoded text, the path findings show, and where the file is (None for
    stdin or a string), which places it among its package's modules. For a notebook, ``text``
    is the module its code cells make and ``notebook`` maps it back to the cells."""

    text: str
    shown: str
    path: Path | None = None
    encoding: str = "utf-8"  # how to write it back (``utf-8-sig`` keeps a BOM)
    notebook: Notebook | None = field(default=None, compare=False)

    @classmethod
    def from_bytes(cls, data: bytes, shown: str, path: Path | None = None) -> Source:
        """Decode ``data`` as the interpreter would (a ``.ipynb`` file: as a notebook);
        raises SourceError with the reason."""
        if is_notebook(shown if path is None else path):
            notebook = parse_notebook(data)
            return cls(notebook.text, shown, path, "utf-8", notebook)
        text, encoding = decode_with_encoding(data)
        return cls(text, shown, path, encoding)

    def stored(self, text: str) -> str:
        """What the file holds once its module text is ``text``: the text itself, or for a
        notebook its JSON with the changed cells rewritten."""
        if self.notebook is None:
            return text
        written = self.notebook.write_back(text)
        if written is None:
            raise SourceError("the fixed code cannot be split back into the notebook's cells")
        return written

    @property
    def original(self) -> str:
        """The file's text as read (a notebook's JSON)."""
        return self.text if self.notebook is None else self.notebook.raw

    @classmethod
    def load(cls, path: Path, shown: str | None = None) -> Source:
        """Read and decode the file at ``path``; raises SourceError with the reason."""
        return cls.from_bytes(read(path), str(path) if shown is None else shown, path)


NOTEBOOK_SUFFIX = ".ipynb"


def is_notebook(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a Jupyter notebook, which is linted as its code cells."""
    return os.fspath(path).endswith(NOTEBOOK_SUFFIX)


_LINE_END = re.compile(r"\r\n|\r|\n")


def physical_lines(text: str, keepends: bool = False) -> list[str]:
    """``text`` split into lines the way Python numbers them: at ``\n``, ``\r\n`` and
    ``\r`` only (``str.splitlines`` also splits at form feeds, U+2028 and other characters
    that are ordinary inside a Python line)."""
    lines: list[str] = []
    start = 0
    for end in _LINE_END.finditer(text):
        lines.append(text[start:end.end() if keepends else end.start()])
        start = end.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def unified_diff(before: str, after: str, shown: str) -> list[str]:
    """A unified diff ``patch`` and ``git apply`` accept: lines as Python counts them, and a
    ``\\ No newline at end of file`` marker after a last line that has none."""
    import difflib

    out: list[str] = []
    for line in difflib.unified_diff(physical_lines(before, True), physical_lines(after, True),
                                     f"a/{shown}", f"b/{shown}"):
        if line.endswith(("\n", "\r")):
            out.append(line)
        else:
            out.append(f"{line}\n\\ No newline at end of file\n")
    return out


def parse_notebook(data: bytes) -> Notebook:
    """The notebook in ``data``; raises SourceError when it is not an nbformat 4 notebook."""
    from mplint.notebook import Notebook, NotebookError

    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        raise SourceError(f"not a valid notebook: cannot decode byte 0x{data[problem.start]:02x} "
                          "as UTF-8") from None
    try:
        notebook = Notebook.parse(raw)
    except NotebookError as problem:
        raise SourceError(str(problem), problem.line, problem.column) from None
    if len(notebook.text) > MAX_BYTES:
        raise SourceError(f"{TOO_LARGE} (its code cells: {len(notebook.text) / 2**20:.1f} MiB, "
                          f"limit {MAX_BYTES // 2**20} MiB)")
    return notebook


def decode_file(path: Path, data: bytes) -> str:
    """The module text of a file's bytes: decoded source, or a notebook's code cells."""
    return parse_notebook(data).text if is_notebook(path) else decode(data)


def decode(data: bytes) -> str:
    """Decode Python source the way the interpreter does (BOM, coding cookie, else UTF-8)."""
    return decode_with_encoding(data)[0]


def decode_with_encoding(data: bytes) -> tuple[str, str]:
    """The decoded source and the encoding to write it back with (``utf-8-sig`` keeps a BOM)."""
    if len(data) > MAX_BYTES:
        raise SourceError(f"{TOO_LARGE} ({len(data) / 2**20:.1f} MiB, limit "
                          f"{MAX_BYTES // 2**20} MiB; exclude generated files in [tool.mplint])")
    if b"\0" in data:
        raise SourceError("binary file (contains NUL bytes), not Python source")
    try:
        encoding, cookie_lines = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        if "invalid or missing encoding declaration" not in error.msg:
            raise SourceError(f"bad coding cookie: {error.msg}") from None
        encoding, cookie_lines = "utf-8", []  # undecodable first lines: say which byte
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        declared = any(b"coding" in cookie for cookie in cookie_lines)
        hint = "" if declared else " (no coding cookie, so UTF-8 was assumed)"
        raise SourceError(f"cannot decode byte 0x{data[error.start]:02x} as {encoding}{hint}",
                          line, column) from None


def read(path: Path) -> bytes:
    """Read a file, turning every OS failure into a SourceError with the reason."""
    try:
        if not path.is_file() and path.exists():
            raise SourceError("not a regular file")
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            data = stream.read(MAX_READ + 1) if size <= MAX_READ else b""
        if size > MAX_READ or len(data) > MAX_READ:
            raise SourceError(f"file too large ({max(size, len(data)) / 2**20:.1f} MiB; files "
                              f"over {MAX_READ // 2**20} MiB are not read)")
        return data
    except OSError as error:
        raise SourceError(f"cannot read: {error.strerror or error}") from None


def discover(paths: Sequence[Path], exclude: Sequence[str] = (), gitignore: bool = True,
             force_exclude: bool = False, notebooks: bool = True) -> Iterator[Candidate]:
    """Yield the Python files (and with ``notebooks``, the Jupyter notebooks) under
    ``paths``, sorted, skipping hidden, venv and excluded folders and, with ``gitignore``,
    what the ``.gitignore`` and ``.ignore`` files of the repository ignore (and
    ``.git/info/exclude``).

    Paths named explicitly are always linted, unless ``force_exclude`` and they match
    ``exclude`` (pre-commit names every changed file); a folder named explicitly that the
    ignore files above it ignore is walked with only the ignore files inside it.
    """
    for given in paths:
        if force_exclude and exclude and _excluded_with_parents(given, exclude):
            continue
        if given.is_dir():
            ignores = _Ignores.above(given) if gitignore else None
            if ignores is not None and ignores.ignored(given, is_dir=True):
                ignores = _Ignores()  # named although ignored: only its own ignore files count
            yield from _walk(given, exclude, ignores, _SUFFIXES if notebooks else (".py",))
        elif given.exists() or given.is_symlink():
            yield Candidate(given)
        else:
            yield Candidate(given, "no such file or directory")


_IGNORE_FILES = (".gitignore", ".ignore")
_SUFFIXES = (".py", NOTEBOOK_SUFFIX)


class _Ignores:
    """The ignore files that apply in one folder, from the repository's root down; a deeper
    file's rule wins over a shallower one's, as in git."""

    def __init__(self, specs: tuple[tuple[Path, Any], ...] = ()) -> None:
        self.specs = specs

    @classmethod
    def above(cls, folder: Path) -> _Ignores:
        """The ignore files of ``folder``'s repository in the folders above ``folder``."""
        start = Path(os.path.abspath(folder))
        chain = [start, *start.parents]
        root = next((f for f in chain if (f / ".git").exists()), None)
        if root is None:
            return cls()
        ignores = cls()._read(root, [root / ".git" / "info" / "exclude"])
        for parent in reversed(chain[1:chain.index(root) + 1]):
            ignores = ignores.inside(parent)
        return ignores

    def inside(self, folder: Path, names: Container[str] | None = None) -> _Ignores:
        """These rules and those of ``folder``'s own ignore files (``names``: the folder's
        entries, when known, so that absent files are not tried)."""
        return self._read(folder, [folder / name for name in _IGNORE_FILES
                                   if names is None or name in names])

    def _read(self, base: Path, files: list[Path]) -> _Ignores:
        lines: list[str] = []
        for file in files:
            try:
                lines += file.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:  # none there (the usual case), or unreadable: no rules
                continue
        if not any(line.strip() and not line.startswith("#") for line in lines):
            return self
        import pathspec  # only trees with ignore files pay for it

        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        return _Ignores((*self.specs, (Path(os.path.abspath(base)), spec)))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in reversed(self.specs):
            try:
                relative = Path(os.path.abspath(path)).relative_to(base).as_posix()
            except ValueError:
                continue
            verdict = spec.check_file(relative + "/" if is_dir else relative).include
            if verdict is not None:
                return bool(verdict)
        return False


def _walk(top: Path, exclude: Sequence[str], ignores: _Ignores | None,
          suffixes: tuple[str, ...]) -> Iterator[Candidate]:
    try:
        with os.scandir(top) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield Candidate(top, f"cannot list directory: {error.strerror or error}")
        return
    if ignores is not None:
        ignores = ignores.inside(top, {entry.name for entry in entries
                                       if entry.name in _IGNORE_FILES})
    for entry in entries:
        name = entry.name
        if name.startswith(".") or (exclude and excluded(Path(entry.path), exclude)):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if ignores is not None and ignores.specs and ignores.ignored(Path(entry.path), is_dir):
            continue
        if is_dir:
            if name not in SKIPPED_DIRS and not os.path.exists(
                    os.path.join(entry.path, "pyvenv.cfg")):
                yield from _walk(top / name, exclude, ignores, suffixes)
        elif name.endswith(suffixes):
            yield Candidate(top / name)


def _excluded_with_parents(path: Path, patterns: Sequence[str]) -> bool:
    """Whether ``path`` or a folder it is in matches ``exclude``, the folders counted from the
    working directory when the path is inside it (a walk would not have entered them)."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    shown = Path(relative if not relative.startswith("..") else absolute)
    return any(excluded(each, patterns) for each in (shown, *shown.parents)
               if each.name not in ("", ".", ".."))


def excluded(path: Path, patterns: Sequence[str]) -> bool:
    """Whether ``path`` matches one of the ``exclude`` patterns (by name, or by path)."""
    text = path.as_posix()
    return any(fnmatchcase(path.name, p) or fnmatchcase(text, p) or fnmatchcase(text, f"*/{p}")
               for p in patterns)


def write_atomically(path: Path, text: str, encoding: str, read_as: str | None = None) -> None:
    """Replace ``path``'s content in one step, keeping its permissions; through a symbolic
    link, the file it points to is replaced and the link stays. With ``read_as`` (the text the
    fix started from), a file that changed since it was read is left alone. Raises
    SourceError with the reason on failure."""
    try:
        target = path.resolve(strict=True) if path.is_symlink() else path
        mode = target.stat().st_mode & 0o7777
        if not os.access(target, os.W_OK) or not os.access(target.parent, os.W_OK):
            raise PermissionError(13, "Permission denied")
        if read_as is not None and _current(target, encoding) != read_as:
            raise SourceError("the file changed while it was being fixed; nothing was written")
        replace_file(target, text.encode(encoding), mode)
    except (OSError, RuntimeError, UnicodeEncodeError) as error:  # RuntimeError: a link loop
        reason = getattr(error, "strerror", None) or str(error)
        raise SourceError(f"cannot write the fixed file: {reason}") from None


def create_atomically(path: Path, text: str) -> None:
    """Write a new file in one step (UTF-8), with the permissions the umask gives a new file;
    one that exists is left alone. Raises SourceError with the reason on failure."""
    try:
        if path.exists() or path.is_symlink():
            raise SourceError(f"cannot write {path.name}: it exists already")
        umask = os.umask(0o022)
        os.umask(umask)
        replace_file(path, text.encode("utf-8"), 0o666 & ~umask)
    except OSError as error:
        raise SourceError(f"cannot write {path.name}: {error.strerror or error}") from None


def _current(path: Path, encoding: str) -> str:
    data = read(path)
    return data.decode(encoding, "replace") if is_notebook(path) else decode(data)


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder and rename it over ``path``:
    readers see the old content or the new, never a part. Raises OSError."""
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
