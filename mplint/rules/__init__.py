"""The rule registry: every module in this package named ``mplNNN_*`` defines one rule."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mplint.rules.base import Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by code."""
    found: list[type[Rule]] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("mpl"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule
            and obj.__module__ == module.__name__
        )
    return tuple(sorted(found, key=lambda rule: rule.code))


def rule_by_code() -> dict[str, type[Rule]]:
    return {rule.code: rule for rule in all_rules()}


def markdown_table() -> str:
    """The README's rule table: code, name and summary of every rule."""
    rows = ["| code | name | flags |", "|---|---|---|"]
    rows += [f"| {rule.code} | {rule.name} | {rule.summary} |" for rule in all_rules()]
    return "\n".join(rows) + "\n"
