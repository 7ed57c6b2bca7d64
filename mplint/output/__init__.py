"""Formatters: findings in, text out. One module per format."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mplint.findings import Finding
from mplint.output import github, json_format, sarif, text

Formatter = Callable[[Sequence[Finding]], str]

FORMATTERS: dict[str, Formatter] = {
    "text": text.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
}
