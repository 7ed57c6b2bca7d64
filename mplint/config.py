"""Settings from ``[tool.mplint]`` in pyproject.toml, code selection, and ``# noqa`` comments."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path, PurePath
from typing import Any

from mplint import knowledge
from mplint.knowledge import ModelPattern
from mplint.sources import physical_lines


class ConfigError(Exception):
    """A setting that cannot be used; the message names the file and the key."""


# Every code mplint reports (a test keeps this equal to the rules' own codes); kept here so
# that checking a ``--select`` does not import the rules.
KNOWN_CODES = ("MPL000", "MPL101", "MPL102", "MPL103", "MPL104", "MPL105", "MPL201", "MPL202",
               "MPL203", "MPL204", "MPL205", "MPL206", "MPL207", "MPL301", "MPL302", "MPL303")
ALL = "ALL"  # selects every rule, as in ruff


def check_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """``codes`` upper-cased, ``ALL`` as the prefix of every code; a code or prefix that
    selects no rule raises ConfigError naming it."""
    checked: list[str] = []
    for raw in codes:
        code = raw.strip().upper()
        if code == ALL:
            code = "MPL"
        if not code or not any(known.startswith(code) for known in KNOWN_CODES):
            raise ConfigError(f"unknown rule code or prefix {raw.strip()!r} "
                              "(see `mplint rules`; ALL selects every rule)")
        checked.append(code)
    return tuple(checked)


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ("MPL",)
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    model_loaders: tuple[str, ...] = ()  # qualified names (``*`` allowed) whose calls build models
    model_base_classes: tuple[str, ...] = ()
    # What "the platform default start method" can mean: None = any Python version.
    target_python: tuple[int, int] | None = None
    target_platforms: tuple[str, ...] = knowledge.PLATFORMS
    root: Path | None = None  # the folder of the pyproject.toml it came from
    respect_gitignore: bool = True  # skip what .gitignore / .ignore files ignore when walking
    force_exclude: bool = False  # apply ``exclude`` to paths named on the command line too
    notebooks: bool = True  # lint the Jupyter notebooks found in folders

    def default_methods(self) -> frozenset[str]:
        """The start methods a start without an explicit choice may run under."""
        return knowledge.default_start_methods(self.target_python, self.target_platforms)

    def search_roots(self) -> tuple[Path, ...]:
        """Folders besides each module's own root where imports of the tree are looked up."""
        return (self.root, self.root / "src") if self.root is not None else ()

    def extra_models(self) -> tuple[ModelPattern, ...]:
        return tuple(ModelPattern(name, f"configured loader {name}") for name in self.model_loaders)

    def extra_bases(self) -> dict[str, str]:
        return {name: name for name in self.model_base_classes}

    def enabled(self, code: str, path: str | None = None) -> bool:
        """Whether ``code`` is reported, for ``path`` when given (per-file-ignores)."""
        ignored = list(self.ignore)
        if path is not None:
            for pattern, codes in self.per_file_ignores:
                if _path_matches(path, pattern, self.root):
                    ignored.extend(codes)
        return _specificity(code, self.select) > _specificity(code, ignored)

    def with_overrides(self, select: Sequence[str] | None, ignore: Sequence[str] | None,
                       extend_ignore: Sequence[str] = (), target_python: str | None = None,
                       target_platforms: str | None = None,
                       extend_select: Sequence[str] = ()) -> Config:
        """The settings with the command line's on top. As in ruff, a ``--select`` starts the
        selection afresh: the configuration's ``select`` and ``ignore`` no longer apply
        (``per-file-ignores`` still do), so ``--select MPL303`` reports MPL303 even where
        ``ignore = ["MPL303"]`` is configured."""
        base_select: tuple[str, ...] = self.select
        base_ignore: tuple[str, ...] = self.ignore
        if select:
            base_select, base_ignore = tuple(select), ()
        changed = replace(self, select=base_select + tuple(extend_select),
                          ignore=(tuple(ignore) if ignore is not None else base_ignore)
                          + tuple(extend_ignore))
        if target_python is not None:
            changed = replace(changed, target_python=parse_python(target_python, "--target-python"))
        if target_platforms is not None:
            changed = replace(changed, target_platforms=parse_platforms(
                target_platforms.split(","), "--target-platforms"))
        return changed


def parse_python(value: str, where: str) -> tuple[int, int] | None:
    """``"3.12"`` -> (3, 12); ``"any"`` -> None."""
    if value.strip().lower() == "any":
        return None
    match = re.fullmatch(r"\s*3\.(\d+)\s*", value)
    if match is None:
        raise ConfigError(f"{where}: expected a Python version such as 3.12, or any, "
                          f"not {value!r}")
    return 3, int(match.group(1))


def parse_platforms(values: Sequence[str], where: str) -> tuple[str, ...]:
    """Platform names (linux, macos, windows); ``any`` means all three."""
    names = [v.strip().lower() for v in values if v.strip()]
    if not names or "any" in names:
        return knowledge.PLATFORMS
    unknown = sorted(set(names) - set(knowledge.PLATFORMS))
    if unknown:
        raise ConfigError(f"{where}: unknown platform {', '.join(unknown)} "
                          f"(expected {', '.join(knowledge.PLATFORMS)} or any)")
    return tuple(sorted(set(names)))


def _specificity(code: str, prefixes: Iterable[str]) -> int:
    """Length of the longest prefix in ``prefixes`` that selects ``code`` (0 = none does)."""
    return max((len(p) for p in prefixes if code.startswith(p.upper())), default=0)


def _path_matches(path: str, pattern: str, root: Path | None) -> bool:
    pure = PurePath(path)
    candidates = [pure.as_posix(), pure.name]
    if root is not None:
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            candidates.append(Path(path).resolve().relative_to(root.resolve()).as_posix())
    return any(fnmatchcase(c, pattern) for c in candidates)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a ``[tool.mplint]`` table."""
    try:
        current = start.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: look from where it is named
        current = start.absolute()
    if current.is_file() or not current.is_dir():
        current = current.parent
    for folder in (current, *current.parents):
        candidate = folder / "pyproject.toml"
        try:
            if candidate.is_file() and b"[tool.mplint" in candidate.read_bytes():
                return candidate
        except OSError:  # a folder or file this user cannot read: look further up
            continue
    return None


def load(path: Path | None) -> Config:
    """Read ``[tool.mplint]`` from ``path``; no path gives the defaults."""
    if path is None:
        return Config()
    import tomllib  # only runs that have a configuration pay for the parser

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read configuration: {error}") from None
    table = data.get("tool", {}).get("mplint", {})
    return _from_table(table, path)


_KEYS = {"select", "extend-select", "ignore", "extend-ignore", "exclude", "per-file-ignores",
         "model-loaders", "model-base-classes", "target-python", "target-platforms",
         "respect-gitignore", "force-exclude", "notebooks"}


def _from_table(table: Mapping[str, Any], path: Path) -> Config:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key in [tool.mplint]: {', '.join(unknown)}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{path}: [tool.mplint] per-file-ignores must be a table")
    return Config(
        select=(_codes(table, "select", path) or ("MPL",)) + _codes(table, "extend-select", path),
        ignore=_codes(table, "ignore", path) + _codes(table, "extend-ignore", path),
        exclude=_strings(table, "exclude", path),
        per_file_ignores=tuple((pattern, _checked(
            _string_list(codes, f"per-file-ignores.{pattern}", path),
            f"{path}: [tool.mplint] per-file-ignores.{pattern}"))
            for pattern, codes in per_file.items()),
        model_loaders=_strings(table, "model-loaders", path),
        model_base_classes=_strings(table, "model-base-classes", path),
        target_python=_target_python(table, path),
        target_platforms=parse_platforms(_strings(table, "target-platforms", path) or ("any",),
                                         f"{path}: [tool.mplint] target-platforms"),
        root=path.parent,
        respect_gitignore=_bool(table, "respect-gitignore", True, path),
        force_exclude=_bool(table, "force-exclude", False, path),
        notebooks=_bool(table, "notebooks", True, path),
    )


def _codes(table: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...]:
    return _checked(_strings(table, key, path), f"{path}: [tool.mplint] {key}")


def _checked(codes: Iterable[str], where: str) -> tuple[str, ...]:
    try:
        return check_codes(codes)
    except ConfigError as problem:
        raise ConfigError(f"{where}: {problem}") from None


def _bool(table: Mapping[str, Any], key: str, default: bool, path: Path) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: [tool.mplint] {key} must be true or false")
    return value


def _target_python(table: Mapping[str, Any], path: Path) -> tuple[int, int] | None:
    value = table.get("target-python", "any")
    if not isinstance(value, str):
        raise ConfigError(f"{path}: [tool.mplint] target-python must be a string such as "
                          '"3.12" or "any"')
    return parse_python(value, f"{path}: [tool.mplint] target-python")


def _strings(table: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...]:
    return _string_list(table.get(key, []), key, path)


def _string_list(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: [tool.mplint] {key} must be a list of strings, not "
                          f"{_toml_type(value)} ({key} = {_toml_value(value)})")
    return tuple(value)


def _toml_type(value: Any) -> str:
    """What a TOML value is, in TOML's words."""
    if isinstance(value, list):
        return "an array holding " + ", ".join(sorted({_toml_type(v) for v in value
                                                       if not isinstance(v, str)}))
    names = ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
             (dict, "a table"))
    return next((name for kind, name in names if isinstance(value, kind)), "a date or time")


def _toml_value(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


# flake8's syntax: a bare noqa comment silences every code on its line, one with a colon
# and codes silences those codes.
_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.I)


# ruff's file-level exemption: a comment line of its own, ``# mplint: noqa`` for every code or
# ``# mplint: noqa: MPL101, MPL2`` for those codes (and prefixes).
_FILE_NOQA = re.compile(r"\s*#\s*mplint\s*:\s*noqa(?:\s*:\s*(?P<codes>[A-Z]+[0-9]*"
                        r"(?:[,\s]+[A-Z]+[0-9]*)*))?\s*", re.I)


@dataclass(frozen=True)
class Noqa:
    """The ``# noqa`` comments of one file: line -> codes (empty set = every code), and the
    codes a ``# mplint: noqa`` line exempts the whole file from (None: no such line)."""

    lines: Mapping[int, frozenset[str]] = field(default_factory=dict)
    whole_file: frozenset[str] | None = None

    @classmethod
    def scan(cls, source: str) -> Noqa:
        if "noqa" not in source.lower():
            return cls()
        found: dict[int, frozenset[str]] = {}
        whole_file: set[str] | None = None
        for number, line in enumerate(physical_lines(source), start=1):
            exempt = _FILE_NOQA.fullmatch(line.rstrip("\r\n"))
            if exempt is not None and _is_comment(source, number):
                codes = exempt.group("codes")
                whole_file = (whole_file or set()) | {c.upper() for c in _WORD.findall(codes or "")}
                if not codes:  # every code: nothing narrower can add to it
                    return cls(found, frozenset())
                continue
            match = _NOQA.search(line)
            if match:
                codes = match.group("codes")
                found[number] = frozenset(c.upper() for c in _CODE.findall(codes or ""))
        return cls(found, frozenset(whole_file) if whole_file is not None else None)

    def suppresses(self, line: int, code: str) -> bool:
        if self.whole_file is not None and (
                not self.whole_file or any(code.startswith(c) for c in self.whole_file)):
            return True
        codes = self.lines.get(line)
        if codes is None:
            return False
        return not codes or any(code.startswith(c) for c in codes)


_WORD = re.compile(r"[A-Z]+[0-9]*", re.I)


def _is_comment(source: str, line: int) -> bool:
    """Whether the first token on ``line`` is a comment, not text inside a string."""
    import io
    import tokenize

    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.start[0] >= line:
                return token.start[0] == line and token.type == tokenize.COMMENT
            if token.end[0] >= line:  # a token (a string) that spans the line
                return False
    except (tokenize.TokenError, SyntaxError):
        return True  # the file does not tokenize: the line reads as a comment
    return False
