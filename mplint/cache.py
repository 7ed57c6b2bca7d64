"""``.mplint_cache/``: results of earlier runs, so a re-run over an unchanged tree only stats.

One JSON file per mplint version and effective configuration holds, per file (absolute path):
its stat signature, content hash, prefilter scan, decoding error or findings (none for a file
the prefilter skipped), and a digest of the files of the tree it imports, directly or through
others, with their signatures. A result is reused only when the file is unchanged (same
signature, or same content hash) and that digest is the same. Writes go to
a temporary file renamed into place, merged with what concurrent runs wrote meanwhile. The
file carries a checksum of its entries' bytes: a damaged or edited cache is ignored as a
whole, and a malformed entry on its own.

Beside it, a record per set of paths linted (the newest few kept): the files the run read with
their signatures, the folders they lie in with their modification times, and the findings. A
re-run over the same paths whose stamp is unchanged takes those findings after stat calls
only; a file created or removed in one of those folders (which could change what an import
finds) or any changed file makes it a full run, which the per-file entries still speed up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

from mplint._version import __version__
from mplint.config import Config
from mplint.findings import Edit, Finding, Fix, NewFile
from mplint.prefilter import Scan
from mplint.sources import replace_file

CACHE_DIR = ".mplint_cache"
# A cache file: this header, then the entries' JSON (whose CRC-32 the header gives), then "}".
_RUNS_KEPT = 8  # records of whole runs (one per set of paths linted), newest first
_HEAD = re.compile(rb'\A\{"version":"[^"]*","check":(\d+),"files":')
# (mtime in ns, size, ctime in ns): an edit that keeps the size and puts the modification time
# back still changes the inode's change time, which no user can set.
Signature = tuple[int, int, int]


def signature(stat: os.stat_result) -> Signature:
    return stat.st_mtime_ns, stat.st_size, stat.st_ctime_ns


def content_hash(data: bytes) -> str:
    import hashlib  # only runs that read a file pay for it

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def config_key(config: Config, edits: bool) -> str:
    """What a result depends on besides the files: mplint itself and the effective settings."""
    settings = (__version__, _code_stamp(), config.select, config.ignore,
                config.per_file_ignores, config.model_loaders, config.model_base_classes,
                config.target_python, config.target_platforms,
                str(config.root), edits)
    import zlib  # a name for the cache file, not a security boundary; hashlib costs more

    return f"{zlib.crc32(repr(settings).encode()):08x}"


@dataclass(frozen=True)
class Entry:
    """What the cache knows of one file: enough to skip reading it when it is unchanged, and
    its findings while neither it nor any file its analysis read has changed."""

    signature: Signature
    digest: str  # content hash; "" when no cache is kept
    checked: bool  # decoded (``error`` says whether that worked), not only scanned
    scan: Scan
    error: tuple[int, int, str] | None = None  # line, column, reason it cannot be linted
    shown: str | None = None  # the path its findings carry
    findings: tuple[Finding, ...] | None = None
    # the digest of the file and the files of the tree it imports, with their signatures
    # (``ImportGraph.closure_digest``): the findings hold while it is the same
    deps: str | None = None

    def with_findings(self, shown: str, findings: list[Finding], deps: str) -> Entry:
        return replace(self, shown=shown, findings=tuple(findings), deps=deps)

    def to_json(self) -> dict[str, Any]:
        return {"sig": list(self.signature), "sha": self.digest, "checked": self.checked,
                "scan": [self.scan.direct, [list(i) for i in self.scan.imports],
                         list(self.scan.exports)],
                "error": list(self.error) if self.error else None, "shown": self.shown,
                "findings": None if self.findings is None
                else [finding_to_json(f) for f in self.findings],
                "deps": self.deps}

    @classmethod
    def from_json(cls, data: Any) -> Entry | None:
        """The entry a cache file holds; None when it is not in the shape this version
        writes (a foreign entry is ignored, never trusted)."""
        try:
            direct, imports, exports = data["scan"]
            mtime, size, changed = data["sig"]
            shown = data.get("shown")
            error = data["error"]
            rows, deps = data.get("findings"), data.get("deps")
            entry = cls(
                (_int(mtime), _int(size), _int(changed)), _str(data["sha"]),
                _bool(data["checked"]),
                Scan(_bool(direct), tuple((_int(level), _str(name)) for level, name in imports),
                     tuple(_str(name) for name in exports)),
                None if error is None else (_int(error[0]), _int(error[1]), _str(error[2])),
                None if shown is None else _str(shown),
                None if rows is None or shown is None
                else tuple(finding_from_json(shown, row) for row in rows),
                None if deps is None else _str(deps))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError):
            return None
        return entry


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(value)
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def finding_to_json(finding: Finding) -> list[Any]:
    fix = None
    if finding.fix is not None:
        fix = [finding.fix.safety, finding.fix.title,
               [list(astuple(edit)) for edit in finding.fix.edits],
               [list(astuple(new)) for new in finding.fix.creates]]
    return [*astuple(finding)[1:8], fix, finding.cell]


def finding_from_json(path: str, row: list[Any]) -> Finding:
    line, column, end_line, end_column, code, name, message, fix, cell = row
    return Finding(path, int(line), int(column), int(end_line), int(end_column), str(code),
                   str(name), str(message), _fix_from_json(fix),
                   None if cell is None else int(cell))


def _fix_from_json(fix: list[Any] | None) -> Fix | None:
    if not fix:
        return None
    safety, title, edits, creates = fix
    return Fix(str(safety), str(title), tuple(
        Edit(int(line), int(column), int(end_line), int(end_column), str(content),
             None if cell is None else int(cell))
        for line, column, end_line, end_column, content, cell in edits),
        tuple(NewFile(str(path), str(content)) for path, content in creates))


def _code_stamp() -> tuple[int, int]:
    """The newest modification time and the number of mplint's own modules: a changed or
    reinstalled mplint (an editable install included) starts a new cache."""
    package = Path(__file__).parent
    times = [entry.stat().st_mtime_ns for entry in package.rglob("*.py")]
    return max(times, default=0), len(times)


class Cache:
    """The entries of one cache file, read once and written back once per run."""

    def __init__(self, folder: Path, config: Config, edits: bool = False) -> None:
        self.folder = folder
        self.file = folder / f"{__version__}-{config_key(config, edits)}.json"
        self._loaded: dict[str, dict[str, Any]] | None = None  # read on first use
        self._changed: dict[str, dict[str, Any]] = {}

    @property
    def _entries(self) -> dict[str, dict[str, Any]]:
        if self._loaded is None:
            self._loaded = self._read()
        return self._loaded

    def _read(self) -> dict[str, dict[str, Any]]:
        entries = _read_checked(self.file)
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(v, dict)}

    # -- whole runs ----------------------------------------------------------------------------
    def _run_file(self, key: str) -> Path:
        return self.folder / f"{self.file.stem}.run-{key}.json"

    def recall(self, key: str) -> dict[str, Any] | None:
        """What a run over the same paths left: the files and folders it depended on, their
        stamp, and its findings (None: no such run)."""
        found = _read_checked(self._run_file(key))
        return found if isinstance(found, dict) else None

    def remember(self, key: str, record: dict[str, Any]) -> None:
        """Keep a run's record; only the newest few runs' records are kept."""
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            _mark(self.folder)
            _write_checked(self._run_file(key), record)
            runs = sorted(self.folder.glob(f"{self.file.stem}.run-*.json"),
                          key=lambda path: path.stat().st_mtime_ns, reverse=True)
            for old in runs[_RUNS_KEPT:]:
                old.unlink()

    def get(self, path: str) -> Entry | None:
        return Entry.from_json(self._entries.get(path))

    def put(self, path: str, entry: Entry) -> None:
        data = entry.to_json()
        self._entries[path] = data
        self._changed[path] = data

    def save(self) -> None:
        """Write the entries this run changed, keeping what other runs wrote meanwhile."""
        if not self._changed:
            return
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            _mark(self.folder)
            _write_checked(self.file, {**self._read(), **self._changed})


def _write_checked(path: Path, content: object) -> None:
    """Write ``content`` as JSON after a header with its checksum, atomically."""
    import zlib

    body = json.dumps(content, separators=(",", ":")).encode("utf-8")
    head = f'{{"version":{json.dumps(__version__)},"check":{zlib.crc32(body)},"files":'
    replace_file(path, head.encode("utf-8") + body + b"}")


def _read_checked(path: Path) -> object:
    """What ``_write_checked`` wrote; None when it is missing, damaged or edited."""
    try:
        text = path.read_bytes()
    except OSError:
        return None
    head = _HEAD.match(text)
    if head is None or not text.endswith(b"}"):
        return None  # not written by this version, or cut short
    body = memoryview(text)[head.end():-1]
    import zlib

    if zlib.crc32(body) != int(head.group(1)):
        return None
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError):  # nested too deep
        return None


def _mark(folder: Path) -> None:
    """Keep the cache out of version control and out of backups, as other tools' caches are."""
    for name, text in ((".gitignore", "# created by mplint\n*\n"),
                       ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"
                                        "# This directory holds mplint's cache.\n")):
        marker = folder / name
        if not marker.exists():
            marker.write_text(text, encoding="utf-8")
