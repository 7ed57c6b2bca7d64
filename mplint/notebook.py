"""Jupyter notebooks as a source kind: the code cells in order as one module, with a line map.

The module is what the rules read: each code cell's lines, IPython syntax (``%magic``,
``!shell``, ``?help``, ``%%cell`` magics) masked line for line so that it parses and no line
moves, and before each cell a comment line that marks where it begins. The marks carry the cell
through fixes: a fixed module is split at them again, unmasked, and only the sources of the
cells whose text changed are written back, spliced into the file's JSON so that everything
else (outputs, metadata, ids, attachments, indentation, key order) stays byte for byte.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass

from mplint.sources import physical_lines

_MARK = "# mplint: cell {}"
_MARK_LINE = re.compile(r"# mplint: cell (\d+)")
# A line IPython reads as its own syntax, at the start of a logical line: a magic or a shell
# escape, optionally assigned (``files = !ls``), or a help request (``?obj``, ``obj??``).
_MAGIC = re.compile(r"(?P<indent>[ \t]*)(?P<target>[\w.]+[ \t]*=[ \t]*)?(?P<magic>[%!].*)")
_HELP = re.compile(r"(?P<indent>[ \t]*)(?P<magic>\?.*|[\w.]+\?\??)")
_CELL_MAGIC = re.compile(r"\s*%%(\w*)")
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "memit", "debug"})
# Line magics IPython runs without the ``%`` (automagic), when the line is not Python.
_AUTOMAGIC = re.compile(r"(?P<indent>[ \t]*)(?P<magic>(?:pip|conda|cd|load_ext|matplotlib|timeit|"
                        r"time|run|env|pwd|ls|who|whos|reset|autoreload|config|mkdir|cat|cp|"
                        r"mv|rm|rmdir|pinfo|store|sx|system)[ \t]+"
                        r"(?![=(\[.,:;+\-*/%<>!&|^@])\S.*)")  # not ``run = ...``


class NotebookError(Exception):
    """A file that is not an nbformat 4 notebook; ``line`` and ``column`` point into it."""

    def __init__(self, reason: str, line: int = 1, column: int = 1) -> None:
        super().__init__(reason)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class _Cell:
    """A code cell: its number among all the notebook's cells (from 1), its source, where the
    source's JSON value lies in the file, and whether IPython syntax hides all of it."""

    number: int
    source: str
    span: tuple[int, int]
    as_list: bool
    opaque: bool


@dataclass(frozen=True, eq=False)
class Notebook:
    """One notebook: its JSON text, its code cells, the module the rules read, and for each
    module line the cell and line it shows (line 0: the mark before a cell)."""

    raw: str
    cells: tuple[_Cell, ...]
    text: str
    origins: tuple[tuple[int, int], ...]
    masks: tuple[tuple[str, str], ...]  # (masked line, IPython line), both without indentation

    @classmethod
    def parse(cls, raw: str) -> Notebook:
        """The notebook in ``raw``; raises NotebookError when it is not JSON or not nbformat 4.
        A notebook whose kernel is not Python gives an empty module."""
        if not raw.strip():
            raise NotebookError("not a valid notebook: the file is empty")
        try:
            data = json.loads(raw, strict=False)  # control characters in strings, as Jupyter
        except json.JSONDecodeError as problem:
            raise NotebookError(f"not a valid notebook: invalid JSON ({problem.msg})",
                                problem.lineno, problem.colno) from None
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise NotebookError("not a valid notebook: no list of cells")
        if data.get("nbformat") != 4:
            raise NotebookError(f"notebook format {data.get('nbformat')!r} is not supported "
                                "(nbformat 4 only; `jupyter nbconvert --to notebook` converts it)")
        spans = _source_spans(raw)
        cells: list[_Cell] = []
        if _is_python(data):
            for index, cell in enumerate(data["cells"]):
                if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                    continue
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else str(source)
                if index not in spans:
                    raise NotebookError(f"not a valid notebook: cell {index + 1} has no source")
                cells.append(_Cell(index + 1, text, spans[index], isinstance(source, list),
                                   _opaque(text)))
        return cls._build(raw, tuple(cells))

    @classmethod
    def of_cells(cls, cells: Sequence[tuple[int, str]]) -> Notebook:
        """The notebook an editor holds: each Python code cell's number (among all its cells,
        from 1) and source. It has no JSON to write back: a fix's new cell sources come from
        :meth:`cell_sources`."""
        return cls._build("", tuple(_Cell(number, source, (0, 0), False, _opaque(source))
                                    for number, source in cells))

    @classmethod
    def _build(cls, raw: str, cells: tuple[_Cell, ...]) -> Notebook:
        lines: list[str] = []
        origins: list[tuple[int, int]] = []
        masks: dict[str, str] = {}
        for cell in cells:
            lines.append(_MARK.format(cell.number))
            origins.append((cell.number, 0))
            masked = _mask(cell, masks)
            lines.extend(masked)
            origins.extend((cell.number, k) for k in range(1, len(masked) + 1))
        text = "".join(f"{line}\n" for line in lines)
        return cls(raw, cells, text, tuple(origins), tuple(masks.items()))

    def locate(self, line: int) -> tuple[int, int]:
        """The cell and the line in it of module line ``line`` (1-based)."""
        if 1 <= line <= len(self.origins):
            cell, inside = self.origins[line - 1]
            return cell, max(inside, 1)
        last = self.origins[-1] if self.origins else (1, 1)
        return last[0], max(last[1], 1)

    def module_line(self, cell: int, line: int) -> int:
        """The module line (1-based) that shows line ``line`` of cell ``cell``."""
        for index, origin in enumerate(self.origins):
            if origin == (cell, line):
                return index + 1
        return 1

    def cell_sources(self, module: str) -> dict[int, str] | str:
        """The source of each code cell, by number, that the module text ``module`` gives;
        or why it cannot be split into the notebook's cells."""
        found: dict[int, list[str]] = {}
        current: list[str] | None = None
        for line in physical_lines(module):
            mark = _MARK_LINE.fullmatch(line)
            if mark is not None:
                current = found.setdefault(int(mark.group(1)), [])
                continue
            if current is None:
                return "the fix writes code before the first cell"
            current.append(line)
        if list(found) != [cell.number for cell in self.cells]:
            return "the fix moves code across cells"
        unmask = dict(self.masks)
        sources: dict[int, str] = {}
        for cell in self.cells:
            new = found[cell.number]
            if new == _mask(cell, {}):
                sources[cell.number] = cell.source
                continue
            if cell.opaque:
                return f"the fix changes cell {cell.number}, which a cell magic runs"
            restored = [_unmask(line, unmask) for line in new]
            text = "\n".join(restored)
            sources[cell.number] = text + "\n" if cell.source.endswith("\n") else text
        return sources

    def write_back(self, module: str) -> str | None:
        """The notebook's JSON with the cells that ``module`` changes rewritten and every
        other byte kept; None when the module cannot be split into the notebook's cells."""
        sources = self.cell_sources(module)
        if isinstance(sources, str):
            return None
        out: list[str] = []
        at = 0
        for cell in self.cells:
            new = sources[cell.number]
            if new == cell.source:
                continue
            start, end = cell.span
            out += [self.raw[at:start], _encode(new, cell, self.raw[start:end])]
            at = end
        out.append(self.raw[at:])
        return "".join(out)

    def rewritten(self, module: str) -> Notebook | None:
        """The notebook whose cells the module text ``module`` gives (with the JSON
        rewritten, when it has one); None when it cannot be split into the cells."""
        if self.raw:
            raw = self.write_back(module)
            return None if raw is None else Notebook.parse(raw)
        sources = self.cell_sources(module)
        if isinstance(sources, str):
            return None
        return Notebook.of_cells([(cell.number, sources[cell.number]) for cell in self.cells])

    def changed_cells(self, module: str) -> list[tuple[int, str, str]]:
        """(cell number, source before, source after) of each cell ``module`` changes."""
        sources = self.cell_sources(module)
        if isinstance(sources, str):
            return []
        return [(cell.number, cell.source, sources[cell.number]) for cell in self.cells
                if sources[cell.number] != cell.source]


def _opaque(source: str) -> bool:
    """Whether a cell magic runs the cell as something other than Python (``%%bash``,
    ``%%writefile``); ``%%time`` and its like run the rest of the cell as Python."""
    match = _CELL_MAGIC.match(source)
    return match is not None and match.group(1) not in _PYTHON_CELL_MAGICS


def _is_python(data: dict[str, object]) -> bool:
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        return True
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field), str):
            return bool(section[field].lower() == "python")
    return True


def _mask(cell: _Cell, masks: dict[str, str]) -> list[str]:
    """The cell's lines with IPython syntax replaced by Python of the same line count; the
    replacements are added to ``masks``."""
    lines = physical_lines(cell.source)
    if cell.opaque:
        return ["#" + line for line in lines]
    masked = list(lines)
    continued = False  # the line before is a magic that ends with a backslash
    for index, line in enumerate(lines):
        if continued:  # part of the magic: a comment keeps every line in place
            masked[index] = "#" + line
            masks[masked[index]] = line
            continued = line.endswith("\\")
            continue
        match = _magic(line)
        if match is None or not _at_logical_start(masked[:index]):
            continue  # Python (``% 2`` inside brackets, a line of a string), not IPython's
        target = match.groupdict().get("target") or ""
        replacement = f"{target + 'None' if target else 'pass'}  #{match.group('magic')}"
        masked[index] = match.group("indent") + replacement
        masks[replacement] = line.lstrip(" \t")
        continued = line.endswith("\\")
    return masked


def _magic(line: str) -> re.Match[str] | None:
    """The IPython syntax ``line`` is, when it is not Python."""
    found = _MAGIC.fullmatch(line) or _HELP.fullmatch(line)
    if found is not None:
        return found
    found = _AUTOMAGIC.fullmatch(line)
    if found is None:
        return None
    try:
        compile(line.strip(), "<cell>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        return found
    return None  # ``time = 3`` is Python


def _at_logical_start(before: list[str]) -> bool:
    """Whether a line after ``before`` begins a logical line (no bracket, string or
    backslash continues into it)."""
    if not before:
        return True
    try:
        for _ in tokenize.generate_tokens(io.StringIO("\n".join(before) + "\n").readline):
            pass
    except tokenize.TokenError:
        return False  # end of input inside a statement or a string
    except SyntaxError:  # bad indentation: not a continuation
        return True
    return True


def _unmask(line: str, masks: dict[str, str]) -> str:
    body = line.lstrip(" \t")
    original = masks.get(body)
    if original is None:
        return line
    if body.startswith("#"):  # a continuation line of a magic: kept whole
        return original
    return line[:len(line) - len(body)] + original


def _encode(source: str, cell: _Cell, old: str) -> str:
    """``source`` as a JSON value in the style of the value ``old`` it replaces."""
    ascii_only = old.isascii() and "\\u" in old
    if not cell.as_list:
        return json.dumps(source, ensure_ascii=ascii_only)
    items = [json.dumps(line, ensure_ascii=ascii_only)
             for line in source.splitlines(keepends=True)]
    if not items:
        return "[]"
    layout = re.match(r"\[(\s*)", old)
    first = layout.group(1) if layout else ""
    if "\n" not in first:
        return "[" + (", " if ", " in old else ",").join(items) + "]"
    closing = old[old.rfind("\n", 0, len(old) - 1):len(old) - 1] if old.endswith("]") else "\n"
    return "[" + first + ("," + first).join(items) + closing + "]"


def _source_spans(raw: str) -> dict[int, tuple[int, int]]:
    """Where each cell's ``source`` value lies in the JSON text, by the cell's index."""
    decoder = json.JSONDecoder(strict=False)
    spans: dict[int, tuple[int, int]] = {}
    for key, start, _ in _members(raw, _skip(raw, 0), decoder):
        if key != "cells":
            continue
        for index, (item, _) in enumerate(_elements(raw, start, decoder)):
            for name, value_start, value_end in _members(raw, item, decoder):
                if name == "source":
                    spans[index] = (value_start, value_end)
    return spans


def _skip(raw: str, at: int) -> int:
    while at < len(raw) and raw[at] in " \t\r\n":
        at += 1
    return at


def _members(raw: str, at: int, decoder: json.JSONDecoder) -> list[tuple[str, int, int]]:
    """(key, start, end) of each member of the JSON object that begins at ``at``."""
    found: list[tuple[str, int, int]] = []
    if raw[at:at + 1] != "{":
        return found
    at = _skip(raw, at + 1)
    while at < len(raw) and raw[at] != "}":
        key, at = decoder.raw_decode(raw, at)
        at = _skip(raw, _skip(raw, at) + 1)  # past the colon
        _, end = decoder.raw_decode(raw, at)
        found.append((str(key), at, end))
        at = _skip(raw, end)
        if raw[at:at + 1] == ",":
            at = _skip(raw, at + 1)
    return found


def _elements(raw: str, at: int, decoder: json.JSONDecoder) -> list[tuple[int, int]]:
    """(start, end) of each element of the JSON array that begins at ``at``."""
    found: list[tuple[int, int]] = []
    if raw[at:at + 1] != "[":
        return found
    at = _skip(raw, at + 1)
    while at < len(raw) and raw[at] != "]":
        _, end = decoder.raw_decode(raw, at)
        found.append((at, end))
        at = _skip(raw, end)
        if raw[at:at + 1] == ",":
            at = _skip(raw, at + 1)
    return found
